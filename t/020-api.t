# The JSON API through nginx: answers, statuses, headers, and every class
# of bad input refused with a stable reason and nothing changed in Redis.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(
    server => api_server() . <<'EOT');
        location = /small/redeem { voucher_api redeem; voucher_max_body_size 200; }
        location = /short/validate { voucher_api validate; voucher_code_max_length 8; }
EOT

my $now = redis_now($redis);
campaign($redis, 'c10', kind => 'percent', value => 1000, cap => 5000,
         currency => 'THB', code_max_uses => 3);
code($redis, 'TEN-OFF', campaign => 'c10');

my $order = {amount => 20000, currency => 'THB'};

# --- validate ---------------------------------------------------------------
my $res = post($ng, 'validate', {code => 'TEN-OFF', customer => 'u1', order => $order});
is($res->{status}, 200, 'validate: 200');
is($res->{headers}{'content-type'}, 'application/json', 'validate: JSON');
is($res->{headers}{'cache-control'}, 'no-store', 'validate: no-store');
is_deeply([@{ $res->{json} }{qw(valid code campaign discount order_amount amount_after uses_left)}],
          [JSON::PP::true(), 'TENOFF', 'c10', 2000, 20000, 18000, 3],
          'validate: discount and what is left');
is($res->{json}{computation}{kind}, 'percent', 'validate: how it was computed');
is($res->{json}{computation}{percent_bp}, 1000, 'validate: percent in basis points');
is($redis->cmd('HGET', '{v}:c:TENOFF', 'u') // 0, 0, 'validate redeems nothing');

# --- redeem -----------------------------------------------------------------
$res = post($ng, 'redeem', {code => 'TEN-OFF', customer => 'u1',
                            idempotency_key => 'k-1',
                            order => {%$order, id => 'o-1'}});
is($res->{status}, 200, 'redeem: 200');
ok($res->{json}{redeemed}, 'redeem: redeemed');
like($res->{json}{redemption_id}, qr/^\d+-\d+$/, 'redeem: redemption id');
is($res->{json}{uses_left}, 2, 'redeem: uses left');
my $rid = $res->{json}{redemption_id};
ok(!exists $res->{headers}{'idempotent-replayed'}, 'first answer is no replay');

my $again = post($ng, 'redeem', {code => 'TEN-OFF', customer => 'u1',
                                 order => {%$order, id => 'o-1'}},
                 headers => {'Idempotency-Key' => 'k-1'});
is($again->{status}, 200, 'retry via Idempotency-Key header: 200');
is($again->{body}, $res->{body}, 'retry: the very same body');
is($again->{headers}{'idempotent-replayed'}, 'true', 'retry: Idempotent-Replayed');
is($redis->cmd('HGET', '{v}:c:TENOFF', 'u'), 1, 'retry: counted once');
is($redis->cmd('XLEN', '{v}:log'), 1, 'retry: one stream entry');

my $conflict = post($ng, 'redeem', {code => 'TEN-OFF', customer => 'u1',
                                    idempotency_key => 'k-1',
                                    order => {amount => 99999, currency => 'THB'}});
is($conflict->{status}, 422, 'same key, other request: 422');
is($conflict->{json}{reason}, 'idempotency_conflict', 'idempotency_conflict');

# --- stream record ------------------------------------------------------------
my $entry = $redis->cmd('XRANGE', '{v}:log', $rid, $rid)->[0][1];
my %e = @$entry;
is_deeply([@e{qw(type code campaign customer order_id amount currency discount idem)}],
          ['redeem', 'TENOFF', 'c10', 'u1', 'o-1', 20000, 'THB', 2000, 'k-1'],
          'audit trail: who, code, campaign, order, discount, key');

# --- rollback ---------------------------------------------------------------
$res = post($ng, 'rollback', {redemption_id => $rid, idempotency_key => 'rb-1'});
is($res->{status}, 200, 'rollback: 200');
ok(JSON::PP::is_bool($res->{json}{rolled_back}) && $res->{json}{rolled_back},
   'rollback: rolled_back is true (a boolean, no key twice)');
is($res->{json}{amount_rolled_back}, 2000, 'rollback: the discount given back');
is(scalar(() = $res->{body} =~ /"rolled_back":/g), 1, 'rollback: one rolled_back key');
is($res->{json}{status}, 'rolled_back', 'rollback: status');
is($redis->cmd('HGET', '{v}:c:TENOFF', 'u'), 0, 'rollback: use restored');
$res = post($ng, 'rollback', {redemption_id => $rid, idempotency_key => 'rb-1'});
is($res->{status}, 200, 'rollback retry: same answer');
is($res->{headers}{'idempotent-replayed'}, 'true', 'rollback retry: replayed');
$res = post($ng, 'rollback', {redemption_id => $rid});
is($res->{status}, 409, 'second rollback: 409');
is($res->{json}{reason}, 'already_rolled_back', 'already_rolled_back');
$res = post($ng, 'rollback', {redemption_id => '1-1'});
is($res->{status}, 404, 'unknown redemption: 404');
is($res->{json}{reason}, 'redemption_not_found', 'redemption_not_found');

# --- unknown code -----------------------------------------------------------
$res = post($ng, 'validate', {code => 'NOPE', order => $order});
is($res->{status}, 404, 'unknown code: 404');
is($res->{json}{reason}, 'not_found', 'unknown code: not_found');
ok(!$res->{json}{valid}, 'unknown code: valid false');
ok(length $res->{json}{message}, 'unknown code: a message');

# --- bad input: each a 4xx with a stable reason, nothing changed -------------
my $big = '{"code":"TEN-OFF","order":{"amount":1,"id":"' . ('x' x 300) . '"}}';
my @bad = (
    ['GET is refused', 405, 'method_not_allowed', method => 'GET'],
    ['no content type', 415, 'unsupported_media_type',
        raw => '{"code":"TEN-OFF","order":{"amount":1}}', ctype => undef],
    ['form content type', 415, 'unsupported_media_type',
        raw => 'code=TEN-OFF', ctype => 'application/x-www-form-urlencoded'],
    ['text/json-ish', 415, 'unsupported_media_type',
        raw => '{}', ctype => 'text/plain; application/json'],
    ['body over voucher_max_body_size', 413, 'body_too_large',
        raw => $big, path => '/small/redeem'],
    ['empty body', 400, 'invalid_json', raw => ''],
    ['malformed JSON', 400, 'invalid_json', raw => '{"code":'],
    ['truncated JSON', 400, 'invalid_json', raw => '{"code":"TEN-OFF","order":{"amount":1'],
    ['trailing garbage', 400, 'invalid_json', raw => '{"code":"TEN-OFF","order":{"amount":1}} x'],
    ['invalid UTF-8', 400, 'invalid_json',
        raw => qq({"code":"TEN-OFF","customer":"\xff\xfe","order":{"amount":1}})],
    ['NUL escape', 400, 'invalid_json',
        raw => '{"code":"TEN-OFF","customer":"a\u0000b","order":{"amount":1}}'],
    ['deep nesting', 400, 'invalid_json', raw => ('[' x 5000) . (']' x 5000), path => '/vouchers/redeem'],
    ['array body', 400, 'invalid_request', raw => '[1,2]'],
    ['duplicate key', 400, 'duplicate_field',
        raw => '{"code":"TEN-OFF","order":{"amount":1},"code":"X"}'],
    ['duplicate nested key', 400, 'duplicate_field',
        raw => '{"code":"TEN-OFF","order":{"amount":1,"amount":100000}}'],
    ['key in another case', 400, 'unknown_field',
        raw => '{"code":"TEN-OFF","Code":"X","order":{"amount":1}}'],
    ['key with a Kelvin sign', 400, 'unknown_field',
        raw => '{"code":"TEN-OFF","order":{"amount":1},"idempotency_\u212aey":"k"}'],
    ['unknown field', 400, 'unknown_field', json => {code => 'TEN-OFF', order => {amount => 1}, coupon => 1}],
    ['unknown order field', 400, 'unknown_field', json => {code => 'TEN-OFF', order => {amount => 1, tax => 1}}],
    ['missing code', 400, 'missing_field', json => {order => {amount => 1}}],
    ['missing order', 400, 'missing_field', json => {code => 'TEN-OFF'}],
    ['amount as string', 400, 'invalid_field', json => {code => 'TEN-OFF', order => {amount => '100'}}],
    ['amount as float', 400, 'invalid_field', raw => '{"code":"TEN-OFF","order":{"amount":1.5}}'],
    ['negative amount', 400, 'invalid_field', json => {code => 'TEN-OFF', order => {amount => -1}}],
    ['overflowing amount', 400, 'invalid_field', raw => '{"code":"TEN-OFF","order":{"amount":10000000000001}}'],
    ['amount beyond 64 bits', 400, 'invalid_json', raw => '{"code":"TEN-OFF","order":{"amount":99999999999999999999999}}'],
    ['bad currency', 400, 'invalid_field', json => {code => 'TEN-OFF', order => {amount => 1, currency => 'thb'}}],
    ['empty code', 400, 'invalid_code', json => {code => '', order => {amount => 1}}],
    ['10 KB code', 400, 'invalid_code', json => {code => 'A' x 10240, order => {amount => 1}}],
    ['code over voucher_code_max_length', 400, 'invalid_code',
        json => {code => 'ABCDEFGHI', order => {amount => 1}}, path => '/short/validate'],
    ['control character in code', 400, 'invalid_code', json => {code => "TEN\tOFF", order => {amount => 1}}],
    ['unicode in code', 400, 'invalid_code', json => {code => "TEN\x{2013}OFF", order => {amount => 1}}],
    ['control character in customer', 400, 'invalid_field',
        json => {code => 'TEN-OFF', customer => "a\x01", order => {amount => 1}}],
    ['code as number', 400, 'invalid_field', json => {code => 12345, order => {amount => 1}}],
    ['item without price', 400, 'missing_field',
        json => {code => 'TEN-OFF', order => {items => [{sku => 'A'}]}}],
    ['bad Idempotency-Key header', 400, 'invalid_field',
        json => {code => 'TEN-OFF', order => {amount => 1}}, hdr => {'Idempotency-Key' => "a b"}],
    ['header and body keys differ', 400, 'invalid_field',
        json => {code => 'TEN-OFF', idempotency_key => 'x', order => {amount => 1}},
        hdr => {'Idempotency-Key' => 'y'}],
    ['rollback without id', 400, 'missing_field', json => {amount => 1}, path => '/vouchers/rollback'],
);

my $before = snapshot($redis);
my $calls = $redis->hot_calls;

for my $b (@bad) {
    my ($name, $status, $reason, %o) = @$b;
    my $path = $o{path} // '/vouchers/redeem';
    my %h = %{ $o{hdr} // {} };
    my $body;
    if (exists $o{json}) {
        $body = JSON::PP->new->canonical->encode($o{json});
        $h{'Content-Type'} = 'application/json';
    } elsif (exists $o{raw}) {
        $body = $o{raw};
        $h{'Content-Type'} = exists $o{ctype} ? $o{ctype} : 'application/json';
        delete $h{'Content-Type'} unless defined $h{'Content-Type'};
    }
    my $r = http($ng->port, $o{method} // 'POST', $path, headers => \%h,
                 defined $body ? (body => $body) : ());
    is($r->{status}, $status, "$name: $status");
    is(($r->{json} // {})->{reason}, $reason, "$name: reason $reason");
    if ($status == 405) {
        is($r->{headers}{allow}, 'POST', "$name: Allow: POST");
    }
}

is_deeply(snapshot($redis), $before, 'bad input changed nothing in Redis');
is($redis->hot_calls, $calls, 'bad input never reached Redis');

# the field that is wrong is named
$res = post($ng, 'redeem', {code => 'TEN-OFF', order => {items => [{sku => 'A', price => 1},
                                                                  {sku => 'B', price => -5}]}});
is($res->{json}{field}, 'order.items[1].price', 'the offending field is named');

# two Idempotency-Key headers are refused, not one silently picked
{
    my $b = '{"code":"TEN-OFF","order":{"amount":1}}';
    my $raw2 = http_raw($ng->port,
        "POST /vouchers/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      . "Idempotency-Key: a\r\nIdempotency-Key: b\r\nConnection: close\r\n"
      . "Content-Length: " . length($b) . "\r\n\r\n$b");
    like($raw2, qr{^HTTP/1\.1 400 }, 'two Idempotency-Key headers: 400');
    like($raw2, qr/"reason":"invalid_field"/, '... invalid_field');
}

# keep-alive: two requests on one connection both answered
my $raw = http_raw($ng->port,
    "POST /vouchers/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
  . "Content-Length: 43\r\n\r\n" . '{"code":"TEN-OFF","order":{"amount":20000}}'
  . "POST /vouchers/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
  . "Connection: close\r\nContent-Length: 40\r\n\r\n" . '{"code":"NOPE","order":{"amount":20000}}');
my @st = $raw =~ m{HTTP/1\.1 (\d+)}g;
is_deeply(\@st, [409, 404], 'pipelined keep-alive requests answered in order')
    or diag $raw;

$ng->stop;
$ng->check_log('error log clean');
$redis->stop;
done_testing;
