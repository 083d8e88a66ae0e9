# durability=replicated against the default, under the same fault: the
# replicas fall behind (SIGSTOP for 0.3 s, their links cut by CLIENT KILL
# TYPE replica, so what the master takes meanwhile only it has; the
# kernel's socket buffers would otherwise still deliver it) and the master
# is killed
# (kill -9) while redeems with idempotency keys run; Sentinel promotes a
# replica.  By default, redemptions acknowledged in that window are gone
# (counted, and there must be some, or the fault was not real); with
# durability=replicated none is: a write is answered only once a replica
# has it (WAIT 1 after each batch), else 503 store_timeout, and a retry
# with its key settles it exactly once.  Either way uses, counter, trail,
# customers and idempotency records agree.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use FailoverT;

my %lost;

for my $mode ('default', 'replicated') {
    my $g = start_group();
    my $m = $g->{master};
    $m->load_functions;
    campaign($m, 'c', kind => 'amount', value => 100);
    code($m, 'FAIL', campaign => 'c', max_uses => 0);

    my $ng = VT::Nginx->start(workers => 2,
        http => 'voucher_redis sentinel=' . sentinel_addrs($g)
                . " master=m timeout=1s durability=$mode;",
        server => api_server());

    my $probe = 0;
    my $redeem = sub {
        $probe++;
        return http($ng->port, 'POST', '/vouchers/redeem',
                    headers => {'Idempotency-Key' => "probe-$probe"},
                    body => {code => 'FAIL', customer => "c-probe-$probe",
                             order => {amount => 1000}}, timeout => 5);
    };
    ok(wait_until(sub { $redeem->()->{status} == 200 }, timeout => 10),
       "$mode: redeems work");

    if ($mode eq 'replicated') {
        $m->reset_stats;
        $redeem->() for 1 .. 5;
        my $st = $m->commandstats;
        cmp_ok($st->{wait} // 0, '>=', 5, "$mode: each redeem is covered by a WAIT");
    }

    my $file = VT::tmp_root() . "/load-$mode";
    my $pid = load_start($ng, $file, prefix => 'k');
    sleep 1;
    # the replicas stop, their links are cut: what the master takes now
    # only it has
    $_->pause for @{ $g->{replicas} };
    $m->cmd('CLIENT', 'KILL', 'TYPE', 'replica');
    sleep 0.3;
    my $t0 = VT::now();
    $m->kill9;
    $_->resume for @{ $g->{replicas} };
    my $new = wait_master($g, $m);
    ok($new, "$mode: Sentinel promoted a replica");
    ok(wait_until(sub { $redeem->()->{status} == 200 }, timeout => 30,
                  interval => 0.02), "$mode: writes are back");
    note sprintf '%s: writes back %.2f s after kill -9', $mode, VT::now() - $t0;
    sleep 0.5;
    my $seen = load_stop($pid, $file);

    my %by;
    $by{"$_->[0] $_->[1]"}++ for values %$seen;
    my $line = join ', ', map { "$_: $by{$_}" } sort keys %by;
    note "$mode: answers under load: $line";
    is(scalar(grep { $_->[0] != 200 && $_->[0] != 503 } values %$seen), 0,
       "$mode: every answer is 200 or 503") or diag $line;

    my $retried = settle($ng, $seen);
    my $c = census($new);
    is_deeply([@$c{qw(redeemed trail customers idempotency)}],
              [($c->{uses}) x 4],
              "$mode: uses, counter, trail, customers and idempotency "
              . 'records agree') or diag explain $c;
    $lost{$mode} = acked_lost($new, $seen);
    note sprintf '%s: %d answers, %d retried, acknowledged and lost: %d',
        $mode, scalar keys %$seen, $retried, $lost{$mode};

    $ng->stop;
    $ng->check_log('no alert');
    $_->stop for @{ $g->{sentinels} };
    $_->stop for grep { $_->running } @{ $g->{nodes} };
}

cmp_ok($lost{default}, '>', 0,
       'default: the fault loses acknowledged redemptions');
is($lost{replicated}, 0,
   'replicated: no acknowledged redemption is lost');

done_testing;
