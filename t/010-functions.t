#!/usr/bin/perl
#
# The Redis Functions library (redis/lib/*.lua), driven over RESP without
# nginx: every reason code, the discount arithmetic, counters, the stream,
# idempotency, rollback, the admin functions and their validation.

use strict;
use warnings;
use Test::More;
use Math::BigInt;
use VT qw(ok_pairs);

my $r = VT::Redis->start;
$r->load_functions;

my $NS = 'shop1';
my $T = "{$NS}";
my $LOG = "$T:log";


############################################################## helpers

sub is_err { ref $_[0] && ref $_[0] ne 'ARRAY' && $_[0]->isa('VT::Redis::Error') }
sub errmsg { is_err($_[0]) ? $_[0]->message : undef }

sub fcall {
    my ($fn, $key, @args) = @_;
    return $r->cmd('FCALL', $fn, 1, $key, @args);
}

# customer amount currency order_id idem nitems [sku category price qty]*
sub order_args {
    my %o = @_;
    my @items = @{ $o{items} || [] };
    return ($o{customer} // '', $o{amount} // 0, $o{currency} // '',
            $o{order_id} // '', $o{idem} // '', scalar @items,
            map { @$_ } @items);
}

# An "ok" is positional ({'ok', mask, values...}, see ok_reply() in
# redis/lib/evaluate.lua): validate() and redeem() give it back as the pairs
# nginx renders it as (VT::ok_pairs), so the answers below read as the
# JSON does; the positional form itself is checked under "positional".
sub validate_raw { my ($c, %o) = @_; fcall('voucher_validate', "$T:c:$c", order_args(%o)) }
sub redeem_raw   { my ($c, %o) = @_; fcall('voucher_redeem', "$T:c:$c", order_args(%o)) }
sub validate { ok_pairs(validate_raw(@_)) }
sub redeem   { ok_pairs(redeem_raw(@_)) }

sub rollback {
    my ($id, $amount, $idem) = @_;
    return fcall('voucher_rollback', $LOG, $id, $amount // '', $idem // '');
}

sub admin_ok {
    my ($fn, $key, @f) = @_;
    my $x = fcall($fn, $key, @f);
    return if !ref $x && defined $x && $x eq 'OK';
    die "$fn $key @f: " . (errmsg($x) // explain($x)) . "\n";
}
sub campaign { my ($id, @f) = @_; admin_ok('voucher_campaign_set', "$T:k:$id", @f) }
sub code     { my ($c, @f) = @_;  admin_ok('voucher_code_set', "$T:c:$c", @f) }

sub hgetall { +{ @{ $r->cmd('HGETALL', $_[0]) } } }
sub redis_now { $r->cmd('TIME')->[0] }
sub xlen { $r->cmd('XLEN', $LOG) }

sub entry {
    my $e = $r->cmd('XRANGE', $LOG, $_[0], $_[0]);
    return $e->[0] ? $e->[0][1] : undef;
}

# everything in the database, without DUMP: counters, strings, stream length
sub snapshot {
    my %s = (dbsize => $r->cmd('DBSIZE'));
    for my $k (@{ $r->cmd('KEYS', '*') }) {
        my $t = $r->cmd('TYPE', $k);
        $s{$k} = $t eq 'hash' ? hgetall($k)
               : $t eq 'string' ? [$r->cmd('GET', $k), $r->cmd('TTL', $k) > 0]
               : $t eq 'stream'
                 ? 'stream ' . $r->cmd('XLEN', $k) . ' '
                   . ($r->cmd('XREVRANGE', $k, '+', '-', 'COUNT', 1)->[0][0] // '')
               : $t;
    }
    return \%s;
}

# a failure: validate and redeem answer exactly $exp and nothing changes
sub fails {
    my ($c, $order, $exp, $name) = @_;
    my $before = snapshot();
    is_deeply(validate($c, %$order), $exp, "validate: $name")
        or diag explain validate($c, %$order);
    is_deeply(redeem($c, %$order), $exp, "redeem: $name");
    is_deeply(snapshot(), $before, "$name: nothing changed");
}

# a successful redeem: $exp plus a trailing redemption_id; returns the id
sub redeem_ok {
    my ($rep, $exp, $name) = @_;
    my $id = ref $rep eq 'ARRAY' && @$rep > 2 && $rep->[-2] eq 'redemption_id'
             ? $rep->[-1] : undef;
    ok(defined $id && $id =~ /^\d+-\d+$/, "$name: redemption_id")
        or diag explain $rep;
    is_deeply($rep, [@$exp, 'redemption_id', $id], $name) or diag explain $rep;
    return $id;
}

# the discount of a successful validate
sub discount {
    my $rep = shift;
    return undef unless ref $rep eq 'ARRAY' && $rep->[0] eq 'ok';
    my %h = @$rep[1 .. $#$rep];
    return $h{discount};
}

# an admin error: exact message pattern, nothing written
sub admin_err {
    my ($fn, $key, $args, $re, $name) = @_;
    my $before = snapshot();
    my $x = fcall($fn, $key, @$args);
    ok(is_err($x) && $x->message =~ $re, $name)
        or diag explain(is_err($x) ? $x->message : $x);
    is_deeply(snapshot(), $before, "$name: nothing written");
}


############################################################## basics

is($r->cmd('FCALL', 'voucher_version', 0), 'test', 'version');

{
    campaign('pct', kind => 'percent', value => 1000);
    code('P1', campaign => 'pct');

    my $before = snapshot();
    for my $bad (['{shop1}:k:P1', 'wrong key kind'], ['shop1:c:P1', 'no tag'],
                 ['{}:c:P1', 'empty tag']) {
        for my $fn (qw(voucher_validate voucher_redeem)) {
            my $x = fcall($fn, $bad->[0], order_args(amount => 100));
            is(errmsg($x), 'ERR bad_key', "$fn: bad_key, $bad->[1]");
        }
    }
    is(errmsg(fcall('voucher_rollback', "$T:c:P1", '1-1', '', '')),
       'ERR bad_key', 'rollback: bad_key');

    my @bad = (
        [['', '12a', '', '', '', 0], 'non-numeric amount'],
        [['', '-1', '', '', '', 0], 'negative amount'],
        [['', '', '', '', '', 0], 'empty amount'],
        [['', '1.5', '', '', '', 0], 'fractional amount'],
        [['', '9007199254740992', '', '', '', 0], 'amount above 2^53-1'],
        [['', '100', '', '', '', 1], 'nitems without items'],
        [['', '100', '', '', '', 0, 'a', 'b', '1', '1'], 'items without nitems'],
        [['', '100', '', '', '', 'x'], 'non-numeric nitems'],
        [['', '100', '', '', '', 1, 'a', 'b', 'x', '1'], 'non-numeric price'],
        [['', '100', '', '', '', 1, 'a', 'b', '1', '1.5'], 'fractional qty'],
        [['', '100', '', ''], 'too few args'],
    );
    for my $b (@bad) {
        for my $fn (qw(voucher_validate voucher_redeem)) {
            is(errmsg(fcall($fn, "$T:c:P1", @{ $b->[0] })), 'ERR bad_args',
               "$fn: bad_args, $b->[1]");
        }
    }
    is(errmsg(rollback('1-1', 'x')), 'ERR bad_args', 'rollback: bad amount');
    is(errmsg(fcall('voucher_rollback', $LOG, '1-1')), 'ERR bad_args',
       'rollback: too few args');
    is_deeply(snapshot(), $before, 'bad keys and args change nothing');
}


############################################################## percent

{
    my $before = snapshot();
    my $v = validate('P1', amount => 12345, currency => 'EUR');
    is_deeply($v, ['ok', 'code', 'P1', 'campaign', 'pct', 'discount', 1234,
                   'computation', ['kind', 'percent', 'percent_bp', 1000,
                                   'eligible_amount', 12345],
                   'order_amount', 12345, 'amount_after', 11111],
              'percent: 10% of 12345 = 1234 (floor)') or diag explain $v;
    is_deeply(ok_pairs($r->cmd('FCALL_RO', 'voucher_validate', 1, "$T:c:P1",
                               order_args(amount => 12345))), $v,
              'validate runs as FCALL_RO');
    is_deeply(snapshot(), $before, 'validate writes nothing');

    campaign('pct15', kind => 'percent', value => 1500);
    code('P15', campaign => 'pct15');
    is(discount(validate('P15', amount => 999)), 149, 'percent: 15% of 999 = 149');
    is(discount(validate('P15', amount => 6)), 0, 'percent: 15% of 6 = 0');

    campaign('pct1', kind => 'percent', value => 1);
    code('P0', campaign => 'pct1');
    is(discount(validate('P0', amount => 9999)), 0, 'percent: 1bp of 9999 = 0');
    is(discount(validate('P0', amount => 10000)), 1, 'percent: 1bp of 10000 = 1');

    campaign('pct100', kind => 'percent', value => 10000);
    code('P100', campaign => 'pct100');
    is(discount(validate('P100', amount => 4321)), 4321, 'percent: 100%');

    campaign('pcap', kind => 'percent', value => 2500, cap => 1000);
    code('PCAP', campaign => 'pcap');
    is_deeply(validate('PCAP', amount => 3000),
              ['ok', 'code', 'PCAP', 'campaign', 'pcap', 'discount', 750,
               'computation', ['kind', 'percent', 'percent_bp', 2500,
                               'eligible_amount', 3000, 'cap', 1000],
               'order_amount', 3000, 'amount_after', 2250],
              'percent below the cap');
    is_deeply(validate('PCAP', amount => 10000),
              ['ok', 'code', 'PCAP', 'campaign', 'pcap', 'discount', 1000,
               'computation', ['kind', 'percent', 'percent_bp', 2500,
                               'eligible_amount', 10000, 'cap', 1000,
                               'capped_by', 'cap'],
               'order_amount', 10000, 'amount_after', 9000],
              'percent capped by cap');

    # exact at 2^53 - 1: floor(9007199254740991 * 3333 / 10000)
    my $big = '9007199254740991';
    my $d = Math::BigInt->new($big)->bmul(3333)->bdiv(10000)->bstr;
    my $after = Math::BigInt->new($big)->bsub($d)->bstr;
    campaign('pbig', kind => 'percent', value => 3333);
    code('PBIG', campaign => 'pbig');
    my $id = redeem_ok(redeem('PBIG', amount => $big),
        ['ok', 'code', 'PBIG', 'campaign', 'pbig', 'discount', $d,
         'computation', ['kind', 'percent', 'percent_bp', 3333,
                         'eligible_amount', $big],
         'order_amount', $big, 'amount_after', $after],
        "percent of 2^53-1 is exact ($d)");
    is(hgetall("$T:k:pbig")->{discount_given}, $d, 'discount_given exact');
    my %e = @{ entry($id) };
    is("$e{amount} $e{discount}", "$big $d", 'stream amount/discount exact');
}


############################################################## amount, fixed_price

{
    campaign('amt', kind => 'amount', value => 500);
    code('A5', campaign => 'amt');
    is_deeply(validate('A5', amount => 300),
              ['ok', 'code', 'A5', 'campaign', 'amt', 'discount', 300,
               'computation', ['kind', 'amount', 'value', 500,
                               'eligible_amount', 300],
               'order_amount', 300, 'amount_after', 0],
              'amount: at most the order');
    is(discount(validate('A5', amount => 1000)), 500, 'amount: 500 off 1000');

    campaign('fixw', kind => 'fixed_price', value => 2000);
    code('FW', campaign => 'fixw');
    is_deeply(validate('FW', amount => 5000),
              ['ok', 'code', 'FW', 'campaign', 'fixw', 'discount', 3000,
               'computation', ['kind', 'fixed_price', 'value', 2000,
                               'eligible_amount', 5000],
               'order_amount', 5000, 'amount_after', 2000],
              'fixed_price whole order: pay 2000');
    is(discount(validate('FW', amount => 1500)), 0,
       'fixed_price whole order below the price: 0');
    is(discount(validate('FW', amount => 5000,
                         items => [['A', 'x', 2500, 2]])), 3000,
       'fixed_price without filters ignores items');

    campaign('fixi', kind => 'fixed_price', value => 3000,
             include_categories => 'shoes');
    code('FI', campaign => 'fixi');
    is_deeply(validate('FI', amount => 16000,
                       items => [['S1', 'shoes', 5000, 2],
                                 ['S2', 'shoes', 2000, 1],
                                 ['H1', 'hats', 4000, 1]]),
              ['ok', 'code', 'FI', 'campaign', 'fixi', 'discount', 4000,
               'computation', ['kind', 'fixed_price', 'value', 3000,
                               'eligible_amount', 12000],
               'order_amount', 16000, 'amount_after', 12000],
              'fixed_price per item: (5000-3000)x2 + 0');
}


############################################################## free_item

{
    campaign('free2', kind => 'free_item', free_sku => 'SOCK', value => 2);
    code('F2', campaign => 'free2');
    my @items = (['TEE', 'top', 2500, 1], ['SOCK', 'acc', 300, 3],
                 ['SOCK', 'acc', 500, 5]);
    is_deeply(validate('F2', amount => 7400, items => \@items),
              ['ok', 'code', 'F2', 'campaign', 'free2', 'discount', 600,
               'computation', ['kind', 'free_item', 'value', 2,
                               'eligible_amount', 7400],
               'order_amount', 7400, 'amount_after', 6800],
              'free_item: 2 units of the first SOCK line');
    is(discount(validate('F2', amount => 2800,
                         items => [['SOCK', 'acc', 300, 1]])), 300,
       'free_item: only 1 in the order');

    campaign('free1', kind => 'free_item', free_sku => 'SOCK');
    code('F1', campaign => 'free1');
    is_deeply(validate('F1', amount => 900, items => [['SOCK', 'a', 300, 3]]),
              ['ok', 'code', 'F1', 'campaign', 'free1', 'discount', 300,
               'computation', ['kind', 'free_item', 'value', 1,
                               'eligible_amount', 900],
               'order_amount', 900, 'amount_after', 600],
              'free_item: 1 unit by default');
    is_deeply(validate('F1', amount => 500, items => [['SOCK', 'a', 1000, 1]]),
              ['ok', 'code', 'F1', 'campaign', 'free1', 'discount', 500,
               'computation', ['kind', 'free_item', 'value', 1,
                               'eligible_amount', 500,
                               'capped_by', 'order_amount'],
               'order_amount', 500, 'amount_after', 0],
              'free_item: at most the order amount');

    campaign('freecap', kind => 'free_item', free_sku => 'SOCK', cap => 250);
    code('FC', campaign => 'freecap');
    is(discount(validate('FC', amount => 900, items => [['SOCK', 'a', 300, 3]])),
       250, 'free_item capped');

    campaign('freebig', kind => 'free_item', free_sku => 'BIG',
             value => 1000000);
    code('FB', campaign => 'freebig');
    is(discount(validate('FB', amount => 5000,
                         items => [['BIG', 'x', '9007199254740991', 1000000]])),
       5000, 'free_item: huge price x qty clamps to the amount');

    fails('F2', {amount => 2500, items => [['TEE', 'top', 2500, 1]]},
          ['free_item_missing', 'code', 'F2', 'campaign', 'free2'],
          'free_item_missing');
    fails('F2', {amount => 2500},
          ['free_item_missing', 'code', 'F2', 'campaign', 'free2'],
          'free_item_missing without items');
}


############################################################## item filters

{
    my @items = (['A', 'food', 1000, 1], ['B', 'shoes', 2000, 2],
                 ['C', 'gift', 4000, 1]);
    my %cases = (
        'include_skus' => [[include_skus => ' A , B'], 5000],
        'exclude_skus' => [[exclude_skus => 'C'], 5000],
        'include_categories' => [[include_categories => 'shoes'], 4000],
        'exclude_categories' => [[exclude_categories => 'gift,shoes'], 1000],
        'include sku or category' =>
            [[include_skus => 'A', include_categories => 'gift'], 5000],
        'include minus exclude sku' =>
            [[include_categories => 'shoes,food', exclude_skus => 'B'], 1000],
        'include sku minus exclude category' =>
            [[include_skus => 'A,C', exclude_categories => 'gift'], 1000],
    );
    my $n = 0;
    for my $name (sort keys %cases) {
        my ($f, $base) = @{ $cases{$name} };
        $n++;
        campaign("flt$n", kind => 'percent', value => 1000, @$f);
        code("FLT$n", campaign => "flt$n");
        is_deeply(validate("FLT$n", amount => 9000, items => \@items),
                  ['ok', 'code', "FLT$n", 'campaign', "flt$n",
                   'discount', $base / 10,
                   'computation', ['kind', 'percent', 'percent_bp', 1000,
                                   'eligible_amount', $base],
                   'order_amount', 9000, 'amount_after', 9000 - $base / 10],
                  "filter $name: base $base");
    }

    # the base never exceeds the order amount
    is(discount(validate('FLT1', amount => 800, items => \@items)), 80,
       'filtered base capped by the order amount');

    # a sum far above 2^53 stays exact enough: clamped at the amount
    campaign('fltbig', kind => 'percent', value => 10000, include_skus => 'X');
    code('FLTBIG', campaign => 'fltbig');
    is(discount(validate('FLTBIG', amount => 12345,
                         items => [['X', 'c', '9007199254740991',
                                    '9007199254740991']])),
       12345, 'huge item total clamps to the amount');

    fails('FLT1', {amount => 9000},
          ['items_required', 'code', 'FLT1', 'campaign', 'flt1'],
          'items_required');
    fails('FLT1', {amount => 9000, items => [['Z', 'gift', 100, 1]]},
          ['no_matching_items', 'code', 'FLT1', 'campaign', 'flt1'],
          'no_matching_items');
    is($r->cmd('HGET', "$T:k:flt1", 'exclude_categories'), ',gift,shoes,',
       'lists stored as ,a,b,');
}


############################################################## gift card

{
    campaign('gc', kind => 'gift_card', value => 5000);
    code('G1', campaign => 'gc');
    my $h = hgetall("$T:c:G1");
    like(delete $h->{x}, qr/^\d+:0:5000$/,
         'gift code: its balance one lot, credited now, never ending');
    is_deeply($h, {k => 'gc', b => 5000, b0 => 5000},
              'gift code created with the campaign value');

    is_deeply(validate('G1', amount => 3000),
              ['ok', 'code', 'G1', 'campaign', 'gc', 'discount', 3000,
               'computation', ['kind', 'gift_card', 'eligible_amount', 3000],
               'order_amount', 3000, 'amount_after', 0, 'balance', 5000],
              'gift card validate shows the current balance');
    redeem_ok(redeem('G1', amount => 3000),
              ['ok', 'code', 'G1', 'campaign', 'gc', 'discount', 3000,
               'computation', ['kind', 'gift_card', 'eligible_amount', 3000],
               'order_amount', 3000, 'amount_after', 0, 'balance', 2000],
              'gift card partial use');
    my $id = redeem_ok(redeem('G1', amount => 4000),
              ['ok', 'code', 'G1', 'campaign', 'gc', 'discount', 2000,
               'computation', ['kind', 'gift_card', 'eligible_amount', 4000,
                               'capped_by', 'balance'],
               'order_amount', 4000, 'amount_after', 2000, 'balance', 0],
              'gift card used up, capped by the balance');
    is_deeply(hgetall("$T:c:G1"), {k => 'gc', b => 0, b0 => 5000, u => 2,
                                   x => ''},
              'balance 0, never below, no lot left');
    my $gc = hgetall("$T:k:gc");
    like(delete $gc->{rev}, qr/^\d+\.\d+$/, 'campaign revision set by campaign_set');
    is_deeply($gc,
              {kind => 'gift_card', value => 5000, status => 'active',
               redeemed => 2, discount_given => 5000}, 'campaign counters');
    fails('G1', {amount => 100},
          ['balance_exhausted', 'code', 'G1', 'campaign', 'gc'],
          'balance_exhausted');
    is_deeply(entry($id),
              ['type', 'redeem', 'code', 'G1', 'campaign', 'gc',
               'customer', '', 'order_id', '', 'amount', 4000, 'currency', '',
               'discount', 2000, 'balance', 0, 'idem', '', 'ref', ''],
              'gift redeem stream entry carries the balance');

    code('G2', campaign => 'gc', balance => 700);
    $h = hgetall("$T:c:G2");
    like(delete $h->{x}, qr/^\d+:0:700$/, 'gift code: one lot of 700');
    is_deeply($h, {k => 'gc', b => 700, b0 => 700},
              'gift code with its own balance');
    code('G2', balance => 900);
    $h = hgetall("$T:c:G2");
    like(delete $h->{x}, qr/^\d+:0:900$/, '... 200 more joins the lot');
    is_deeply($h, {k => 'gc', b => 900, b0 => 700},
              'balance update keeps the initial balance');
}


############################################################## states and windows

{
    campaign('st', kind => 'amount', value => 100);
    code('ST1', campaign => 'st', status => 'disabled');
    fails('ST1', {amount => 1000},
          ['code_inactive', 'code', 'ST1', 'campaign', 'st'], 'code_inactive');
    code('ST1', status => 'active');
    is(discount(validate('ST1', amount => 1000)), 100, 'code re-activated');
    ok(!$r->cmd('HEXISTS', "$T:c:ST1", 's'), 'active code has no s field');

    fails('NOPE', {amount => 1000}, ['not_found', 'code', 'NOPE'], 'not_found');

    campaign('st', status => 'paused');
    fails('ST1', {amount => 1000},
          ['campaign_inactive', 'code', 'ST1', 'campaign', 'st',
           'status', 'paused'], 'campaign_inactive (paused)');
    campaign('st', status => 'archived');
    fails('ST1', {amount => 1000},
          ['campaign_inactive', 'code', 'ST1', 'campaign', 'st',
           'status', 'archived'], 'campaign_inactive (archived)');
    campaign('gone', kind => 'amount', value => 100);
    code('GONE', campaign => 'gone');
    $r->cmd('DEL', "$T:k:gone");
    fails('GONE', {amount => 1000},
          ['campaign_inactive', 'code', 'GONE', 'campaign', 'gone'],
          'campaign_inactive (campaign missing)');

    my $now = redis_now();
    campaign('wf', kind => 'amount', value => 100, starts_at => $now + 3600);
    code('WF', campaign => 'wf');
    fails('WF', {amount => 1000},
          ['not_started', 'code', 'WF', 'campaign', 'wf',
           'starts_at', $now + 3600], 'not_started (campaign)');

    campaign('wc', kind => 'amount', value => 100, starts_at => $now - 3600,
             ends_at => $now + 7200);
    code('WC1', campaign => 'wc', starts_at => $now + 600);
    fails('WC1', {amount => 1000},
          ['not_started', 'code', 'WC1', 'campaign', 'wc',
           'starts_at', $now + 600], 'not_started (code start later)');
    code('WC2', campaign => 'wc', ends_at => $now);
    fails('WC2', {amount => 1000},
          ['expired', 'code', 'WC2', 'campaign', 'wc', 'ends_at', $now],
          'expired (code end earlier, now >= end)');
    code('WC3', campaign => 'wc', starts_at => $now - 7200,
         ends_at => $now + 3600);
    is_deeply(validate('WC3', amount => 1000),
              ['ok', 'code', 'WC3', 'campaign', 'wc', 'discount', 100,
               'computation', ['kind', 'amount', 'value', 100,
                               'eligible_amount', 1000],
               'order_amount', 1000, 'amount_after', 900,
               'expires_at', $now + 3600],
              'inside the window: expires_at is the earliest end');

    campaign('we', kind => 'amount', value => 100, ends_at => $now - 10);
    code('WE', campaign => 'we');
    fails('WE', {amount => 1000},
          ['expired', 'code', 'WE', 'campaign', 'we', 'ends_at', $now - 10],
          'expired (campaign)');
    campaign('ws', kind => 'amount', value => 100, starts_at => $now);
    code('WS', campaign => 'ws');
    is(discount(validate('WS', amount => 1000)), 100, 'now == starts_at is in');

    # a tz offset that puts local time at about 12:00, so the day and the
    # hour cannot flip while the test runs
    $now = redis_now();
    my $tz = 720 - int(($now % 86400) / 60);
    my $local = $now + $tz * 60;
    my $dow = (int($local / 86400) + 3) % 7 + 1;
    my $other_days = join '', grep { $_ != $dow } 1 .. 7;
    my $tzs = sprintf '%s%02d:%02d', $tz < 0 ? '-' : '+', int(abs($tz) / 60),
        abs($tz) % 60;
    note "now $now tz $tz ($tzs) local dow $dow";

    my $n = 0;
    for my $case (
        [[days => $dow], 1, 'today is allowed'],
        [[days => $other_days], 0, 'today is not allowed'],
        [[hours => '11:00-13:00'], 1, 'hours around noon'],
        [[hours => '13:00-14:00'], 0, 'hours after noon'],
        [[hours => '22:00-13:00'], 1, 'hours wrapping midnight, inside'],
        [[hours => '13:00-11:00'], 0, 'hours wrapping midnight, outside'],
        [[hours => '00:00-24:00'], 1, 'whole day'],
        [[hours => '11:00-13:00', days => $dow], 1, 'days and hours'],
        [[hours => '11:00-13:00', days => $other_days], 0, 'hours ok, day not'],
        [[hours => '11:00-13:00', tz_offset => $tz > 0 ? $tz - 180 : $tz + 180],
         0, 'another tz_offset moves local time out'],
    ) {
        my ($f, $in, $name) = @$case;
        $n++;
        campaign("tw$n", kind => 'amount', value => 100, tz_offset => $tzs, @$f);
        code("TW$n", campaign => "tw$n");
        if ($in) {
            is(discount(validate("TW$n", amount => 1000)), 100, "window: $name");
        } else {
            fails("TW$n", {amount => 1000},
                  ['outside_window', 'code', "TW$n", 'campaign', "tw$n"],
                  "outside_window: $name");
        }
    }
    # the edges: start inclusive, end exclusive (a minute that ticks between
    # TIME and the call only moves "now" further in/out)
    my $m = int((((redis_now() + $tz * 60) % 86400)) / 60);
    my $hm = sub { sprintf '%02d:%02d', int($_[0] / 60), $_[0] % 60 };
    campaign('twend', kind => 'amount', value => 100, tz_offset => $tz,
             hours => $hm->($m - 60) . '-' . $hm->($m));
    code('TWEND', campaign => 'twend');
    fails('TWEND', {amount => 1000},
          ['outside_window', 'code', 'TWEND', 'campaign', 'twend'],
          'outside_window: the end minute is excluded');
    campaign('twstart', kind => 'amount', value => 100, tz_offset => $tz,
             hours => $hm->($m) . '-' . $hm->($m + 60));
    code('TWSTART', campaign => 'twstart');
    is(discount(validate('TWSTART', amount => 1000)), 100,
       'window: the start minute is included');

    is($r->cmd('HGET', "$T:k:tw1", 'tz_offset'), $tz,
       'tz_offset "+HH:MM" stored as minutes');
    is($r->cmd('HGET', "$T:k:tw3", 'hours'), '660-780', 'hours stored as minutes');
}


############################################################## customers, uses, budgets

{
    campaign('as', kind => 'amount', value => 100);
    code('AS', campaign => 'as', customer => 'alice');
    fails('AS', {amount => 1000},
          ['customer_required', 'code', 'AS', 'campaign', 'as'],
          'customer_required (assigned code)');
    fails('AS', {amount => 1000, customer => 'bob'},
          ['customer_mismatch', 'code', 'AS', 'campaign', 'as'],
          'customer_mismatch');
    redeem_ok(redeem('AS', amount => 1000, customer => 'alice'),
              ['ok', 'code', 'AS', 'campaign', 'as', 'customer', 'alice',
               'discount', 100,
               'computation', ['kind', 'amount', 'value', 100,
                               'eligible_amount', 1000],
               'order_amount', 1000, 'amount_after', 900],
              'assigned customer redeems');
    is_deeply(hgetall("$T:u:alice"), {'k:as' => 1, 'c:AS' => 1},
              'customer counters without limits');

    campaign('mu', kind => 'amount', value => 100, code_max_uses => 2);
    code('MU1', campaign => 'mu');
    code('MU0', campaign => 'mu', max_uses => 0);
    code('MU3', campaign => 'mu', max_uses => 3);
    is_deeply(validate('MU1', amount => 1000),
              ['ok', 'code', 'MU1', 'campaign', 'mu', 'discount', 100,
               'computation', ['kind', 'amount', 'value', 100,
                               'eligible_amount', 1000],
               'order_amount', 1000, 'amount_after', 900, 'uses_left', 2],
              'uses_left from the campaign code_max_uses');
    my $x = redeem('MU1', amount => 1000);
    is($x->[-3], 1, 'uses_left after the first redeem');
    $x = redeem('MU1', amount => 1000);
    is($x->[-3], 0, 'uses_left after the second redeem');
    fails('MU1', {amount => 1000},
          ['code_exhausted', 'code', 'MU1', 'campaign', 'mu'], 'code_exhausted');
    redeem('MU0', amount => 1000) for 1 .. 3;
    is($r->cmd('HGET', "$T:c:MU0", 'u'), 3, 'max_uses 0 = unlimited');
    ok(!grep({ $_ eq 'uses_left' } @{ validate('MU0', amount => 1000) }),
       'no uses_left when unlimited');
    redeem('MU3', amount => 1000) for 1 .. 3;
    fails('MU3', {amount => 1000},
          ['code_exhausted', 'code', 'MU3', 'campaign', 'mu'],
          'code_exhausted at the code max_uses');

    campaign('mr', kind => 'amount', value => 100, max_redemptions => 1);
    code('MR1', campaign => 'mr');
    code('MR2', campaign => 'mr');
    ok(redeem('MR1', amount => 1000)->[0] eq 'ok', 'first campaign redemption');
    fails('MR2', {amount => 1000},
          ['campaign_exhausted', 'code', 'MR2', 'campaign', 'mr'],
          'campaign_exhausted');

    campaign('pcu', kind => 'amount', value => 100, per_customer => 2);
    code('PCU1', campaign => 'pcu');
    code('PCU2', campaign => 'pcu');
    fails('PCU1', {amount => 1000},
          ['customer_required', 'code', 'PCU1', 'campaign', 'pcu'],
          'customer_required (per_customer)');
    ok(redeem('PCU1', amount => 1000, customer => 'bob')->[0] eq 'ok', 'bob 1');
    ok(redeem('PCU2', amount => 1000, customer => 'bob')->[0] eq 'ok', 'bob 2');
    fails('PCU1', {amount => 1000, customer => 'bob'},
          ['customer_limit', 'code', 'PCU1', 'campaign', 'pcu'],
          'customer_limit across the codes of a campaign');
    ok(redeem('PCU1', amount => 1000, customer => 'carol')->[0] eq 'ok',
       'another customer is not limited');
    is_deeply(hgetall("$T:u:bob"), {'k:pcu' => 2, 'c:PCU1' => 1, 'c:PCU2' => 1},
              'per-customer counters');

    campaign('pcc', kind => 'amount', value => 100, per_customer_code => 1);
    code('PCC1', campaign => 'pcc');
    code('PCC2', campaign => 'pcc');
    ok(redeem('PCC1', amount => 1000, customer => 'bob')->[0] eq 'ok', 'bob PCC1');
    fails('PCC1', {amount => 1000, customer => 'bob'},
          ['customer_code_limit', 'code', 'PCC1', 'campaign', 'pcc'],
          'customer_code_limit');
    ok(redeem('PCC2', amount => 1000, customer => 'bob')->[0] eq 'ok',
       'bob may use the other code');
    fails('PCC2', {amount => 1000},
          ['customer_required', 'code', 'PCC2', 'campaign', 'pcc'],
          'customer_required (per_customer_code)');

    campaign('cur', kind => 'amount', value => 100, currency => 'EUR');
    code('CUR', campaign => 'cur');
    fails('CUR', {amount => 1000, currency => 'USD'},
          ['currency_mismatch', 'code', 'CUR', 'campaign', 'cur'],
          'currency_mismatch');
    fails('CUR', {amount => 1000},
          ['currency_mismatch', 'code', 'CUR', 'campaign', 'cur'],
          'currency_mismatch (no currency)');
    is(discount(validate('CUR', amount => 1000, currency => 'EUR')), 100,
       'matching currency');

    campaign('min', kind => 'amount', value => 100, min_amount => 5000);
    code('MIN', campaign => 'min');
    fails('MIN', {amount => 4999},
          ['order_below_minimum', 'code', 'MIN', 'campaign', 'min',
           'min_amount', 5000], 'order_below_minimum');
    is(discount(validate('MIN', amount => 5000)), 100, 'amount == min_amount');

    campaign('bud', kind => 'amount', value => 400, max_discount => 1000);
    code('BUD', campaign => 'bud');
    ok(redeem('BUD', amount => 1000)->[0] eq 'ok', 'budget 400') for 1 .. 2;
    fails('BUD', {amount => 1000},
          ['campaign_budget_exhausted', 'code', 'BUD', 'campaign', 'bud'],
          'campaign_budget_exhausted');
    ok(redeem('BUD', amount => 200)->[0] eq 'ok', 'a smaller discount still fits');
    is_deeply([@{ hgetall("$T:k:bud") }{qw(redeemed discount_given)}],
              [3, 1000], 'budget used exactly');
    fails('BUD', {amount => 1},
          ['campaign_budget_exhausted', 'code', 'BUD', 'campaign', 'bud'],
          'budget exhausted');
}


############################################################## idempotency

{
    campaign('idm', kind => 'percent', value => 1000);
    code('I1', campaign => 'idm');
    code('I2', campaign => 'idm');
    my %o = (customer => 'dave', amount => 1000, currency => 'EUR',
             order_id => 'o-77', idem => 'K1',
             items => [['A', 'x', 600, 1], ['B', 'y', 400, 1]]);
    my $first = redeem('I1', %o);
    my $id = redeem_ok($first,
        ['ok', 'code', 'I1', 'campaign', 'idm', 'customer', 'dave',
         'discount', 100,
         'computation', ['kind', 'percent', 'percent_bp', 1000,
                         'eligible_amount', 1000],
         'order_amount', 1000, 'amount_after', 900], 'redeem with idem');
    is_deeply(entry($id),
              ['type', 'redeem', 'code', 'I1', 'campaign', 'idm',
               'customer', 'dave', 'order_id', 'o-77', 'amount', 1000,
               'currency', 'EUR', 'discount', 100, 'balance', '',
               'idem', 'K1', 'ref', ''], 'redeem stream entry');
    my $ttl = $r->cmd('TTL', "$T:i:r:K1");
    ok($ttl > 86300 && $ttl <= 86400, "idem record ttl $ttl (default)");

    my $before = snapshot();
    is_deeply(redeem('I1', %o), [@$first, 'replayed', 1],
              'replay: the same answer, replayed');
    is_deeply(snapshot(), $before, 'replay changes nothing');
    is_deeply(redeem('I1', %o, amount => 1001),
              ['idempotency_conflict', 'code', 'I1'],
              'idempotency_conflict: other amount');
    is_deeply(redeem('I1', %o, items => [['A', 'x', 600, 1]]),
              ['idempotency_conflict', 'code', 'I1'],
              'idempotency_conflict: other items');
    is_deeply(redeem('I2', %o), ['idempotency_conflict', 'code', 'I2'],
              'idempotency_conflict: other code');
    is_deeply(snapshot(), $before, 'conflicts change nothing');

    # a long request (its fingerprint is a SHA-1, not the request itself)
    # replays and conflicts the same way
    my @many = map { ["SKU$_", 'cat', 10, 1] } 1 .. 40;
    my %long = (%o, idem => 'K6', amount => 400, items => \@many);
    my $lfirst = redeem('I2', %long);
    is($lfirst->[0], 'ok', 'long request redeemed');
    is_deeply(redeem('I2', %long), [@$lfirst, 'replayed', 1],
              'long request: replayed');
    is_deeply(redeem('I2', %long, items => [@many[0 .. 38]]),
              ['idempotency_conflict', 'code', 'I2'],
              'long request: conflict on one item less');

    # replays are built again from the record's values: every optional
    # part of an answer comes back as it was (a gift card's balance and
    # capped_by, a cap, uses left, an end date), and a later change of the
    # card or the campaign does not show in the replay
    my $t0 = redis_now();
    campaign('gcidem', kind => 'gift_card', cap => 2500,
             ends_at => $t0 + 86400);
    code('GI1', campaign => 'gcidem', balance => 3000, max_uses => 5);
    my %g = (customer => 'gina', amount => 4000, idem => 'K7');
    my $gfirst = redeem('GI1', %g);
    is_deeply([@$gfirst[0 .. $#$gfirst - 2]],
              ['ok', 'code', 'GI1', 'campaign', 'gcidem', 'customer', 'gina',
               'discount', 2500,
               'computation', ['kind', 'gift_card', 'eligible_amount', 4000,
                               'cap', 2500, 'capped_by', 'cap'],
               'order_amount', 4000, 'amount_after', 1500, 'uses_left', 4,
               'balance', 500, 'expires_at', $t0 + 86400],
              'gift card redeem with idem: every optional part');
    campaign('gcidem', cap => 100);
    code('GI1', balance => 9000);
    is_deeply(redeem('GI1', %g), [@$gfirst, 'replayed', 1],
              'gift card replay: the first answer, whatever changed since');
    my $v = validate('GI1', %g);
    is($v->[0], 'ok', 'and the card itself moved on (validate)');

    # a record written by a library before raw fingerprints: its
    # fingerprint is the SHA-1 of the request, and it still replays
    my $raw = join("\0", 'I1', 'erin', 1000, 'EUR', 'o-78', 0);
    my $old = ['ok', 'code', 'I1', 'campaign', 'idm', 'discount', 42];
    $r->cmd('EVAL', 'redis.call("SET", KEYS[1], cmsgpack.pack('
            . '{redis.sha1hex(ARGV[1]), {"ok", "code", "I1", "campaign",'
            . ' "idm", "discount", 42}}))', 1, "$T:i:r:K5", $raw);
    my $snap = snapshot();
    is_deeply(redeem('I1', customer => 'erin', amount => 1000,
                     currency => 'EUR', order_id => 'o-78', idem => 'K5'),
              [@$old, 'replayed', 1], 'an older SHA-1 record replays');
    is_deeply(redeem('I1', customer => 'erin', amount => 1001,
                     currency => 'EUR', order_id => 'o-78', idem => 'K5'),
              ['idempotency_conflict', 'code', 'I1'],
              'an older SHA-1 record: conflict on another amount');
    is_deeply(snapshot(), $snap, 'the older record wrote nothing');
    $before = snapshot();
    is(discount(validate('I1', %o)), 100, 'validate ignores idem');
    is_deeply(snapshot(), $before, 'validate with idem writes nothing');

    # failures are not recorded
    fails('CUR', {amount => 1000, currency => 'USD', idem => 'K3'},
          ['currency_mismatch', 'code', 'CUR', 'campaign', 'cur'],
          'failed redeem with idem');
    is($r->cmd('EXISTS', "$T:i:r:K3"), 0, 'failure not recorded');
    ok(redeem('CUR', amount => 1000, currency => 'EUR', idem => 'K3')->[0] eq 'ok',
       'retry after a failure is evaluated');

    admin_ok('voucher_settings_set', "$T:cfg", idem_ttl => 1000);
    ok(redeem('I2', %o, idem => 'K4')->[0] eq 'ok', 'redeem with idem_ttl 1000');
    $ttl = $r->cmd('TTL', "$T:i:r:K4");
    ok($ttl > 990 && $ttl <= 1000, "idem record ttl $ttl (idem_ttl)");
}


############################################################## rollback

{
    campaign('rb', kind => 'percent', value => 1000, per_customer => 5,
             currency => 'EUR');
    code('R1', campaign => 'rb', max_uses => 3);
    my $id = redeem_ok(redeem('R1', customer => 'erin', amount => 10000,
                              currency => 'EUR', order_id => 'o-1'),
        ['ok', 'code', 'R1', 'campaign', 'rb', 'customer', 'erin',
         'discount', 1000,
         'computation', ['kind', 'percent', 'percent_bp', 1000,
                         'eligible_amount', 10000],
         'order_amount', 10000, 'amount_after', 9000, 'uses_left', 2],
        'redeem to roll back');
    is_deeply([$r->cmd('HGET', "$T:c:R1", 'u'),
               @{ hgetall("$T:k:rb") }{qw(redeemed discount_given)},
               @{ hgetall("$T:u:erin") }{qw(k:rb c:R1)}],
              [1, 1, 1000, 1, 1], 'counters after redeem');
    is_deeply(fcall('voucher_redemption_get', $LOG, $id),
              ['redemption_id', $id, 'type', 'redeem', 'code', 'R1',
               'campaign', 'rb', 'customer', 'erin', 'order_id', 'o-1',
               'amount', 10000, 'currency', 'EUR', 'discount', 1000,
               'rolled_back', 0, 'status', 'redeemed'], 'redemption_get');

    my $len = xlen();
    my $x = rollback($id);
    my $rid = ref $x eq 'ARRAY' ? $x->[-1] : undef;
    is_deeply($x, ['ok', 'redemption_id', $id, 'code', 'R1', 'campaign', 'rb',
                   'amount_rolled_back', 1000, 'total_rolled_back', 1000,
                   'status', 'rolled_back', 'rollback_id', $rid],
              'whole rollback') or diag explain $x;
    ok($rid && $rid =~ /^\d+-\d+$/ && $rid ne $id, 'rollback_id is a new entry');
    is(xlen(), $len + 1, 'one stream entry');
    is_deeply(entry($rid),
              ['type', 'rollback', 'code', 'R1', 'campaign', 'rb',
               'customer', 'erin', 'order_id', 'o-1', 'amount', '',
               'currency', 'EUR', 'discount', 1000, 'balance', '',
               'idem', '', 'ref', $id], 'rollback stream entry');
    is_deeply([$r->cmd('HGET', "$T:c:R1", 'u'),
               @{ hgetall("$T:k:rb") }{qw(redeemed discount_given)},
               @{ hgetall("$T:u:erin") }{qw(k:rb c:R1)}],
              [0, 0, 0, 0, 0], 'counters restored');
    is_deeply(hgetall("$T:rb:$id"), {amt => 1000, done => 1, why => 'rollback'},
              'rb state');
    is_deeply(fcall('voucher_redemption_get', $LOG, $id)->[-1], 'rolled_back',
              'redemption_get status rolled_back');

    my $before = snapshot();
    is_deeply(rollback($id),
              ['already_rolled_back', 'redemption_id', $id, 'code', 'R1',
               'campaign', 'rb'], 'already_rolled_back');
    is_deeply(snapshot(), $before, 'second rollback changes nothing');

    my $id2 = redeem('R1', customer => 'erin', amount => 10000,
                     currency => 'EUR')->[-1];
    $before = snapshot();
    is_deeply(rollback($id2, 500),
              ['partial_rollback_unsupported', 'redemption_id', $id2,
               'code', 'R1', 'campaign', 'rb'], 'partial_rollback_unsupported');
    for my $bad ('1-1', 'abc', '-', '+', '123', '1-1-1',
                 '99999999999999999999999-0', $rid) {
        is_deeply(rollback($bad), ['redemption_not_found', 'redemption_id', $bad],
                  "redemption_not_found: $bad");
        is(fcall('voucher_redemption_get', $LOG, $bad), undef,
           "redemption_get: $bad is nil");
    }
    is_deeply(snapshot(), $before, 'failed rollbacks change nothing');

    # gift card: partial, exceeding, the rest
    campaign('gcr', kind => 'gift_card');
    code('GR', campaign => 'gcr', balance => 5000);
    my $gid = redeem('GR', customer => 'fay', amount => 3000)->[-1];
    $x = rollback($gid, 1000);
    is_deeply($x, ['ok', 'redemption_id', $gid, 'code', 'GR', 'campaign', 'gcr',
                   'amount_rolled_back', 1000, 'total_rolled_back', 1000,
                   'status', 'partially_rolled_back', 'balance', 3000,
                   'rollback_id', $x->[-1]], 'partial gift card rollback');
    is_deeply(entry($x->[-1]),
              ['type', 'rollback', 'code', 'GR', 'campaign', 'gcr',
               'customer', 'fay', 'order_id', '', 'amount', '', 'currency', '',
               'discount', 1000, 'balance', 3000, 'idem', '', 'ref', $gid],
              'partial rollback stream entry');
    is_deeply([@{ hgetall("$T:c:GR") }{qw(b u)},
               @{ hgetall("$T:k:gcr") }{qw(redeemed discount_given)},
               @{ hgetall("$T:u:fay") }{qw(k:gcr c:GR)}],
              [3000, 1, 1, 2000, 1, 1], 'partial: balance back, uses kept');
    is(fcall('voucher_redemption_get', $LOG, $gid)->[-1],
       'partially_rolled_back', 'redemption_get status partially_rolled_back');

    $before = snapshot();
    is_deeply(rollback($gid, 2500),
              ['rollback_exceeds_redemption', 'redemption_id', $gid,
               'code', 'GR', 'campaign', 'gcr', 'remaining', 2000],
              'rollback_exceeds_redemption');
    is_deeply(snapshot(), $before, 'exceeding rollback changes nothing');

    $x = rollback($gid);
    is_deeply($x, ['ok', 'redemption_id', $gid, 'code', 'GR', 'campaign', 'gcr',
                   'amount_rolled_back', 2000, 'total_rolled_back', 3000,
                   'status', 'rolled_back', 'balance', 5000,
                   'rollback_id', $x->[-1]], 'rollback of the remainder');
    is_deeply([@{ hgetall("$T:c:GR") }{qw(b u)},
               @{ hgetall("$T:k:gcr") }{qw(redeemed discount_given)},
               @{ hgetall("$T:u:fay") }{qw(k:gcr c:GR)}],
              [5000, 0, 0, 0, 0, 0], 'fully rolled back');
    is_deeply(fcall('voucher_redemption_get', $LOG, $gid),
              ['redemption_id', $gid, 'type', 'redeem', 'code', 'GR',
               'campaign', 'gcr', 'customer', 'fay', 'amount', 3000,
               'discount', 3000, 'balance', 2000,
               'rolled_back', 3000, 'status', 'rolled_back'],
              'redemption_get of a gift card redemption');

    # partial amounts that add up to the whole
    $gid = redeem('GR', amount => 1000)->[-1];
    is(rollback($gid, 400)->[12], 'partially_rolled_back', 'partial 400');
    $x = rollback($gid, 600);
    is("$x->[12] $x->[14]", 'rolled_back 5000', 'partial 600 completes it');
    is($r->cmd('HGET', "$T:c:GR", 'u'), 0, 'use given back on completion');

    # idempotent rollback
    $gid = redeem('GR', amount => 1000)->[-1];
    my $first = rollback($gid, 400, 'RB1');
    is($first->[0], 'ok', 'rollback with idem');
    is_deeply(entry($first->[-1])->[19], 'RB1', 'idem in the rollback entry');
    $before = snapshot();
    is_deeply(rollback($gid, 400, 'RB1'), [@$first, 'replayed', 1],
              'rollback replay');
    is_deeply(rollback($gid, 300, 'RB1'),
              ['idempotency_conflict', 'redemption_id', $gid],
              'rollback idempotency_conflict');
    is_deeply(rollback($gid, '', 'RB1'),
              ['idempotency_conflict', 'redemption_id', $gid],
              'rollback idempotency_conflict (whole vs partial)');
    is_deeply(snapshot(), $before, 'rollback replay/conflict change nothing');
    my $ttl = $r->cmd('TTL', "$T:i:b:RB1");
    ok($ttl > 990 && $ttl <= 1000, "rollback idem record ttl $ttl");

    # the code is gone: nothing recreated
    code('GD', campaign => 'gcr', balance => 800);
    $gid = redeem('GD', amount => 500)->[-1];
    is(fcall('voucher_code_del', "$T:c:GD"), 1, 'code_del');
    is(fcall('voucher_code_del', "$T:c:GD"), 0, 'code_del again');
    $x = rollback($gid);
    is_deeply($x, ['ok', 'redemption_id', $gid, 'code', 'GD', 'campaign', 'gcr',
                   'amount_rolled_back', 500, 'total_rolled_back', 500,
                   'status', 'rolled_back', 'rollback_id', $x->[-1]],
              'rollback of a deleted gift code: no balance');
    is($r->cmd('EXISTS', "$T:c:GD"), 0, 'deleted code not recreated');
    is(entry($x->[-1])->[17], '', 'stream balance empty');
}


############################################################## admin

{
    campaign('full', name => 'Summer sale', status => 'paused', kind => 'percent',
             value => 1500, cap => 5000, min_amount => 1000,
             max_redemptions => 100, max_discount => 100000, per_customer => 2,
             per_customer_code => 1, code_max_uses => 10, currency => 'EUR',
             starts_at => 1700000000, ends_at => 1800000000, days => '12345',
             hours => '09:30-17:00', tz_offset => '-05:30',
             include_skus => 'A,B', exclude_skus => 'C',
             include_categories => 'shoes', exclude_categories => 'sale,gift',
             free_sku => 'SOCK');
    is_deeply(fcall('voucher_campaign_get', "$T:k:full"),
              ['name', 'Summer sale', 'status', 'paused', 'kind', 'percent',
               'value', 1500, 'cap', 5000, 'min_amount', 1000,
               'max_redemptions', 100, 'max_discount', 100000,
               'per_customer', 2, 'per_customer_code', 1, 'code_max_uses', 10,
               'currency', 'EUR', 'starts_at', 1700000000,
               'ends_at', 1800000000, 'days', '12345', 'hours', '09:30-17:00',
               'tz_offset', -330, 'include_skus', 'A,B', 'exclude_skus', 'C',
               'include_categories', 'shoes',
               'exclude_categories', 'sale,gift', 'free_sku', 'SOCK',
               'redeemed', 0, 'discount_given', 0], 'campaign_get');
    is_deeply([@{ hgetall("$T:k:full") }{qw(hours tz_offset include_skus)}],
              ['570-1020', -330, ',A,B,'], 'stored forms');
    campaign('full', currency => '', hours => '', days => '', cap => 0,
             status => 'active', value => '0010');
    my %h = @{ fcall('voucher_campaign_get', "$T:k:full") };
    ok(!exists $h{currency} && !exists $h{hours} && !exists $h{days},
       '"" clears fields');
    is_deeply([@h{qw(cap status value name)}], [0, 'active', 10, 'Summer sale'],
              'update keeps the rest, integers normalised');
    is(fcall('voucher_campaign_get', "$T:k:none"), undef, 'campaign_get: nil');
    campaign('night', kind => 'amount', value => 1, hours => '22:00-06:00',
             tz_offset => 60);
    %h = @{ fcall('voucher_campaign_get', "$T:k:night") };
    is("$h{hours} $h{tz_offset} $h{status}", '22:00-06:00 60 active',
       'hours wrap, tz minutes, default status');
    campaign('end24', kind => 'amount', value => 1, hours => '18:00-24:00');
    is(fcall('voucher_campaign_get', "$T:k:end24")->[-5], '18:00-24:00',
       'hours ending at 24:00');

    code('ADM', campaign => 'full', status => 'disabled', max_uses => 5,
         customer => 'zed', starts_at => 1700000001, ends_at => 1700000002);
    is_deeply(fcall('voucher_code_get', "$T:c:ADM"),
              ['code', 'ADM', 'campaign', 'full', 'status', 'disabled',
               'max_uses', 5, 'used', 0, 'customer', 'zed',
               'starts_at', 1700000001, 'ends_at', 1700000002], 'code_get');
    is_deeply(hgetall("$T:c:ADM"),
              {k => 'full', s => 'd', m => 5, c => 'zed', f => 1700000001,
               t => 1700000002}, 'code stored with short fields');
    code('ADM', customer => '', max_uses => '', starts_at => '', status => 'active');
    is_deeply(fcall('voucher_code_get', "$T:c:ADM"),
              ['code', 'ADM', 'campaign', 'full', 'status', 'active', 'used', 0,
               'ends_at', 1700000002], 'code fields cleared');
    is_deeply(fcall('voucher_code_get', "$T:c:G1"),
              ['code', 'G1', 'campaign', 'gc', 'status', 'active', 'used', 2,
               'balance', 0, 'initial_balance', 5000], 'code_get of a gift card');
    is(fcall('voucher_code_get', "$T:c:NONE"), undef, 'code_get: nil');
    my $c64 = 'X' x 64;
    code($c64, campaign => 'full');
    is(fcall('voucher_code_get', "$T:c:$c64")->[1], $c64, '64-char code');

    is_deeply(fcall('voucher_settings_get', "$T:cfg"),
              ['idem_ttl', 1000, 'stream_maxlen', 0, 'trail_retention', 0,
               'stack_max_codes', 5],
              'settings_get');
    is_deeply(fcall('voucher_settings_get', '{other}:cfg'),
              ['idem_ttl', 86400, 'stream_maxlen', 0, 'trail_retention', 0,
               'stack_max_codes', 5],
              'settings defaults');

    my $K = "$T:k:full";
    my @bad = (
        [[colour => 'red'], qr/^ERR unknown_field colour$/, 'unknown field'],
        [[kind => 'percent', colour => 'red'], qr/^ERR unknown_field colour$/,
         'unknown field after a good one'],
        [[status => 'closed'], qr/^ERR invalid_field status:/, 'status'],
        [[kind => 'bogo'], qr/^ERR invalid_field kind:/, 'kind'],
        [[value => '-1'], qr/^ERR invalid_field value:/, 'negative value'],
        [[value => '1.5'], qr/^ERR invalid_field value:/, 'fractional value'],
        [[value => ''], qr/^ERR invalid_field value:/, 'empty value'],
        [[value => '9007199254740992'], qr/^ERR invalid_field value:/, 'value > 2^53-1'],
        [[value => '10001'], qr/^ERR invalid_field value: percent/, 'percent > 100%'],
        [[cap => 'x'], qr/^ERR invalid_field cap:/, 'cap'],
        [[min_amount => ' 1'], qr/^ERR invalid_field min_amount:/, 'min_amount'],
        [[max_redemptions => '1e3'], qr/^ERR invalid_field max_redemptions:/,
         'max_redemptions'],
        [[max_discount => '0x10'], qr/^ERR invalid_field max_discount:/, 'max_discount'],
        [[per_customer => '-2'], qr/^ERR invalid_field per_customer:/, 'per_customer'],
        [[per_customer_code => 'a'], qr/^ERR invalid_field per_customer_code:/,
         'per_customer_code'],
        [[code_max_uses => '+1'], qr/^ERR invalid_field code_max_uses:/,
         'code_max_uses'],
        [[currency => 'eur'], qr/^ERR invalid_field currency:/, 'lowercase currency'],
        [[currency => 'EURO'], qr/^ERR invalid_field currency:/, '4-letter currency'],
        [[starts_at => 'yesterday'], qr/^ERR invalid_field starts_at:/, 'starts_at'],
        [[ends_at => 1600000000], qr/^ERR invalid_field ends_at:/,
         'ends_at before the stored starts_at'],
        [[starts_at => 100, ends_at => 100], qr/^ERR invalid_field ends_at:/,
         'ends_at == starts_at'],
        [[days => '08'], qr/^ERR invalid_field days:/, 'days 0/8'],
        [[days => '1,2'], qr/^ERR invalid_field days:/, 'days with comma'],
        [[hours => '9-17'], qr/^ERR invalid_field hours:/, 'hours without minutes'],
        [[hours => '25:00-26:00'], qr/^ERR invalid_field hours:/, 'hour 25'],
        [[hours => '10:60-11:00'], qr/^ERR invalid_field hours:/, 'minute 60'],
        [[hours => '10:00-10:00'], qr/^ERR invalid_field hours:/, 'empty window'],
        [[hours => '24:00-10:00'], qr/^ERR invalid_field hours:/, '24:00 as start'],
        [[tz_offset => '900'], qr/^ERR invalid_field tz_offset:/, 'tz 900'],
        [[tz_offset => '+15:00'], qr/^ERR invalid_field tz_offset:/, 'tz +15:00'],
        [[tz_offset => '+05:60'], qr/^ERR invalid_field tz_offset:/, 'tz +05:60'],
        [[tz_offset => 'CET'], qr/^ERR invalid_field tz_offset:/, 'tz name'],
        [[include_skus => 'a,,b'], qr/^ERR invalid_field include_skus:/,
         'empty list element'],
        [[exclude_categories => ','], qr/^ERR invalid_field exclude_categories:/,
         'list of nothing'],
        [[redeemed => 5], qr/^ERR invalid_field redeemed:/, 'redeemed is a counter'],
        [[discount_given => 5], qr/^ERR invalid_field discount_given:/,
         'discount_given is a counter'],
        [[kind => 'free_item', free_sku => ''],
         qr/^ERR invalid_field free_sku:/, 'free_item without free_sku'],
        [[kind => 'fixed_price', value => 10, cap => 'x'],
         qr/^ERR invalid_field cap:/, 'good fields then a bad one'],
        [['kind'], qr/^ERR bad_args/, 'odd argument count'],
        [[], qr/^ERR bad_args/, 'no fields'],
    );
    admin_err('voucher_campaign_set', $K, @$_[0, 1], "campaign_set: $_->[2]")
        for @bad;

    admin_err('voucher_campaign_set', "$T:k:new", [name => 'x'],
              qr/^ERR invalid_field kind: required/, 'create without kind');
    admin_err('voucher_campaign_set', "$T:k:new", [kind => 'fixed_price'],
              qr/^ERR invalid_field value: required/, 'fixed_price without value');
    admin_err('voucher_campaign_set', "$T:k:new",
              [kind => 'free_item', free_sku => 'S', value => 0],
              qr/^ERR invalid_field value:/, 'free_item with 0 units');
    admin_err('voucher_campaign_set', "$T:k:new", [kind => 'free_item'],
              qr/^ERR invalid_field free_sku: required/, 'free_item needs free_sku');
    admin_err('voucher_campaign_set', "$T:k:new",
              [kind => 'amount', value => 1, currency => 'x'],
              qr/^ERR invalid_field currency:/, 'create with a bad field');
    admin_err('voucher_campaign_set', "$T:k:", [kind => 'amount'],
              qr/^ERR invalid_field campaign:/, 'empty campaign id');
    admin_err('voucher_campaign_set', "$T:k:a b", [kind => 'amount'],
              qr/^ERR invalid_field campaign:/, 'campaign id with a space');
    admin_err('voucher_campaign_set', "$T:c:x", [kind => 'amount'],
              qr/^ERR bad_key$/, 'campaign_set on a code key');

    my $C = "$T:c:ADM";
    for my $b (
        [$C, [colour => 'red'], qr/^ERR unknown_field colour$/, 'unknown field'],
        [$C, [status => 'paused'], qr/^ERR invalid_field status:/, 'status'],
        [$C, [max_uses => '-1'], qr/^ERR invalid_field max_uses:/, 'max_uses'],
        [$C, [balance => 10], qr/^ERR invalid_field balance:/,
         'balance on a non gift card'],
        [$C, [campaign => 'nope'], qr/^ERR invalid_field campaign: not found/,
         'move to a missing campaign'],
        [$C, [campaign => ''], qr/^ERR invalid_field campaign:/, 'clear campaign'],
        [$C, [starts_at => 1800000000], qr/^ERR invalid_field ends_at:/,
         'starts after the stored end'],
        [$C, [ends_at => 'x'], qr/^ERR invalid_field ends_at:/, 'ends_at'],
        [$C, ['status'], qr/^ERR bad_args/, 'odd argument count'],
        ["$T:c:NEW", [max_uses => 1], qr/^ERR invalid_field campaign: required/,
         'create without campaign'],
        ["$T:c:NEW", [campaign => 'nope'], qr/^ERR invalid_field campaign: not found/,
         'create in a missing campaign'],
        ["$T:c:NEW", [campaign => 'full', max_uses => 'x'],
         qr/^ERR invalid_field max_uses:/, 'create with a bad field'],
        ["$T:c:NEW", [campaign => 'gcr'], qr/^ERR invalid_field balance: required/,
         'gift code without balance in a campaign without value'],
        ["$T:c:a\x01b", [campaign => 'full'], qr/^ERR invalid_field code:/,
         'code with a control character'],
        ["$T:c:- -", [campaign => 'full'], qr/^ERR invalid_field code:/,
         'code of spaces and dashes only'],
        ["$T:c:" . ('X' x 65), [campaign => 'full'], qr/^ERR invalid_field code:/,
         'code of 65 chars'],
        ["$T:c:", [campaign => 'full'], qr/^ERR invalid_field code:/, 'empty code'],
        ["$T:k:ADM", [campaign => 'full'], qr/^ERR bad_key$/, 'code_set on a campaign key'],
    ) {
        admin_err('voucher_code_set', @$b[0 .. 2], "code_set: $b->[3]");
    }

    # codes are stored normalized: upper case, no spaces, tabs or dashes
    is(fcall('voucher_code_set', "$T:c:spring-sale 2x", campaign => 'full'), 'OK',
       'code_set normalizes');
    is($r->cmd('EXISTS', "$T:c:SPRINGSALE2X"), 1, 'stored as SPRINGSALE2X');
    is(fcall('voucher_code_get', "$T:c:Spring-Sale-2X")->[1], 'SPRINGSALE2X',
       'code_get finds it however it is typed');
    is(fcall('voucher_code_del', "$T:c:springsale 2x"), 1, 'code_del too');

    for my $b (
        [[idem_ttl => 0], qr/^ERR invalid_field idem_ttl:/, 'idem_ttl 0'],
        [[idem_ttl => 31536001], qr/^ERR invalid_field idem_ttl:/, 'idem_ttl too big'],
        [[idem_ttl => 'x'], qr/^ERR invalid_field idem_ttl:/, 'idem_ttl text'],
        [[stream_maxlen => -1], qr/^ERR invalid_field stream_maxlen:/, 'stream_maxlen'],
        [[stream_maxlen => 5, colour => 1], qr/^ERR unknown_field colour$/,
         'unknown setting'],
    ) {
        admin_err('voucher_settings_set', "$T:cfg", @$b[0, 1], "settings_set: $b->[2]");
    }
}


############################################################## command counts

{
    campaign('cnt', kind => 'percent', value => 1000);
    code('CNT', campaign => 'cnt');
    my $count = sub {
        my $s = $r->commandstats;
        my %c = map { $_ => $s->{$_} }
                grep { !/^(fcall|fcall_ro|info|config\|.*|config)$/ } keys %$s;
        return \%c;
    };
    # the first call reads the campaign's rules (a third HMGET), later
    # calls find them cached and read only its revision and counters
    $r->cmd('CONFIG', 'RESETSTAT');
    is(discount(validate('CNT', amount => 1000)), 100, 'validate for counting');
    is_deeply($count->(), {hmget => 3}, 'first validate: 3 redis calls');
    $r->cmd('CONFIG', 'RESETSTAT');
    is(discount(validate('CNT', amount => 1000)), 100, 'validate again');
    is_deeply($count->(), {hmget => 2}, 'validate, rules cached: 2 redis calls');
    $r->cmd('CONFIG', 'RESETSTAT');
    is(redeem('CNT', amount => 1000)->[0], 'ok', 'redeem for counting');
    is_deeply($count->(), {hmget => 2, hset => 2, xadd => 1},
              'redeem: 5 redis calls (rules and settings cached)');

    # a changed campaign is never served from the cache
    campaign('cnt', value => 2500);
    is(discount(validate('CNT', amount => 1000)), 250,
       'campaign_set takes effect on the next call');
    campaign('cnt', status => 'paused');
    is(validate('CNT', amount => 1000)->[0], 'campaign_inactive',
       'so does a pause');
    campaign('cnt', status => 'active');

    # settings too: voucher_settings_set drops the cached ones
    fcall('voucher_settings_set', "$T:cfg", 'stream_maxlen', 2);
    redeem('CNT', amount => 1000) for 1 .. 300;
    ok($r->cmd('XLEN', $LOG) < 250, 'a new stream_maxlen applies at once');
    fcall('voucher_settings_set', "$T:cfg", 'stream_maxlen', 0);
}


############################################################## stream trimming

{
    $r->cmd('CONFIG', 'SET', 'stream-node-max-entries', 5);
    code('TRIM', campaign => 'cnt');
    my $len = xlen();
    redeem('TRIM', amount => 100) for 1 .. 3;
    is(xlen(), $len + 3, 'stream_maxlen 0: no trimming');
    admin_ok('voucher_settings_set', "$T:cfg", stream_maxlen => 10);
    is_deeply(fcall('voucher_settings_get', "$T:cfg"),
              ['idem_ttl', 1000, 'stream_maxlen', 10, 'trail_retention', 0,
               'stack_max_codes', 5],
              'settings_set');
    redeem('TRIM', amount => 100) for 1 .. 60;
    $len = xlen();
    ok($len >= 10 && $len <= 15, "stream trimmed to about 10 ($len)");
}


############################################################## positional

# The "ok" as Redis sends it: {'ok', mask, values in a fixed order}, an
# optional value only when its bit is set, no key names; pairs may follow
# (_limit).  Everything above reads it through ok_pairs().
{
    my $t0 = redis_now();
    campaign('pos', kind => 'percent', value => 1000);
    code('POS1', campaign => 'pos');
    campaign('posa', kind => 'amount', value => 300);
    code('POSA', campaign => 'posa');
    campaign('posg', kind => 'gift_card', cap => 2500,
             ends_at => $t0 + 86400);
    code('POSG', campaign => 'posg', balance => 9000, max_uses => 5);

    is_deeply(validate_raw('POS1', amount => 1000),
              ['ok', 4, 'POS1', 'pos', 100, 'percent', 1000, 1000,
               1000, 900],
              'positional: percent (4: percent_bp)');
    is_deeply(validate_raw('POS1', customer => 'c', amount => 1000),
              ['ok', 5, 'POS1', 'pos', 'c', 100, 'percent', 1000, 1000,
               1000, 900],
              'positional: a customer (1)');
    is_deeply(validate_raw('POSA', amount => 1000),
              ['ok', 2, 'POSA', 'posa', 300, 'amount', 300, 1000, 1000, 700],
              'positional: amount (2: value)');

    my $x = redeem_raw('POSG', customer => 'gina', amount => 4000,
                       idem => 'PK1');
    my $id = $x->[-1];
    ok(defined $id && $id =~ /^\d+-\d+$/, 'positional: the id comes last');
    is_deeply($x,
              ['ok', 1 + 8 + 16 + 32 + 64 + 128 + 256, 'POSG', 'posg', 'gina',
               2500, 'gift_card', 4000, 2500, 'cap', 4000, 1500, 4, 6500,
               $t0 + 86400, $id],
              'positional: a gift card redeemed, every optional value but '
              . 'a hold') or diag explain $x;
    my $again = redeem_raw('POSG', customer => 'gina', amount => 4000,
                           idem => 'PK1');
    is_deeply($again, ['ok', $x->[1] + 1024, @$x[2 .. $#$x]],
              'positional: a replay sets bit 1024, and adds nothing');

    # a reservation: its id and the end of its hold last; a retry while it
    # is held finds the id in it (held_id), also after every optional value
    my @hold = ('voucher_reserve', "$T:c:POSA", 60000);
    $x = fcall(@hold, order_args(amount => 1000, idem => 'PH1'));
    my ($hid, $until) = @$x[-2, -1];
    ok($until > $t0 && $until <= $t0 + 62, 'positional: hold_expires_at last');
    is_deeply($x, ['ok', 2 + 256 + 512, 'POSA', 'posa', 300, 'amount', 300,
                   1000, 1000, 700, $hid, $until],
              'positional: a reservation (256, 512)');
    is_deeply(fcall(@hold, order_args(amount => 1000, idem => 'PH1')),
              ['reservation_in_progress', 'code', 'POSA', 'redemption_id',
               $hid], 'positional: a retry while held names the hold');
    my @ghold = ('voucher_reserve', "$T:c:POSG", 60000);
    my %go = (customer => 'gina', amount => 4000, idem => 'PH2');
    $x = fcall(@ghold, order_args(%go));
    is($x->[1], 1 + 8 + 16 + 32 + 64 + 128 + 256 + 512,
       'positional: a gift card reserved, every bit but 2, 4 and 1024');
    is_deeply(fcall(@ghold, order_args(%go)),
              ['reservation_in_progress', 'code', 'POSG', 'redemption_id',
               $x->[-2]], 'positional: ... its retry names its hold');
    is(fcall('voucher_release', $LOG, $x->[-2], '')->[0], 'ok', 'released');
    my $y = fcall(@ghold, order_args(%go));
    ok($y->[0] eq 'ok' && $y->[1] == $x->[1] && $y->[-2] ne $x->[-2],
       'positional: a retry after the release reserves anew')
        or diag explain $y;

    # with limits: the limits' pair after the values
    is_deeply(fcall('voucher_validate_limited', "$T:c:POS1",
                    order_args(amount => 1000), 'rf4240:4:ip:k1'),
              ['ok', 4, 'POS1', 'pos', 100, 'percent', 1000, 1000, 1000,
               900, '_limit', 'PASSED'],
              'positional: pairs after the values (_limit)');
    my @lim = ('Rf4240:0:ip:k2');                    # dry run, no burst
    $x = fcall('voucher_redeem', "$T:c:POSA",
               order_args(amount => 1000, idem => 'PK2'), @lim);
    is_deeply([@$x[0, 1, -2, -1]], ['ok', 2 + 256, '_limit', 'PASSED'],
              'positional: a redeem, its limit passed');
    $y = fcall('voucher_redeem', "$T:c:POSA",
               order_args(amount => 1000, idem => 'PK2'), @lim);
    is_deeply($y, ['ok', $x->[1] + 1024, @$x[2 .. $#$x - 2],
                   '_limit', 'REJECTED_DRY_RUN', '_limit_name', 'ip'],
              'positional: its replay, a dry-run refusal after the values')
        or diag explain $y;
}


############################################################## limits

{
    my @val = ('voucher_validate_limited', "$T:c:POS1",
               order_args(amount => 1000));

    # one argument per limit, the key last: any byte, ':' and NUL included;
    # a rate's numbers in hex (0xf4240 us: 1/s)
    my $k = "a:b\0c";
    my $x = fcall(@val, "rf4240:0:ip:$k");
    is_deeply([@$x[0, -2, -1]], ['ok', '_limit', 'PASSED'],
              'limits: a key with ":" and NUL passes');
    is($r->cmd('EXISTS', "$T:rt:ip:$k"), 1,
       'limits: ... its state holds the key byte for byte');
    $x = fcall(@val, "rf4240:0:ip:$k");
    is_deeply([@$x[0, 1, 2, 3, 4]],
              ['rate_limited', 'code', 'POS1', 'limit', 'ip'],
              'limits: ... and is refused at once after');
    is(fcall(@val, 'rf4240:0:ip:a:b')->[0], 'ok',
       'limits: ... while its prefix is another key');
    is(fcall(@val, "rf4240:0:ip:a:b\0")->[0], 'ok',
       'limits: ... and so is a key one NUL longer');

    # malformed limits are refused before anything is written
    for my $b (['x1:1:ip:m1', 'an unknown kind'],
               ['r0:1:ip:m1', 'a zero interval'],
               ['rg:1:ip:m1', 'not hexadecimal'],
               ['r1:20000000000000:ip:m1', 'past 2^53 - 1'],
               ['r1:1::m1', 'an empty name'],
               ['r1:1:ip', 'no key'],
               ['r-1:1:ip:m1', 'a negative number'],
               ['l1:1:ip:m1', 'a lockout without its ban'],
               ['l0:1:1:ip:m1', 'a lockout of 0 failures'],
               ['r1:1:ip:m1 R1:1:ip2:m1', 'dry and not dry mixed'],
               ['r1:1:ip:m1 q', 'a bad second limit']) {
        is(errmsg(fcall(@val, split / /, $b->[0])), 'ERR bad_args',
           "limits: bad_args, $b->[1]");
    }
    is($r->cmd('EXISTS', "$T:rt:ip:m1", "$T:rt:ip2:m1"), 0,
       'limits: ... and none wrote a state');
    is(errmsg(fcall('voucher_guess', "$T:c:NOPE")), 'ERR bad_args',
       'limits: a guess needs a limit');
    is_deeply(fcall('voucher_guess', "$T:c:NOPE", 'r1:1:ip:g1',
                    'l5:60000:60000:gl:g1'),
              ['not_found', 'code', 'NOPE', '_limit', 'PASSED'],
              'limits: a guess with a rate and a lockout');
    is($r->cmd('GET', "$T:lf:gl:g1"), 1, 'limits: ... counts the guess');
    my @dl = ('voucher_guess', "$T:c:NOPE", 'L2:60000:60000:gd:a:b');
    fcall(@dl) for 1 .. 2;                      # the second bans the key
    is($r->cmd('EXISTS', "$T:lb:gd:a:b"), 1, 'limits: a dry lockout bans');
    is_deeply(fcall(@dl), ['not_found', 'code', 'NOPE', '_limit',
                           'LOCKED_DRY_RUN', '_limit_name', 'gd'],
              'limits: ... and refuses nothing in a dry run');

    # A rate's state expires at the end of its TAT's second, never before
    # its TAT: KEEPTTL within the second, PXAT when the TAT crosses one.
    # TIME before PTTL, so now + PTTL is at most the expiry.
    no warnings 'portable';                     # hex() of a 64-bit TAT
    my $key = "$T:rt:exp:k";
    my ($bad, $late, $keep, $move, $last) = (0, 0, 0, 0, -1);
    my $check = sub {
        my ($t, $pttl, $tat) = $r->pipeline(['TIME'], ['PTTL', $key],
                                            ['GET', $key]);
        $tat = hex $tat;                        # the TAT in hexadecimal
        my $now_ms = $t->[0] * 1000 + int($t->[1] / 1000);
        my $exp = $now_ms + $pttl;
        $bad++ if $pttl < 0 || $exp < $tat / 1000;
        $late++ if $exp > $tat / 1000 + 1000 + 100;
        return $exp;
    };
    for my $i (1 .. 75) {       # 50/s, burst 100: the TAT runs 1.5 s ahead
        is(fcall(@val, 'r4e20:64:exp:k')->[0], 'ok', 'limits: charged')
            or last;
        my $exp = $check->();
        ($last == $exp ? $keep : $move)++ if $last >= 0;
        $last = $exp;
    }
    is($bad, 0, 'limits: 75 charges, the expiry never before the TAT');
    is($late, 0, 'limits: ... nor more than a second after it');
    ok($keep > 50 && $move >= 1,
       "limits: ... kept $keep times, moved $move times");
    for my $idle (0.6, 1.7) {   # the TAT ahead still, then passed
        select undef, undef, undef, $idle;
        is(fcall(@val, 'r4e20:64:exp:k')->[0], 'ok',
           "limits: charged after $idle s idle");
        $check->();
        is($bad + $late, 0, "limits: ... the expiry covers the TAT");
    }
    my $tat = hex $r->cmd('GET', $key);
    select undef, undef, undef, 0.05 while $r->cmd('EXISTS', $key)
        && $r->cmd('TIME')->[0] * 1e6 < $tat + 2.5e6;
    is($r->cmd('EXISTS', $key), 0,
       'limits: an idle state is gone within a second after its TAT');
}


############################################################## one hash tag

{
    my @keys = sort @{ $r->cmd('KEYS', '*') };
    my @other = grep { index($_, "$T:") != 0 } @keys;
    is_deeply(\@other, [], "every key starts with $T:") or diag explain \@other;
    for my $kind (qw(k c u i:r i:b rb)) {
        ok((grep { index($_, "$T:$kind:") == 0 } @keys), "$T:$kind: keys exist");
    }
    ok((grep { $_ eq "$T:log" } @keys) && (grep { $_ eq "$T:cfg" } @keys),
       "$T:log and $T:cfg exist");
}

$r->stop;
done_testing();
