# nginx -s reload (HUP) under load: every request is answered, old workers
# exit with no "open socket left" alert, new workers take over, nothing is
# counted twice.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(workers => 2);

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'HUP', campaign => 'c', max_uses => 0);

pipe(my $rd, my $wr) or die;
my $pid = fork // die;
if ($pid == 0) {
    close $rd;
    my (%by, $n);
    for my $round (1 .. 15) {
        my @req = map {
            {method => 'POST', path => '/vouchers/redeem',
             body => {code => 'HUP', customer => "c$round-$_",
                      idempotency_key => "k$round-$_", order => {amount => 1000}}}
        } 1 .. 100;
        $by{$_->{status}}++ for http_parallel($ng->port, \@req, concurrency => 25, timeout => 20);
    }
    print $wr join(',', map { "$_=$by{$_}" } sort keys %by), "\n";
    exit 0;
}
close $wr;

my @old = $ng->worker_pids;
for (1 .. 3) {
    sleep 0.3;
    $ng->reload;
}
my $line = <$rd>;
waitpid $pid, 0;
chomp $line;
note "answers: $line";
my %by = map { split /=/ } split /,/, $line;

is($by{200} // 0, 1500, 'all 1,500 redeems across three reloads answered 200')
    or diag $line;
is($redis->cmd('HGET', '{v}:c:HUP', 'u'), 1500, 'counted 1,500 times, no more');
is($redis->cmd('XLEN', '{v}:log'), 1500, '1,500 stream entries');

my @new = $ng->worker_pids;
my %old = map { $_ => 1 } @old;
ok(!grep({ $old{$_} } @new), 'old workers are gone');
ok(!grep({ kill 0, $_ } @old), 'and have exited');

is(post($ng, 'validate', {code => 'HUP', order => {amount => 1}})->{status}, 200,
   'new workers answer');

$ng->stop;
$ng->check_log('no alert, no open socket left');
unlike($ng->error_log, qr/open socket .* left in connection/, 'no open socket left');
$redis->stop;
done_testing;
