#!/usr/bin/perl
#
# voucherctl members import (CSV, JSON lines; all or nothing), members get,
# segment show with a fixed clock, and purchases applied once
# (voucher_member_purchase).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;

worker_bin('voucherctl');

my $w = worker_setup();
my $r = $w->redis;
my $dir = $w->dir;

# 2025-03-15T12:00:00Z
my $NOW = 1742040000;
my %clock = (env => { VOUCHERD_FAKE_NOW => $NOW });

sub lines { [ grep { length } split /\n/, $_[0] ] }

sub import_file {
    my ($name, $text, @opt) = @_;
    write_text("$dir/$name", $text);
    return ctl($w, qw(members import), "$dir/$name", @opt);
}

my $res = import_file('m.csv', <<'CSV');
id,name,phone,email,line,birthday,tier,tags,signup,first_purchase,last_purchase,purchases,spend
alice,Alice,+66 81 234 5678,alice@example.com,U123,1990-03-02,gold,vip;coffee,2025-03-10,2024-01-01,2025-03-14,10,90000
bob,"Bob, Jr",089-999-9999,,,04-01,silver,,2024-01-01,2024-06-01,2025-01-10,2,5000
carol,Carol,,carol@example.com,,,gold,coffee,2025-03-09,,,0,0

CSV
is($res->{rc}, 0, 'import CSV') or diag $res->{err};
like($res->{out}, qr/imported 3 members/, 'three members');
is($r->cmd('SCARD', '{v}:members'), 3, 'listed in {v}:members');

$res = ctl($w, qw(members get alice));
my $m = decode_json($res->{out});
is_deeply($m, { id => 'alice', name => 'Alice', phone => '+66812345678', phone_e164 => '+66812345678',
                email => 'alice@example.com', line => 'U123', birthday => '1990-03-02',
                tier => 'gold', tags => 'vip,coffee', signup => 1741564800,
                first_purchase => 1704067200, last_purchase => 1741910400,
                purchases => 10, spend => 90000 },
          'members get: phone normalized, dates as unix seconds, tags as a list');
is(decode_json(ctl($w, qw(members get bob))->{out})->{name}, 'Bob, Jr', 'a quoted name');
like(ctl($w, qw(members get nobody))->{err}, qr/no member "nobody"/, 'an unknown member');

$res = import_file('m.jsonl', <<'JSONL');
{"id": "dave", "tags": ["new", "coffee"], "tier": "bronze", "signup": 1741900000}
{"id": "erin", "phone": "0811111111", "birthday": "03-31", "purchases": 3, "spend": 20000, "last_purchase": "2024-08-27"}

{"id": "alice", "tier": "platinum"}
JSONL
is($res->{rc}, 0, 'import JSON lines') or diag $res->{err};
is($r->cmd('HGET', '{v}:m:dave', 'tags'), ',new,coffee,', 'tags from an array');
is($r->cmd('HGET', '{v}:m:alice', 'tier'), 'platinum', 'an existing member is updated');
is($r->cmd('HGET', '{v}:m:alice', 'spend'), 90000, '... keeping what the line does not set');

# all or nothing
my $before = $r->cmd('DBSIZE');
for my $case (
    ['bad phone', "id,phone\nx1,123\nx2,0812345678\n",
     qr/line 2: id "x1": invalid_field phone: expected a phone number/],
    ['bad birthday', "id,birthday\nx1,02-30\n",
     qr/line 2: id "x1": invalid_field birthday: expected YYYY-MM-DD or MM-DD/],
    ['leap day', "id,birthday\nx1,2023-02-29\n", qr/invalid_field birthday/],
    ['bad spend', "id,spend\nx1,1.5\n", qr/line 2: .*spend: expected an integer >= 0/],
    ['bad date', "id,signup\nx1,2025-13-01\n", qr/signup: expected unix seconds or YYYY-MM-DD/],
    ['id twice', "id,tier\nx1,a\nx2,b\nx1,c\n", qr/line 4: id "x1" is also on line 2/],
    ['no id column', "tier\ngold\n", qr/first column must be "id"/],
    ['unknown column', "id,shoe_size\nx,42\n", qr/unknown column "shoe_size"/],
    ['id with space', "id\nx y\n", qr/line 2: id "x y": invalid_field id/],
    ['field count', "id,tier\nx1\n", qr/line 2: 1 fields, the header has 2/],
    ['three bad lines', "id,spend\nx1,a\nx2,1\nx3,b\nx4,c\n",
     qr/line 2: .*\n.*line 4: .*\n.*line 5: .*\n.*\(3 errors\)/],
) {
    my ($name, $text, $re) = @$case;
    $res = import_file('bad.csv', $text);
    is($res->{rc}, 1, "import: $name: refused");
    like($res->{err}, $re, "import: $name: says where and why");
    like($res->{err}, qr/rejected, nothing imported/, "import: $name: nothing imported");
}
for my $case (
    ['not json', qq({"id": "x1"}\n{"id": \n), qr/line 2: /],
    ['not an object', qq([1]\n), qr/line 1: expected a JSON object/],
    ['unknown field', qq({"id": "x1", "age": 5}\n), qr/line 1: unknown field "age"/],
    ['wrong type', qq({"id": "x1", "spend": 1.5}\n), qr/line 1: spend: expected a string or an integer/],
    ['no id', qq({"tier": "gold"}\n), qr/line 1: id: required/],
    ['bad tags', qq({"id": "x1", "tags": [1]}\n),
     qr/line 1: tags: expected a string or an integer or an array/],
) {
    my ($name, $text, $re) = @$case;
    $res = import_file('bad.jsonl', $text);
    is($res->{rc}, 1, "jsonl: $name: refused");
    like($res->{err}, $re, "jsonl: $name: says where and why");
}
is($r->cmd('DBSIZE'), $before, 'no refused import wrote anything');
ok(!$r->cmd('EXISTS', '{v}:m:x1'), 'x1 never made it');

$res = import_file('dry.csv', "id\nzed\n", '--dry-run');
like($res->{out}, qr/1 members OK, nothing written/, '--dry-run');
ok(!$r->cmd('SISMEMBER', '{v}:members', 'zed'), '... wrote nothing');

############################################################ segments

sub seg {
    my $res = ctl($w, \%clock, qw(segment show), @_);
    is($res->{rc}, 0, "segment @_") or diag $res->{err};
    return join ' ', @{ lines($res->{out}) };
}

is(seg('all'), 'alice bob carol dave erin', 'all, sorted by id');
is(seg('tier:gold,platinum'), 'alice carol', 'tier');
is(seg('tags:coffee'), 'alice carol dave', 'tags');
is(seg('birth_month'), 'alice erin', 'born this month (March)');
is(seg('birth_month:4'), 'bob', 'born in April');
is(seg('list:bob,+66812345678,081-111-1111'), 'alice bob erin', 'ids and phone numbers');
is(seg('dormant:60'), 'bob erin', 'dormant 60 days');
is(seg('new:7'), 'alice carol dave', 'signed up within 7 days');
is(seg('top:2'), 'alice erin', 'top 2 by spend');
is(seg('tags:coffee & new:7 & top:1'), 'alice', 'rules combined');
is(seg('rfm:champions'), 'alice', 'RFM champions');

# the time zone decides the month at a month's edge: 2025-03-31T20:00Z
my %edge = (env => { VOUCHERD_FAKE_NOW => 1743451200 });
$res = ctl($w, \%edge, qw(segment show birth_month --tz +07:00));
is(join(' ', @{ lines($res->{out}) }), 'bob', 'in Bangkok it is April already');
$res = ctl($w, \%edge, qw(segment show birth_month));
is(join(' ', @{ lines($res->{out}) }), 'alice erin', 'in UTC still March');

$res = ctl($w, \%clock, ('segment', 'show', 'rfm:champions,hibernating', '--format', 'json'));
my $j = decode_json($res->{out});
is_deeply([map { [$_->{id}, $_->{rfm}{group}] } @$j],
          [['alice', 'champions'], ['bob', 'hibernating'], ['erin', 'hibernating']],
          'json carries the RFM group (alice R4F4M4, bob R2F1, erin R1F2)');
$res = ctl($w, \%clock, qw(segment show tier:silver --format csv));
like($res->{out}, qr/^id,name,phone,.*\nbob,"Bob, Jr",0899999999,/s, 'csv, quoted');

$res = ctl($w, qw(segment show everyone));
is($res->{rc}, 1, 'an unknown segment: refused');
like($res->{err}, qr/segment "everyone": unknown rule "everyone" \(known: all, tier/,
     '... with the list of rules');
$res = ctl($w, qw(segment show dormant:abc));
like($res->{err}, qr/dormant: expected days/, 'a bad argument');
$res = ctl($w, qw(segment show all --tz Mars));
is($res->{rc}, 2, 'a bad --tz');

############################################################ purchases, once each

sub purchase { $r->cmd('FCALL', 'voucher_member_purchase', 1, "{v}:m:$_[0]", @_[1 .. 3]) }
is(purchase('carol', '1000-0', 1742000000, 1500), 1, 'a purchase is applied');
is(purchase('carol', '1000-0', 1742000000, 1500), 0, 'the same event again: not applied');
is(purchase('carol', '999-5', 1741000000, 700), 0, 'an older event: not applied');
is(purchase('carol', '1000-1', 1741000000, 700), 1, 'a later event with an earlier time: applied');
my %c = @{ $r->cmd('HGETALL', '{v}:m:carol') };
is_deeply([@c{qw(count spend first last)}], [2, 2200, 1741000000, 1742000000],
          'count, spend, first and last purchase');
is(purchase('newbie', '1001-0', 1742000000, 100), 1, 'a purchase by an unknown customer');
ok($r->cmd('SISMEMBER', '{v}:members', 'newbie'), '... makes a member');
like('' . purchase('x', 'abc', 1, 1), qr/bad_args/, 'a bad event id');

$r->stop;
done_testing;
