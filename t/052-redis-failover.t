# A failover at the configured address: two real redis-server processes
# swap roles (REPLICAOF) under load, and nginx keeps pointing at the first.
# While it is a replica every request gets 503 store_unavailable (never a
# 500), the module sends it no FUNCTION LOAD even when its library is
# stale, and writes resume by themselves soon after it is the master again.
# A gate's confirm refused by the replica is sent again until it lands.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

# the gate's upstream: answers 200 once the file "go" exists
my $dir = VT::tmp_root();
my $up = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                               Listen => 16, Proto => 'tcp') or die "listen: $!";
my $UP = $up->sockport;
VT::fork_server($up, sub {
    my ($c) = @_;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($c, $head, 4096, length $head) or return;
    }
    open my $fh, '>', "$dir/got" or die;
    close $fh;
    sleep 0.02 until -e "$dir/go";
    print $c "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
});

my $ra = VT::Redis->start;
$ra->load_functions;
my $ng = VT::Nginx->start(redis => $ra, workers => 2, vars => {UP => $UP},
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=2s;',
    server => api_server() . <<'EOT');
        location /checkout/ {
            voucher_gate redeem;
            voucher_hold_time 60s;
            voucher_code $arg_coupon;
            voucher_customer $http_x_customer;
            voucher_order_amount $http_x_amount;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
my $rb = VT::Redis->start;
my ($ap, $bp) = ($ra->port, $rb->port);

campaign($ra, 'c', kind => 'amount', value => 100);
code($ra, 'FAIL', campaign => 'c', max_uses => 0);

my $n = 0;
sub redeem {
    $n++;
    return post($ng, 'redeem', {code => 'FAIL', customer => "p$n",
                                order => {amount => 1000}});
}

sub linked {
    my ($r) = @_;
    my $i = eval { $r->info('replication') } or return 0;
    return ($i->{role} // '') eq 'slave'
        && ($i->{master_link_status} // '') eq 'up';
}

# A master at the address nginx uses, B its replica
ok(wait_until(sub { redeem()->{status} == 200 }, timeout => 10), 'redeem works');
$rb->cmd('REPLICAOF', '127.0.0.1', $ap);
ok(wait_until(sub { linked($rb) }, timeout => 10), 'B replicates A');

sub failover {
    $rb->cmd('REPLICAOF', 'NO', 'ONE');
    $ra->cmd('REPLICAOF', '127.0.0.1', $bp);
    return wait_until(sub { linked($ra) }, timeout => 10);
}

sub failback {
    $ra->cmd('REPLICAOF', 'NO', 'ONE');
    my $t0 = VT::now();
    $rb->cmd('REPLICAOF', '127.0.0.1', $ap);
    return $t0;
}

# ---- under load: no 500s, writes resume without a reload

pipe(my $rd, my $wr) or die;
my $pid = fork // die;
if ($pid == 0) {
    close $rd;
    my %by;
    my $end = VT::now() + 5;
    my $round = 0;
    while (VT::now() < $end) {
        $round++;
        my @req = map {
            {method => 'POST', path => '/vouchers/redeem',
             body => {code => 'FAIL', customer => "l$round-$_",
                      order => {amount => 1000}}}
        } 1 .. 10;
        for my $r (http_parallel($ng->port, \@req, concurrency => 5,
                                 timeout => 20))
        {
            my $k = $r->{status} =~ /^[45]/
                    ? "$r->{status}-" . ($r->{json}{reason} // '?')
                    : $r->{status};
            $by{$k}++;
        }
        sleep 0.05;
    }
    print $wr join(',', map { "$_=$by{$_}" } sort keys %by), "\n";
    close $wr;
    exit 0;
}
close $wr;

sleep 0.7;
ok(failover(), 'failover: A is a replica of B');
sleep 0.3;
my $r = redeem();
is("$r->{status} " . ($r->{json}{reason} // ''), '503 store_unavailable',
   'a redeem at the replica: 503 store_unavailable');
sleep 1;

my $t0 = failback();
my $back;
ok(wait_until(sub { redeem()->{status} == 200 }, timeout => 10, interval => 0.02),
   'writes resume without a reload');
$back = VT::now() - $t0;
note sprintf 'writes resumed %.2f s after A was the master again', $back;
cmp_ok($back, '<', 2.5, 'within a second or two');

my $line = <$rd>;
waitpid $pid, 0;
chomp $line;
my %by = map { split /=/ } split /,/, $line;
note "answers under load: $line";

my $other = 0;
$other += $by{$_} for grep { !/^(200|503-store_unavailable)$/ } keys %by;
is($other, 0, 'every answer under load is 200 or 503 store_unavailable')
    or diag $line;
is($by{'500-internal_error'} // 0, 0, 'no 500 internal_error');
ok(($by{'503-store_unavailable'} // 0) > 0, 'some met the replica');
ok(($by{200} // 0) > 0, 'some redeemed');

ok(wait_until(sub { linked($rb) }, timeout => 10), 'B replicates A again');
is($ra->cmd('HGET', '{v}:c:FAIL', 'u'), $ra->cmd('XLEN', '{v}:log'),
   'counter and stream agree');

# ---- a stale library at the replica: no FUNCTION LOAD sent to it

ok(failover(), 'failover again');
my $stale = "#!lua name=voucher\n"
    . "redis.register_function{function_name='voucher_version', "
    . "callback=function() return 'old' end, flags={'no-writes'}}";
my $lr = $rb->cmd('FUNCTION', 'LOAD', 'REPLACE', $stale);
ok(!VT::Redis::is_error($lr), 'B, the master, has a stale library');
ok(wait_until(sub { ($ra->cmd('FCALL', 'voucher_version', 0) // '') eq 'old' },
              timeout => 10), 'and so has A, its replica');

$ra->reset_stats;
my %seen;
for (1 .. 10) {
    $r = redeem();
    $seen{"$r->{status} " . ($r->{json}{reason} // '')}++;
    sleep 0.15;
}
is_deeply(\%seen, {'503 store_unavailable' => 10},
          'redeems at the stale replica: 503 store_unavailable');

my $st = $ra->info('commandstats')->{'cmdstat_function|load'} // '';
note "FUNCTION LOAD at the replica: " . ($st eq '' ? 'none' : $st);
is($st, '', 'no FUNCTION LOAD reached the replica');
my $roles = $ra->info('commandstats')->{'cmdstat_role'} // '';
like($roles, qr/calls=\d+/, 'the module asked its ROLE');
my ($calls) = $roles =~ /calls=(\d+)/;
cmp_ok($calls // 0, "<=", 40,
       'with a back-off, not in a loop');

$t0 = failback();
ok(wait_until(sub { redeem()->{status} == 200 }, timeout => 10, interval => 0.02),
   'writes resume on the master');
$back = VT::now() - $t0;
note sprintf 'writes resumed %.2f s after A was the master again', $back;
cmp_ok($back, '<', 2.5, 'within a second or two');
if ($ENV{VOUCHER_REDIS_MODULE}) {
    # the native module answers redeems without the library: the first
    # call that needs it (a rollback) finds it missing, and nginx loads it
    my $rb1 = post($ng, 'rollback', {redemption_id => '1-1'});
    note "rollback without our library: $rb1->{status}";
    ok(wait_until(sub { grep { $_->[1] =~ /^voucher_[0-9a-f]{16}\z/ }
                            @{ $ra->cmd('FUNCTION', 'LIST') } },
                  timeout => 10), '(native) a call that needs the library loads it');
}
ok(grep({ $_->[1] =~ /^voucher_[0-9a-f]{16}\z/ } @{ $ra->cmd('FUNCTION', 'LIST') }),
   "the master got the module's library, beside the other version's primary");
$ra->load_functions;            # the primary, for the test's own calls

# ---- the gate: a confirm refused by the replica is sent again

code($ra, 'GATE', campaign => 'c', max_uses => 0);
my $gpid = fork // die;
if ($gpid == 0) {
    my $g = http($ng->port, 'GET', '/checkout/x?coupon=GATE',
                 headers => {'X-Customer' => 'g1', 'X-Amount' => 1000},
                 timeout => 30);
    POSIX::_exit($g->{status} == 200 ? 0 : 1);
}
ok(wait_until(sub { -e "$dir/got" }, timeout => 10), 'gate: the upstream has the request');
my ($id) = @{ $ra->cmd('ZRANGE', '{v}:hz', 0, -1) };
ok(defined $id, 'gate: the code is held');
ok(wait_until(sub { @{ $rb->cmd('ZRANGE', '{v}:hz', 0, -1) } == 1 }, timeout => 10),
   'gate: B has the hold');
ok(failover(), 'gate: A is a replica of B');
open my $go, '>', "$dir/go" or die;
close $go;
waitpid $gpid, 0;
is($? >> 8, 0, 'gate: the upstream answered 200, so the hold is to be confirmed');
sleep 1;                                   # a try or two meet the replica

sub status_of {
    my %h = @{ $ra->cmd('FCALL', 'voucher_redemption_get', 1, '{v}:log', $id) // [] };
    return $h{status} // 'none';
}
is(status_of(), 'reserved', 'gate: not confirmed at the replica');
failback();
ok(wait_until(sub { status_of() eq 'redeemed' }, timeout => 10),
   'gate: the confirm landed on the master') or diag status_of();

like($ng->error_log, qr/cannot take writes/, 'the log says why');

$ng->stop;
$ng->check_log('no alert');
$rb->stop;
$ra->stop;
done_testing;
