# Stacking: several codes on one order (validate, redeem, reserve with
# "codes"), checked and applied in ONE call, all or nothing: every
# combination rule and reason, the order of application, the caps, the
# per-code parts and the parent redemption, its rollback, confirm and
# release, idempotency, and two orders racing for one single-use code.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use VT;
use VoucherT;

my $root = VT::root_dir();
my $vcode = "$root/build/vcode";
-x $vcode or BAIL_OUT("build/vcode missing: run scripts/build");
my $dir = tempdir(CLEANUP => 1);
system($vcode, 'genkey', "$dir/k.key") == 0 or die;
my @mac = `$vcode issue $dir/k.key SALE 8 5 2`;
chomp @mac;

my ($redis, $ng) = start_pair(
    workers => 2,
    http => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $dir/k.key;
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_pattern "^[A-Z][A-Z0-9]{1,15}\$";
EOT
    server => api_server() . <<'EOT');
        keepalive_requests 100000;
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/confirm { voucher_api confirm; }
        location = /vouchers/release { voucher_api release; }
EOT

sub f { $redis->cmd('FCALL', @_) }
sub err_of { my $x = shift; ref $x && ref $x ne 'ARRAY' ? $x->message : '' }
sub h { my $x = shift; ref $x eq 'ARRAY' ? +{ @$x[1 .. $#$x] } : {} }

# voucher_stack directly: op, [codes], order fields
sub stack {
    my ($op, $codes, %o) = @_;
    my @items = @{ $o{items} || [] };
    return f('voucher_stack', 1, '{v}:log', $op,
             $op eq 'reserve' ? ($o{hold_ms} // 60000) : '', $o{channel} // '',
             scalar @$codes, @$codes, $o{customer} // '', $o{amount} // 0,
             $o{currency} // '', $o{order_id} // '', $o{idem} // '',
             scalar @items, map { @$_ } @items);
}
# the parts of an answer: [[code, discount, amount_after], ...]
sub parts {
    my $x = h($_[0]);
    my @l = @{ $x->{codes} || [] };
    shift @l;
    return [map { my %p = @$_; [@p{qw(code discount amount_after)}] } @l];
}
sub uses { my $c = shift; f('voucher_code_get', 1, "{v}:c:$c") ? h(['x', @{ f('voucher_code_get', 1, "{v}:c:$c") }])->{used} : undef }

my %comb = (stacking => 'combinable');
campaign($redis, 'p10', kind => 'percent', value => 1000, %comb,
         stack_category => 'pct');
campaign($redis, 'p20', kind => 'percent', value => 2000, %comb,
         stack_category => 'pct');
campaign($redis, 'p5', kind => 'percent', value => 500, %comb,
         stack_category => 'loyalty', stack_priority => 1);
campaign($redis, 'a7', kind => 'amount', value => 700, %comb);
campaign($redis, 'a3', kind => 'amount', value => 300, %comb,
         stack_priority => 5);
campaign($redis, 'a9', kind => 'amount', value => 900, %comb,
         stack_priority => 1);
campaign($redis, 'ex', kind => 'amount', value => 100);
campaign($redis, 'capd', kind => 'amount', value => 500, %comb,
         stack_cap => 1000);
campaign($redis, 'min', kind => 'amount', value => 100, %comb,
         min_amount => 50000);
campaign($redis, 'gift', kind => 'gift_card', value => 2000, %comb);
campaign($redis, 'shoe', kind => 'percent', value => 5000, %comb,
         stack_category => 'shoes', include_categories => 'shoes');
campaign($redis, 'web', kind => 'amount', value => 200, %comb,
         channels => 'web');
code($redis, 'P10', campaign => 'p10');
code($redis, 'P20', campaign => 'p20');
code($redis, 'P5', campaign => 'p5');
code($redis, 'A7', campaign => 'a7');
code($redis, 'A7B', campaign => 'a7');
code($redis, 'A3', campaign => 'a3');
code($redis, 'A9', campaign => 'a9');
code($redis, 'EX', campaign => 'ex');
code($redis, 'CAPD', campaign => 'capd');
code($redis, 'MIN', campaign => 'min');
code($redis, 'SHOE', campaign => 'shoe');
code($redis, 'WEB', campaign => 'web');
code($redis, "ONE$_", campaign => 'a7', max_uses => 1) for 1 .. 5;

# --- arithmetic: amount-offs first, then percents on what is left ----------
{
    my $x = stack('validate', ['P10', 'A7'], amount => 10000);
    is($x->[0], 'ok', 'a percent and an amount stack');
    is_deeply(parts($x), [['A7', 700, 9300], ['P10', 930, 8370]],
              'the amount first (700), then 10% of the 9300 left (930)');
    is_deeply([@{ h($x) }{qw(order_amount discount amount_after)}],
              [10000, 1630, 8370], 'the totals');
    is_deeply(parts(stack('validate', ['A7', 'P10'], amount => 10000)),
              parts($x), 'the order of the request does not matter');
    is_deeply(parts(stack('validate', ['A3', 'A9', 'P5'], amount => 10000)),
              [['A9', 900, 9100], ['A3', 300, 8800], ['P5', 440, 8360]],
              'within a kind, stack_priority orders them (1 before 5)');
    is_deeply(parts(stack('validate', ['P5', 'P10'], amount => 10000)),
              [['P10', 1000, 9000], ['P5', 450, 8550]],
              'two percents: priority 0 before 1, each on what is left');
    is_deeply(parts(stack('validate', ['SHOE', 'A7'], amount => 10000,
                          items => [['B', 'shoes', 4000, 1],
                                    ['T', 'tea', 6000, 1]])),
              [['A7', 700, 9300], ['SHOE', 2000, 7300]],
              'an item-scoped percent: its eligible 4000, less than the 9300 left');
    is_deeply(parts(stack('validate', ['SHOE', 'A7', 'A9'], amount => 5000,
                          items => [['B', 'shoes', 4000, 1],
                                    ['T', 'tea', 1000, 1]])),
              [['A7', 700, 4300], ['A9', 900, 3400], ['SHOE', 1700, 1700]],
              '... or what is left, when that is less');
    my $c = stack('validate', ['A7', 'CAPD'], amount => 10000);
    is_deeply(parts($c), [['A7', 700, 9300], ['CAPD', 300, 9000]],
              'stack_cap 1000: the total stops there');
    my @l = @{ h($c)->{codes} };
    is({ @{ $l[2] } }->{capped_by}, 'stack_cap', '... capped_by stack_cap');
    is_deeply(stack('validate', ['P10', 'A7', 'CAPD'], amount => 10000),
              ['stack_no_discount', 'code', 'P10', 'campaign', 'p10'],
              '... and a code after the cap has nothing left to take');
}

# --- every combination rule and refusal ----------------------------------
{
    my $before = snapshot($redis);
    my $x = stack('redeem', ['P10', 'EX'], amount => 10000);
    is_deeply($x, ['stack_exclusive', 'code', 'EX', 'campaign', 'ex'],
              'an exclusive code (no stacking set) refuses the stack');
    is(stack('redeem', ['EX'], amount => 10000)->[0], 'ok',
       '... but stacks alone');
    $before = snapshot($redis);
    $x = stack('redeem', ['P10', 'P20'], amount => 10000);
    is_deeply($x, ['stack_category_conflict', 'code', 'P20', 'campaign', 'p20',
                   'category', 'pct', 'conflicts_with', 'P10'],
              'two codes of one category');
    $x = stack('redeem', ['A7', 'A7B'], amount => 10000);
    is_deeply($x, ['stack_category_conflict', 'code', 'A7B', 'campaign', 'a7',
                   'category', 'a7', 'conflicts_with', 'A7'],
              'two codes of one campaign (no category: the campaign is one)');
    $x = stack('redeem', ['A7', 'P10', 'MIN', 'A9', 'P5'], amount => 10000);
    is_deeply($x, ['order_below_minimum', 'code', 'MIN', 'campaign', 'min',
                   'min_amount', 50000],
              'one code failing among five: its reason, naming it');
    $x = stack('redeem', ['A7', 'NOPE'], amount => 10000);
    is_deeply($x, ['not_found', 'code', 'NOPE'], 'an unknown code');
    $x = stack('redeem', ['A7', 'WEB'], amount => 10000, channel => 'app');
    is_deeply($x, ['channel_mismatch', 'code', 'WEB', 'campaign', 'web'],
              'a code for another channel');
    $x = stack('redeem', ['A9', 'A7', 'A3'], amount => 1000);
    is_deeply($x, ['stack_no_discount', 'code', 'A3', 'campaign', 'a3'],
              'a code left with nothing to take');
    is_deeply(snapshot($redis), $before, 'no refusal changed anything')
        or diag explain snapshot($redis);
    f('voucher_settings_set', 1, '{v}:cfg', 'stack_max_codes', 2);
    $x = stack('redeem', ['A7', 'P10', 'A9'], amount => 10000);
    is_deeply($x, ['stack_too_many_codes', 'code', 'A9', 'max_codes', 2],
              'more codes than stack_max_codes');
    like(err_of(f('voucher_settings_set', 1, '{v}:cfg', 'stack_max_codes',
                  31)), qr/invalid_field stack_max_codes/,
         'stack_max_codes is 1..30');
    f('voucher_settings_set', 1, '{v}:cfg', 'stack_max_codes', 5);
    is(h(['x', @{ f('voucher_settings_get', 1, '{v}:cfg') }])->{stack_max_codes},
       5, 'settings_get shows it');
    $x = stack('redeem', ['A7', 'P10', 'A9', 'P5', 'CAPD', 'A3'],
               amount => 10000);
    is_deeply([@$x[0, 4]], ['stack_too_many_codes', 5], 'the default is 5');
}

# --- redeem, the parent, rollback --------------------------------------
my ($parent, %kid);
{
    code($redis, 'GC1', campaign => 'gift');
    my $x = stack('redeem', ['P10', 'A7', 'GC1'], amount => 10000,
                  customer => 'cat', order_id => 'o-1');
    is($x->[0], 'ok', 'redeem a stack with a gift card');
    my $h = h($x);
    is_deeply(parts($x), [['A7', 700, 9300], ['P10', 930, 8370],
                          ['GC1', 2000, 6370]],
              'the gift card pays last, from what is left');
    is_deeply([@$h{qw(discount gift_card_amount amount_after)}],
              [1630, 2000, 6370], 'discount, gift card, amount after');
    $parent = $h->{redemption_id};
    like($parent, qr/^\d+-\d+$/, 'one parent redemption id');
    my @l = @{ $h->{codes} };
    shift @l;
    %kid = map { my %p = @$_; ($p{code} => $p{redemption_id}) } @l;
    is(scalar(keys %kid), 3, 'each code its own redemption id');
    my $e = $redis->cmd('XRANGE', '{v}:log', $parent, $parent)->[0][1];
    my %e = @$e;
    is_deeply([@e{qw(type code customer order_id discount balance)}],
              ['stack', 'A7,P10,GC1', 'cat', 'o-1', 1630, 2000],
              'the parent entry in the trail');
    is($e{ref}, join(',', @kid{qw(A7 P10 GC1)}), '... lists the codes\' ids');
    my %k = @{ $redis->cmd('XRANGE', '{v}:log', $kid{P10}, $kid{P10})->[0][1] };
    is_deeply([@k{qw(type code discount)}], ['redeem', 'P10', 930],
              'a code\'s own redeem entry, with its part');
    is($redis->cmd('HGET', '{v}:k:p10', 'discount_given'), 930,
       'the campaign counts the part');
    is(h(['x', @{ f('voucher_code_get', 1, '{v}:c:GC1') }])->{balance}, 0,
       'the gift card paid its balance');

    # part: one code's redemption, then the parent gives back the rest
    my $rb = f('voucher_rollback', 1, '{v}:log', $kid{P10}, '', '');
    is_deeply([$rb->[0], h($rb)->{amount_rolled_back}], ['ok', 930],
              'rollback of one code: its part');
    $rb = f('voucher_rollback', 1, '{v}:log', $parent, '', 'rb-1');
    my $rh = h($rb);
    is_deeply([$rb->[0], $rh->{amount_rolled_back}, $rh->{status}],
              ['ok', 2700, 'rolled_back'],
              'rollback of the parent: the rest (700 + the gift card 2000)');
    my @rp = @{ $rh->{codes} };
    shift @rp;
    is_deeply([map { my %p = @$_; [@p{qw(code amount_rolled_back)}] } @rp],
              [['A7', 700], ['GC1', 2000]], '... per code');
    is(h(['x', @{ f('voucher_code_get', 1, '{v}:c:GC1') }])->{balance}, 2000,
       'the gift card has its balance back');
    is($redis->cmd('HGET', '{v}:k:p10', 'discount_given'), 0,
       'the campaign counters are back');
    is_deeply(f('voucher_rollback', 1, '{v}:log', $parent, '', 'rb-1'),
              [@$rb, 'replayed', 1], 'a retry replays');
    is_deeply(f('voucher_rollback', 1, '{v}:log', $parent, '', ''),
              ['already_rolled_back', 'redemption_id', $parent],
              'then already_rolled_back');
    is_deeply(f('voucher_rollback', 1, '{v}:log', $parent, 5, ''),
              ['partial_rollback_unsupported', 'redemption_id', $parent],
              'an amount on a parent is refused');
}

# --- idempotency -------------------------------------------------------------
{
    my $a = stack('redeem', ['A7', 'P10'], amount => 10000, idem => 'k-1');
    is($a->[0], 'ok', 'a stack with an idempotency key');
    my $again = stack('redeem', ['P10', 'A7'], amount => 10000, idem => 'k-1');
    is_deeply($again, [@$a, 'replayed', 1],
              'the same codes in another order: the first answer');
    is_deeply(stack('redeem', ['A7', 'P5'], amount => 10000, idem => 'k-1'),
              ['idempotency_conflict', 'code', 'A7'],
              'the same key with another set of codes: idempotency_conflict');
    is_deeply(stack('redeem', ['A7', 'P10'], amount => 9000, idem => 'k-1'),
              ['idempotency_conflict', 'code', 'A7'],
              '... or another order');
}

# --- reservations ------------------------------------------------------------
{
    my $x = stack('reserve', ['ONE1', 'P10'], amount => 10000,
                  customer => 'dee', idem => 'h-1');
    my $h = h($x);
    is_deeply([$x->[0], $h->{status}], ['ok', 'reserved'], 'a stacked reservation');
    ok($h->{hold_expires_at}, '... with its hold');
    is($redis->cmd('ZCARD', '{v}:hz'), 2, 'each code held');
    is_deeply(stack('reserve', ['ONE1', 'P10'], amount => 10000,
                    customer => 'dee', idem => 'h-1'),
              ['reservation_in_progress', 'code', 'ONE1', 'redemption_id',
               $h->{redemption_id}], 'a retry while held: in progress');
    my $c = f('voucher_confirm', 1, '{v}:log', $h->{redemption_id}, '');
    is_deeply($c, ['ok', 'redemption_id', $h->{redemption_id},
                   'status', 'confirmed'], 'confirm of the parent');
    is($redis->cmd('ZCARD', '{v}:hz'), 0, 'nothing held any more');
    is_deeply(f('voucher_release', 1, '{v}:log', $h->{redemption_id}, ''),
              ['reservation_confirmed', 'redemption_id', $h->{redemption_id},
               'code', 'ONE1'], 'release after confirm: refused');
    is(uses('ONE1'), 1, 'the use stays');

    $x = stack('reserve', ['ONE2', 'P10'], amount => 10000, customer => 'dee',
               idem => 'h-2');
    my $id = h($x)->{redemption_id};
    my $rel = f('voucher_release', 1, '{v}:log', $id, '');
    is_deeply([$rel->[0], h($rel)->{status}, h($rel)->{amount_rolled_back}],
              ['ok', 'released', 1630], 'release of the parent');
    is(uses('ONE2'), 0, 'the use is back');
    is_deeply(f('voucher_release', 1, '{v}:log', $id, ''),
              ['ok', 'redemption_id', $id, 'status', 'released', 'replayed', 1],
              'released twice: ok again');
    is_deeply(f('voucher_confirm', 1, '{v}:log', $id, ''),
              ['reservation_released', 'redemption_id', $id, 'code', 'ONE2'],
              'confirm after release: refused');
    $x = stack('reserve', ['ONE2', 'P10'], amount => 10000, customer => 'dee',
               idem => 'h-2');
    is($x->[0], 'ok', 'a retry after the release reserves anew');
    isnt(h($x)->{redemption_id}, $id, '... with a new parent');

    # a hold that runs out: each code given back by the sweep
    $x = stack('reserve', ['ONE3', 'A9'], amount => 10000, hold_ms => 1000);
    $id = h($x)->{redemption_id};
    select(undef, undef, undef, 1.2);
    f('voucher_sweep', 1, '{v}:hz');
    is(uses('ONE3'), 0, 'expired: the uses are back');
    is_deeply(f('voucher_confirm', 1, '{v}:log', $id, ''),
              ['reservation_expired', 'redemption_id', $id, 'code', 'ONE3'],
              'confirm after the hold: reservation_expired');
}

# --- through nginx -------------------------------------------------------------
{
    my $r = post($ng, 'redeem', {codes => ['a-9', 'p 5'], customer => 'eve',
                                 order => {amount => 10000, channel => 'web'}});
    is($r->{status}, 200, 'redeem with codes: 200');
    my $j = $r->{json};
    is($j->{redeemed}, JSON::PP::true, '"redeemed": true');
    is_deeply([map { [@$_{qw(code discount amount_after)}] } @{ $j->{codes} }],
              [['A9', 900, 9100], ['P5', 455, 8645]],
              'the parts, as JSON, codes normalised');
    is_deeply([@$j{qw(discount amount_after)}], [1355, 8645], 'the totals');
    $r = post($ng, 'rollback', {redemption_id => $j->{redemption_id}});
    is_deeply([$r->{status}, $r->{json}{amount_rolled_back},
               scalar @{ $r->{json}{codes} }], [200, 1355, 2],
              'rollback of the parent through nginx');

    $r = post($ng, 'reserve', {codes => ['ONE4', 'P5'], hold_seconds => 60,
                               order => {amount => 10000}});
    is_deeply([$r->{status}, $r->{json}{status}], [200, 'reserved'],
              'reserve with codes');
    my $id = $r->{json}{redemption_id};
    $r = post($ng, 'confirm', {redemption_id => $id});
    is_deeply([$r->{status}, $r->{json}{status}], [200, 'confirmed'],
              'confirm of the parent');

    $r = post($ng, 'validate', {codes => ['P10', 'P20'],
                                order => {amount => 10000}});
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{code},
               $r->{json}{conflicts_with}],
              [409, 'stack_category_conflict', 'P20', 'P10'],
              'a refusal through nginx names the code');

    my $before = snapshot($redis);
    $redis->reset_stats;
    (my $forged = $mac[0]) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    $r = post($ng, 'redeem', {codes => ['A7', $forged],
                              order => {amount => 10000}});
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{code}],
              [404, 'not_found', $forged],
              'a forged code among them: not_found naming it');
    for my $case ([{codes => ['A7', 'a-7']}, 'invalid_field', 'codes[1]'],
                  [{codes => ['A7', ' - ']}, 'invalid_code', 'codes[1]'],
                  [{codes => [map { "C$_" } 1 .. 31]}, 'invalid_field', 'codes'],
                  [{codes => ['A7'], code => 'A7'}, 'invalid_field', 'codes']) {
        my $r = post($ng, 'redeem', {%{ $case->[0] }, order => {amount => 1}});
        is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{field}],
                  [400, @$case[1, 2]], "redeem: $case->[1] $case->[2]");
    }
    ok(!$redis->commandstats->{fcall}, 'none of these reached Redis');
    is_deeply(snapshot($redis), $before, 'nothing changed');
}

# --- the best combination (qualify with best) -----------------------------------
{
    my @mine = qw(P20 P10 A9 A7 CAPD P5 A3 EX);
    f('voucher_wallet_add', 1, '{v}:w:zed', $_) for @mine;
    my $q = f('voucher_qualify', 1, '{v}:public', '', 1, 0, 0, 'zed', 10000,
              '', '', '', 0);
    my $best = h(['x', @{ h($q)->{best} }]);
    my @l = @{ $best->{codes} };
    shift @l;
    my @codes = map { { @$_ }->{code} } @l;

    # every allowed stack of the wallet's codes, priced by voucher_stack
    my ($top, @at) = (0);
    for my $mask (1 .. 2 ** @mine - 1) {
        my @s = map { $mine[$_] } grep { $mask & (1 << $_) } 0 .. $#mine;
        next if @s > 5;
        my $x = stack('validate', \@s, amount => 10000, customer => 'zed');
        next unless $x->[0] eq 'ok';
        my $d = h($x)->{discount};
        ($top, @at) = ($d, [sort @s]) if $d > $top;
    }
    is($best->{discount}, $top, "qualify's best is the largest total any "
       . "allowed stack gives ($top)");
    is_deeply([sort @codes], $at[0], '... with those codes');
    is($best->{amount_after}, 10000 - $top, '... and the amount after');
    is_deeply(parts(stack('validate', \@codes, amount => 10000,
                          customer => 'zed')),
              [map { my %p = @$_; [@p{qw(code discount amount_after)}] } @l],
              'a stack of those codes gives the same parts');
    $q = f('voucher_qualify', 1, '{v}:public', '', 0, 0, 0, 'zed', 10000,
           '', '', '', 0);
    ok(!exists h($q)->{best}, 'no best unless asked');
}

# --- two orders racing for one single-use code -----------------------------------
{
    my $pairs = 100;
    my @reqs;
    for my $i (1 .. $pairs) {
        code($redis, "RACE$i", campaign => 'a3', max_uses => 1);
        code($redis, "RX$i", campaign => 'a7', max_uses => 1);
        code($redis, "RY$i", campaign => 'p10', max_uses => 1);
        push @reqs,
            ['POST', '/vouchers/redeem',
             qq({"codes":["RACE$i","RX$i"],"order":{"amount":10000}})],
            ['POST', '/vouchers/redeem',
             qq({"codes":["RY$i","RACE$i"],"order":{"amount":10000}})];
    }
    my $res = http_pipeline($ng->port, \@reqs, conns => 40);
    my ($bad, $won) = (0, 0);
    for my $i (1 .. $pairs) {
        my @st = map { $res->[2 * ($i - 1) + $_][0] } 0, 1;
        my @won = grep { $st[$_] == 200 } 0, 1;
        $bad++ unless @won == 1
            && $res->[2 * ($i - 1) + 1 - $won[0]][1] =~ /"code_exhausted"/;
        my $loser = $won[0] ? "RX$i" : "RY$i";
        $bad++ if (uses($loser) // 0) != 0;
        $bad++ if uses("RACE$i") != 1;
        $won++ if @won == 1;
    }
    is($won, $pairs, "$pairs pairs: exactly one order of each pair won");
    is($bad, 0, 'the other got code_exhausted and nothing of its stack was '
       . 'taken (its other code unused)');
}

# --- loyalty: a stacked reservation's confirm earns once for the order --------
sub active {
    my $x = f('voucher_loyalty_balance', 1, "{v}:lm:$_[0]");
    return ref $x eq 'ARRAY' && $x->[0] eq 'ok' ? +{ @$x[1 .. $#$x] }->{active} : $x;
}
{
    f('voucher_loyalty_set', 1, '{v}:lp', 'every', 100, 'points', 1,
      'point_value', 10);
    code($redis, 'LY7', campaign => 'a7');
    code($redis, 'LY10', campaign => 'p10');
    my $x = stack('reserve', ['LY7', 'LY10'], amount => 10000,
                  customer => 'lea', order_id => 'lo-1',
                  items => [['SKU1', 'tea', 10000, 1]]);
    is($x->[0], 'ok', 'a stack reserved for a member');
    my $id = h($x)->{redemption_id};
    is(f('voucher_confirm', 1, '{v}:log', $id, '')->[0], 'ok', 'confirmed');
    my $m = active('lea');
    is($m, 83, 'the order earns 83 points: 10000 - 700 - 930');
    is(f('voucher_confirm', 1, '{v}:log', $id, '')->[0], 'ok',
       'confirmed again');
    $m = active('lea');
    is($m, 83, '... earns nothing more');
    my $rb = f('voucher_rollback', 1, '{v}:log', $id, '', '');
    is($rb->[0], 'ok', 'the parent rolled back');
    $m = active('lea');
    is($m, 0, '... and the points with it');
    $x = stack('reserve', ['LY7'], amount => 5000, customer => 'lea',
               order_id => 'lo-2');
    is(f('voucher_release', 1, '{v}:log', h($x)->{redemption_id}, '')->[0],
       'ok', 'a stack released');
    $m = active('lea');
    is($m, 0, '... earns nothing');
}

$ng->check_log;
done_testing;
