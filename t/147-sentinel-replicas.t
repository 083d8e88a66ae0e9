# Validate on the replicas Sentinel knows (voucher_redis sentinel=...
# replicas=sentinel): each worker asks "SENTINEL replicas" with the master
# and follows "+slave", so the validates go to both replicas; after a
# SENTINEL FAILOVER the promoted one (a master now) is no longer read
# from, and the old master, once Sentinel announces it as a replica and
# it is in sync, is; every validate is answered 200 throughout.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use FailoverT;

my $g = start_group(replicas => 2, sentinels => 1, quorum => 1);
my $ng = VT::Nginx->start(workers => 2,
    http => 'voucher_redis sentinel=' . sentinel_addrs($g)
          . ' master=m replicas=sentinel timeout=2s;',
    server => api_server());

my $m = $g->{master};
ok(wait_until(sub { !VT::Redis::is_error($m->cmd('FCALL', 'voucher_version', 0)) },
              timeout => 10), 'nginx found the master through Sentinel');
campaign($m, 'k', kind => 'amount', value => 100);
code($m, 'CODE1', campaign => 'k');

sub fcalls { $_[0]->hot_calls }    # FCALL or the native module's commands
sub validate { post($ng, 'validate', {code => 'CODE1', order => {amount => 1000}}) }

# both replicas, in both workers: 20 validates, none on the master
ok(wait_until(sub {
        my %b = map { $_->port => fcalls($_) } @{ $g->{nodes} };
        validate() for 1 .. 20;
        fcalls($m) == $b{ $m->port }
            && !grep { fcalls($_) == $b{ $_->port } } @{ $g->{replicas} };
    }, timeout => 15), 'validates go to both replicas Sentinel names, none to the master');
like($ng->error_log, qr/Sentinel names replica 127\.0\.0\.1:\d+/, 'logged');

# a failover under validates: all answered 200
my $pid = fork // die;
if (!$pid) {
    sleep 0.3;
    $g->{sentinels}[0]->cmd('SENTINEL', 'FAILOVER', 'm');
    POSIX::_exit(0);
}
my %by;
my $t0 = VT::now();
while (VT::now() - $t0 < 4) { $by{ validate()->{status} }++ }
waitpid $pid, 0;
note join ' ', map { "$_=$by{$_}" } sort keys %by;
is_deeply([keys %by], [200], 'validates across SENTINEL FAILOVER: all 200');

my $new = wait_master($g, $m);
ok($new, 'a replica was promoted');
ok(wait_until(sub { FailoverT::linked($m) }, timeout => 20), 'the old master is a replica now');

ok(wait_until(sub {
        my %b = map { $_->port => fcalls($_) } @{ $g->{nodes} };
        validate() for 1 .. 20;
        fcalls($new) == $b{ $new->port } && fcalls($m) > $b{ $m->port };
    }, timeout => 20), 'the old master, now a replica, is read from; the new master is not');
like($ng->error_log, qr/replica 127\.0\.0\.1:\d+: not read from: not a replica/,
     'the promoted one was skipped: not a replica');

$ng->check_log;

my $bad = VT::Nginx->start(expect_fail => 1,
    http => 'voucher_redis 127.0.0.1:1 replicas=sentinel;');
like($bad->stderr . $bad->error_log, qr/"replicas=sentinel" without "sentinel="/,
     'replicas=sentinel without sentinel= is refused');

done_testing;
