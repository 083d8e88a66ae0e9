#!/usr/bin/perl
#
# Loyalty points paying inside a stack (several codes, one call, all or
# nothing), through nginx: after the amount-offs, the percents and the gift
# cards, of what they leave; the answer's points and the spend under the
# parent redemption; replays and conflicts; a member short of points
# refuses the whole stack; rollback of the parent, and of each code's own
# id (the last brings the points back), release, expiry and confirm of a
# stacked reservation (its earn after the points); the gate with
# voucher_codes and voucher_points; 40 stacks racing for one member's
# points; bad input without Redis.  The balance equals the ledger.

use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;
use JSON::PP;

my $UP = VT::free_port();
my $redis = VT::Redis->start;
$redis->load_functions;

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP },
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%UP%%;
        location /ok/ {
            return 200 "paid \$http_x_points_used \$http_x_points_value \$http_x_id\\n";
        }
        location /fail/ { return 500 "crashed\\n"; }
    }
EOT
    server => api_server() . <<"EOT",
        location = /limited/redeem {
            voucher_api redeem;
            voucher_limit \$http_x_client rate=1r/m name=lim;
        }
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/confirm { voucher_api confirm; }
        location = /vouchers/release { voucher_api release; }
        location /ok/ {
            voucher_gate redeem;
            voucher_codes \$http_x_coupons "separator=;";
            voucher_customer \$arg_who;
            voucher_order_amount \$arg_amount;
            voucher_points \$arg_points;
            proxy_set_header X-Points-Used \$voucher_points_used;
            proxy_set_header X-Points-Value \$voucher_points_value;
            proxy_set_header X-Id \$voucher_redemption_id;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /fail/ {
            voucher_gate redeem;
            voucher_codes \$http_x_coupons "separator=;";
            voucher_customer \$arg_who;
            voucher_order_amount \$arg_amount;
            voucher_points \$arg_points;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
);

sub J { VT::json_body($_[0]) }
sub fc { $redis->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub act { $redis->cmd('HGET', "{v}:lm:$_[0]", 'act') // 0 }
sub uses { ({ @{ fc('voucher_code_get', "{v}:c:$_[0]") } })->{used} }
sub held { $redis->cmd('ZCARD', '{v}:hz') }
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
       "$name: the balance equals the ledger ($sum) and the lots ($lots)");
}
sub give { fc('voucher_loyalty_adjust', "{v}:lm:$_[0]", "+$_[1]", 'test', "g-$_[0]-$_[2]") }
sub snap { my $s = snapshot($redis); $s->{lh} = $redis->cmd('XLEN', "{v}:lh:$_[0]"); $s }

fc('voucher_loyalty_set', '{v}:lp', every => 100, points => 1, point_value => 10);
my %comb = (stacking => 'combinable');
campaign($redis, 'a7', kind => 'amount', value => 700, %comb);
campaign($redis, 'p10', kind => 'percent', value => 1000, %comb);
campaign($redis, 'gift', kind => 'gift_card', %comb);
my $n = 0;
sub fresh {
    my ($camp, %o) = @_;
    my $c = uc($camp) . 'X' . ++$n;
    code($redis, $c, campaign => $camp, max_uses => 1, %o);
    return $c;
}
sub order { my %o = @_; +{ amount => 10000, %o } }

give('ann', 1000, 1);

# --- validate: where the points sit, nothing changed --------------------------
{
    my ($a, $p) = (fresh('a7'), fresh('p10'));
    my $before = snap('ann');
    my $r = post($ng, 'validate', {codes => [$p, $a], customer => 'ann', points => 300,
                                   order => order()});
    is($r->{status}, 200, 'a stack with points validates') or diag $r->{body};
    my $j = J($r);
    is_deeply([@$j{qw(discount amount_after points_used points_value amount_due points_balance)}],
              [1630, 8370, 300, 3000, 5370, 700],
              '7.00 off, 10% of 93.00, then 300 points pay 30.00 of 83.70');
    is_deeply([map { $_->{code} } @{ $j->{codes} }], [$a, $p], 'the parts in the order of application');
    is_deeply(snap('ann'), $before, 'a validate changes nothing');

    # as many points as there are: never more than is left to pay
    $r = post($ng, 'validate', {codes => [$a], customer => 'ann', points => 1000,
                                order => order(amount => 2000)});
    is_deeply([@{ J($r) }{qw(amount_after points_used points_value amount_due)}],
              [1300, 130, 1300, 0], 'points pay at most what is left (130 of 1000)');
}

# --- gift cards pay before the points, as with one code -----------------------
{
    my $g = fresh('gift', balance => 2000, max_uses => 0);
    my $one = J(post($ng, 'validate', {code => $g, customer => 'ann', points => 900,
                                       order => order()}));
    my $st = J(post($ng, 'validate', {codes => [$g], customer => 'ann', points => 900,
                                      order => order()}));
    is_deeply([@$st{qw(points_used points_value amount_due)}],
              [@$one{qw(points_used points_value amount_due)}],
              '"codes" with a gift card pays the points as "code" does');
    my $a = fresh('a7');
    $st = J(post($ng, 'validate', {codes => [$g, $a], customer => 'ann', points => 900,
                                   order => order()}));
    is_deeply([@$st{qw(discount gift_card_amount amount_after points_used points_value amount_due)}],
              [700, 2000, 7300, 730, 7300, 0],
              'amount-off, then the gift card, then the points of what is left');
}

# --- redeem: spent under the parent, replays, conflicts -----------------------
my ($parent, @kids, @codes);
{
    @codes = (fresh('a7'), fresh('p10'));
    my $body = {codes => [@codes], customer => 'ann', points => 300,
                idempotency_key => 'pts-1', order => order(id => 'o-1')};
    my $r = post($ng, 'redeem', $body);
    is($r->{status}, 200, 'a stack redeemed with points') or diag $r->{body};
    my $j = J($r);
    $parent = $j->{redemption_id};
    @kids = map { $_->{redemption_id} } @{ $j->{codes} };
    is_deeply([@$j{qw(discount points_used points_value amount_due points_balance)}],
              [1630, 300, 3000, 5370, 700], 'the answer shows the points');
    is(act('ann'), 700, 'the points are spent');
    my %s = @{ $redis->cmd('HGETALL', "{v}:ls:$parent") };
    is_deeply([@s{qw(pts val)}], [300, 3000], 'spent under the parent redemption id');
    my $last = $redis->cmd('XREVRANGE', '{v}:lh:ann', '+', '-', 'COUNT', 1)->[0][1];
    my %e = @$last;
    is_deeply([@e{qw(type points ref)}], ['spend', -300, $parent], 'the ledger names the parent');
    is_deeply([uses($codes[0]), uses($codes[1])], [1, 1], 'both codes used');

    my $before = snap('ann');
    my $again = post($ng, 'redeem', {%$body, codes => [reverse @codes]});
    is($again->{status}, 200, 'a retry in any order of codes');
    is($again->{headers}{'idempotent-replayed'}, 'true', '... replayed');
    is_deeply([@{ J($again) }{qw(redemption_id points_used points_value)}], [$parent, 300, 3000],
              '... the first answer, its points too');
    is_deeply(snap('ann'), $before, '... nothing spent twice');
    my $c = post($ng, 'redeem', {%$body, points => 200});
    is_deeply([$c->{status}, J($c)->{reason}], [422, 'idempotency_conflict'],
              'the same key with other points: a conflict');
    $c = post($ng, 'redeem', {%$body, points => undef});
    is(J($c)->{reason}, 'idempotency_conflict', '... and without points');
    is_deeply(snap('ann'), $before, '... nothing changed');
    ledger_sums('ann', 'after the redeem');
}

# --- refusals: the whole stack, nothing changed -------------------------------
{
    my ($a, $p) = (fresh('a7'), fresh('p10'));
    my $before = snap('ann');
    my $r = post($ng, 'redeem', {codes => [$a, $p], customer => 'ann', points => 701,
                                 order => order()});
    is_deeply([$r->{status}, J($r)->{reason}, J($r)->{points}], [409, 'insufficient_points', 701],
              'more points than the member has: 409 insufficient_points');
    $r = post($ng, 'reserve', {codes => [$a, $p], customer => 'ann', points => 701,
                               order => order()});
    is(J($r)->{reason}, 'insufficient_points', '... a reservation too');
    $r = post($ng, 'redeem', {codes => [$a, $p], points => 5, order => order()});
    is_deeply([$r->{status}, J($r)->{reason}], [409, 'customer_required'], 'points without a customer');
    $r = post($ng, 'redeem', {codes => [$a, 'NOSUCH'], customer => 'ann', points => 5,
                              order => order()});
    is_deeply([J($r)->{reason}, J($r)->{code}], ['not_found', 'NOSUCH'],
              'one unknown code among them: the code is named, no points spent');
    is_deeply(snap('ann'), $before, 'none of them changed anything');
    is_deeply([uses($a), uses($p)], [0, 0], '... the codes are unused');

    $redis->reset_stats;
    for my $bad ([0, 'invalid_field'], ['5', 'invalid_field'], [-1, 'invalid_field'],
                 [10 ** 14, 'invalid_field'], [1.5, 'invalid_field']) {
        $r = post($ng, 'redeem', {codes => [$a, $p], customer => 'ann', points => $bad->[0],
                                  order => order()});
        is_deeply([$r->{status}, J($r)->{reason}, J($r)->{field}], [400, $bad->[1], 'points'],
                  "points $bad->[0]: 400, field points");
    }
    ok(!$redis->commandstats->{fcall}, '... answered without Redis');
    fc('voucher_loyalty_set', '{v}:lp', point_value => 0);
    $r = post($ng, 'redeem', {codes => [$a, $p], customer => 'ann', points => 5, order => order()});
    is(J($r)->{reason}, 'points_not_accepted', 'a programme whose points do not pay');
    fc('voucher_loyalty_set', '{v}:lp', point_value => 10);
    is_deeply(snap('ann'), $before, 'nothing changed');
}

# --- rollback: the parent, and each code's own id -----------------------------
{
    my $r = post($ng, 'rollback', {redemption_id => $parent});
    is($r->{status}, 200, 'the parent rolled back');
    is_deeply([@{ J($r) }{qw(amount_rolled_back points_refunded status)}],
              [1630, 300, 'rolled_back'], '... its codes and its points');
    is(act('ann'), 1000, 'the points are back');
    is_deeply([uses($codes[0]), uses($codes[1])], [0, 0], 'the uses are back');
    $r = post($ng, 'rollback', {redemption_id => $parent});
    is(J($r)->{reason}, 'already_rolled_back', 'a second rollback: nothing more');
    is(act('ann'), 1000, '... the points come back once');
    ledger_sums('ann', 'after the rollback');

    my @c = (fresh('a7'), fresh('p10'));
    my $j = J(post($ng, 'redeem', {codes => [@c], customer => 'ann', points => 400,
                                   order => order()}));
    my @ids = map { $_->{redemption_id} } @{ $j->{codes} };
    is(act('ann'), 600, 'another stack spends 400');
    $r = post($ng, 'rollback', {redemption_id => $ids[1]});
    is(J($r)->{amount_rolled_back}, 930, 'one code given back (an item returned)');
    ok(!exists J($r)->{points_refunded}, '... the points stay: the order stands');
    is(act('ann'), 600, '... still spent');
    $r = post($ng, 'rollback', {redemption_id => $ids[0]});
    is(J($r)->{points_refunded}, 400, 'the last code given back brings the points back');
    is(act('ann'), 1000, '... all of them');
    $r = post($ng, 'rollback', {redemption_id => $j->{redemption_id}});
    is_deeply([$r->{status}, J($r)->{reason}], [409, 'already_rolled_back'],
              'then the parent has nothing left');
    is(act('ann'), 1000, '... and gives nothing twice');

    @c = (fresh('a7'), fresh('p10'));
    $j = J(post($ng, 'redeem', {codes => [@c], customer => 'ann', points => 100,
                                order => order()}));
    @ids = map { $_->{redemption_id} } @{ $j->{codes} };
    post($ng, 'rollback', {redemption_id => $ids[0]});
    $r = post($ng, 'rollback', {redemption_id => $j->{redemption_id}});
    is_deeply([@{ J($r) }{qw(amount_rolled_back points_refunded)}], [930, 100],
              'one code, then the parent: the rest and the points');
    is(act('ann'), 1000, '... exactly');
    ledger_sums('ann', 'after the partial rollbacks');
}

# --- stacked reservations: release, expiry, confirm ---------------------------
{
    my @c = (fresh('a7'), fresh('p10'));
    my $j = J(post($ng, 'reserve', {codes => [@c], customer => 'ann', points => 250,
                                    order => order()}));
    is_deeply([$j->{status}, $j->{points_used}], ['reserved', 250], 'a stack reserved with points');
    is(act('ann'), 750, '... held (spent) while it is reserved');
    my $r = post($ng, 'release', {redemption_id => $j->{redemption_id}});
    is_deeply([@{ J($r) }{qw(status points_refunded)}], ['released', 250], 'released: the points back');
    is(act('ann'), 1000, '... all of them');

    $j = J(post($ng, 'reserve', {codes => [fresh('a7'), fresh('p10')], customer => 'ann',
                                 points => 150, hold_seconds => 1, order => order()}));
    is(act('ann'), 850, 'a short hold spends 150');
    sleep 2;
    $r = post($ng, 'confirm', {redemption_id => $j->{redemption_id}});
    is_deeply([$r->{status}, J($r)->{reason}], [409, 'reservation_expired'], 'it ran out');
    is(act('ann'), 1000, '... and its points came back');
    my %e = @{ $redis->cmd('XREVRANGE', '{v}:lh:ann', '+', '-', 'COUNT', 1)->[0][1] };
    is_deeply([@e{qw(type points ref reason)}], ['refund', 150, $j->{redemption_id}, 'expire'],
              '... a refund in the ledger, for the expiry');

    $j = J(post($ng, 'reserve', {codes => [fresh('a7'), fresh('p10')], customer => 'ann',
                                 points => 300, idempotency_key => 'res-1',
                                 order => order(id => 'o-earn')}));
    $r = post($ng, 'confirm', {redemption_id => $j->{redemption_id}});
    is(J($r)->{status}, 'confirmed', 'a stacked reservation with points confirmed');
    my $earned = ({ @{ $redis->cmd('HGETALL', '{v}:lo:o-earn') } })->{pts};
    is($earned, 53, '... the order earns on 100.00 - 16.30 - 30.00: 53 points');
    is(act('ann'), 1000 - 300 + 53, '... the points stay spent, the earn credited');
    $r = post($ng, 'reserve', {codes => [reverse @{[map { $_->{code} } @{ $j->{codes} }]}],
                               customer => 'ann', points => 300, idempotency_key => 'res-1',
                               order => order(id => 'o-earn')});
    is_deeply([J($r)->{redemption_id}, J($r)->{points_used}], [$j->{redemption_id}, 300],
              'a retry of the confirmed reservation replays it');
    is(act('ann'), 753, '... spending nothing more');
    ledger_sums('ann', 'after the reservations');
}

# --- the gate: voucher_codes and voucher_points -------------------------------
{
    give('bo', 500, 1);
    my @c = (fresh('a7'), fresh('p10'));
    my $r = VT::http($ng->port, 'POST', '/ok/buy?who=bo&amount=10000&points=200',
                     headers => { 'X-Coupons' => join(';', @c) }, body => '');
    is($r->{status}, 200, 'gate: a stack paid with points');
    like($r->{body}, qr/^paid 200 2000 \d+-\d+$/m, '... the upstream saw the points');
    ok(VT::wait_until(sub { held() == 0 }, timeout => 5), '... confirmed');
    is(act('bo'), 300 + 63, '... spent, and the order earned 63 on 100.00 - 16.30 - 20.00');
    @c = (fresh('a7'), fresh('p10'));
    $r = VT::http($ng->port, 'POST', '/fail/buy?who=bo&amount=10000&points=200',
                  headers => { 'X-Coupons' => join(';', @c) }, body => '');
    is($r->{status}, 500, 'gate: the upstream failed');
    ok(VT::wait_until(sub { held() == 0 && act('bo') == 363 }, timeout => 5),
       '... released: the points back');
    is_deeply([uses($c[0]), uses($c[1])], [0, 0], '... and the uses');
    $r = VT::http($ng->port, 'POST', '/ok/buy?who=bo&amount=10000&points=9999',
                  headers => { 'X-Coupons' => join(';', @c) }, body => '');
    is_deeply([$r->{status}, J($r)->{reason}], [409, 'insufficient_points'],
              'gate: too many points, refused before the upstream');
    ledger_sums('bo', 'after the gate');
}

# --- with a limit: the points, then the limits, in one call -------------------
{
    give('dee', 500, 1);
    my @got;
    for my $i (1 .. 4) {
        my $r = VT::http($ng->port, 'POST', '/limited/redeem',
                         headers => { 'X-Client' => 'c1' },
                         body => {codes => [fresh('a7'), fresh('p10')], customer => 'dee',
                                  points => 100, order => order()});
        push @got, $r->{status} == 200 ? 'ok' : J($r)->{reason};
    }
    is($got[0], 'ok', 'a limited stack with points redeems');
    ok((grep { $_ eq 'rate_limited' } @got), '... then the limit refuses ('
       . join(',', @got) . ')');
    is(act('dee'), 500 - 100 * (grep { $_ eq 'ok' } @got),
       '... and a limited one spends no points');
    ledger_sums('dee', 'with a limit');
}

# --- two stacks at once spending one member's points --------------------------
{
    give('cy', 1000, 1);
    my @reqs;
    for my $i (1 .. 40) {
        my @c = (fresh('a7'), fresh('p10'));
        push @reqs, ['POST', '/vouchers/redeem',
                     JSON::PP->new->canonical->encode({codes => [@c], customer => 'cy', points => 300,
                                      order => order(id => "race-$i")}), \@c];
    }
    my $res = http_pipeline($ng->port, [map { [@$_[0 .. 2]] } @reqs], conns => 20);
    my @ok = grep { $res->[$_][0] == 200 } 0 .. $#$res;
    my @no = grep { $res->[$_][0] == 409 } 0 .. $#$res;
    is(scalar @ok, 3, '40 stacks of 300 points on 1000: 3 paid');
    is(scalar @no, 37, '... 37 refused');
    is(scalar(grep { $res->[$_][1] =~ /insufficient_points/ } @no), 37,
       '... insufficient_points each');
    is(act('cy'), 100, '... no overspend: 100 left');
    is(scalar(grep { uses($reqs[$_][3][0]) + uses($reqs[$_][3][1]) } @no), 0,
       '... and a refused stack took no code');
    ledger_sums('cy', 'after the race');
}

ledger_sums('ann', 'at the end');
$ng->check_log;
done_testing;
