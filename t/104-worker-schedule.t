#!/usr/bin/perl
#
# voucherd, scheduled campaigns on a controllable clock: a daily campaign
# over three simulated days (webhook, signed; unique MAC'd codes; a
# restart in between sends nothing twice), and a birthday campaign across
# a month boundary in the campaign's time zone (sms gateway template).

use strict;
use warnings;
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP;
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $hook = SinkT::HTTP->start;
my $sms  = SinkT::HTTP->start;
my $tmp  = VT::tmp_root();
write_text("$tmp/hook.secret", "whsec-0123456789\n");
write_text("$tmp/sms.token", "sms-token-abcdef\n");

my $w = worker_setup(config => {
    log      => { level => 'debug' },
    daemon   => { poll_ms => 50 },
    delivery => { attempts => 3, backoff_ms => 100, lease_s => 5 },
    channels => {
        hook => { type => 'webhook', url => $hook->url('/hook'),
                  secret_file => "$tmp/hook.secret", timeout_ms => 3000 },
        sms  => { type => 'sms', url => $sms->url('/send'), token_file => "$tmp/sms.token",
                  from => 'SHOP', body => 'to={{to}}&text={{text}}&from={{from}}&ref={{id}}' },
    },
});
my $r = $w->redis;
my $dir = $w->dir;

sub utc { my ($y, $m, $d, $H, $M, $S) = @_; POSIX::mktime($S // 0, $M, $H, $d, $m - 1, $y - 1900) }
$ENV{TZ} = 'UTC';
POSIX::tzset();

my $clock = "$dir/now";
sub set_clock { write_text($clock, "$_[0]\n") }

# members
write_text("$dir/m.csv", <<'CSV');
id,name,phone,email,birthday,tier
alice,Alice,+66811111111,alice@example.com,1990-02-14,gold
bob,Bob,+66822222222,,1985-01-31,silver
carol,Carol,,carol@example.com,02-01,gold
dave,Dave,+66844444444,,,bronze
CSV
is(ctl($w, qw(members import), "$dir/m.csv")->{rc}, 0, 'members imported');

# a daily campaign, 09:00 Bangkok time (02:00 UTC)
is(ctl($w, qw(campaign set daily kind percent value 1000 tz_offset +07:00 name), 'Daily deal')->{rc},
   0, 'campaign daily');
write_text("$dir/daily.json", encode_json({
    schedule => 'daily 09:00',
    segment  => 'tier:gold,silver',
    per_member => 'every run',
    codes    => { prefix => 'DAY', length => 6, mac_length => 3, pattern => 'DAY-###-######',
                  max_uses => 1, valid_days => 2 },
    channel  => 'hook',
    message  => 'Hi {{name}}, {{code}} gives {{discount}} off until {{expires_at}}',
}));

# the automation is made on day 0 (14 Mar) at 12:00 UTC: day 0's run is
# before it and is not made up
set_clock(utc(2025, 3, 14, 12, 0));
my $res = ctl($w, {env => {VOUCHERD_FAKE_NOW => "\@$clock"}}, qw(auto set daily), "$dir/daily.json");
is($res->{rc}, 0, 'auto set') or diag $res->{err};

my $d = WorkerT::Daemon->start($w, env => {VOUCHERD_FAKE_NOW => "\@$clock"});
like($d->log, qr/started: .*fake clock/, 'started with the fake clock');

sleep 1;
is(scalar($hook->requests), 0, 'day 0: nothing (the run before the automation is not made)');

# day 1, 08:59:58 Bangkok: not yet
set_clock(utc(2025, 3, 15, 1, 59, 58));
sleep 1;
is(scalar($hook->requests), 0, 'day 1 08:59: nothing yet');

my %seen;
for my $day (1 .. 3) {
    set_clock(utc(2025, 3, 14 + $day, 2, 0, 1));
    ok($hook->wait_accepted(3 * $day), "day $day 09:00: the run is sent")
        or diag $d->log;
    sleep 1;
    my @req = $hook->requests;
    is(scalar @req, 3 * $day, "day $day: exactly 3 more requests (alice, bob, carol)");

    for my $q (@req[3 * ($day - 1) .. $#req]) {
        my $b = decode_json($q->{body});
        my $m = $b->{member}{id};
        ok(!$seen{"$day:$m"}++, "day $day: $m once");
        is($q->{path}, '/hook', 'POSTed to the webhook path');
        is($q->{headers}{'content-type'}, 'application/json', 'JSON');
        my ($t, $sig) = $q->{headers}{'x-voucher-signature'} =~ /^t=(\d+),v1=([0-9a-f]{64})$/;
        is($sig, hmac_sha256_hex("$t.$q->{body}", 'whsec-0123456789'), "signature of $m verifies");
        my $run = utc(2025, 3, 14 + $day, 2, 0);
        is($q->{headers}{'idempotency-key'}, "daily:$run:$m", 'idempotency key campaign:run:member');
        is($b->{id}, "daily:$run:$m", '... also in the body');
        like($b->{code}, qr/^DAY-[0-9A-Z]{3}-[0-9A-Z]{6}$/, "code in the pattern ($b->{code})");
        (my $stored = $b->{code}) =~ s/-//g;
        my %c = @{ $r->cmd('HGETALL', "{v}:c:$stored") };
        is_deeply([@c{qw(k c m t)}], ['daily', $m, 1, $run + 2 * 86400],
                  'stored for the member, single use, valid 2 days');
        is(ctl($w, qw(codes check), $b->{code}, qw(--prefix DAY --mac-length 3))->{rc}, 0,
           'its MAC checks');
        my $exp = $day + 16;
        like($b->{message}, qr/^Hi \w+, \Q$b->{code}\E gives 10% off until 2025-03-$exp$/,
             'the message rendered');
        is($b->{discount}, '10%', 'discount');
    }

    if ($day == 2) {
        # a restart in the middle of day 2: nothing sent again
        $d->stop;
        $d = WorkerT::Daemon->start($w, env => {VOUCHERD_FAKE_NOW => "\@$clock"});
        sleep 1;
        is(scalar($hook->requests), 6, 'after a restart on day 2: nothing more');
    }
}

my %codes;
for my $q ($hook->requests) {
    my $b = decode_json($q->{body});
    $codes{ $b->{member}{id} }{ $b->{code} } = 1;
}
is_deeply({ map { $_ => scalar keys %{ $codes{$_} } } keys %codes}, {alice => 3, bob => 3, carol => 3},
          'three different codes each, dave (bronze) none');

my $j = decode_json(ctl($w, qw(report daily --format json))->{out});
is_deeply([@$j{qw(issued delivered)}], [9, 3], 'report: 9 codes issued, 3 members reached');
is_deeply([map { $_->{deliveries} } @{ $j->{recipients} }], [3, 3, 3], '3 deliveries each');
is($r->cmd('ZCARD', '{v}:queue'), 0, 'the queue is empty');
my $a = decode_json(ctl($w, qw(auto get daily))->{out});
is($a->{last_run}, utc(2025, 3, 17, 2, 0), 'auto get: the last run');

############################################################ birthdays

# 06:00 Bangkok on the 1st: for February that is 31 Jan 23:00 UTC
is(ctl($w, qw(campaign set bday kind amount value 10000 currency THB tz_offset +07:00))->{rc}, 0,
   'campaign bday');
write_text("$dir/bday.json", encode_json({
    schedule => 'birthdays 06:00', segment => 'all', channel => 'sms', catch_up => JSON::PP::false,
    codes => { prefix => 'HBD', length => 6, charset => '0123456789', suffix => 'bk' },
    message => 'Happy birthday {{name}}! {{code}}: {{discount}} off',
}));
set_clock(utc(2025, 1, 20, 0, 0));
is(ctl($w, {env => {VOUCHERD_FAKE_NOW => "\@$clock"}}, qw(auto set bday), "$dir/bday.json")->{rc},
   0, 'auto set bday');

set_clock(utc(2025, 1, 31, 22, 59, 58));
sleep 1;
is(scalar($sms->requests), 0, '31 Jan 22:59 UTC (05:59 Bangkok, 1 Feb): nothing yet');

set_clock(utc(2025, 1, 31, 23, 0, 1));
ok($sms->wait_accepted(1), '1 Feb 06:00 Bangkok: the February birthdays') or diag $d->log;
sleep 1;
my @s = $sms->requests;
is(scalar @s, 1, 'one sms: alice (14 Feb); carol (1 Feb) has no phone, bob (31 Jan) is not '
   . 'February, dave has no birthday');
my $q = $s[0];
is($q->{headers}{authorization}, 'Bearer sms-token-abcdef', 'the gateway token');
is($q->{headers}{'content-type'}, 'application/x-www-form-urlencoded', 'a form');
my %form = map { my ($k, $v) = split /=/, $_, 2; $v =~ tr/+/ /; $v =~ s/%([0-9A-F]{2})/chr hex $1/gie; ($k, $v) }
           split /&/, $q->{body};
is($form{to}, '+66811111111', 'to: the phone number');
is($form{from}, 'SHOP', 'from');
like($form{text}, qr/^Happy birthday Alice! HBD[0-9]{12}BK: 100\.00 THB off$/,
     'text, URL-encoded; the code in digits (6 random, a 6-digit tag by default) with its suffix');
is($form{ref}, 'bday:' . utc(2025, 1, 31, 23, 0) . ':alice', 'the delivery id');

my @dl = @{ $r->cmd('XRANGE', '{v}:dl:bday', '-', '+') };
my %st;
for (@dl) { my %f = @{ $_->[1] }; push @{ $st{ $f{member} } }, $f{status} }
is_deeply(\%st, { alice => ['queued', 'sent'] },
          'delivery log: alice sent; carol (no phone number) not queued');
like($d->log, qr/campaign bday: run \d+ .*: 1 of 2 members queued, 0 held back by per_member, 1 without an address for sms/,
     '... the run says one member has no address');

# 1 March 06:00 Bangkok: nobody born in March
set_clock(utc(2025, 2, 28, 23, 0, 1));
sleep 1;
is(scalar($sms->requests), 1, '1 March: nobody born in March, nothing');

is($d->stop, 0, 'SIGTERM: exit 0');
like($d->log, qr/\[info\] voucherd\[\d+\]: stopped/, 'logged its stop');
unlike($d->log, qr/whsec-0123456789|sms-token-abcdef/, 'no secret in the log');
unlike($d->log, qr/\[error\]/, 'no error in the log') or diag $d->log;

done_testing;
