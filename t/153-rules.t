#!/usr/bin/perl
#
# Campaign rules (redis/lib/rules.lua): limits per customer over a day, a
# week or a month (in the campaign's zone) and over the campaign's life,
# conditions on the order's metadata and the customer's attributes, and
# the kinds buy_x_get_y, steps and free_shipping.  Against the functions
# directly (every rule, every reason, the periods' boundaries in +07:00,
# rollback giving back to the period it was taken from, bad campaign
# definitions), then through nginx (the API's metadata and attributes,
# their bounds, qualify, a stack, the gate's voucher_metadata, and many
# parallel redeems of one customer against a daily limit).

use strict;
use warnings;
use Test::More;
use VT qw(ok_pairs http);
use VoucherT;
use JSON::PP ();

my $redis = VT::Redis->start;
$redis->load_functions;
my $ng = VT::Nginx->start(
    redis => $redis,
    vars => {UP => VT::free_port()},
    server => api_server() . <<'EOT',
        keepalive_requests 100000;
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/confirm { voucher_api confirm; }
        location = /vouchers/release { voucher_api release; }
        location = /vouchers/qualify { voucher_api qualify; }
        location /gate/ {
            voucher_gate validate;
            voucher_code $arg_coupon;
            voucher_customer $http_x_customer;
            voucher_order_amount $http_x_amount;
            voucher_metadata order channel $http_x_channel;
            voucher_metadata customer branch $http_x_branch;
            proxy_set_header X-Discount $voucher_discount;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
    http => <<'EOT');
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%UP%%;
        location / { return 200 "upstream discount=$http_x_discount\n"; }
    }
EOT

my $T = '{v}';
my $LOG = "$T:log";
my $BKK = 420;                         # +07:00, in minutes

sub f { $redis->cmd('FCALL', @_) }
sub is_err { ref $_[0] && ref $_[0] ne 'ARRAY' && $_[0]->isa('VT::Redis::Error') }
sub errmsg { is_err($_[0]) ? $_[0]->message : '' }

# customer amount currency order_id idem nitems [sku category price qty]*
sub order_args {
    my %o = @_;
    my @items = @{ $o{items} || [] };
    my @a = ($o{customer} // '', $o{amount} // 0, '', $o{order_id} // '',
             $o{idem} // '', scalar @items, map { @$_ } @items);
    push @a, $o{meta} if defined $o{meta};
    return @a;
}
# a reply as a hash: an "ok" as nginx renders it (its computation's fields
# on top), a refusal as {reason, its pairs}; an error as it is
sub h {
    my $x = shift;
    return $x unless ref $x eq 'ARRAY';
    if ($x->[0] eq 'ok') {
        my %o = @{ ok_pairs($x) }[1 .. $#{ ok_pairs($x) }];
        my $c = delete $o{computation};
        return { %o, @{ $c || [] } };
    }
    return { reason => @$x };
}
sub validate { my ($c, %o) = @_; h(f('voucher_validate', 1, "$T:c:$c", order_args(%o))) }
sub redeem   { my ($c, %o) = @_; h(f('voucher_redeem', 1, "$T:c:$c", order_args(%o))) }
sub reserve  { my ($c, %o) = @_; h(f('voucher_reserve', 1, "$T:c:$c", 60000, order_args(%o))) }
sub rollback { f('voucher_rollback', 1, $LOG, $_[0], '', '') }
sub reason   { ref $_[0] eq 'HASH' ? ($_[0]{reason} // 'ok') : errmsg($_[0]) }
sub pairs_of { my $r = shift; return { @$r[1 .. $#$r] } }

sub camp {
    my ($id, @f) = @_;
    my $r = f('voucher_campaign_set', 1, "$T:k:$id", @f);
    die "campaign $id: " . errmsg($r) . "\n" unless !ref $r && $r eq 'OK';
}
sub mkcode { code($redis, $_[0], campaign => $_[1]) }
sub period {
    my ($p, $tz, $t) = @_;
    my $r = f('voucher_period', 1, "$T:cfg", $p, $tz, $t);
    return is_err($r) ? errmsg($r) : { @$r };
}
sub ufield { $redis->cmd('HGET', "$T:u:$_[0]", $_[1]) }
sub now_s { $redis->cmd('TIME')->[0] }

# ------------------------------------------------------- bad definitions
{
    camp('good', kind => 'amount', value => 100);
    my $before = snapshot($redis);
    my @bad = (
        [[kind => 'bogus'], 'kind'],
        [[customer_uses_per => 'year:1'], 'customer_uses_per'],
        [[customer_uses_per => 'day:0'], 'customer_uses_per'],
        [[customer_uses_per => 'day'], 'customer_uses_per'],
        [[customer_uses_per => 'week:x'], 'customer_uses_per'],
        [[customer_amount_per => 'hour:500'], 'customer_amount_per'],
        [[customer_amount_max => '-1'], 'customer_amount_max'],
        [[kind => 'steps'], 'steps'],
        [[kind => 'steps', steps => '1000:100,500:50'], 'steps'],
        [[kind => 'steps', steps => '1000:100,2000:100'], 'steps'],
        [[kind => 'steps', steps => '100:200'], 'steps'],
        [[kind => 'steps', steps => '100:0'], 'steps'],
        [[kind => 'steps', steps => '1000-100'], 'steps'],
        [[kind => 'steps', steps => join(',', map { ($_ * 100) . ":$_" } 1 .. 11)], 'steps'],
        [[kind => 'buy_x_get_y'], 'buy_qty'],
        [[kind => 'buy_x_get_y', buy_qty => 2], 'get_qty'],
        [[kind => 'buy_x_get_y', buy_qty => 2, get_qty => 0], 'get_qty'],
        [[kind => 'buy_x_get_y', buy_qty => 2, get_qty => 1, value => 10001], 'value'],
        [[conditions => 'channel eq web'], 'conditions'],
        [[conditions => 'cart.channel eq web'], 'conditions'],
        [[conditions => 'order.channel like web'], 'conditions'],
        [[conditions => 'order.size gte big'], 'conditions'],
        [[conditions => 'order.channel eq a,b'], 'conditions'],
        [[conditions => 'order.channel in a,,b'], 'conditions'],
        [[conditions => ' ; '], 'conditions'],
        [[conditions => 'order.' . ('n' x 33) . ' eq x'], 'conditions'],
        [[conditions => join(';', map { "order.f$_ eq x" } 1 .. 9)], 'conditions'],
        [[conditions => 'order.c in ' . join(',', 1 .. 33)], 'conditions'],
        [[rules => '1'], 'rules'],
    );
    for my $b (@bad) {
        my ($f, $field) = @$b;
        my $r = f('voucher_campaign_set', 1, "$T:k:good", @$f);
        like(errmsg($r), qr/^ERR invalid_field \Q$field\E: /,
             "refused: @$f -> invalid_field $field");
    }
    is_deeply(snapshot($redis), $before, 'refused definitions changed nothing');

    camp('good', customer_uses_per => 'week:3', customer_amount_per => 'month:050000',
         customer_amount_max => 90000,
         conditions => ' order.channel in shop, web ,line_man ; customer.branch eq BKK1;order.basket gte 2 ');
    my %g = @{ f('voucher_campaign_get', 1, "$T:k:good") };
    is_deeply([@g{qw(customer_uses_per customer_amount_per customer_amount_max conditions)}],
              ['week:3', 'month:50000', 90000,
               'order.channel in shop,web,line_man;customer.branch eq BKK1;order.basket gte 2'],
              'campaign_get: the rules, normalised');
    ok(!exists $g{rules}, 'the derived "rules" is not shown');
    is($redis->cmd('HGET', "$T:k:good", 'rules'), '1', 'a campaign with rules is marked');
    camp('good', customer_uses_per => '', customer_amount_per => '',
         customer_amount_max => '', conditions => '');
    is($redis->cmd('HGET', "$T:k:good", 'rules'), undef,
       'and unmarked when its last rule is cleared');
    camp('good', customer_amount_max => 0);
    is($redis->cmd('HGET', "$T:k:good", 'rules'), undef, 'a cap of 0 is no rule');
    camp('good', kind => 'free_shipping');
    is($redis->cmd('HGET', "$T:k:good", 'rules'), '1', 'a kind of rules.lua marks it');
    camp('good', kind => 'amount');
    is($redis->cmd('HGET', "$T:k:good", 'rules'), undef, 'an older kind does not');
    camp('good', kind => 'buy_x_get_y', buy_qty => 2, get_qty => 1);
    is($redis->cmd('HGET', "$T:k:good", 'rules'), '1', 'buy_x_get_y marks it');
    camp('good', kind => 'amount');
    is($redis->cmd('HGET', "$T:k:good", 'rules'), undef,
       'its buy_qty and get_qty left behind are no rule for an amount');
}

# ------------------------------------------------------- periods in +07:00
{
    # Sunday 6 December 2026, 23:59:59 in Bangkok is 16:59:59 UTC
    my $sun = 1796576399;
    my $mon = $sun + 1;
    my ($d1, $d2) = (period('day', $BKK, $sun), period('day', $BKK, $mon));
    isnt($d1->{period}, $d2->{period}, 'day: 23:59:59 and 00:00:00 local differ');
    is($d1->{ends_at}, $mon, 'day: ends at local midnight');
    is($d2->{starts_at}, $mon, 'day: the next starts there');
    is($d2->{ends_at} - $d2->{starts_at}, 86400, 'day: 24 hours');
    is(period('day', 0, $sun)->{period}, period('day', 0, $mon)->{period},
       'the same instants are one day in UTC (16:59 and 17:00)');

    my ($w1, $w2) = (period('week', $BKK, $sun), period('week', $BKK, $mon));
    isnt($w1->{period}, $w2->{period}, 'week: Sunday to Monday is a new week');
    is($w2->{starts_at}, $mon, 'week: starts on Monday 00:00 local');
    is($w2->{ends_at}, $mon + 7 * 86400, 'week: 7 days');
    is(period('week', $BKK, $mon + 6 * 86400 + 86399)->{period}, $w2->{period},
       'week: the next Sunday 23:59:59 is the same week');
    is(period('week', $BKK, $sun - 6 * 86400)->{period}, $w1->{period},
       'week: the Monday before is the week before');

    is(period('month', $BKK, $sun)->{period}, period('month', $BKK, $mon)->{period},
       'month: 6 and 7 December are one month');
    # 31 December 2026 23:59:59 local, then 1 January 2027 00:00
    my $ny = 1798736400;
    my ($m1, $m2) = (period('month', $BKK, $ny - 1), period('month', $BKK, $ny));
    isnt($m1->{period}, $m2->{period}, 'month: a new year is a new month');
    is($m1->{starts_at}, 1796058000, 'month: December starts 1 Dec 00:00 local');
    is($m1->{ends_at}, $ny, 'month: and ends at the new year');
    is($m2->{ends_at} - $m2->{starts_at}, 31 * 86400, 'January: 31 days');
    # February 2028 is a leap month: 29 days
    my $feb = period('month', $BKK, 1832950800 + 86400);
    is($feb->{starts_at}, 1832950800, 'February 2028 starts 1 Feb local')
        or diag explain $feb;
    is($feb->{ends_at} - $feb->{starts_at}, 29 * 86400, 'February 2028: 29 days');
    is(period('month', $BKK, 1832950800 + 29 * 86400 - 1)->{period},
       $feb->{period}, '29 February 23:59:59 is still February');
    my $now = period('day', $BKK, '');
    cmp_ok($now->{starts_at}, '<=', now_s(), '"" is now');
    for my $bad (['year', $BKK, 1], ['day', 841, 1], ['day', '7h', 1],
                 ['day', $BKK, '-1'], ['day', $BKK, 'x']) {
        is(period(@$bad), 'ERR bad_args', "voucher_period @$bad: bad_args");
    }
}

# ------------------------------------------------------- uses per period
{
    camp('pd', kind => 'amount', value => 100, tz_offset => '+07:00',
         customer_uses_per => 'day:2');
    mkcode('PD', 'pd');
    my $day = period('day', $BKK, '');
    is(reason(validate('PD', customer => 'ann', amount => 1000)), 'ok',
       'validate: within the limit');
    is(ufield('ann', 'pu:pd'), undef, 'a validate counts nothing');
    is(reason(redeem('PD', customer => 'ann', amount => 1000)), 'ok', 'first');
    is(reason(redeem('PD', customer => 'ann', amount => 1000)), 'ok', 'second');
    is(ufield('ann', 'pu:pd'), "$day->{period}:2", 'counted in today, local');
    my $before = snapshot($redis);
    my $r = redeem('PD', customer => 'ann', amount => 1000);
    is_deeply($r, {reason => 'customer_period_limit', code => 'PD',
                   campaign => 'pd', resets_at => $day->{ends_at}},
              'third: customer_period_limit, resets at local midnight');
    is_deeply(validate('PD', customer => 'ann', amount => 1000), $r,
              'validate says the same');
    is_deeply(snapshot($redis), $before, 'the refusal changed nothing');
    is(reason(redeem('PD', customer => 'bob', amount => 1000)), 'ok',
       'another customer has his own count');
    is(reason(redeem('PD', amount => 1000)), 'customer_required',
       'no customer: customer_required');

    # reserve counts at once; release gives back; confirm keeps
    camp('pr', kind => 'amount', value => 100, customer_uses_per => 'week:1');
    mkcode('PR', 'pr');
    my $h = reserve('PR', customer => 'ann', amount => 1000);
    is($h->{status}, 'reserved', 'reserve within the weekly limit');
    is(reason(redeem('PR', customer => 'ann', amount => 1000)),
       'customer_period_limit', 'the reservation holds the use');
    my $x = f('voucher_release', 1, $LOG, $h->{redemption_id}, '');
    is($x->[0], 'ok', 'release');
    my $week = period('week', 0, '')->{period};
    is(ufield('ann', 'pu:pr'), "$week:0", 'release gives the use back');
    $h = reserve('PR', customer => 'ann', amount => 1000);
    is(f('voucher_confirm', 1, $LOG, $h->{redemption_id}, '')->[0], 'ok',
       'confirm');
    is(ufield('ann', 'pu:pr'), "$week:1", 'confirm keeps it');
    is(reason(validate('PR', customer => 'ann', amount => 1000)),
       'customer_period_limit', 'and the week is full');
}

# ------------------------------------------------------- amounts
{
    camp('pa', kind => 'amount', value => 100, customer_amount_per => 'month:250');
    mkcode('PA', 'pa');
    my $m = period('month', 0, '');
    my @ids = map { redeem('PA', customer => 'cat', amount => 1000)->{redemption_id} } 1 .. 2;
    ok($ids[0] && $ids[1], 'two redeems, 200 of 250 this month');
    is(ufield('cat', 'pa:pa'), "$m->{period}:200", 'the month holds 200');
    is_deeply(redeem('PA', customer => 'cat', amount => 1000),
              {reason => 'customer_period_amount', code => 'PA', campaign => 'pa',
               resets_at => $m->{ends_at}},
              '100 more would be 300: customer_period_amount');
    is(reason(redeem('PA', customer => 'cat', amount => 50)), 'ok',
       'a discount of 50 fits (order of 50)');
    is(ufield('cat', 'pa:pa'), "$m->{period}:250", 'exactly at the cap');
    is(rollback($ids[0])->[0], 'ok', 'rollback of a 100');
    is(ufield('cat', 'pa:pa'), "$m->{period}:150", 'the month gets 100 back');
    is(reason(redeem('PA', customer => 'cat', amount => 1000)), 'ok',
       'and a 100 fits again');

    camp('life', kind => 'percent', value => 1000, customer_amount_max => 150);
    mkcode('LIFE', 'life');
    my $r1 = redeem('LIFE', customer => 'dan', amount => 1000);
    is($r1->{discount}, 100, 'life cap: 100 of 150');
    is_deeply(redeem('LIFE', customer => 'dan', amount => 1000),
              {reason => 'customer_amount_limit', code => 'LIFE', campaign => 'life'},
              'another 100: customer_amount_limit');
    is(reason(redeem('LIFE', customer => 'dan', amount => 500)), 'ok',
       '50 fits');
    is(ufield('dan', 'a:life'), 150, 'the customer has had 150');
    rollback($r1->{redemption_id});
    is(ufield('dan', 'a:life'), 50, 'rollback gives the 100 back');
}

# ------------------------------------------------------- the right period
{
    # A campaign's zone decides its periods: +14:00 and -12:00 are 26 hours
    # apart, so "today" differs.  A redemption given back after its day has
    # passed gives back to that day, not to today.
    camp('tzp', kind => 'amount', value => 100, tz_offset => '+14:00',
         customer_uses_per => 'day:1', customer_amount_per => 'day:100');
    mkcode('TZP', 'tzp');
    my $d1 = period('day', 840, '')->{period};
    my $r1 = redeem('TZP', customer => 'eve', amount => 1000);
    is(reason($r1), 'ok', 'day 1: the one use');
    is(reason(redeem('TZP', customer => 'eve', amount => 1000)),
       'customer_period_limit', 'day 1: full');
    camp('tzp', tz_offset => '-12:00');
    my $d2 = period('day', -720, '')->{period};
    isnt($d1, $d2, 'the zone moved "today"');
    my $r2 = redeem('TZP', customer => 'eve', amount => 1000);
    is(reason($r2), 'ok', 'day 2: a new use');
    is(reason(redeem('TZP', customer => 'eve', amount => 1000)),
       'customer_period_limit', 'day 2: full');
    is(rollback($r1->{redemption_id})->[0], 'ok', 'rollback of day 1\'s');
    is(ufield('eve', 'pu:tzp'), "$d2:1", 'day 2 keeps its use');
    is(ufield('eve', 'pa:tzp'), "$d2:100", 'and its amount');
    is(reason(redeem('TZP', customer => 'eve', amount => 1000)),
       'customer_period_limit', 'day 2 is still full');
    is(rollback($r2->{redemption_id})->[0], 'ok', 'rollback of day 2\'s');
    is(ufield('eve', 'pu:tzp'), "$d2:0", 'day 2 gets its use back');
    is(ufield('eve', 'pa:tzp'), "$d2:0", 'and its amount');
    is(reason(redeem('TZP', customer => 'eve', amount => 1000)), 'ok',
       'day 2: the use again');
}

# ------------------------------------------------------- steps
{
    camp('st', kind => 'steps', steps => '100000:10000, 200000:25000, 500000:80000');
    mkcode('ST', 'st');
    is_deeply(validate('ST', amount => 99999),
              {reason => 'order_below_minimum', code => 'ST', campaign => 'st',
               min_amount => 100000}, 'below the first step: order_below_minimum');
    is(validate('ST', amount => 100000)->{discount}, 10000, 'at the first step');
    is(validate('ST', amount => 199999)->{discount}, 10000, 'just below the second');
    is(validate('ST', amount => 250000)->{discount}, 25000, 'the second');
    is(validate('ST', amount => 9000000)->{discount}, 80000, 'the highest reached');
    camp('st', cap => 50000);
    my $v = validate('ST', amount => 600000);
    is_deeply([@$v{qw(discount capped_by kind)}], [50000, 'cap', 'steps'], 'capped');
    camp('st', include_categories => 'tea');
    $v = validate('ST', amount => 300000,
                  items => [['T1', 'tea', 150000, 1], ['C1', 'cake', 150000, 1]]);
    is_deeply([@$v{qw(discount eligible_amount)}], [10000, 150000],
              'the steps count the eligible items only');
}

# ------------------------------------------------------- buy x get y
{
    camp('bx', kind => 'buy_x_get_y', buy_qty => 2, get_qty => 1,
         include_categories => 'tea');
    mkcode('BX', 'bx');
    my @tea = (['T1', 'tea', 3000, 2], ['T2', 'tea', 1000, 1]);
    my $v = validate('BX', amount => 9000, items => [@tea, ['C', 'cake', 500, 1],
                                                    ['S', 'shipping', 1500, 1]]);
    is_deeply([@$v{qw(discount eligible_amount kind)}], [1000, 7000, 'buy_x_get_y'],
              '3 teas: the cheapest is free, cake and shipping do not count');
    $v = validate('BX', amount => 20000, items => [['T1', 'tea', 3000, 5], ['T2', 'tea', 1000, 1]]);
    is($v->{discount}, 4000, '6 teas: the two cheapest (1000 + 3000) free');
    is_deeply(validate('BX', amount => 6000, items => [['T1', 'tea', 3000, 2]]),
              {reason => 'not_enough_items', code => 'BX', campaign => 'bx',
               min_items => 3}, '2 teas: not_enough_items');
    is(reason(validate('BX', amount => 600, items => [['C', 'cake', 600, 3]])),
       'no_matching_items', 'no tea: no_matching_items');
    is(reason(validate('BX', amount => 600)), 'items_required', 'no items: items_required');
    camp('bx', value => 5000);
    is(validate('BX', amount => 7000, items => \@tea)->{discount}, 500,
       'value 5000: the got item at half price');
    camp('bx', value => 10000, buy_qty => 1, get_qty => 1, include_categories => '');
    is(validate('BX', amount => 7999,
                items => [['A', 'x', 999, 1], ['B', 'y', 3000, 1], ['C', 'z', 4000, 1]])->{discount},
       999, 'buy 1 get 1, three items: one free, the cheapest');
}

# ------------------------------------------------------- free shipping
{
    camp('fs', kind => 'free_shipping', cap => 5000);
    mkcode('FS', 'fs');
    my $v = validate('FS', amount => 11500,
                     items => [['A', 'tea', 10000, 1], ['SHIP', 'shipping', 1500, 1]]);
    is_deeply([@$v{qw(discount eligible_amount kind)}], [1500, 1500, 'free_shipping'],
              'the discount is the shipping line');
    $v = validate('FS', amount => 20000,
                  items => [['A', 'tea', 10000, 1], ['S1', 'shipping', 4000, 1],
                            ['S2', 'shipping', 3000, 2]]);
    is_deeply([@$v{qw(discount capped_by)}], [5000, 'cap'], 'several lines, capped');
    is_deeply(validate('FS', amount => 1000, items => [['A', 'tea', 1000, 1]]),
              {reason => 'no_shipping_line', code => 'FS', campaign => 'fs'},
              'no shipping line: no_shipping_line');
    is(reason(validate('FS', amount => 1000)), 'items_required', 'no items: items_required');
    my $r = redeem('FS', customer => 'fay', amount => 11500,
                   items => [['A', 'tea', 10000, 1], ['SHIP', 'shipping', 1500, 1]]);
    is($r->{discount}, 1500, 'redeem');
    my $k = { @{ f('voucher_campaign_get', 1, "$T:k:fs") } };
    is($k->{discount_given}, 1500, 'the campaign counts it');
    rollback($r->{redemption_id});
    $k = { @{ f('voucher_campaign_get', 1, "$T:k:fs") } };
    is($k->{discount_given}, 0, 'rollback gives it back');
}

# ------------------------------------------------------- conditions
{
    camp('cd', kind => 'amount', value => 100,
         conditions => "order.channel in shop,web,line_man;customer.branch not_in BKK9;"
                       . "order.basket gte 2;order.basket lte 10;order.payment eq card;"
                       . "customer.city eq \x{e0}\x{b8}\x{81}\x{e0}\x{b8}\x{97}\x{e0}\x{b8}\x{a1}");
    mkcode('CD', 'cd');
    my $city = "\x{e0}\x{b8}\x{81}\x{e0}\x{b8}\x{97}\x{e0}\x{b8}\x{a1}";   # กทม, UTF-8
    my %ok = (ochannel => 'line_man', cbranch => 'BKK1', obasket => 2,
              opayment => 'card', ccity => $city);
    my $meta = sub {
        my %m = (%ok, @_);
        return 'm' . join("\0", map { "$_=$m{$_}" } grep { defined $m{$_} } sort keys %m);
    };
    is(reason(validate('CD', amount => 1000, meta => $meta->())), 'ok',
       'every condition met');
    my @fails = (
        [[ochannel => 'pos'], 'order.channel'],
        [[ochannel => undef], 'order.channel'],
        [[cbranch => 'BKK9'], 'customer.branch'],
        [[obasket => 1], 'order.basket'],
        [[obasket => 11], 'order.basket'],
        [[obasket => 'two'], 'order.basket'],
        [[opayment => 'cash'], 'order.payment'],
        [[ccity => 'CNX'], 'customer.city'],
    );
    for my $c (@fails) {
        my ($set, $field) = @{$c};
        my $show = join ' ', map { $_ // 'absent' } @$set;
        is_deeply(validate('CD', amount => 1000, meta => $meta->(@$set)),
                  {reason => 'condition_not_met', code => 'CD', campaign => 'cd',
                   field => $field}, "condition_not_met, field $field ($show)");
    }
    is_deeply(validate('CD', amount => 1000),
              {reason => 'condition_not_met', code => 'CD', campaign => 'cd',
               field => 'order.channel'}, 'no business data: the first condition fails');
    for my $bad ('mx', "mochannel=web\0", 'mo=web', "m\0") {
        (my $show = $bad) =~ s/\0/\\0/g;
        is(errmsg(f('voucher_validate', 1, "$T:c:CD", order_args(amount => 1, meta => $bad))),
           'ERR bad_args', "malformed business data \"$show\": bad_args");
    }
    my $first = redeem('CD', amount => 1000, meta => $meta->(), idem => 'k1');
    is(reason($first), 'ok', 'redeem with the data');
    is(redeem('CD', amount => 1000, meta => $meta->(), idem => 'k1')->{redemption_id},
       $first->{redemption_id}, 'its retry replays it');
    is(reason(redeem('CD', amount => 1000, meta => $meta->(opayment => 'qr'), idem => 'k1')),
       'idempotency_conflict', 'the key with other data: idempotency_conflict');
}

# ------------------------------------------------------- through nginx
{
    my $day = period('day', $BKK, '');
    my $r = post($ng, 'redeem', {code => 'PD', customer => 'ann', order => {amount => 1000}});
    is_deeply([$r->{status}, @{ $r->{json} }{qw(reason resets_at)}],
              [409, 'customer_period_limit', $day->{ends_at}],
              'customer_period_limit: 409 with resets_at');
    for my $c (['PA', {customer => 'cat', order => {amount => 1000}}, 'customer_period_amount'],
               ['LIFE', {customer => 'dan', order => {amount => 2000}}, 'customer_amount_limit'],
               ['BX', {order => {items => [{sku => 'A', price => 100}]}}, 'not_enough_items'],
               ['FS', {order => {items => [{sku => 'A', price => 100}]}}, 'no_shipping_line'],
               ['CD', {order => {amount => 1000}}, 'condition_not_met']) {
        my ($code, $body, $reason) = @$c;
        my $x = post($ng, 'validate', {code => $code, %$body});
        is_deeply([$x->{status}, $x->{json}{reason}], [409, $reason], "$reason: 409");
    }
    my $meta = {channel => 'web', basket => 3, payment => 'card'};
    my $attrs = {branch => 'BKK1', city => "\x{0e01}\x{0e17}\x{0e21}"};
    $r = post($ng, 'redeem', {code => 'CD', order => {amount => 1000, metadata => $meta},
                              customer_attributes => $attrs});
    is_deeply([$r->{status}, $r->{json}{discount}], [200, 100],
              'order.metadata and customer_attributes: the conditions are met');
    $r = post($ng, 'validate', {code => 'CD', order => {amount => 1000,
                                metadata => {%$meta, channel => 'pos'}},
                                customer_attributes => $attrs});
    is_deeply([$r->{status}, @{ $r->{json} }{qw(reason field)}],
              [409, 'condition_not_met', 'order.channel'], 'a failed condition names its field');

    my $before = snapshot($redis);
    for my $b ([{order => {amount => 1, metadata => []}}, 'invalid_field', 'order.metadata'],
               [{order => {amount => 1, metadata => {'a-b' => 1}}}, 'invalid_field', 'order.metadata'],
               [{order => {amount => 1, metadata => {a => 'x' x 65}}}, 'invalid_field', 'order.metadata'],
               [{order => {amount => 1, metadata => {a => JSON::PP::true}}}, 'invalid_field', 'order.metadata'],
               [{order => {amount => 1, metadata => {map { ("k$_" => $_) } 1 .. 17}}},
                'invalid_field', 'order.metadata'],
               [{order => {amount => 1}, customer_attributes => {a => "x\ny"}},
                'invalid_field', 'customer_attributes'],
               [{order => {amount => 1, meta => {}}}, 'unknown_field', 'order.meta'],
               [{order => {amount => 1}, attributes => {}}, 'unknown_field', 'attributes']) {
        my ($body, $reason, $field) = @$b;
        my $x = post($ng, 'redeem', {code => 'CD', %$body});
        is_deeply([$x->{status}, @{ $x->{json} }{qw(reason field)}], [400, $reason, $field],
                  "bad business data: 400 $reason $field");
    }
    is_deeply(snapshot($redis), $before, 'bad business data changed nothing');

    # qualify and a stack take the data too
    camp('cd', stacking => 'combinable');
    camp('st', stacking => 'combinable', include_categories => '', cap => 0);
    camp('fs', stacking => 'combinable');
    $r = post($ng, 'qualify', {codes => ['CD', 'ST', 'FS'], customer_attributes => $attrs,
                               order => {amount => 101500, metadata => $meta,
                                         items => [{sku => 'A', category => 'tea', price => 100000},
                                                   {sku => 'S', category => 'shipping', price => 1500}]}});
    is($r->{status}, 200, 'qualify: 200');
    is_deeply([sort map { "$_->{code}=$_->{discount}" } @{ $r->{json}{applicable} }],
              ['CD=100', 'FS=1500', 'ST=10000'], 'qualify: each kind applies');
    camp('fs', customer_uses_per => 'month:1');
    $r = post($ng, 'redeem', {codes => ['ST', 'FS'], customer => 'gus',
                              order => {amount => 101500,
                                        items => [{sku => 'A', category => 'tea', price => 100000},
                                                  {sku => 'S', category => 'shipping', price => 1500}]}});
    is_deeply([$r->{status}, $r->{json}{discount}], [200, 11500],
              'a stack of steps and free shipping');
    my $m = period('month', 0, '')->{period};
    is(ufield('gus', 'pu:fs'), "$m:1", 'the stack counts the month');
    my $x = post($ng, 'validate', {codes => ['FS'], customer => 'gus',
                                   order => {items => [{sku => 'S', category => 'shipping', price => 1500}]}});
    is_deeply([$x->{status}, @{ $x->{json} }{qw(reason code resets_at)}],
              [409, 'customer_period_limit', 'FS', period('month', 0, '')->{ends_at}],
              'a stack sees the limit, and when it resets');
    $x = post($ng, 'validate', {codes => ['CD'], order => {amount => 1000, metadata => {channel => 'pos'}}});
    is_deeply([$x->{status}, @{ $x->{json} }{qw(reason code field)}],
              [409, 'condition_not_met', 'CD', 'order.channel'],
              'a stack names the failed condition');
    $x = post($ng, 'rollback', {redemption_id => $r->{json}{redemption_id}});
    is($x->{status}, 200, 'rollback of the stack');
    is(ufield('gus', 'pu:fs'), "$m:0", 'gives the month back');

    # the gate
    my $g = http($ng->port, 'GET', '/gate/x?coupon=CD',
                 headers => {'X-Amount' => 1000, 'X-Channel' => 'shop', 'X-Branch' => 'BKK1'});
    is($g->{status}, 409, 'gate: without basket and payment the conditions fail');
    camp('cd', conditions => 'order.channel in shop,web;customer.branch eq BKK1');
    $g = http($ng->port, 'GET', '/gate/x?coupon=CD',
              headers => {'X-Amount' => 1000, 'X-Channel' => 'shop', 'X-Branch' => 'BKK1'});
    is_deeply([$g->{status}, $g->{body}], [200, "upstream discount=100\n"],
              'gate: voucher_metadata carries them');
    $g = http($ng->port, 'GET', '/gate/x?coupon=CD',
              headers => {'X-Amount' => 1000, 'X-Channel' => 'pos', 'X-Branch' => 'BKK1'});
    is($g->{status}, 409, 'gate: a failed condition refuses');
    $g = http($ng->port, 'GET', '/gate/x?coupon=CD',
              headers => {'X-Amount' => 1000, 'X-Channel' => 'x' x 65});
    is($g->{status}, 400, 'gate: a value too long is a 400');
}

# ------------------------------------------------------- one customer racing
{
    camp('race', kind => 'amount', value => 100, tz_offset => '+07:00',
         customer_uses_per => 'day:3');
    mkcode('RACE', 'race');
    my $body = JSON::PP->new->canonical->encode(
        {code => 'RACE', customer => 'zed', order => {amount => 1000}});
    my $res = http_pipeline($ng->port, [map { ['POST', '/vouchers/redeem', $body] } 1 .. 40],
                            conns => 10);
    my %n;
    $n{$_->[0]}++ for @$res;
    is_deeply(\%n, {200 => 3, 409 => 37}, '40 parallel redeems: exactly 3 pass');
    my $d = period('day', $BKK, '')->{period};
    is(ufield('zed', 'pu:race'), "$d:3", 'and the day holds 3');
    my %k = @{ f('voucher_campaign_get', 1, "$T:k:race") };
    is($k{redeemed}, 3, 'the campaign counted 3');
}

done_testing;
