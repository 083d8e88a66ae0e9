# Sentinel discovery: nginx finds the master through three real
# redis-sentinel processes, and follows it when Sentinel moves it, by
# SENTINEL FAILOVER (the old master stays up and answers READONLY) and by
# kill -9 of the master, under load with idempotency keys.  Every answer
# is 200 or 503, never 500; writes come back by themselves; once every
# key not answered 200 is sent again, the counters, the trail, the
# customers and the idempotency records agree.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;
use FailoverT;
use WorkerT;

# ---- configurations refused

for my $c (['sentinel=127.0.0.1:1', qr/"sentinel=" without "master="/],
           ['127.0.0.1:1 master=m', qr/"master=" .* without "sentinel="/],
           ['127.0.0.1:1 sentinel=127.0.0.1:2 master=m',
            qr/an address or "sentinel=", not both/],
           ['sentinel=127.0.0.1:2,,127.0.0.1:3 master=m',
            qr/empty address in "sentinel="/],
           ['master=m', qr/"master=" .* without "sentinel="/]) {
    my $n = VT::Nginx->start(http => "voucher_redis $c->[0];",
                             server => api_server(), expect_fail => 1);
    ok($n->start_failed, "refused: $c->[0]");
    like($n->stderr . $n->error_log, $c->[1], "and says why: $c->[0]");
}

my $g = start_group();
my $m = $g->{master};
$m->load_functions;
campaign($m, 'c', kind => 'amount', value => 100);
code($m, 'FAIL', campaign => 'c', max_uses => 0);

my $ng = VT::Nginx->start(workers => 2,
    http => 'voucher_redis sentinel=' . sentinel_addrs($g)
            . ' master=m timeout=1s;',
    server => api_server());

my $probe = 0;
sub probe {
    $probe++;
    return http($ng->port, 'POST', '/vouchers/redeem',
                headers => {'Idempotency-Key' => "probe-$probe"},
                body => {code => 'FAIL', customer => "c-probe-$probe",
                         order => {amount => 1000}}, timeout => 5);
}

ok(wait_until(sub { probe()->{status} == 200 }, timeout => 10),
   'a redeem through Sentinel');
my $mp = $m->port;
like($ng->error_log, qr/the master is 127\.0\.0\.1:$mp/,
     'each worker learnt the master from Sentinel');

# the time from the fault to the first redeem answered 200
sub writes_back {
    my ($t0) = @_;
    my $ok = wait_until(sub { probe()->{status} == 200 }, timeout => 30,
                        interval => 0.02);
    return $ok ? VT::now() - $t0 : undef;
}

sub scenario {
    my ($name, $prefix, $fault) = @_;
    my $old = master_of($g);
    my $file = VT::tmp_root() . "/load-$name";
    my $pid = load_start($ng, $file, prefix => $prefix);
    sleep 1;
    my $t0 = VT::now();
    $fault->($old);
    my $back = writes_back($t0);
    ok(defined $back, "$name: writes are back by themselves");
    my $new = wait_master($g, $old);
    ok($new, "$name: Sentinel names a new master");
    sleep 1;
    my $seen = load_stop($pid, $file);

    my %by;
    $by{"$_->[0] $_->[1]"}++ for values %$seen;
    my $line = join ', ', map { "$_: $by{$_}" } sort keys %by;
    note "$name: answers under load: $line";
    is(scalar(grep { $_->[0] != 200 && $_->[0] != 503 } values %$seen), 0,
       "$name: every answer is 200 or 503") or diag $line;
    ok(($by{'200 -'} // 0) > 0 && keys %$seen > 20, "$name: the load ran");

    my $retried = settle($ng, $seen);
    my $c = census($new);
    note sprintf '%s: writes back %.2f s after the fault; %d of %d retried; '
        . 'census %s', $name, $back // -1, $retried, scalar keys %$seen,
        join(' ', map { "$_=$c->{$_}" } sort keys %$c);
    is_deeply([@$c{qw(redeemed trail customers idempotency)}],
              [($c->{uses}) x 4],
              "$name: uses, campaign counter, trail, customers and "
              . 'idempotency records agree');
    my $lost = acked_lost($new, $seen);
    note "$name: acknowledged redemptions not on the new master: $lost";
    return ($old, $new, $back, $lost);
}

# ---- SENTINEL FAILOVER: the old master stays up and becomes a replica

my ($old, $new) = scenario('SENTINEL FAILOVER', 'f', sub {
    my $r = $g->{sentinels}[0]->cmd('SENTINEL', 'FAILOVER', 'm');
    die "SENTINEL FAILOVER: $r\n" if VT::Redis::is_error($r);
});
ok(wait_until(sub { linked($old) }, timeout => 20),
   'the old master is a replica now');
my $ro = $old->cmd('SET', 'x', 1);
like("$ro", qr/^READONLY/, 'and answers writes READONLY');
my $np = $new->port;
like($ng->error_log, qr/the master is 127\.0\.0\.1:$np/,
     'the workers moved to the new master');

# ---- kill -9 of the master

scenario('kill -9', 'k', sub { $_[0]->kill9 });

# ---- a stale address is never kept: the workers of a reload start anew

$ng->reload;
ok(wait_until(sub { probe()->{status} == 200 }, timeout => 10),
   'after a reload, the new workers find the master');

# ---- voucherd and voucherctl find the master through Sentinel too

worker_bin('voucherd');
my $cur = master_of($g);
my $w = worker_setup(redis => $cur, config => {
    daemon => {poll_ms => 50},
    redis => {sentinel => [map { '127.0.0.1:' . $_->port } @{ $g->{sentinels} }],
              master => 'm', timeout_ms => 1000}});
my $res = WorkerT::ctl($w, 'campaign', 'get', 'c');
is($res->{rc}, 0, 'voucherctl through Sentinel') or diag $res->{err};
my $d = WorkerT::Daemon->start($w);
$cur->reset_stats;
ok(wait_until(sub { $cur->hot_calls > 0 }, timeout => 5),
   'voucherd works on the master Sentinel names');
my $r = $g->{sentinels}[1]->cmd('SENTINEL', 'FAILOVER', 'm');
ok(!VT::Redis::is_error($r), 'SENTINEL FAILOVER again') or diag "$r";
my $next = wait_master($g, $cur);
ok($next, 'a new master');
$next->reset_stats;
my $t0 = VT::now();
ok(wait_until(sub { $next->hot_calls > 0 }, timeout => 10,
              interval => 0.05), 'voucherd follows it');
note sprintf 'voucherd on the new master %.2f s after Sentinel named it',
    VT::now() - $t0;
ok($d->alive, 'voucherd runs on');
$d->stop;

$ng->stop;
$ng->check_log('no alert');
$_->stop for @{ $g->{sentinels} };
$_->stop for grep { $_->running } @{ $g->{nodes} };
done_testing;
