#!/usr/bin/perl
#
# The loyalty programme in the function library (redis/lib/loyalty.lua),
# against Redis directly: the programme and its validation, earning rules
# (per spend after discount, categories and SKUs, events, tier
# multipliers, caps), one accrual per order, pending points, expiry and
# its rounding, tiers up at once and down at the period's end with grace
# (both policies), spending, refunds, adjustments, take-backs, the ledger,
# and the due index worked lazily and by the sweep.  After every scenario
# the balance equals the sum of the ledger and of the lots.

use strict;
use warnings;
use Test::More;
use Time::Local qw(timegm);
use VT;

my $r = VT::Redis->start;
$r->load_functions;

my $T = '{lo}';

sub is_err { ref $_[0] && ref $_[0] ne 'ARRAY' && $_[0]->isa('VT::Redis::Error') }
sub fcall { my ($fn, $key, @a) = @_; $r->cmd('FCALL', $fn, 1, $key, @a) }
sub h { my $x = shift; return $x unless ref $x eq 'ARRAY'; +{ @$x[1 .. $#$x], _ => $x->[0] } }
sub day { my ($y, $m, $d, $H) = @_; timegm(0, 0, $H // 12, $d, $m - 1, $y) }

sub prog { my $x = fcall('voucher_loyalty_set', "$T:lp", @_);
           die "loyalty_set @_: " . (is_err($x) ? $x->message : $x) . "\n"
               unless !ref $x && $x eq 'OK' }
sub earn {
    my ($m, $oid, $amount, $at, @items) = @_;
    h(fcall('voucher_loyalty_earn', "$T:lm:$m", $oid, $amount,
            scalar(@items), (map { @$_ } @items), $at // ''));
}
sub bal { h(fcall('voucher_loyalty_balance', "$T:lm:$_[0]", $_[1] // '')) }
sub spend { h(fcall('voucher_loyalty_spend', "$T:lm:$_[0]", $_[1], $_[2], $_[3] // '')) }
sub adjust { h(fcall('voucher_loyalty_adjust', "$T:lm:$_[0]", @_[1 .. 3], $_[4] // '')) }
sub sweep { fcall('voucher_loyalty_sweep', "$T:lz", @_) }
sub ledger {
    my $m = shift;
    [map { +{ id => $_->[0], @{ $_->[1] } } } @{ $r->cmd('XRANGE', "$T:lh:$m", '-', '+') }];
}
sub snapshot {
    my %s;
    for my $k (sort @{ $r->cmd('KEYS', '*') }) {
        my $t = $r->cmd('TYPE', $k);
        $s{$k} = $t eq 'hash' ? +{ @{ $r->cmd('HGETALL', $k) } }
               : $t eq 'stream' ? $r->cmd('XLEN', $k)
               : $t eq 'zset' ? $r->cmd('ZRANGE', $k, 0, -1, 'WITHSCORES')
               : $t eq 'string' ? $r->cmd('GET', $k) : $t;
    }
    \%s;
}

# the invariant: the member's balance is the sum of its ledger, each
# entry's balance after is the running sum, and the lots hold exactly
# the active and pending points; never below zero
sub ledger_sums {
    my ($m, $name) = @_;
    my $h = +{ @{ $r->cmd('HGETALL', "$T:lm:$m") } };
    my $lots = +{ @{ $r->cmd('HGETALL', "$T:ll:$m") } };
    my ($sum, $ok, $la, $lp) = (0, 1, 0, 0);
    for my $e (@{ ledger($m) }) {
        $sum += $e->{points};
        $ok &&= $e->{active} + $e->{pending} == $sum
                && $e->{active} >= 0 && $e->{pending} >= 0;
    }
    for (keys %$lots) { /^a:/ ? ($la += $lots->{$_}) : ($lp += $lots->{$_}) }
    my $act = $h->{act} // 0; my $pend = $h->{pend} // 0;
    ok($ok && $sum == $act + $pend && $la == $act && $lp == $pend
       && $act >= 0 && $pend >= 0,
       "$name: balance $act+$pend == ledger $sum == lots $la+$lp")
        or diag explain [$h, $lots, ledger($m)];
}

my $JAN = day(2025, 1, 15);

############################################################## programme

is_deeply(earn('ann', 'o0', 10000, $JAN), { _ => 'no_programme' },
          'no programme: no_programme');
is_deeply(bal('ann', $JAN), { _ => 'no_programme' }, 'balance: no_programme');

for my $bad ([[every => 0], qr/invalid_field every/],
             [[points => -1], qr/invalid_field points/],
             [[tiers => 'silver:10:100'], qr/invalid_field tiers: thresholds/],
             [[tiers => 'a:0:100,b:50:100,c:50:100'], qr/invalid_field tiers/],
             [[tiers => 'a:0:100,a:5:100'], qr/invalid_field tiers/],
             [[category_multipliers => 'drinks:x'], qr/invalid_field category/],
             [[expiry_round => 'week'], qr/invalid_field expiry_round/],
             [[tier_period => 'month'], qr/invalid_field tier_period/],
             [[bogus => 1], qr/unknown_field bogus/],
             [[points => 1, 'every'], qr/bad_args/]) {
    my $x = fcall('voucher_loyalty_set', "$T:lp", @{ $bad->[0] });
    ok(is_err($x) && $x->message =~ $bad->[1], "loyalty_set @{$bad->[0]}: refused")
        or diag explain $x;
}
is($r->cmd('EXISTS', "$T:lp"), 0, 'nothing written by a refused programme');

prog(every => 2500, points => 1, point_value => 25);
is_deeply(fcall('voucher_loyalty_get', "$T:lp"),
          [status => 'active', every => 2500, points => 1, point_value => 25],
          'loyalty_get');

############################################################## earning

{
    my $x = earn('ann', 'o1', 10000, $JAN);
    is_deeply($x, { _ => 'ok', order_id => 'o1', points => 4, active => 4,
                    pending => 0, tier => '' }, '100.00 earns 4 points');
    my $before = snapshot();
    is_deeply(earn('ann', 'o1', 10000, $JAN), { _ => 'already_earned', order_id => 'o1' },
              'the same order again: already_earned');
    is_deeply(earn('bob', 'o1', 10000, $JAN), { _ => 'already_earned', order_id => 'o1' },
              'the same order for another member: already_earned');
    is_deeply(snapshot(), $before, 'a second accrual changes nothing');
    is(earn('ann', 'o2', 2499, $JAN)->{points}, 0, 'below every: 0 points');
    ledger_sums('ann', 'per spend');

    for my $bad (['', 100], ['o3', -5], ['o3', '1e3'], ['o3', 'abc']) {
        my $x = fcall('voucher_loyalty_earn', "$T:lm:ann", $bad->[0], $bad->[1], 0);
        ok(is_err($x) && $x->message eq 'ERR bad_args', "earn @$bad: bad_args");
    }
    my $x2 = fcall('voucher_loyalty_earn', "$T:lm:a b", 'o4', 100, 0);
    ok(is_err($x2) && $x2->message eq 'ERR bad_key', 'a member id with a space: bad_key');
}

# categories, SKUs, exclusions; the amount after discount shares out
prog(category_multipliers => 'drinks:200', sku_multipliers => 'BIG:300',
     exclude_categories => 'tobacco', exclude_skus => 'GIFT');
{
    my @items = (['TEA', 'drinks', 5000, 1], ['CIG', 'tobacco', 5000, 1],
                 ['BIG', 'food', 2500, 2], ['GIFT', 'cards', 10000, 1],
                 ['BUN', 'food', 2500, 1]);
    # listed 27500; weighted: tea 10000 + big 15000 + bun 2500 = 27500
    is(earn('cat', 'c1', 27500, $JAN, @items)->{points}, 11,
       'multipliers and exclusions: 27500 / 2500 = 11');
    # a discount: 22000 paid of 27500 listed: 27500 * 0.8 = 22000 -> 8
    is(earn('cat', 'c2', 22000, $JAN, @items)->{points}, 8,
       'the amount after discount shares over the items');
    is(earn('cat', 'c3', 5000, $JAN, ['CIG', 'tobacco', 5000, 1])->{points}, 0,
       'only excluded items: 0');
    is(earn('cat', 'c4', 7500, $JAN)->{points}, 3, 'no items: the amount');
    # exact for amounts whose products pass 2^53
    is(earn('cat', 'c5', 9_000_000_000_000, $JAN,
            ['TEA', 'drinks', 9_000_000_000_000, 1], ['X', 'food', 1_000_000_000_000, 1])->{points},
       6_840_000_000, 'large amounts stay exact (19e12 * 9e12 / 10e12 / 2500)');
    ledger_sums('cat', 'categories');
}

# events
prog(events => 'signup:100,review:20');
{
    my $x = h(fcall('voucher_loyalty_event', "$T:lm:eve", 'signup', 'signup-eve', $JAN));
    is($x->{points}, 100, 'signup event: 100');
    is(h(fcall('voucher_loyalty_event', "$T:lm:eve", 'signup', 'signup-eve', $JAN))->{_},
       'already_earned', 'the same event key: already_earned');
    is_deeply(h(fcall('voucher_loyalty_event', "$T:lm:eve", 'dance', 'k1', $JAN)),
              { _ => 'unknown_event', event => 'dance' }, 'unknown_event');
    ledger_sums('eve', 'events');
}

# caps
prog(category_multipliers => '', sku_multipliers => '', exclude_categories => '',
     exclude_skus => '', cap_order => 50, cap_day => 70);
{
    is(earn('cap', 'k1', 1_000_000, $JAN)->{points}, 50, 'cap per order');
    is(earn('cap', 'k2', 1_000_000, $JAN + 60)->{points}, 20, 'cap per day: 20 left');
    is(earn('cap', 'k3', 1_000_000, $JAN + 120)->{points}, 0, 'cap per day: none left');
    is(earn('cap', 'k4', 1_000_000, $JAN + 86400)->{points}, 50, 'the next day');
    ledger_sums('cap', 'caps');
}
prog(cap_order => 0, cap_day => 0);

############################################################## pending, expiry

prog(pending_days => 14, expiry_months => 12, expiry_round => 'none');
{
    my $x = earn('pen', 'p1', 100000, $JAN);
    is_deeply([@$x{qw(points active pending)}], [40, 0, 40], 'earned as pending');
    is(spend('pen', 10, 'sp0', $JAN)->{_}, 'insufficient_points',
       'pending points cannot be spent');
    is(bal('pen', $JAN + 13 * 86400)->{pending}, 40, 'still pending after 13 days');
    # the sweep, not a call, activates it
    is(sweep($JAN + 14 * 86400), 1, 'the sweep works the member due');
    my $b = bal('pen', $JAN + 14 * 86400);
    is_deeply([@$b{qw(active pending expiring_points expiry_date)}],
              [40, 0, 40, '2026-01-15'], 'active after 14 days, expiring in 12 months');
    is(sweep($JAN + 20 * 86400), 0, 'nothing else due: the sweep touches no one');
    is(bal('pen', day(2026, 1, 15, 11))->{active}, 40, 'an hour before expiry: still there');
    is(bal('pen', day(2026, 1, 15, 12))->{active}, 0, 'expired on the day (lazily, by a balance)');
    is_deeply([map { $_->{type} } @{ ledger('pen') }], [qw(earn activate expire)],
              'ledger: earn, activate, expire');
    is($r->cmd('ZSCORE', "$T:lz", 'pen'), undef, 'nothing due: out of the index');
    ledger_sums('pen', 'pending and expiry');
}

prog(pending_days => 0);
for my $c (['month', '2026-01-31'], ['quarter', '2026-03-31'], ['year', '2026-12-31']) {
    prog(expiry_round => $c->[0], tz_offset => '+07:00');
    earn("rnd$c->[0]", "r$c->[0]", 2500, $JAN);
    is(bal("rnd$c->[0]", $JAN)->{expiry_date}, $c->[1], "expiry rounded to the $c->[0]'s end");
}
prog(expiry_round => 'none', tz_offset => 0);
{
    # 31 January + 1 month is the last day of February
    earn('feb', 'f1', 2500, day(2025, 1, 31));
    prog(expiry_months => 1);
    earn('feb', 'f2', 2500, day(2025, 1, 31));
    is(bal('feb', day(2025, 1, 31))->{expiry_date}, '2025-02-28', 'one month after 31 Jan: 28 Feb');
    ledger_sums('feb', 'month ends');
}
prog(expiry_months => 0);

############################################################## spend, adjust, refund

{
    earn('sam', 's1', 250000, $JAN);        # 100 points
    my $before = snapshot();
    is_deeply(spend('sam', 101, 'x1', $JAN),
              { _ => 'insufficient_points', active => 100, points => 101 },
              'insufficient_points');
    is(spend('sam', 0, 'x1', $JAN)->{_}, 'invalid_points', '0 points: invalid_points');
    is(spend('sam', -3, 'x1', $JAN)->{_}, 'invalid_points', 'negative: invalid_points');
    is(spend('sam', '99999999999999999999', 'x1', $JAN)->{_}, 'invalid_points',
       'overflowing: invalid_points');
    is_deeply(snapshot(), $before, 'refusals change nothing');
    is(spend('sam', 30, 'x1', $JAN)->{active}, 70, 'spent 30');
    is(spend('sam', 30, 'x1', $JAN)->{_}, 'already_applied', 'the same ref again');
    is_deeply(h(fcall('voucher_loyalty_refund', "$T:ls:x1", $JAN)), { _ => 'ok', points => 30 },
              'refund');
    is(h(fcall('voucher_loyalty_refund', "$T:ls:x1", $JAN))->{_}, 'spend_not_found',
       'a refund once');
    is(bal('sam', $JAN)->{active}, 100, 'all back');

    is(adjust('sam', '+25', 'goodwill', 'adj1', $JAN)->{active}, 125, 'adjust +25');
    is(adjust('sam', '+25', 'goodwill', 'adj1', $JAN)->{_}, 'already_applied', 'adjust once per key');
    is(adjust('sam', '-125', 'fraud', 'adj2', $JAN)->{active}, 0, 'adjust -125');
    is(adjust('sam', '-1', 'fraud', 'adj3', $JAN)->{_}, 'insufficient_points',
       'adjust below zero refused');
    is(adjust('sam', '0', 'x', 'adj4', $JAN)->{_}, 'invalid_points', 'adjust 0');
    my $x = fcall('voucher_loyalty_adjust', "$T:lm:sam", '+5', '', 'adj5', $JAN);
    ok(is_err($x) && $x->message =~ /invalid_field reason/, 'adjust needs a reason');
    my @types = map { "$_->{type}:$_->{points}" } @{ ledger('sam') };
    is("@types", 'earn:100 spend:-30 refund:30 adjust:25 adjust:-125', 'the ledger');
    my $hist = fcall('voucher_loyalty_history', "$T:lm:sam", 2);
    is(scalar @$hist, 2, 'history: count');
    my %last = @{ $hist->[0] }[1 .. $#{ $hist->[0] }];
    is_deeply([@last{qw(type points reason active)}], ['adjust', -125, 'fraud', 0],
              'history: newest first, with the reason and the balance after');
    my $older = fcall('voucher_loyalty_history', "$T:lm:sam", 10, $hist->[1][0]);
    is(scalar @$older, 3, 'history: the page before an id');
    ledger_sums('sam', 'spend, refund, adjust');
}

############################################################## take-backs

prog(pending_days => 7);
{
    earn('rev', 'v1', 250000, $JAN);             # 100 pending
    earn('rev', 'v2', 125000, $JAN - 30 * 86400); # 50, active by now
    bal('rev', $JAN);
    is_deeply([@{ bal('rev', $JAN) }{qw(active pending)}], [50, 100], '50 active, 100 pending');
    my $x = h(fcall('voucher_loyalty_revoke', "$T:lo:v1", $JAN));
    is_deeply([@$x{qw(_ points unrecovered active pending)}], ['ok', 100, 0, 50, 0],
              'revoke takes the pending points first');
    is(h(fcall('voucher_loyalty_revoke', "$T:lo:v1", $JAN))->{_}, 'already_revoked', 'once');
    is(h(fcall('voucher_loyalty_revoke', "$T:lo:nope", $JAN))->{_}, 'order_not_found',
       'order_not_found');
    spend('rev', 40, 'rv1', $JAN);
    $x = h(fcall('voucher_loyalty_revoke', "$T:lo:v2", $JAN));
    is_deeply([@$x{qw(points unrecovered active)}], [10, 40, 0],
              'spent points stay spent: 10 taken, 40 unrecovered, never below 0');
    ledger_sums('rev', 'take-backs');
}
prog(pending_days => 0);

############################################################## tiers

prog(tiers => 'base:0:100,silver:100:100,gold:300:150,plat:600:200',
     tier_period => 'year', tier_downgrade => 'one_down', tier_grace_days => 30,
     notify => 'yes', notice_days => 14, expiry_months => 12, expiry_round => 'none');
{
    my $m = 'tia';
    is(earn($m, 't1', 250000, $JAN)->{tier}, 'silver', '100 points: silver at once');
    my $b = bal($m, $JAN);
    is_deeply([@$b{qw(tier next_tier points_to_next_tier qualified)}],
              ['silver', 'gold', 200, 100], 'balance: 200 to gold');
    is(earn($m, 't2', 500000, $JAN + 1)->{tier}, 'gold', '300: gold on the order that crosses');
    is(earn($m, 't3', 100000, $JAN + 2)->{points}, 60, 'gold earns x1.5');
    is(earn($m, 't4', 2000000, $JAN + 3)->{tier}, 'plat', 'and platinum');
    # 2025 qualified for platinum: it holds through 2026; 2026 earns
    # nothing, so the review at 2027-01-01 + 30 days takes one level
    sweep(day(2026, 1, 2));
    is(bal($m, day(2026, 12, 20))->{tier}, 'plat', 'the year after qualifying: platinum');
    is(bal($m, day(2027, 1, 20))->{tier}, 'plat', 'in the grace: still platinum');
    is(bal($m, day(2027, 1, 31, 1))->{tier}, 'gold', 'after the grace: one level down');
    is(bal($m, day(2027, 6, 1))->{tier}, 'gold', 'gold for the rest of 2027');
    is(bal($m, day(2028, 2, 1))->{tier}, 'silver', 'then silver');
    is(bal($m, day(2029, 2, 1))->{tier}, 'base', 'then the base');
    my @t = map { $_->{type} } grep { $_->{type} =~ /^tier/ } @{ ledger($m) };
    is("@t", 'tier_upgraded tier_upgraded tier_upgraded tier_downgraded tier_downgraded tier_downgraded',
       'every tier change is in the ledger');
    my @ev = map { my %e = @{ $_->[1] }; $e{type} } @{ $r->cmd('XRANGE', "$T:events", '-', '+') };
    ok((grep { $_ eq 'tier_will_drop' } @ev) >= 1, 'tier_will_drop notified in the grace');
    ok((grep { $_ eq 'points_expiring' } @ev) >= 1, 'points_expiring notified');
    ledger_sums($m, 'tiers one_down');

    prog(tier_downgrade => 'period');
    $m = 'tib';
    earn($m, 'u1', 2000000 * 2, day(2025, 3, 1));    # 1600: plat
    earn($m, 'u2', 400000, day(2026, 5, 1));          # 2026 so far: 160*2=320 -> gold
    is(bal($m, day(2026, 2, 1))->{tier}, 'plat', '2025 made platinum: kept in 2026');
    # 2026's review (2027-01-31): 2026 earned 320 at x2 -> gold
    is(bal($m, day(2027, 2, 1))->{tier}, 'gold', 'period policy: to what the period earned');
    earn($m, 'u3', 2500, day(2027, 3, 1));
    is(bal($m, day(2028, 2, 1))->{tier}, 'base', 'period policy: straight to the base');
    ledger_sums($m, 'tiers period');

    prog(tier_period => 'quarter', tier_grace_days => 0, tier_downgrade => 'one_down');
    $m = 'tiq';
    earn($m, 'q1', 250000 * 3, day(2025, 2, 1));      # 300: gold
    is(bal($m, day(2025, 3, 31))->{tier}, 'gold', 'quarter: gold in Q1');
    is(bal($m, day(2025, 4, 1, 1))->{tier}, 'gold', 'Q2 reviews Q1, which made gold');
    is(bal($m, day(2025, 7, 1, 1))->{tier}, 'silver', 'Q3 reviews an empty Q2: one down');

    prog(tier_period => 'rolling12', tier_basis => 'spend',
         tiers => 'base:0:100,vip:1000000:100');
    $m = 'tir';
    earn($m, 'w1', 600000, day(2025, 1, 10));
    is(earn($m, 'w2', 500000, day(2025, 11, 10))->{tier}, 'vip', 'rolling 12 months of spend: vip');
    is(bal($m, day(2026, 1, 5))->{tier}, 'vip', 'still inside 12 months');
    is(bal($m, day(2026, 2, 2))->{tier}, 'base', 'January 2025 dropped out: down');
    ledger_sums($m, 'tiers rolling');
}

############################################################## the index

{
    my $before = $r->cmd('ZCARD', "$T:lz");
    ok($before > 0, "the due index holds $before members");
    # far in the future everything is due once, then nothing
    my $n = sweep(day(2040, 1, 1), 1000);
    ok($n > 0, "the sweep worked $n members");
    is(sweep(day(2040, 1, 1), 1000), 0, 'nothing is due twice');
    for my $m (qw(ann cat eve cap pen feb sam rev tia tib tiq tir)) {
        ledger_sums($m, "after the sweep: $m");
    }
}

$r->stop;
done_testing;
