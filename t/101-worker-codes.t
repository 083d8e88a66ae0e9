#!/usr/bin/perl
#
# voucherctl: the configuration file, campaign set|get, codes issue (MAC,
# patterns, uniqueness), codes check, codes import (all or nothing, line
# numbers, --match) and codes export (csv, jsonl).

use strict;
use warnings;
use Test::More;
use Digest::SHA ();
use JSON::PP;
use VT;
use WorkerT;

worker_bin('voucherctl');

my $w = worker_setup();
my $r = $w->redis;
my $dir = $w->dir;

sub lines { [ grep { length } split /\n/, $_[0] ] }

############################################################ configuration

my %bad = (
    'not json'             => ['{"redis": ', qr/line 1 column \d+/],
    'not an object'        => ['[1]', qr/expected a JSON object/],
    'unknown field'        => ['{"redsi": {}}', qr/unknown field "redsi"/],
    'unknown nested'       => ['{"redis": {"adress": "x"}}', qr/redis: unknown field "adress"/],
    'bad port'             => ['{"redis": {"address": "127.0.0.1:99999"}}', qr/redis\.address: expected host:port/],
    'bad db'               => ['{"redis": {"db": "1"}}', qr/redis\.db: expected an integer/],
    'missing password'     => ['{"redis": {"password_file": "/nonexistent/pw"}}',
                               qr/redis\.password_file: secret file "\/nonexistent\/pw"/],
    'namespace braces'     => ['{"namespace": "a{b"}', qr/namespace: 1-64 printable/],
    'log level'            => ['{"log": {"level": "loud"}}', qr/log\.level: expected error\|warn\|info\|debug/],
    'channel type'         => ['{"channels": {"x": {"type": "fax", "url": "http://a"}}}',
                               qr/channels\.x: type: expected webhook\|line\|sms\|email/],
    'channel url'          => ['{"channels": {"x": {"type": "sms", "url": "ftp://a", "body": "b"}}}',
                               qr/channels\.x: url: expected http/],
    'webhook secret'       => ['{"channels": {"x": {"type": "webhook", "url": "http://a"}}}',
                               qr/channels\.x\.secret_file: required/],
    'duplicate key'        => ['{"namespace": "a", "namespace": "b"}', qr/duplicate/],
);
for my $name (sort keys %bad) {
    my ($text, $re) = @{ $bad{$name} };
    write_text("$dir/bad.json", $text);
    my $res = ctl($w, {conf => "$dir/bad.json"}, 'campaign', 'get', 'x');
    is($res->{rc}, 1, "config: $name: exit 1");
    like($res->{err}, $re, "config: $name: says why");
    like($res->{err}, qr/config "\Q$dir\E\/bad\.json"/, "config: $name: names the file");
}

write_text("$dir/pw", "s3cr3t-Pass\n");
write_text("$dir/bad.json", qq({"redis": {"address": "127.0.0.1:1", "password_file": "$dir/pw"}}));
my $res = ctl($w, {conf => "$dir/bad.json"}, 'campaign', 'get', 'x');
like($res->{err}, qr/redis 127\.0\.0\.1:1: Connection refused/, 'an unreachable redis is named');
unlike($res->{err}, qr/s3cr3t/, 'the password never shows');

$res = ctl($w, {conf => "$dir/none.json"}, 'campaign', 'get', 'x');
like($res->{err}, qr/none\.json.*(No such file|unable to open)/i, 'a missing config file');

$res = ctl($w, 'frobnicate');
is($res->{rc}, 2, 'an unknown command: usage, exit 2');
like($res->{err}, qr/unknown command "frobnicate"/, '... named');

############################################################ campaign

$res = ctl($w, qw(campaign set sale kind percent value 1000 code_max_uses 1), 'name', 'Big sale');
is($res->{rc}, 0, 'campaign set') or diag $res->{err};
$res = ctl($w, qw(campaign get sale));
is($res->{rc}, 0, 'campaign get');
my $c = decode_json($res->{out});
is_deeply([@$c{qw(id name kind value code_max_uses status redeemed)}],
          ['sale', 'Big sale', 'percent', 1000, 1, 'active', 0], 'as JSON, integers as integers');

$res = ctl($w, qw(campaign set sale value 20000));
is($res->{rc}, 1, 'a bad value: exit 1');
like($res->{err}, qr/invalid_field value: percent is in basis points/, '... the library says why');
$res = ctl($w, qw(campaign set sale value));
is($res->{rc}, 2, 'an odd number of field/value: usage');
$res = ctl($w, qw(campaign get nosuch));
like($res->{err}, qr/no such campaign/, 'get of an unknown campaign');

ctl($w, qw(campaign set gift kind gift_card value 5000));
ctl($w, qw(campaign set vip kind amount value 500));

############################################################ issue

$res = ctl($w, ('codes', 'issue', 'sale', '--count', '200', '--pattern', 'SALE-####-####'));
is($res->{rc}, 0, 'issue 200 with a pattern') or diag $res->{err};
my @shown = @{ lines($res->{out}) };
is(scalar @shown, 200, '200 codes printed');
is(scalar(grep { /^SALE-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/ } @shown), 200,
   'all in the pattern, in the Crockford alphabet');
my %u = map { $_ => 1 } @shown;
is(scalar keys %u, 200, 'all different');
like($res->{err}, qr/issued 200 codes into campaign "sale"/, 'a summary on stderr');

my @stored = map { (my $x = $_) =~ s/-//g; $x } @shown;
# a code that holds its campaign only is compact: a field of a bucket hash
sub compact { $r->cmd('HGET', '{v}:cb:' . substr(Digest::SHA::sha1_hex($_[0]), 0, 4), $_[0]) }
is(scalar(grep { defined compact($_) } @stored), 200, 'stored normalized (no dashes)');
is(compact($stored[0]), '0 sale',
   'a single-use code (campaign code_max_uses) holds only its campaign: compact');
is($r->cmd('EXISTS', "{v}:c:$stored[0]"), 0, '... with no hash of its own');

# the MAC: prefix SALE, 4 body + 4 tag characters
$res = ctl($w, qw(codes check), $shown[0], qw(--prefix SALE));
is($res->{rc}, 0, 'an issued code checks') or diag "$res->{out} $res->{err}";
like($res->{out}, qr/^valid: \Q$stored[0]\E$/, '... valid');
(my $typed = lc $shown[1]) =~ tr/01/ol/;
$res = ctl($w, qw(codes check), $typed, qw(--prefix SALE));
is($res->{rc}, 0, "typed in lower case with look-alikes ($typed): still valid");
(my $canon = uc $shown[1]) =~ s/-//g;
like($res->{out}, qr/^valid: \Q$canon\E$/, '... shown as the stored code');
my $bad = $stored[2];
substr($bad, 9, 1) = substr($bad, 9, 1) eq 'A' ? 'B' : 'A';
$res = ctl($w, qw(codes check), $bad, qw(--prefix SALE));
is($res->{rc}, 1, 'a mistyped code fails the check');
like($res->{out}, qr/wrong check/, '... says so');

# redeemable like any other code
my $x = $r->cmd('FCALL', 'voucher_redeem', 1, "{v}:c:$stored[0]", '', 10000, '', 'o1', '', 0);
is($x->[0], 'ok', 'an issued code redeems');

# another charset and a suffix: keypad codes
$res = ctl($w, qw(codes issue sale --count 50 --charset 0123456789 --mac-length 6),
           '--pattern', '######-######-TH');
is($res->{rc}, 0, 'issue --charset 0123456789 --pattern ######-######-TH') or diag $res->{err};
my @keypad = split /\n/, $res->{out};
is(scalar(grep { /^\d{6}-\d{6}-TH$/ } @keypad), 50, '50 codes: 6 + 6 digits, then -TH');
(my $kp = $keypad[0]) =~ s/-//g;
ok(defined compact($kp), 'stored normalized: ' . $kp);
$res = ctl($w, qw(codes check), lc($keypad[1]), qw(--charset 0123456789 --suffix TH --mac-length 6));
is($res->{rc}, 0, 'codes check --charset --suffix: valid');
(my $kbad = $keypad[1]) =~ s/^(\d)/$1 == 9 ? 0 : $1 + 1/e;
$res = ctl($w, qw(codes check), $kbad, qw(--charset 0123456789 --suffix TH --mac-length 6));
is($res->{rc}, 1, 'one digit off: invalid');
$res = ctl($w, qw(codes check), $keypad[2], qw(--charset 0123456789 --suffix TH));
is($res->{rc}, 0, 'codes check without --mac-length: the charset\'s default tag length (6)');
$res = ctl($w, qw(codes issue sale --count 1 --charset 0123456789 --length 5));
is($res->{rc}, 2, 'five digits are too few random bodies');
like($res->{err}, qr/at least a million/, '... says why');
$res = ctl($w, qw(codes issue sale --count 1 --charset 0123456789 --length 6 --mac-length 5 --quiet));
is($res->{rc}, 0, 'a 5-digit tag is the operator\'s choice');
like($res->{err}, qr/warning: --mac-length 5 lets a guess through .* \(6 would not\)/, '... with a warning');
$res = ctl($w, qw(codes issue sale --count 2 --charset 0123456789 --length 6 --prefix LC),
           '--pattern', 'lc-######-######');
is($res->{rc}, 0, 'a lower-case pattern, the tag length chosen for the charset');
like($res->{out}, qr/^LC-\d{6}-\d{6}\nLC-\d{6}-\d{6}\n$/, '... the codes shown in its form');
$res = ctl($w, qw(codes issue sale --count 1 --charset 01O));
is($res->{rc}, 2, 'a charset with a look-alike is refused');
like($res->{err}, qr/--charset: .*no I, L, O, U/, '... naming the rule');
$res = ctl($w, qw(codes issue sale --count 1 --suffix TH --pattern), '####-####-XY');
is($res->{rc}, 2, '--suffix and the pattern\'s suffix differ');

$res = ctl($w, qw(codes issue gift --count 3 --prefix gc --length 6 --mac-length 2 --max-uses 5));
is($res->{rc}, 0, 'issue with --prefix --length --mac-length --max-uses');
for my $code (@{ lines($res->{out}) }) {
    like($code, qr/^GC[0-9A-Z]{8}$/, "$code: prefix normalized, 6 + 2 characters");
}
my $g = lines($res->{out})->[0];
my %gh = @{ $r->cmd('HGETALL', "{v}:c:$g") };
like(delete $gh{x}, qr/^\d+:0:5000$/, 'the gift card\'s balance one lot (its ledger opened)');
is_deeply(\%gh, {k => 'gift', m => 5, b => 5000, b0 => 5000},
          'max_uses and the gift card balance stored');

for my $case (
    [[qw(codes issue sale)], 2, qr/--count is required/],
    [[qw(codes issue sale --count 0)], 2, qr/--count: expected an integer 1\.\./],
    [[qw(codes issue sale --count 5 --mac-length 26)], 2, qr/--mac-length/],
    [[qw(codes issue sale --count 5 --length 3)], 2, qr/at least a million random bodies \(4 characters/],
    [[('codes', 'issue', 'sale', '--count', '5', '--pattern', 'SALE-##')], 2, qr/not more than --mac-length/],
    [[('codes', 'issue', 'sale', '--count', '5', '--pattern', '####-SALE-####')], 2, qr/literal prefix/],
    [[('codes', 'issue', 'sale', '--count', '5', '--pattern', 'SALE-####-####', '--length', '5')], 2, qr/--length 5 \+ --mac-length 4/],
    [[('codes', 'issue', 'sale', '--count', '5', '--pattern', 'SALE-####-####', '--prefix', 'GIFT')], 2, qr/differ/],
    [[qw(codes issue sale --count 5 --prefix), 'P' x 60], 2, qr/more than 64/],
    [[qw(codes issue nosuch --count 5)], 1, qr/campaign "nosuch" not found/],
    [[qw(codes issue sale --count 5 --bogus 1)], 2, qr/unknown option --bogus/],
) {
    my ($args, $rc, $re) = @$case;
    my $n = $r->cmd('DBSIZE');
    $res = ctl($w, @$args);
    is($res->{rc}, $rc, "@$args: exit $rc");
    like($res->{err}, $re, "@$args: says why");
    is($r->cmd('DBSIZE'), $n, "@$args: wrote nothing");
}

# without a key file
my $nokey = { %{ $w->{config} }, key_file => "$dir/missing.key" };
write_text("$dir/nokey.json", encode_json($nokey));
$res = ctl($w, {conf => "$dir/nokey.json"}, qw(codes issue sale --count 5));
is($res->{rc}, 1, 'no key file: refused');
like($res->{err}, qr/key file "\Q$dir\E\/missing\.key": cannot open: no such file/, '... named');

# --output, --quiet
$res = ctl($w, qw(codes issue vip --count 1500 --output), "$dir/vip.txt");
is($res->{rc}, 0, '--output');
is($res->{out}, '', 'nothing on stdout');
is(scalar @{ lines(read_text("$dir/vip.txt")) }, 1500, '1500 codes in the file (two batches)');
$res = ctl($w, qw(codes issue vip --count 10 --quiet));
is($res->{out}, '', '--quiet prints no codes');

############################################################ export

$res = ctl($w, qw(codes export vip));
is($res->{rc}, 0, 'export csv');
my @rows = @{ lines($res->{out}) };
is($rows[0], 'code,campaign,status,max_uses,used,customer,balance,initial_balance,starts_at,ends_at',
   'the header');
is(scalar @rows, 1511, 'every code of the campaign, only those');
my %exported = map { (split /,/)[0] => 1 } @rows[1 .. $#rows];
my @vip = @{ lines(read_text("$dir/vip.txt")) };
is(scalar(grep { $exported{$_} } @vip), 1500, 'the issued codes are all there');

$res = ctl($w, ('codes', 'export', 'gift', '--format', 'jsonl', '--pattern', 'GC-####-####'));
my @j = map { decode_json($_) } @{ lines($res->{out}) };
is(scalar @j, 3, 'export jsonl');
is_deeply([sort keys %{ $j[0] }],
          [qw(balance campaign code display initial_balance max_uses status used)],
          'the fields that are set, and the display form');
like($j[0]{display}, qr/^GC-[0-9A-Z]{4}-[0-9A-Z]{4}$/, 'display in the pattern');
ok($j[0]{balance} == 5000 && JSON::PP::true ne $j[0]{balance}, 'integers as integers');

$res = ctl($w, qw(codes export sale --format xml));
is($res->{rc}, 2, 'an unknown format');

############################################################ import

sub import_ok {
    my ($name, $csv, @opt) = @_;
    write_text("$dir/in.csv", $csv);
    my $res = ctl($w, qw(codes import), "$dir/in.csv", @opt);
    is($res->{rc}, 0, "import: $name") or diag $res->{err};
    return $res;
}

sub import_bad {
    my ($name, $csv, $re, @opt) = @_;
    write_text("$dir/in.csv", $csv);
    my $n = $r->cmd('DBSIZE');
    my $res = ctl($w, qw(codes import), "$dir/in.csv", @opt);
    isnt($res->{rc}, 0, "import: $name: refused");
    like($res->{err}, $re, "import: $name: says where and why");
    like($res->{err}, qr/rejected, nothing imported|usage|--match:/, "import: $name: nothing imported")
        unless $res->{rc} == 2;
    is($r->cmd('DBSIZE'), $n, "import: $name: nothing written");
    return $res;
}

$res = import_ok('codes with quotes, customers, blank lines',
    qq(code,campaign,customer,max_uses\r\nBLACK-FRIDAY,vip,,100\r\n"vanity,1",vip,"O'Neil, ""Jr""",\r\n\r\nwelcome10,sale,alice,1\r\n));
like($res->{out}, qr/imported 3 codes/, 'three codes');
is_deeply({ @{ $r->cmd('HGETALL', '{v}:c:BLACKFRIDAY') } }, {k => 'vip', m => 100},
          'BLACK-FRIDAY stored as BLACKFRIDAY with its max_uses');
is_deeply({ @{ $r->cmd('HGETALL', '{v}:c:VANITY,1') } }, {k => 'vip', c => q(O'Neil, "Jr")},
          'quoted fields');
is($r->cmd('HGET', '{v}:c:WELCOME10', 'c'), 'alice', 'another campaign in the same file');

import_ok('gift cards with --campaign', "code,balance\nGIFT-AAA1,100\nGIFT-AAA2,\n",
          '--campaign', 'gift');
is($r->cmd('HGET', '{v}:c:GIFTAAA1', 'b'), 100, 'its own balance');
is($r->cmd('HGET', '{v}:c:GIFTAAA2', 'b'), 5000, 'an empty cell: the campaign value');

import_bad('a bad line', "code,campaign,max_uses\nOK-1,vip,1\nOK-2,vip,lots\nOK-3,vip,1\n",
           qr/line 3: code "OK2": invalid_field max_uses: expected an integer >= 0/);
import_bad('an unknown campaign', "code,campaign\nOK-1,vip\nOK-2,nope\n",
           qr/campaign "nope": invalid_field campaign: not found/);
import_bad('an existing code', "code,campaign\nOK-1,vip\nblack-friday,vip\n",
           qr/line 3: code "BLACKFRIDAY": invalid_field code: exists/);
import_bad('a code twice', "code,campaign\nOK-1,vip\nOK-2,vip\nok1,vip\n",
           qr/line 4: code "OK1" is also on line 2/);
import_bad('too few fields', "code,campaign\nOK-1,vip\nOK-2\n", qr/line 3: 1 fields, the header has 2/);
import_bad('an unknown column', "code,campaign,colour\nOK-1,vip,red\n",
           qr/line 1: unknown column "colour"/);
import_bad('no code column', "campaign\nvip\n", qr/no "code" column/);
import_bad('no campaign', "code\nOK-1\n", qr/no "campaign" column and no --campaign/);
import_bad('an empty code', "code,campaign\nOK-1,vip\n--,vip\n", qr/line 3: code: empty/);
import_bad('a balance outside gift cards', "code,campaign,balance\nOK-1,vip,10\n",
           qr/line 2: code "OK1": invalid_field balance: only for gift_card/);
import_bad('an unterminated quote', "code,campaign\nOK-1,vip\n\"OK-2,vip\n",
           qr/line 3: unterminated quoted field/);
import_bad('a stray quote', "code,campaign\nO\"K,vip\n", qr/line 2: a quote inside an unquoted field/);
import_bad('empty file', '', qr/empty file/);
import_bad('--match', "code,campaign\nSUMMER-01,vip\nSUMMER-2,vip\nWINTER-03,vip\n",
           qr/line 3: code "SUMMER2" does not match --match.*\n.*line 4: code "WINTER03"/s,
           '--match', 'SUMMER\d{2}');
import_bad('a bad --match', "code,campaign\nX,vip\n", qr/--match: .* at offset/, '--match', '(');
import_ok('--match, whole code', "code,campaign\nSUMMER-01,vip\nsummer-02,vip\n", '--match', 'SUMMER\d{2}');

# many errors: the first 20 are listed
my $csv = "code,campaign,max_uses\n" . join('', map { "E$_,vip,x\n" } 1 .. 50);
$res = import_bad('50 bad lines', $csv, qr/at least 20 errors/);
is(scalar(() = $res->{err} =~ /^voucherctl: line/mg), 20, 'twenty lines listed');

$res = import_ok('--dry-run', "code,campaign\nDRY-1,vip\n", '--dry-run');
like($res->{out}, qr/1 codes OK, nothing written/, 'dry run says so');
ok(!$r->cmd('EXISTS', '{v}:c:DRY1') && !defined compact('DRY1'), 'and wrote nothing');

# a big import, several batches and campaigns
$csv = "code,campaign\n" . join('', map { sprintf("BULK-%05d,%s\n", $_, $_ % 2 ? 'vip' : 'sale') } 1 .. 2500);
$res = import_ok('2500 codes', $csv);
is(scalar(grep { defined compact(sprintf('BULK%05d', $_)) } 1 .. 2500), 2500, 'all there');

# a race: a code created between the check and the write undoes the import
# (simulated: the check passes, then a code appears; done by a slow loop of
# imports is flaky, so the library's "new" mode is exercised directly)
$x = $r->cmd('FCALL', 'voucher_codes_add', 1, '{v}:k:vip', 'new', 0, 'code', 'RACE-1', 'BULK-00001');
like("$x", qr/exists \(row 2\)/, 'new mode refuses a batch with an existing code');
ok(!$r->cmd('EXISTS', '{v}:c:RACE1') && !defined compact('RACE1'), '... atomically');

$r->stop;
done_testing;
