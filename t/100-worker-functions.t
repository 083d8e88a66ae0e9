#!/usr/bin/perl
#
# The worker's functions (redis/lib/worker.lua), driven over RESP: bulk code
# creation (voucher_codes_add) with the validation of voucher_code_set,
# all-or-nothing, and codes that redeem like any other.

use strict;
use warnings;
use Test::More;
use Digest::SHA ();
use VT;

my $r = VT::Redis->start;
$r->load_functions;

my $T = '{w}';

sub is_err { ref $_[0] && ref $_[0] ne 'ARRAY' && $_[0]->isa('VT::Redis::Error') }
sub errmsg { is_err($_[0]) ? $_[0]->message : 'not an error: ' . explain($_[0]) }
sub fcall  { my ($fn, $key, @a) = @_; $r->cmd('FCALL', $fn, 1, $key, @a) }
sub add    { my ($camp, @a) = @_; fcall('voucher_codes_add', "$T:k:$camp", @a) }
sub hgetall { +{ @{ $r->cmd('HGETALL', $_[0]) } } }
sub dbsize { $r->cmd('DBSIZE') }
# a compact code: its field in the bucket {T}:cb:<4 hex digits of its SHA-1>
sub compact { $r->cmd('HGET', "$T:cb:" . substr(Digest::SHA::sha1_hex($_[0]), 0, 4), $_[0]) }
sub exists_code { !!($r->cmd('EXISTS', "$T:c:$_[0]") || defined compact($_[0])) }

sub ok_set {
    my ($fn, $key, @f) = @_;
    my $x = fcall($fn, $key, @f);
    die "$fn: " . errmsg($x) if is_err($x);
}

ok_set('voucher_campaign_set', "$T:k:pct", kind => 'percent', value => 1000,
       code_max_uses => 1);
ok_set('voucher_campaign_set', "$T:k:gift", kind => 'gift_card', value => 5000);
ok_set('voucher_campaign_set', "$T:k:gift0", kind => 'gift_card');

# --- arguments
like(errmsg(add('nope', 'new', 0, 'code', 'A')), qr/invalid_field campaign: not found/,
     'an unknown campaign');
like(errmsg(add('pct', 'bogus', 0, 'code', 'A')), qr/mode must be new\|skip\|check/,
     'an unknown mode');
like(errmsg(add('pct', 'new', 'x', 'code', 'A')), qr/bad_args/, 'npairs not a number');
like(errmsg(add('pct', 'new', 0, 'code,customer', 'A')), qr/bad_args/,
     'rows do not fill the columns');
like(errmsg(add('pct', 'new', 0, 'customer,code', 'x', 'A')), qr/first column is code/,
     'code must come first');
like(errmsg(add('pct', 'new', 0, 'code,colour', 'A', 'red')), qr/unknown_field colour/,
     'an unknown column');
like(errmsg(add('pct', 'new', 0, 'code,campaign', 'A', 'x')), qr/unknown_field campaign/,
     'campaign is not a column');
like(errmsg(add('pct', 'new', 1, 'campaign', 'x', 'code', 'A')),
     qr/campaign: given by the key/, 'nor a common field');
like(errmsg(add('pct', 'new', 1, 'max_uses', '-1', 'code', 'A')),
     qr/invalid_field max_uses: expected an integer >= 0/, 'a bad common field');
like(errmsg(fcall('voucher_codes_add', '{w}:c:x', 'new', 0, 'code', 'A')), qr/bad_key/,
     'the key must be a campaign');
is(dbsize(), 3, 'none of that wrote anything');

# --- new: all or nothing
my $x = add('pct', 'new', 0, 'code', 'A1', 'A2', 'A3');
is_deeply($x, [3, []], 'three new codes');
is(compact('A1'), '0 pct', 'a code that holds its campaign only is compact');
ok(!$r->cmd('EXISTS', "$T:c:A1"), '... not a hash of its own');
is_deeply(fcall('voucher_code_get', "$T:c:A1"),
          ['code', 'A1', 'campaign', 'pct', 'status', 'active', 'used', 0],
          '... voucher_code_get reads it');

$x = add('pct', 'new', 0, 'code', 'B1', 'A2', 'B3');
like(errmsg($x), qr/invalid_field code: exists \(row 2\)/, 'an existing code: error names the row');
ok(!exists_code('B1'), '... and nothing of the batch was written');

like(errmsg(add('pct', 'new', 0, 'code', 'C1', 'C2', 'c-1')),
     qr/code: twice in the batch \(row 3\)/, 'a code twice in one batch (normalized)');
like(errmsg(add('pct', 'new', 0, 'code', 'D1', "new\nline")),
     qr/code: 1\.\.64 printable ASCII characters \(row 2\)/, 'a code with a newline');
like(errmsg(add('pct', 'new', 0, 'code', 'D1', ' - ')),
     qr/code: 1\.\.64 printable ASCII characters \(row 2\)/, 'a code of separators only');
like(errmsg(add('pct', 'new', 0, 'code', 'E' x 65)), qr/code: 1\.\.64/, 'a code of 65 characters');
is_deeply(add('pct', 'new', 0, 'code', 'E' x 64), [1, []], 'one of 64 is fine');
ok(!exists_code('C1') && !exists_code('D1'), 'refused batches left nothing');

# --- check: validates, writes nothing
my $before = dbsize();
is_deeply(add('pct', 'check', 0, 'code', 'F1', 'F2'), [2, []], 'check answers like new');
like(errmsg(add('pct', 'check', 0, 'code', 'F1', 'A1')), qr/exists \(row 2\)/,
     'check reports an existing code');
is(dbsize(), $before, 'check wrote nothing');

# --- skip: existing and repeated codes are left out, by row
$x = add('pct', 'skip', 0, 'code', 'A1', 'G1', 'G1', 'A3', 'G2');
is_deeply($x, [2, [1, 3, 4]], 'skip: rows 1, 3 and 4 left out');
is(compact('A1'), '0 pct', 'an existing code is untouched');
ok(exists_code('G1') && exists_code('G2'), 'the new ones are there');
ok_set('voucher_code_set', "$T:c:OTHER", campaign => 'gift');
is_deeply(add('pct', 'skip', 0, 'code', 'OTHER'), [0, [1]], 'a code of another campaign is left out');
is(hgetall("$T:c:OTHER")->{k}, 'gift', '... and stays there');

# --- common fields are stored as voucher_code_set stores them
is_deeply(add('pct', 'new', 4, max_uses => 3, starts_at => 100, ends_at => 200,
              status => 'disabled', 'code', 'H1'), [1, []], 'common fields');
ok_set('voucher_code_set', "$T:c:H2", campaign => 'pct', max_uses => 3, starts_at => 100,
       ends_at => 200, status => 'disabled');
is_deeply(hgetall("$T:c:H1"), hgetall("$T:c:H2"), 'the same hash as voucher_code_set makes');
is_deeply(fcall('voucher_code_get', "$T:c:H1")->[3], 'pct', 'voucher_code_get reads it');

like(errmsg(add('pct', 'new', 2, starts_at => 200, ends_at => 100, 'code', 'H3')),
     qr/ends_at must be after starts_at/, 'a window that ends first');

# --- per-row columns, empty cells, gift cards
$x = add('gift', 'new', 0, 'code,customer,balance', 'gc-1', 'alice', '700', 'GC 2', '', '');
is_deeply($x, [2, []], 'per-row customer and balance');
my $gh = hgetall("$T:c:GC1");
like(delete $gh->{x}, qr/^\d+:0:700$/, 'row 1: its balance one lot, its ledger opened');
is_deeply($gh, {k => 'gift', c => 'alice', b => 700, b0 => 700},
          'row 1: its own customer and balance; the code normalized (gc-1: GC1)');
$gh = hgetall("$T:c:GC2");
like(delete $gh->{x}, qr/^\d+:0:5000$/, 'row 2: one lot');
is_deeply($gh, {k => 'gift', b => 5000, b0 => 5000},
          'row 2: empty cells unset, the campaign value as balance');
is($r->cmd('XLEN', "$T:gl:GC2"), 1, '... its ledger: issued');
ok_set('voucher_code_set', "$T:c:GC3", campaign => 'gift');
is_deeply(hgetall("$T:c:GC2"), hgetall("$T:c:GC3"), 'as voucher_code_set does');
like(errmsg(add('gift', 'new', 0, 'code', 'gc1')), qr/code: exists/,
     'the normalized form is the code: gc1 is GC1');

like(errmsg(add('pct', 'new', 0, 'code,balance', 'P1', '100')),
     qr/balance: only for gift_card campaigns \(row 1\)/, 'a balance outside gift cards');
like(errmsg(add('gift0', 'new', 0, 'code', 'Z1')),
     qr/balance: required \(campaign has no value\)/, 'a gift card without a balance');
like(errmsg(add('gift', 'new', 0, 'code,max_uses', 'Z2', '1', 'Z3', 'many')),
     qr/max_uses: expected an integer >= 0 \(row 2\)/, 'a bad cell names its row');
ok(!exists_code('Z2'), 'and row 1 was not written');

# --- the codes work with redeem
ok_set('voucher_campaign_set', "$T:k:amt", kind => 'amount', value => 100);
is_deeply(add('amt', 'new', 1, max_uses => 1, 'code,customer', 'R1', 'bob'), [1, []],
          'a single-use code for bob');
$x = fcall('voucher_redeem', "$T:c:R1", 'bob', 1000, '', 'o1', '', 0);
is($x->[0], 'ok', 'it redeems');
$x = fcall('voucher_redeem', "$T:c:R1", 'bob', 1000, '', 'o2', '', 0);
is($x->[0], 'code_exhausted', 'once');
$x = fcall('voucher_redeem', "$T:c:A2", '', 1000, '', 'o3', '', 0);
is($x->[0], 'ok', 'a campaign code_max_uses code redeems');
is(fcall('voucher_redeem', "$T:c:A2", '', 1000, '', 'o4', '', 0)->[0], 'code_exhausted',
   'and the campaign limit applies');

# --- a big batch
my @many = map { sprintf('BULK%06d', $_) } 1 .. 5000;
is_deeply(add('pct', 'new', 0, 'code', @many), [5000, []], '5000 codes in one call');
is(scalar(grep { exists_code($_) } @many[0, 2499, 4999]), 3, 'all there');

$r->stop;
done_testing;
