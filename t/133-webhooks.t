#!/usr/bin/perl
#
# Outgoing webhooks against a real voucherd, Redis and an HTTP sink:
# subscriptions through the admin API (checked, audited without the
# secret); events from the audit trail (redeemed, rolled back,
# reservation confirmed and released), the admin stream (code issued),
# the delivery logs (delivery sent) and the loyalty notices; signed JSON
# (HMAC-SHA256 of "t.body") with the event id as Idempotency-Key, in
# order per subscription; retries with back-off; dead letters; a paused
# subscription; voucherd killed (-9) mid-stream: nothing lost, in order,
# at most the one event in flight twice.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex);
use Time::HiRes qw(sleep);
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $JSON = JSON::PP->new->utf8->canonical;
my $TOKEN = 'hooks-token-0123456789';
my $SECRET = 'crm-secret-0123456789';

my $w = worker_setup();
my $r = $w->redis;
write_text($w->dir . '/tokens', "ops $TOKEN\n");
chmod 0600, $w->dir . '/tokens';
write_text($w->dir . '/chan.secret', "chan-secret\n");
my $port = VT::free_port();
my $sink = SinkT::HTTP->start;
my $bad = SinkT::HTTP->start(control => { fail_all => 1, status => 400 });
my $chan = SinkT::HTTP->start;
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $w->dir . '/tokens' },
                daemon => { poll_ms => 100 }, delivery => { lease_s => 2 },
                webhooks => { attempts => 3, backoff_ms => 100, backoff_max_ms => 300 },
                channels => { hook => { type => 'webhook', url => $chan->url('/chan'),
                                        secret_file => $w->dir . '/chan.secret' } });
my $d = WorkerT::Daemon->start($w);

sub api {
    my ($method, $path, $body) = @_;
    my $res = VT::http($port, $method, $path, headers => { Authorization => "Bearer $TOKEN" },
                       (defined $body ? (body => $body) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') ne '';
    return $res;
}

sub refused {
    my ($res, $status, $reason, $name, $field) = @_;
    is($res->{status}, $status, "$name: $status") or diag $res->{body};
    is($res->{json}{reason}, $reason, "$name: $reason");
    is($res->{json}{field}, $field, "$name: field $field") if defined $field;
}

sub redeem {
    my ($code, $cust, $amount) = @_;
    my $x = $r->cmd('FCALL', 'voucher_redeem', 1, $w->key("c:$code"), $cust, $amount, 'THB',
                    "o-$code", '', 0);
    die "redeem $code: " . (ref $x ? $x->[0] : "$x") unless ref $x eq 'ARRAY' && $x->[0] eq 'ok';
    my $p = VT::ok_pairs($x);
    my %h = @$p[1 .. $#$p];
    return $h{redemption_id};
}

# the groups are made when the thread first meets the streams
ok(wait_until(sub {
    my $g = $r->cmd('XINFO', 'GROUPS', $w->key('log'));
    ref $g eq 'ARRAY' && grep { ref $_ eq 'ARRAY' && grep { defined && $_ eq 'webhooks' } @$_ } @$g;
}, timeout => 10), 'voucherd tails {v}:log with the group "webhooks"');

######################################################## subscriptions

my @TYPES = qw(redeemed rolled_back reservation_confirmed reservation_released code_issued delivery_sent);
my $res = api('POST', '/v1/webhooks', { id => 'crm', url => $sink->url('/hook'), secret => $SECRET,
                                        events => \@TYPES });
is($res->{status}, 201, 'a subscription') or diag $res->{body};
is_deeply([@{ $res->{json} }{qw(id url status)}, $res->{json}{events}],
          ['crm', $sink->url('/hook'), 'active', \@TYPES], '... as given');
ok(!exists $res->{json}{secret}, '... its secret not shown');
$res = api('POST', '/v1/webhooks', { url => $bad->url('/x'), events => '*' });
is($res->{status}, 201, 'a subscription with a secret made for it');
like($res->{json}{secret}, qr/^[0-9a-f]{32}$/, '... shown once');
my $badid = $res->{json}{id};
like($badid, qr/^wh[0-9a-f]{8}$/, "... and an id made: $badid");
ok(!exists api('GET', "/v1/webhooks/$badid")->{json}{secret}, '... never again');

refused(api('POST', '/v1/webhooks', { url => 'ftp://x/', secret => $SECRET, events => ['redeemed'] }),
        400, 'invalid_field', 'a URL that is not http(s)', 'url');
refused(api('POST', '/v1/webhooks', { url => $sink->url, secret => $SECRET, events => ['sold'] }),
        400, 'invalid_field', 'an unknown event type', 'events');
refused(api('POST', '/v1/webhooks', { url => $sink->url, secret => 'short', events => ['redeemed'] }),
        400, 'invalid_field', 'a short secret', 'secret');
refused(api('POST', '/v1/webhooks', { url => $sink->url, secret => $SECRET }),
        400, 'invalid_field', 'no events', 'events');
refused(api('POST', '/v1/webhooks', { id => 'crm', url => $sink->url, secret => $SECRET, events => '*' }),
        409, 'already_exists', 'the same id again');
refused(api('POST', '/v1/webhooks', { url => $sink->url, events => '*', colour => 1 }),
        400, 'unknown_field', 'an unknown field', 'colour');
refused(api('GET', '/v1/webhooks/nosuch'), 404, 'not_found', 'an unknown subscription');
refused(api('PATCH', '/v1/webhooks/crm', { status => 'sleeping' }), 400, 'invalid_field', 'a bad status',
        'status');
is(scalar(@{ api('GET', '/v1/webhooks')->{json}{items} }), 2, 'the list');
my @audit = map { { @{ $_->[1] } } } @{ $r->cmd('XREVRANGE', $w->key('admin'), '+', '-', 'COUNT', 20) };
my ($aud) = grep { $_->{op} eq 'webhook.create' && $_->{target} eq 'crm' } @audit;
ok($aud && $aud->{after} =~ /"url"/ && $aud->{after} !~ /secret|\Q$SECRET\E/, 'audited, without the secret');

######################################################## events, signed, in order

api('POST', '/v1/campaigns', { id => 'spring', kind => 'amount', value => 500 });
api('POST', '/v1/codes', { code => sprintf('C%02d', $_), campaign => 'spring' }) for 1 .. 20;
my @rid = map { redeem(sprintf('C%02d', $_), "cust$_", 10000 + $_) } 1 .. 20;
is($r->cmd('FCALL', 'voucher_rollback', 1, $w->key('log'), $rid[$_], '', '')->[0], 'ok', "rollback $_")
    for 0 .. 4;

ok($sink->wait_accepted(45, timeout => 30), '45 events arrived: 20 codes issued, 20 redeemed, 5 rolled back')
    or diag scalar($sink->accepted);
my @got = $sink->accepted;
my %types;
$types{ decode_json($_->{body})->{type} }++ for @got;
is_deeply(\%types, { code_issued => 20, redeemed => 20, rolled_back => 5 }, '... by type');

my $signed = 0;
for my $q (@got) {
    my ($t, $v1) = ($q->{headers}{'x-voucher-signature'} // '') =~ /^t=(\d+),v1=([0-9a-f]{64})$/ or next;
    $signed++ if $v1 eq hmac_sha256_hex("$t.$q->{body}", $SECRET) && abs($t - time) < 300;
}
is($signed, scalar @got, 'every one signed: HMAC-SHA256 of "t.body", t now');
is(scalar(grep { $_->{headers}{'idempotency-key'} eq decode_json($_->{body})->{id} } @got), scalar @got,
   '... the event id as Idempotency-Key');
is(scalar(grep { $_->{headers}{'x-voucher-event'} eq decode_json($_->{body})->{type} } @got), scalar @got,
   '... the type as X-Voucher-Event');

sub in_order {
    my (@ids) = @_;
    my %last;
    for (@ids) {
        my ($src, $ms, $seq) = /^(.*):(\d+)-(\d+)$/ or return 0;
        return 0 if $last{$src} && ($ms < $last{$src}[0] || $ms == $last{$src}[0] && $seq <= $last{$src}[1]);
        $last{$src} = [$ms, $seq];
    }
    return 1;
}
ok(in_order(map { decode_json($_->{body})->{id} } @got), '... in the order of their streams');

my ($red) = grep { $_->{type} eq 'redeemed' } map { decode_json($_->{body}) } @got;
is_deeply([@{ $red->{data} }{qw(code campaign customer amount discount currency held)}],
          ['C01', 'spring', 'cust1', 10001, 500, 'THB', JSON::PP::false], 'redeemed: what it carries');
is($red->{id}, "log:$rid[0]", '... its id: the redemption in the trail');
my ($rb) = grep { $_->{type} eq 'rolled_back' } map { decode_json($_->{body}) } @got;
is($rb->{data}{redemption}, $rid[0], 'rolled_back names the redemption');
my ($ci) = grep { $_->{type} eq 'code_issued' } map { decode_json($_->{body}) } @got;
is_deeply([@{ $ci->{data} }{qw(code campaign count by)}], ['C01', 'spring', 1, 'token:ops'],
          'code_issued: the code, its campaign, who');

# reservations: confirmed, released
for my $c ('C21', 'C22') {
    api('POST', '/v1/codes', { code => $c, campaign => 'spring' });
}
$sink->wait_accepted(47);
my $x = $r->cmd('FCALL', 'voucher_reserve', 1, $w->key('c:C21'), 60000, 'ann', 5000, 'THB', 'o-r1', '', 0);
my %h = @{ VT::ok_pairs($x) }[1 .. $#{ VT::ok_pairs($x) }];
$r->cmd('FCALL', 'voucher_confirm', 1, $w->key('log'), $h{redemption_id}, '');
$x = $r->cmd('FCALL', 'voucher_reserve', 1, $w->key('c:C22'), 60000, 'ben', 5000, 'THB', 'o-r2', '', 0);
my %h2 = @{ VT::ok_pairs($x) }[1 .. $#{ VT::ok_pairs($x) }];
$r->cmd('FCALL', 'voucher_release', 1, $w->key('log'), $h2{redemption_id}, '');
ok($sink->wait_accepted(51), 'reservations: two held redemptions, a confirm, a release');
my @last = map { decode_json($_->{body}) } ($sink->accepted)[-4 .. -1];
is_deeply([map { $_->{type} } @last], [qw(redeemed reservation_confirmed redeemed reservation_released)],
          '... in order');
ok($last[0]{data}{held}, '... a reserve is a held redemption');
is($last[1]{data}{redemption}, $h{redemption_id}, '... the confirm names it');
is($last[3]{data}{expired}, JSON::PP::false, '... released, not expired');

######################################################## a delivery sent

$res = api('PUT', '/v1/automations/spring', { trigger => { event => 'signup' }, issue => 'shared', code => 'C20',
                                              channel => 'hook', message => 'Hi {{code}}', segment => 'all' });
is($res->{status}, 200, 'an automation on a webhook channel') or diag $res->{body};
ok(wait_until(sub {
    my $g = $r->cmd('XINFO', 'GROUPS', $w->key('dl:spring'));
    ref $g eq 'ARRAY' && @$g;
}, timeout => 10), '... its delivery log tailed');
$r->cmd('XADD', $w->key('events'), '*', 'type', 'signup', 'member', 'amy', 'name', 'Amy');
ok($chan->wait_accepted(1), '... a delivery sent');
ok(wait_until(sub { grep { decode_json($_->{body})->{type} eq 'delivery_sent' } $sink->accepted }, timeout => 20),
   'delivery_sent arrived');
my ($ds) = grep { $_->{type} eq 'delivery_sent' } map { decode_json($_->{body}) } $sink->accepted;
is_deeply([@{ $ds->{data} }{qw(campaign member channel code attempt)}], ['spring', 'amy', 'hook', 'C20', 1],
          '... with the campaign, member, channel, code');
like($ds->{id}, qr/^dl:spring:\d+-\d+$/, '... its id');

######################################################## loyalty notices

$r->cmd('XADD', $w->key('events'), '*', 'type', 'tier_upgraded', 'member', 'amy', 'ts', 1742040000,
        'tier', 'gold', 'points', 1200);
$r->cmd('XADD', $w->key('events'), '*', 'type', 'points_expiring', 'member', 'amy', 'ts', 1742040000,
        'points', 300, 'expires_at', 1745000000);
sleep 1.5;    # taken from the stream while crm did not want them
api('PATCH', '/v1/webhooks/crm', { events => [@TYPES, 'tier_changed', 'points_expiring'] });
$r->cmd('XADD', $w->key('events'), '*', 'type', 'tier_downgraded', 'member', 'bob', 'ts', 1742040000,
        'tier', 'silver', 'points', 10);
ok(wait_until(sub { grep { decode_json($_->{body})->{type} eq 'tier_changed' } $sink->accepted }, timeout => 20),
   'tier_changed arrived once subscribed');
my @tc = grep { $_->{type} =~ /^(tier_changed|points_expiring)$/ } map { decode_json($_->{body}) } $sink->accepted;
is(scalar @tc, 1, '... events before the subscription wanted them were not queued for it');
is_deeply([@{ $tc[0]{data} }{qw(member tier direction points)}], ['bob', 'silver', 'down', 10],
          '... the member, the tier, the direction');

######################################################## retries, dead letters

my $before = scalar $sink->accepted;
$sink->control(fail_each => 2, status => 503);
api('POST', '/v1/codes', { code => "R$_", campaign => 'spring' }) for 1 .. 3;
ok($sink->wait_accepted($before + 3, timeout => 30), 'refused twice (503), then taken: every event');
my @r3 = grep { ($_->{headers}{'x-voucher-event'} // '') eq 'code_issued' } ($sink->requests)[-9 .. -1];
is(scalar @r3, 9, '... three attempts each');
my @keys = map { $_->{headers}{'idempotency-key'} } @r3;
is_deeply([@keys[0, 1, 2]], [($keys[0]) x 3], '... one at a time: the next only after the first was taken');
ok(in_order(map { decode_json($_->{body})->{id} } $sink->accepted), '... still in order');
like($d->log, qr/webhooks: crm: event \S+ attempt 1: .*HTTP 503.*; again later/, '... the retries logged');
$sink->control();

ok(wait_until(sub { api('GET', "/v1/webhooks/$badid")->{json}{dead} >= 3 }, timeout => 20),
   'a receiver that answers 400: its events are dead letters');
$res = api('GET', "/v1/webhooks/$badid/dead?limit=2");
is(scalar @{ $res->{json}{items} }, 2, '... listed, a page');
like($res->{json}{items}[0]{error}, qr/HTTP 400/, '... with the error');
ok($res->{json}{items}[0]{body} =~ /"type"/, '... and the event');
is(api('GET', "/v1/webhooks/$badid")->{json}{pending}, 0, '... and the outbox goes on');

######################################################## paused

api('PATCH', "/v1/webhooks/$badid", { status => 'paused' });
$before = scalar $sink->accepted;
my $badn = scalar $bad->requests;
api('PATCH', '/v1/webhooks/crm', { status => 'paused' });
redeem('C21', 'late', 100) if 0;
api('POST', '/v1/codes', { code => 'P1', campaign => 'spring' });
sleep 2;
is(scalar $sink->accepted, $before, 'a paused subscription gets nothing');
api('PATCH', '/v1/webhooks/crm', { status => 'active' });
api('POST', '/v1/codes', { code => 'P2', campaign => 'spring' });
ok($sink->wait_accepted($before + 1), 'resumed: the events after it');
sleep 1;
is((grep { $_->{body} =~ /"P1"/ } $sink->accepted), 0, '... not those of the pause');

######################################################## kill -9 mid-stream

api('DELETE', "/v1/webhooks/$badid");
refused(api('GET', "/v1/webhooks/$badid"), 404, 'not_found', 'a subscription deleted');
$before = scalar $sink->accepted;
$sink->control(delay_ms => 25);
api('POST', '/v1/codes', { code => sprintf('K%03d', $_), campaign => 'spring' }) for 1 .. 150;
my @k = map { redeem(sprintf('K%03d', $_), "k$_", 1000) } 1 .. 150;
ok($sink->wait_accepted($before + 40, timeout => 30), 'a stream of 300 events under way');
$d->_check_san;    # its log so far: a sanitizer build reports there
$d->kill9;
my $at = scalar $sink->accepted;
ok($at < $before + 300, "voucherd killed (-9) after " . ($at - $before) . " of them");
$sink->control();
$d = WorkerT::Daemon->start($w);
my @want = (map { "log:$_" } @k);
ok(wait_until(sub {
    my %seen = map { (decode_json($_->{body})->{id} => 1) } $sink->accepted;
    !grep { !$seen{$_} } @want;
}, timeout => 60), 'restarted: every event arrived, none lost');
my @ids = map { decode_json($_->{body})->{id} } grep { $_->{t} } ($sink->accepted)[$before .. scalar($sink->accepted) - 1];
my %n;
$n{$_}++ for @ids;
my @twice = grep { $n{$_} > 1 } keys %n;
ok(@twice <= 1, 'at most the event in flight twice: ' . (join(', ', @twice) || 'none'));
my %first;
my @order = grep { !$first{$_}++ } @ids;
ok(in_order(@order), '... and in order');
is(scalar(grep { /^admin:/ } @order), 150, '... the 150 codes issued');
is(scalar(grep { /^log:/ } @order), 150, '... the 150 redemptions');

is($d->stop, 0, 'voucherd stops');
done_testing;
