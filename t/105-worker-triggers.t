#!/usr/bin/perl
#
# voucherd, triggers and channels: events from the {v}:events stream
# (consumer group), a cart_abandoned trigger with a delay cancelled by a
# purchase (LINE push), a signup welcome by email (SMTP), a channel that
# fails twice then succeeds, dead letters, SIGHUP (reload, and a bad
# configuration refused), SIGTERM finishing the delivery in hand, and the
# log file with levels.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $line = SinkT::HTTP->start(control => { dedupe => 1 });
my $hook = SinkT::HTTP->start;
my $hook2 = SinkT::HTTP->start;
my $smtp = SinkT::SMTP->start;
my $tmp  = VT::tmp_root();
write_text("$tmp/line.token", "line-channel-token-xyz\n");
write_text("$tmp/hook.secret", "hook-secret-123\n");
write_text("$tmp/smtp.pw", "smtp-password-789\n");

my %channels = (
    line => { type => 'line', url => $line->url('/v2/bot/message/push'),
              token_file => "$tmp/line.token" },
    hook => { type => 'webhook', url => $hook->url('/hook'), secret_file => "$tmp/hook.secret",
              timeout_ms => 2000 },
    mail => { type => 'email', url => $smtp->url, from => 'shop@example.com', user => 'shop',
              password_file => "$tmp/smtp.pw", subject => 'A gift from the shop' },
);

my $w = worker_setup(config => {
    log      => { level => 'info' },
    daemon   => { poll_ms => 50 },
    delivery => { attempts => 3, backoff_ms => 200, backoff_max_ms => 1000, lease_s => 5 },
    channels => \%channels,
});
$w->{config}{log}{file} = $w->dir . '/voucherd.log';
$w->reconfigure(log => $w->{config}{log});
my $r = $w->redis;
my $dir = $w->dir;
my $logfile = "$dir/voucherd.log";

my $clock = "$dir/now";
sub set_clock { write_text($clock, "$_[0]\n") }
my %fake = (env => { VOUCHERD_FAKE_NOW => "\@$clock" });
my $T = 1742040000;              # 2025-03-15T12:00:00Z
set_clock($T);

sub event { my ($type, $m, %f) = @_; $r->cmd('XADD', '{v}:events', '*', type => $type, member => $m, %f) }
sub dlog {
    my ($camp) = @_;
    my %st;
    for (@{ $r->cmd('XRANGE', "{v}:dl:$camp", '-', '+') }) {
        my %f = @{ $_->[1] };
        push @{ $st{ $f{member} } }, $f{status};
    }
    return \%st;
}
# these automations repeat for a member (the default is once per member)
sub auto_set {
    my ($camp, $def) = @_;
    $def = { per_member => 'every run', %$def };
    write_text("$dir/$camp.json", encode_json($def));
    my $res = ctl($w, \%fake, qw(auto set), $camp, "$dir/$camp.json");
    is($res->{rc}, 0, "auto set $camp") or diag $res->{err};
}

write_text("$dir/m.csv", "id,name,line,email\nalice,Alice,Ualice,alice\@example.com\n"
                         . "bob,Bob,Ubob,bob\@example.com\ncarol,Carol,,\n");
ctl($w, qw(members import), "$dir/m.csv");

# --- automation definitions are checked before they are stored
ctl($w, qw(campaign set cart kind percent value 500));
for my $case (
    [{ trigger => { event => 'cart_abandoned' }, channel => 'fax', message => 'x' },
     qr/channel: "fax" is not in the configuration's channels/],
    [{ trigger => { event => 'cart_abandoned' }, channel => 'line', message => 'Hi {{nmae}}' },
     qr/template: unknown field "nmae" \(known: name, code/],
    [{ trigger => { event => 'checkout' }, channel => 'line', message => 'x' },
     qr/trigger\.event: expected signup, purchase, cart_abandoned, referral, tier_upgraded, .* or referral_converted/],
    [{ trigger => { event => 'cart_abandoned', delay => '2 hours' }, channel => 'line', message => 'x' },
     qr/trigger\.delay: expected seconds or 90s/],
    [{ schedule => 'daily 09:00', channel => 'line', message => 'x' }, qr/segment: required/],
    [{ schedule => 'daily 9', segment => 'all', channel => 'line', message => 'x' },
     qr/schedule "daily 9": expected a time HH:MM/],
    [{ schedule => 'daily 09:00', segment => 'vips', channel => 'line', message => 'x' },
     qr/segment "vips": unknown rule "vips"/],
    [{ trigger => { event => 'signup' }, segment => 'top:5', channel => 'line', message => 'x' },
     qr/rfm and top rank all members; they work with a schedule/],
    [{ trigger => { event => 'signup' }, issue => 'shared', channel => 'line', message => 'x' },
     qr/code: required with "issue": "shared"/],
    [{ trigger => { event => 'signup' }, channel => 'line', message => 'x', colour => 'red' },
     qr/unknown field "colour"/],
    [{ trigger => { event => 'signup' }, channel => 'line', message => 'x',
       codes => { length => 6, mac_length => 2, pattern => 'X-####' } }, qr/codes\.pattern: must be/],
    [{ trigger => { event => 'signup' }, channel => 'line', message => 'x',
       codes => { charset => 'ABCO' } }, qr/codes\.charset: .*no I, L, O, U/],
    [{ trigger => { event => 'signup' }, channel => 'line', message => 'x',
       codes => { charset => '0123456789', length => 4 } }, qr/codes\.length: too short for the charset/],
    [{ trigger => { event => 'signup' }, channel => 'line', message => 'x',
       codes => { length => 6, mac_length => 2, suffix => 'TH', pattern => '####-####-XX' } },
     qr/codes\.pattern: must be/],
) {
    my ($def, $re) = @$case;
    write_text("$dir/bad.json", encode_json($def));
    my $res = ctl($w, qw(auto set cart), "$dir/bad.json");
    is($res->{rc}, 1, 'a bad automation is refused');
    like($res->{err}, qr/automation of campaign "cart": .*$re/, '... saying why');
}
write_text("$dir/bad.json", '{"trigger": ');
like(ctl($w, qw(auto set cart), "$dir/bad.json")->{err}, qr/line 1 column \d+/, 'bad JSON: where');
like(ctl($w, qw(auto set nocampaign), "$dir/m.csv")->{err}, qr/automation of campaign/, 'not JSON');
write_text("$dir/ok.json", encode_json({ trigger => { event => 'signup' }, channel => 'line',
                                         message => 'x' }));
like(ctl($w, qw(auto set nocampaign), "$dir/ok.json")->{err}, qr/campaign: not found/,
     'an automation needs its campaign');
is($r->cmd('EXISTS', '{v}:autos'), 0, 'nothing stored');

# --- cart abandoned, 2 hours, unless they buy
auto_set(cart => {
    trigger => { event => 'cart_abandoned', delay => '2h', unless => 'purchase' },
    codes   => { prefix => 'CART', length => 6, mac_length => 2 },
    channel => 'line',
    message => '{{name}}, your cart misses you: {{code}} for {{discount}} off',
});
# --- a welcome email with a shared code on signup
ctl($w, qw(campaign set welcome kind amount value 10000 currency THB));
write_text("$dir/welcome.csv", "code\nWELCOME-10\n");
ctl($w, qw(codes import), "$dir/welcome.csv", qw(--campaign welcome));
auto_set(welcome => {
    trigger => { event => 'signup' }, issue => 'shared', code => 'WELCOME-10', channel => 'mail',
    subject => 'Welcome, {{name}} ✓', message => "Hello {{name}},\nuse {{code}} for {{discount}} off.\n.\n",
});

my $d = WorkerT::Daemon->start($w, %fake);

event('cart_abandoned', 'alice', ts => $T);
event('cart_abandoned', 'bob', ts => $T);
event('purchase', 'alice', ts => $T + 3600, amount => 125000);
event('signup', 'dave', ts => $T, name => 'Dave', email => 'dave@example.com', phone => '081-555-0000');

ok($smtp->wait_accepted(1), 'the signup welcome mail went out') or diag $d->log;
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:m:alice', 'last') // 0) == $T + 3600 }),
   "alice's purchase updated her history");
is($r->cmd('HGET', '{v}:m:alice', 'spend'), 125000, '... spend');
is($r->cmd('HGET', '{v}:m:dave', 'phone'), '0815550000', 'the signup made member dave');
sleep 1;
is(scalar($line->requests), 0, 'no LINE message before 2 hours');

set_clock($T + 7201);
ok($line->wait_accepted(1), '2 hours later: one LINE message') or diag $d->log;
sleep 1;
my @l = $line->requests;
is(scalar @l, 1, 'only one: alice bought meanwhile');
my $b = decode_json($l[0]{body});
is($b->{to}, 'Ubob', 'to bob');
like($b->{messages}[0]{text}, qr/^Bob, your cart misses you: CART[0-9A-Z]{8} for 5% off$/, 'the text');
is($b->{messages}[0]{type}, 'text', 'a text message');
is($l[0]{headers}{authorization}, 'Bearer line-channel-token-xyz', 'the channel token');
like($l[0]{headers}{'x-line-retry-key'}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
     'X-Line-Retry-Key is a UUID');
is_deeply(dlog('cart'), { alice => ['queued', 'cancelled'], bob => ['queued', 'sent'] },
          'delivery log: alice cancelled, bob sent');
is_deeply($r->cmd('ZRANGE', '{v}:w:bob', 0, -1), [$b->{messages}[0]{text} =~ /(CART[0-9A-Z]{8})/],
          "the code sent to bob is in his wallet");
is($r->cmd('EXISTS', '{v}:w:alice'), 0, "alice's cancelled delivery left her wallet empty");
ok(VT::wait_until(sub { @{ $r->cmd('ZRANGE', '{v}:w:dave', 0, -1) } }),
   "the shared welcome code is in dave's wallet");
is_deeply($r->cmd('ZRANGE', '{v}:w:dave', 0, -1), ['WELCOME10'], '... WELCOME10');

my @m = $smtp->requests;
is(scalar @m, 1, 'one mail');
is_deeply($m[0]{rcpt}, ['<dave@example.com>'], 'to dave');
is($m[0]{from}, '<shop@example.com>', 'from the shop');
like($m[0]{data}, qr/^Subject: =\?UTF-8\?B\?[A-Za-z0-9+\/=]+\?=\r$/m, 'a UTF-8 subject, encoded');
like($m[0]{data}, qr/^Message-ID: <[0-9a-f]{24}\@voucherd>\r$/m, 'a Message-ID from the delivery id');
like($m[0]{data}, qr/\r\n\r\nHello Dave,\r\nuse WELCOME10 for 100\.00 THB off\.\r\n\.\r\n/,
     'the body, CRLF, a lone dot kept');

# --- an event with its own id, appended twice (a storefront retry)
event('cart_abandoned', 'bob', ts => $T + 7200, id => 'cart-77');
event('cart_abandoned', 'bob', ts => $T + 7200, id => 'cart-77');
set_clock($T + 7200 + 7201);
ok($line->wait_accepted(2), 'bob abandons again: a message 2 hours later');
sleep 1;
is(scalar($line->requests), 2, 'once, though the event came twice (same id)');
is_deeply(dlog('cart')->{bob}, [qw(queued sent queued sent)], 'two runs for bob, one each');
$T += 7200;

# --- a channel that fails twice, then works
ctl($w, qw(campaign set ref kind amount value 100));
$hook->control(fail_each => 2, status => 503);
auto_set(ref => { trigger => { event => 'referral' }, codes => { length => 6 },
                  channel => 'hook', message => 'Thanks {{name}}: {{code}}' });
event('referral', 'carol');
ok($hook->wait_accepted(1, timeout => 20), 'the webhook works on the third attempt') or diag $d->log;
my @h = $hook->requests;
is_deeply([map { $_->{status} } @h], [503, 503, 200], '503, 503, 200');
is(scalar(keys %{{ map { $_->{key} => 1 } @h }}), 1, 'the same idempotency key each time');
ok($h[1]{t} - $h[0]{t} >= 0.18 && $h[2]{t} - $h[1]{t} >= 0.38,
   sprintf('backing off: %.2fs then %.2fs', $h[1]{t} - $h[0]{t}, $h[2]{t} - $h[1]{t}));
is_deeply(dlog('ref')->{carol}, [qw(queued failed failed sent)], 'delivery log: failed, failed, sent');

# --- always failing: a dead letter after 3 attempts; a 4xx: at once
$hook->control(fail_each => 100, status => 500);
event('referral', 'alice');
ok(VT::wait_until(sub { $r->cmd('XLEN', '{v}:dead') >= 1 }, timeout => 20), 'a dead letter');
is_deeply(dlog('ref')->{alice}, [qw(queued failed failed dead)], 'failed, failed, dead');
my %dead = @{ $r->cmd('XRANGE', '{v}:dead', '-', '+')->[0][1] };
is_deeply([@dead{qw(campaign member channel attempt)}], ['ref', 'alice', 'hook', 3],
          'the dead letter says what, to whom, how often');
like($dead{error}, qr/^channel hook: HTTP 500: \{"error":"sink says 500"\}$/, '... and why');

$hook->control(fail_all => 1, status => 422);
event('referral', 'bob');
ok(VT::wait_until(sub { $r->cmd('XLEN', '{v}:dead') >= 2 }, timeout => 20), 'a 422 is final');
is_deeply(dlog('ref')->{bob}, [qw(queued dead)], '... no retry');
$hook->control();

# --- SIGHUP: a new webhook URL; then a bad configuration is refused
$w->{config}{channels}{hook}{url} = $hook2->url('/v2');
$w->reconfigure(channels => $w->{config}{channels});
$d->hup;
ok(VT::wait_until(sub { (read_text($logfile) // '') =~ /configuration .* reloaded/ }), 'SIGHUP: reloaded');
event('referral', 'dave');
ok($hook2->wait_accepted(1), 'the next delivery goes to the new URL');
is(($hook2->requests)[0]{path}, '/v2', '... its path');

write_text($w->conf, '{"redis": {"address": "127.0.0.1:1"}, "colour": 1}');
$d->hup;
ok(VT::wait_until(sub { (read_text($logfile) // '') =~ /reload refused, the configuration in use stays: .*unknown field "colour"/ }),
   'a bad configuration on SIGHUP is refused, with the reason');
$w->reconfigure(channels => $w->{config}{channels});
event('referral', 'carol');
ok($hook2->wait_accepted(2), 'and the daemon works on, with the old one');

# --- SIGTERM finishes the delivery in hand
is(ctl($w, qw(auto del ref))->{out}, "deleted\n", 'auto del: ref no longer triggers');
is(ctl($w, qw(auto list))->{out}, "cart\nwelcome\n", 'auto list');
sleep 1;
$hook2->control(delay_ms => 1500);
ctl($w, qw(campaign set slow kind amount value 1));
auto_set(slow => { trigger => { event => 'referral' }, codes => { length => 6 },
                   channel => 'hook', message => '{{code}}' });
event('referral', 'alice', id => 'slow-1');
event('referral', 'bob', id => 'slow-2');
ok(VT::wait_until(sub { join('', @{ $r->cmd('HVALS', '{v}:d:slow:e:slow-1') },
                             @{ $r->cmd('HVALS', '{v}:d:slow:e:slow-2') }) =~ /sending/ },
                  timeout => 10), 'a slow delivery is in hand');
my $t0 = VT::now();
my $st = $d->stop(timeout => 10);
is($st, 0, 'SIGTERM: exit 0');
ok(VT::now() - $t0 < 3, 'within the delivery in hand');
my $slow = dlog('slow');
is(scalar(grep { $_->[-1] eq 'sent' } values %$slow), 1, 'the delivery in hand was finished and recorded');
is(scalar(grep { $_->[-1] eq 'queued' } values %$slow), 1, 'the other is still queued, not lost');
$hook2->control();
$d = WorkerT::Daemon->start($w, %fake);
ok(VT::wait_until(sub { my $s = dlog('slow'); 2 == grep { $_->[-1] eq 'sent' } values %$s }),
   'restarted: the other is sent too');
$d->stop;

# --- the log: levels, to the file, no secrets
my $log = read_text($logfile);
like($log, qr/^\S+Z \[info\] voucherd\[\d+\]: started/m, 'the log file has info lines');
like($log, qr/\[warn\] voucherd\[\d+\]: campaign ref: run e\S+: member alice: attempt 1 of 3 failed/,
     'warnings for failed attempts');
like($log, qr/\[error\] voucherd\[\d+\]: reload refused/, 'errors');
unlike($log, qr/\[debug\]/, 'no debug lines at level info');
unlike($log, qr/line-channel-token-xyz|hook-secret-123|smtp-password-789/, 'no secret in the log');
is($d->log, '', 'nothing on stderr when logging to a file');

done_testing;
