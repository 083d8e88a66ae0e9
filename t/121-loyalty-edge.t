#!/usr/bin/perl
#
# Loyalty at the edge: a gate confirm credits the order's points in the
# same FCALL (one order, one accrual), a release earns nothing, a rollback
# takes the points back; points pay at checkout (API and gate), reserved
# and confirmed or given back with the code; tier-only campaigns; the
# refusals and bad input.  The balance equals the ledger after each part.

use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my $UP = VT::free_port();
my $redis = VT::Redis->start;
$redis->load_functions;

my $gate = <<'EOT';
            voucher_code $arg_coupon;
            voucher_customer $arg_who;
            voucher_order_id $arg_order;
            voucher_order_amount $arg_amount;
            voucher_points $arg_points;
            proxy_set_header X-Points-Used $voucher_points_used;
            proxy_set_header X-Points-Value $voucher_points_value;
            proxy_set_header X-Amount-Due $voucher_amount_due;
EOT

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP },
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%UP%%;
        location /ok/ {
            return 200 "paid \$http_x_points_used \$http_x_points_value \$http_x_amount_due\\n";
        }
        location /fail/ { return 409 "declined\\n"; }
    }
EOT
    server => api_server() . <<"EOT",
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/confirm { voucher_api confirm; }
        location = /vouchers/release { voucher_api release; }
        location /ok/ {
            voucher_gate redeem;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /fail/ {
            voucher_gate redeem;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
);

sub J { VT::json_body($_[0]) }
sub fc { $redis->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub bal {
    my $x = fc('voucher_loyalty_balance', "{v}:lm:$_[0]");
    return ref $x eq 'ARRAY' && $x->[0] eq 'ok' ? +{ @$x[1 .. $#$x] } : $x;
}
sub ledger_sums {
    my ($m, $name) = @_;
    my $h = +{ @{ $redis->cmd('HGETALL', "{v}:lm:$m") } };
    my ($sum, $ok) = (0, 1);
    for my $e (@{ $redis->cmd('XRANGE', "{v}:lh:$m", '-', '+') }) {
        my %e = @{ $e->[1] };
        $sum += $e{points};
        $ok &&= $e{active} + $e{pending} == $sum && $e{active} >= 0;
    }
    my $lots = 0;
    $lots += $_ for values %{ +{ @{ $redis->cmd('HGETALL', "{v}:ll:$m") } } };
    ok($ok && $sum == ($h->{act} // 0) + ($h->{pend} // 0) && $lots == $sum,
       "$name: the balance equals the ledger ($sum) and the lots ($lots)")
        or diag explain [$h, $redis->cmd('XRANGE', "{v}:lh:$m", '-', '+')];
}
sub checkout {
    my ($where, %q) = @_;
    my $qs = join '&', map { "$_=$q{$_}" } sort keys %q;
    return http($ng->port, 'POST', "/$where/buy?$qs", body => '{}', headers => {'Content-Type' => 'application/json'});
}

campaign($redis, 'off7', kind => 'amount', value => 700);
my $n = 0;
sub fresh { my $c = 'LOY' . ++$n; code($redis, $c, campaign => 'off7', max_uses => 1); $c }

# --- before any programme ---------------------------------------------------
{
    my $r = post($ng, 'redeem', {code => fresh(), customer => 'ann', points => 5,
                                 order => {amount => 10000}});
    is($r->{status}, 409, 'points without a programme: 409');
    is(J($r)->{reason}, 'no_programme', '... no_programme');
    my $c = fresh();
    $r = checkout('ok', coupon => $c, who => 'ann', order => 'o0', amount => 10000);
    is($r->{status}, 200, 'a gate checkout without a programme: 200');
    VT::wait_until(sub { !$redis->cmd('ZCARD', '{v}:hz') }, timeout => 5);
    is($redis->cmd('EXISTS', '{v}:lm:ann'), 0, '... and no points');
}

fc('voucher_loyalty_set', '{v}:lp', every => 100, points => 1, point_value => 10,
   tiers => 'base:0:100,gold:150:100');

# --- the gate: confirm earns, in the same call -------------------------------
{
    my $r = checkout('ok', coupon => fresh(), who => 'ann', order => 'o1', amount => 10000);
    is($r->{status}, 200, 'gate: 200');
    ok(VT::wait_until(sub { (bal('ann')->{active} // 0) == 93 }, timeout => 5),
       'the confirm credits 93 points (10000 - 700 discount, 1 per 100)')
        or diag explain bal('ann');
    my @e = map { +{ @{ $_->[1] } } } @{ $redis->cmd('XRANGE', '{v}:lh:ann', '-', '+') };
    is_deeply([map { "$_->{type} $_->{order}" } @e], ['earn o1'], 'one earn entry, for o1');
    like($e[0]{ref}, qr/^\d+-\d+$/, '... made by the redemption');

    # a second checkout of the same order earns nothing more
    $r = checkout('ok', coupon => fresh(), who => 'ann', order => 'o1', amount => 10000);
    VT::wait_until(sub { !$redis->cmd('ZCARD', '{v}:hz') }, timeout => 5);
    is(bal('ann')->{active}, 93, 'the same order again: one order, one accrual');
    is(fc('voucher_loyalty_earn', '{v}:lm:ann', 'o1', 10000, 0)->[0], 'already_earned',
       'the storefront reporting it too: already_earned');

    # declined: released, nothing earned
    $r = checkout('fail', coupon => fresh(), who => 'ann', order => 'o2', amount => 10000);
    is($r->{status}, 409, 'gate: the shop declines');
    VT::wait_until(sub { !$redis->cmd('ZCARD', '{v}:hz') }, timeout => 5);
    is(bal('ann')->{active}, 93, 'a released checkout earns nothing');
    is($redis->cmd('EXISTS', '{v}:lo:o2'), 0, '... and records no order');
    ledger_sums('ann', 'gate earn');
}

# --- the gate: points pay, and come back on a release -------------------------
{
    my $r = checkout('ok', coupon => fresh(), who => 'ann', order => 'o3',
                     amount => 10000, points => 50);
    is($r->{status}, 200, 'gate with points: 200');
    is($r->{body}, "paid 50 500 8800\n",
       'the shop sees the points used, what they pay and the amount due');
    ok(VT::wait_until(sub { (bal('ann')->{active} // 0) == 93 - 50 + 88 }, timeout => 5),
       'confirmed: 50 spent, 88 earned on the 8800 paid')
        or diag explain bal('ann');

    my $before = bal('ann')->{active};
    $r = checkout('fail', coupon => fresh(), who => 'ann', order => 'o4',
                  amount => 10000, points => 60);
    is($r->{status}, 409, 'gate with points, the shop declines');
    VT::wait_until(sub { !$redis->cmd('ZCARD', '{v}:hz') }, timeout => 5);
    is(bal('ann')->{active}, $before, 'released: the 60 points are back');
    my @types = map { my %e = @{ $_->[1] }; $e{type} } @{ $redis->cmd('XRANGE', '{v}:lh:ann', '-', '+') };
    is("@types[-2, -1]", 'spend refund', 'the ledger: spend, then refund');

    $r = checkout('ok', coupon => fresh(), who => 'ann', amount => 10000, points => 'abc');
    is($r->{status}, 400, 'gate: points "abc": 400');
    is(J($r)->{reason}, 'invalid_field', '... invalid_field');
    $r = checkout('ok', coupon => fresh(), who => 'ann', amount => 10000, points => 100000);
    is(J($r)->{reason}, 'insufficient_points', 'gate: more points than active: insufficient_points');
    ledger_sums('ann', 'gate points');
}

# --- the API: validate reads, redeem spends, rollback gives back ---------------
{
    fc('voucher_loyalty_adjust', '{v}:lm:bob', '+300', 'welcome', 'w-bob');
    my $c = fresh();
    my $r = post($ng, 'validate', {code => $c, customer => 'bob', points => 40,
                                   order => {amount => 10000}});
    is($r->{status}, 200, 'validate with points: 200');
    is_deeply([@{ J($r) }{qw(points_used points_value amount_due points_balance)}],
              [40, 400, 8900, 260], 'validate: what 40 points would pay');
    is(bal('bob')->{active}, 300, 'validate spends nothing');

    # more points than needed: only what fits
    $r = post($ng, 'redeem', {code => $c, customer => 'bob', points => 2000,
                              order => {id => 'b1', amount => 1000}});
    is(J($r)->{reason}, 'insufficient_points', 'more than active: insufficient_points');
    $r = post($ng, 'redeem', {code => $c, customer => 'bob', points => 250,
                              order => {id => 'b1', amount => 1000}},
              headers => {'Idempotency-Key' => 'k-b1'});
    is($r->{status}, 200, 'redeem with points');
    my $j = J($r);
    is_deeply([@$j{qw(points_used points_value amount_due points_balance)}],
              [30, 300, 0, 270], 'only the 30 points that fit in the 300 left');
    $r = post($ng, 'redeem', {code => $c, customer => 'bob', points => 250,
                              order => {id => 'b1', amount => 1000}},
              headers => {'Idempotency-Key' => 'k-b1'});
    is($r->{headers}{'idempotent-replayed'}, 'true', 'a retry replays');
    is_deeply([@{ J($r) }{qw(points_used points_value)}], [30, 300], '... with its points');
    is(bal('bob')->{active}, 270, '... and spends nothing more');
    $r = post($ng, 'rollback', {redemption_id => $j->{redemption_id}});
    is($r->{status}, 200, 'rollback');
    is(bal('bob')->{active}, 300, 'the points are back');

    # reserve with points, then release
    $r = post($ng, 'reserve', {code => fresh(), customer => 'bob', points => 100,
                               order => {id => 'b2', amount => 5000}});
    is(J($r)->{points_used}, 100, 'reserve with points');
    is(bal('bob')->{active}, 200, '... held (spent) at once');
    post($ng, 'release', {redemption_id => J($r)->{redemption_id}});
    is(bal('bob')->{active}, 300, 'released: back');

    for my $bad (0, -1, '"5"', 1.5) {
        my $body = qq({"code":"X","customer":"bob","points":$bad,"order":{"amount":1}});
        $r = http($ng->port, 'POST', '/vouchers/redeem', body => $body,
                 headers => {"Content-Type" => "application/json"});
        is($r->{status}, 400, "points $bad: 400");
    }
    ledger_sums('bob', 'API points');
}

# --- a rollback takes the earned points back ----------------------------------
{
    fc('voucher_loyalty_set', '{v}:lp', pending_days => 7);
    my $r = post($ng, 'reserve', {code => fresh(), customer => 'cy',
                                  order => {id => 'c1', amount => 20700}});
    my $id = J($r)->{redemption_id};
    post($ng, 'confirm', {redemption_id => $id});
    post($ng, 'confirm', {redemption_id => $id});
    is_deeply([@{ bal('cy') }{qw(active pending)}], [0, 200],
              'confirmed twice: 200 pending points, once');
    $r = post($ng, 'rollback', {redemption_id => $id});
    is($r->{status}, 200, 'rollback');
    is_deeply([@{ bal('cy') }{qw(active pending)}], [0, 0], 'the pending points are taken back');
    ledger_sums('cy', 'rollback');
    fc('voucher_loyalty_set', '{v}:lp', pending_days => 0);

    # items kept by a reservation earn by their categories on confirm
    fc('voucher_loyalty_set', '{v}:lp', category_multipliers => 'tea:300');
    $r = post($ng, 'reserve', {code => fresh(), customer => 'di',
                               order => {id => 'd1', items => [
                                   {sku => 'T', category => 'tea', price => 3700, quantity => 1},
                                   {sku => 'B', category => 'bun', price => 4000, quantity => 1}]}});
    post($ng, 'confirm', {redemption_id => J($r)->{redemption_id}});
    # 7700 listed, 7000 paid: (11100 + 4000) * 7000 / 7700 = 13727 -> 137
    is(bal('di')->{active}, 137, 'the items of the reservation earn x3 for tea');
    fc('voucher_loyalty_set', '{v}:lp', category_multipliers => '');
    ledger_sums('di', 'items');
}

# --- campaigns for some tiers ----------------------------------------------------
{
    campaign($redis, 'goldonly', kind => 'amount', value => 100, tiers => 'gold');
    code($redis, 'GOLD1', campaign => 'goldonly');
    is(J(post($ng, 'validate', {code => 'GOLD1', order => {amount => 1000}}))->{reason},
       'customer_required', 'a tier campaign without a customer: customer_required');
    is(J(post($ng, 'validate', {code => 'GOLD1', customer => 'eve', order => {amount => 1000}}))->{reason},
       'tier_not_eligible', 'a customer not in the programme: base tier, tier_not_eligible');
    is(post($ng, 'validate', {code => 'GOLD1', customer => 'eve', order => {amount => 1000}})->{status},
       409, '... 409');
    fc('voucher_loyalty_earn', '{v}:lm:eve', 'e1', 15000, 0);
    is(bal('eve')->{tier}, 'gold', 'eve earns gold');
    is(post($ng, 'validate', {code => 'GOLD1', customer => 'eve', order => {amount => 1000}})->{status},
       200, 'gold: the campaign applies');
}

$ng->stop;
$redis->stop;
done_testing;
