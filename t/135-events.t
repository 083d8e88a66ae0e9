#!/usr/bin/perl
#
# Storefront events over HTTP (voucher_api event) with real nginx, Redis
# and voucherd: a signup posted to nginx makes the member and fires a
# welcome automation to a webhook receiver; a purchase with items earns
# loyalty points by the earning rules; a replay answers the first answer
# (Idempotent-Replayed) and is consumed once; the same id with another
# body is event_conflict; a custom type lands and is acknowledged; every
# class of bad input is a 4xx with a stable reason, writes nothing and
# never reaches Redis; limits per API key; Redis away is 503.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use VoucherT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $hook = SinkT::HTTP->start;
my $tmp = VT::tmp_root();
write_text("$tmp/hook.secret", "hook-secret-135\n");

my $w = worker_setup(config => {
    log      => { level => 'info' },
    daemon   => { poll_ms => 50 },
    channels => { hook => { type => 'webhook', url => $hook->url('/hook'),
                            secret_file => "$tmp/hook.secret" } },
});
my $r = $w->redis;
my $dir = $w->dir;

my $ng = VT::Nginx->start(
    redis => $r,
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
EOT
    server => <<"EOT",
        location = /events { voucher_api event; }
        location = /small/events {
            voucher_api event;
            voucher_max_body_size 512;
        }
        location = /limited/events {
            voucher_api event;
            voucher_limit \$http_x_api_key rate=2r/m burst=1 name=shop;
        }
EOT
);

sub J { VT::json_body($_[0]) }
sub ev_post {
    my ($path, $body, %h) = @_;
    $body = JSON::PP->new->canonical->encode($body) if ref $body;
    return http($ng->port, 'POST', $path, body => $body,
                headers => { 'Content-Type' => 'application/json', %h });
}
sub fc { $r->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub entries_last_id { $r->cmd('XRANGE', '{v}:events', '-', '+')->[-1][0] }
sub entries { [map { +{ @{ $_->[1] } } } @{ $r->cmd('XRANGE', '{v}:events', '-', '+') }] }

# a welcome automation on signup, by webhook; a loyalty programme
ctl($w, qw(campaign set welcome kind amount value 5000 currency THB));
write_text("$dir/welcome.json", encode_json({
    trigger => { event => 'signup' }, codes => { length => 6 }, channel => 'hook',
    message => 'Welcome {{name}}: {{code}}' }));
is(ctl($w, qw(auto set welcome), "$dir/welcome.json")->{rc}, 0, 'a welcome automation');
is(fc('voucher_loyalty_set', '{v}:lp', every => 2500, points => 1,
      exclude_categories => 'gift'), 'OK', 'a programme: a point per 25 THB, gifts earn nothing');

my $d = WorkerT::Daemon->start($w);

# --- a signup over HTTP: consumed by voucherd, a webhook arrives ------------
my $signup = { id => 'ev-signup-1', type => 'signup', customer => 'mali',
               data => { name => 'Mali', email => 'mali@example.com', phone => '081-234-5678' } };
my $res = ev_post('/events', $signup);
is($res->{status}, 200, 'a signup: 200') or diag $res->{body};
my $a = J($res);
is($a->{accepted}, JSON::PP::true(), '... "accepted":true');
is($a->{id}, 'ev-signup-1', '... its id');
is($a->{type}, 'signup', '... its type');
like($a->{entry}, qr/^\d+-\d+$/, '... the stream entry');
ok(!exists $res->{headers}{'idempotent-replayed'}, '... not a replay');
my $e = entries()->[-1];
is_deeply([@$e{qw(type member id name email phone)}],
          ['signup', 'mali', 'ev-signup-1', 'Mali', 'mali@example.com', '081-234-5678'],
          'the stream entry as voucherd reads it');
like($e->{ts}, qr/^\d{10}$/, '... ts: Redis time when absent');
ok($hook->wait_accepted(1, timeout => 20), 'the welcome webhook arrived') or diag $d->log;
my @h = $hook->requests;
my $msg = decode_json($h[0]{body});
like($msg->{message}, qr/^Welcome Mali: [0-9A-Z]{6,}$/, '... with the member\'s name and a code');
is($r->cmd('HGET', '{v}:m:mali', 'phone'), '0812345678', 'the member was made');

# --- the same event again: the first answer, consumed once ----------------
$res = ev_post('/events', $signup);
is($res->{status}, 200, 'a replay: 200');
is($res->{headers}{'idempotent-replayed'}, 'true', '... Idempotent-Replayed: true');
is(J($res)->{entry}, $a->{entry}, '... the same entry');
ok(!exists J($res)->{replayed}, '... "replayed" is a header, not body');
is(scalar @{ entries() }, 1, 'nothing appended');
ok(VT::wait_until(sub { $d->log =~ /welcome: member mali queued|member mali/ }, timeout => 5),
   'voucherd saw the event');
sleep 1;
is(scalar($hook->requests), 1, 'one webhook: the replay triggered nothing');

# --- the same id, another body: a conflict, nothing written -----------------
$res = ev_post('/events', { %$signup, data => { name => 'Somchai' } });
is($res->{status}, 422, 'the same id with another body: 422');
is(J($res)->{reason}, 'event_conflict', '... event_conflict');
is(J($res)->{id}, 'ev-signup-1', '... naming the id');
is(J($res)->{accepted}, JSON::PP::false(), '... "accepted":false');
is(scalar @{ entries() }, 1, '... nothing appended');
is($r->cmd('TTL', '{v}:ev:ev-signup-1') > 86000 ? 1 : 0, 1,
   'the record lives idem_ttl (a day by default)');

# --- a purchase with items earns by the earning rules, once ----------------
my $purchase = { id => 'ev-buy-1', type => 'purchase', customer => 'mali', timestamp => 1796000000,
                 order => { id => 'o-1001', amount => 300000, currency => 'THB',
                            items => [{ sku => 'RICE', category => 'food', price => 250000, quantity => 1 },
                                      { sku => 'CARD', category => 'gift', price => 50000, quantity => 1 }] } };
$res = ev_post('/events', $purchase);
is($res->{status}, 200, 'a purchase: 200') or diag $res->{body};
$e = entries()->[-1];
is_deeply([@$e{qw(type member id ts amount order currency)}],
          ['purchase', 'mali', 'ev-buy-1', 1796000000, 300000, 'o-1001', 'THB'],
          'the purchase as voucherd reads it');
is($e->{items}, "RICE\tfood\t250000\t1\nCARD\tgift\t50000\t1", '... its items, a line each');
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:lm:mali', 'act') // 0) > 0 }, timeout => 10),
   'the purchase earned points') or diag $d->log;
is($r->cmd('HGET', '{v}:lm:mali', 'act'), 100, '... 100: the gift card earns nothing (items reached the rules)');
is(ev_post('/events', $purchase)->{headers}{'idempotent-replayed'}, 'true', 'the purchase replayed');
is(fc('voucher_loyalty_earn', '{v}:lm:mali', 'o-1001', 300000, 0)->[0], 'already_earned',
   'the order has earned, once');
$res = ev_post('/events', { %$purchase, id => 'ev-buy-2' });
is($res->{status}, 200, 'the same order under another event id: accepted');
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:m:mali', 'spend') // 0) == 600000 }, timeout => 10),
   '... consumed: the member history counts each event once') or diag $d->log;
is($r->cmd('HGET', '{v}:lm:mali', 'act'), 100, '... and it earns nothing more (one order, one accrual)');

# --- cart_abandoned, referral and a custom type ---------------------------
for my $t (qw(cart_abandoned referral wishlist_added)) {
    $res = ev_post('/events', { id => "ev-$t", type => $t, customer => 'mali' });
    is($res->{status}, 200, "$t: 200");
    is(entries()->[-1]{type}, $t, "... in the stream");
}
ok(VT::wait_until(sub { $r->cmd('XPENDING', '{v}:events', 'voucherd')->[0] == 0
                        && $r->cmd('XINFO', 'GROUPS', '{v}:events')->[0][7] eq entries_last_id() },
                  timeout => 10),
   'all consumed and acknowledged') or diag explain $r->cmd('XINFO', 'GROUPS', '{v}:events');
unlike($d->log, qr/unknown type "wishlist_added"/, 'a custom type is no warning');

# --- bad input: a 4xx with a stable reason, nothing written, no Redis call ---
# (voucherd, whose own calls Redis counts too, has done its part)
$d->stop;
my $long = { id => 'ev-long', type => 'signup', customer => 'mali', data => { name => 'x' x 600 } };
my @bad = (
    ['GET', 405, 'method_not_allowed', method => 'GET'],
    ['no content type', 415, 'unsupported_media_type', raw => '{}', ctype => undef],
    ['a huge body', 413, 'body_too_large', json => $long, path => '/small/events'],
    ['malformed JSON', 400, 'invalid_json', raw => '{"id":'],
    ['an array', 400, 'invalid_request', raw => '[]'],
    ['a key twice', 400, 'duplicate_field', raw => '{"id":"a","id":"b","type":"signup","customer":"c"}'],
    ['an unknown field', 400, 'unknown_field', json => { id => 'a', type => 'signup', customer => 'c', coupon => 1 }],
    ['an unknown data field', 400, 'unknown_field',
        json => { id => 'a', type => 'signup', customer => 'c', data => { colour => 'red' } }],
    ['no id', 400, 'missing_field', json => { type => 'signup', customer => 'c' }],
    ['no type', 400, 'missing_field', json => { id => 'a', customer => 'c' }],
    ['no customer', 400, 'missing_field', json => { id => 'a', type => 'signup' }],
    ['an id of 65', 400, 'invalid_field', json => { id => 'x' x 65, type => 'signup', customer => 'c' }],
    ['an id with a space', 400, 'invalid_field', json => { id => 'a b', type => 'signup', customer => 'c' }],
    ['an id as a number', 400, 'invalid_field', json => { id => 7, type => 'signup', customer => 'c' }],
    ['a type in capitals', 400, 'invalid_field', json => { id => 'a', type => 'Signup', customer => 'c' }],
    ['a type with a dash', 400, 'invalid_field', json => { id => 'a', type => 'sign-up', customer => 'c' }],
    ['a type of 41', 400, 'invalid_field', json => { id => 'a', type => 'a' x 41, customer => 'c' }],
    ['a loyalty notice', 400, 'invalid_field', json => { id => 'a', type => 'tier_upgraded', customer => 'c' }],
    ['a customer with a space', 400, 'invalid_field', json => { id => 'a', type => 'signup', customer => 'c d' }],
    ['a timestamp as text', 400, 'invalid_field',
        json => { id => 'a', type => 'signup', customer => 'c', timestamp => '1796000000' }],
    ['a timestamp in ms', 400, 'invalid_field',
        raw => '{"id":"a","type":"signup","customer":"c","timestamp":1796000000000000}'],
    ['a negative timestamp', 400, 'invalid_field',
        raw => '{"id":"a","type":"signup","customer":"c","timestamp":-1}'],
    ['a purchase without its order', 400, 'missing_field', json => { id => 'a', type => 'purchase', customer => 'c' }],
    ['an amount as a float', 400, 'invalid_field',
        raw => '{"id":"a","type":"purchase","customer":"c","order":{"amount":1.5}}'],
    ['an amount as text', 400, 'invalid_field',
        json => { id => 'a', type => 'purchase', customer => 'c', order => { amount => '100' } }],
    ['an item without a price', 400, 'missing_field',
        json => { id => 'a', type => 'purchase', customer => 'c', order => { items => [{ sku => 'A' }] } }],
    ['an order on a signup', 400, 'invalid_field',
        json => { id => 'a', type => 'signup', customer => 'c', order => { amount => 1 } }],
    ['data on a purchase', 400, 'invalid_field',
        json => { id => 'a', type => 'purchase', customer => 'c', order => { amount => 1 }, data => {} }],
    ['data as a list', 400, 'invalid_field', json => { id => 'a', type => 'signup', customer => 'c', data => [] }],
    ['a data value as a number', 400, 'invalid_field',
        json => { id => 'a', type => 'signup', customer => 'c', data => { name => 5 } }],
    ['a data value with a control character', 400, 'invalid_field',
        json => { id => 'a', type => 'signup', customer => 'c', data => { name => "a\x01" } }],
    ['a data value of 129 bytes', 400, 'invalid_field',
        json => { id => 'a', type => 'signup', customer => 'c', data => { name => 'x' x 129 } }],
    ['a referral code on a cart', 400, 'invalid_field',
        json => { id => 'a', type => 'cart_abandoned', customer => 'c', referral_code => 'ABC' }],
);

my $before = scalar @{ entries() };
my $keys = $r->cmd('DBSIZE');
my $calls = $r->hot_calls;
for my $b (@bad) {
    my ($name, $status, $reason, %o) = @$b;
    my %h;
    my $body;
    if (exists $o{json}) {
        $body = JSON::PP->new->canonical->encode($o{json});
        $h{'Content-Type'} = 'application/json';
    } elsif (exists $o{raw}) {
        $body = $o{raw};
        $h{'Content-Type'} = 'application/json' if !exists $o{ctype};
    }
    my $x = http($ng->port, $o{method} // 'POST', $o{path} // '/events', headers => \%h,
                 defined $body ? (body => $body) : ());
    is($x->{status}, $status, "$name: $status");
    is((J($x) // {})->{reason}, $reason, "$name: $reason");
}
is(scalar @{ entries() }, $before, 'bad input appended nothing');
is($r->cmd('DBSIZE'), $keys, '... and wrote no key');
is($r->hot_calls, $calls, '... and never reached Redis');

$res = ev_post('/events', { id => 'a', type => 'signup', customer => 'c', data => { colour => 'red' } });
is(J($res)->{field}, 'data.colour', 'the wrong field is named (data.colour)');

# --- limits per API key ------------------------------------------------------
my @s = map { ev_post('/limited/events', { id => "lim-$_", type => 'cart_abandoned', customer => 'mali' },
                   'X-Api-Key' => 'shop-1')->{status} } 1 .. 3;
is_deeply(\@s, [200, 200, 429], 'a rate per API key: 2 pass, then 429');
$res = ev_post('/limited/events', { id => 'lim-4', type => 'cart_abandoned', customer => 'mali' },
            'X-Api-Key' => 'shop-1');
is(J($res)->{reason}, 'rate_limited', '... rate_limited');
is(J($res)->{limit}, 'shop', '... naming the limit');
ok(!exists J($res)->{code}, '... no code in it');
is(scalar(grep { $_->{id} =~ /^lim-[34]$/ } @{ entries() }), 0, '... and the refused ones were not appended');
is(ev_post('/limited/events', { id => 'lim-5', type => 'cart_abandoned', customer => 'mali' },
        'X-Api-Key' => 'shop-2')->{status}, 200, 'another key has its own rate');

# --- Redis away: 503 --------------------------------------------------------
$r->stop;
$res = ev_post('/events', { id => 'ev-away', type => 'referral', customer => 'mali' });
is($res->{status}, 503, 'Redis away: 503');
is(J($res)->{reason}, 'store_unavailable', '... store_unavailable');

$ng->stop;
done_testing;
