# Gate mode with the code in a JSON body: a body field the gate reads must
# be there once and spelled as the gate reads it.  A shop whose decoder
# matches keys case-insensitively and keeps the last value (Go's
# encoding/json does, Kelvin sign and long s included) would otherwise read
# another code, customer or amount than the gate checked.  Such a body is
# refused (400 duplicate_field) before Redis and the upstream; keys the gate
# does not read may be spelled as the shop likes.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my $UP = VT::free_port();
my $redis = VT::Redis->start;
$redis->load_functions;

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP },
    http  => <<'EOT',
    voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=3s;
    server {
        listen 127.0.0.1:%%UP%%;
        access_log %%SERVROOT%%/logs/upstream.log;
        location / { return 200 "shop: $http_x_voucher_status\n"; }
    }
EOT
    server => <<'EOT',
        location /json/ {
            voucher_gate redeem;
            voucher_code $voucher_body_coupon;
            voucher_customer $voucher_body_customer;
            voucher_order_amount $voucher_body_order__total;
            voucher_idempotency_key ${voucher_body_idempotency_key};
            proxy_set_header X-Voucher-Status $voucher_status;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /upper/ {
            voucher_gate validate;
            voucher_code $VOUCHER_BODY_Coupon;
            proxy_set_header X-Voucher-Status $voucher_status;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
);

campaign($redis, 'keys', kind => 'amount', value => 500);

my $n = 0;
sub fresh_code {
    my $c = 'KEYS' . ++$n;
    code($redis, $c, campaign => 'keys', max_uses => 1);
    return $c;
}

sub uses { $redis->cmd('HGET', "{v}:c:$_[0]", 'u') // 0 }

sub upstream_hits {
    my $log = VT::_read_file($ng->servroot . '/logs/upstream.log') // '';
    return scalar(() = $log =~ /\n/g);
}

sub post_body {
    my ($path, $body) = @_;
    return http($ng->port, 'POST', $path, body => \$body,
                headers => { 'Content-Type' => 'application/json' });
}

# the bodies are bytes: "\xe2\x84\xaa" is U+212A KELVIN SIGN in UTF-8,
# "\xc5\xbf" U+017F LATIN SMALL LETTER LONG S, "\xc4\xb1" U+0131 dotless i,
# "\xc3\x9f" U+00DF sharp s, "\xef\xac\x81" U+FB01 the fi ligature
my @refused = (
    # [what, body with %C for a good code, field (undef: none)]
    ['the code twice', '{"coupon":"%C","coupon":"B"}', undef],
    ['the code twice, once escaped', '{"coupon":"%C","c\u006fupon":"B"}', undef],
    ['a capital C', '{"coupon":"%C","Coupon":"B"}', 'coupon'],
    ['a capital C first', '{"Coupon":"B","coupon":"%C"}', 'coupon'],
    ['all capitals', '{"coupon":"%C","COUPON":"B"}', 'coupon'],
    ['only a capital C', '{"Coupon":"%C"}', 'coupon'],
    ['a capital C as an escape', '{"coupon":"%C","\u0043oupon":"B"}', 'coupon'],
    ['long s in customer', qq({"coupon":"%C","customer":"jo","cu\xc5\xbftomer":"eve"}), 'customer'],
    ['Kelvin sign in idempotency_key',
        qq({"coupon":"%C","idempotency_key":"k1","idempotency_\xe2\x84\xaaey":"k2"}), 'idempotency_key'],
    ['Kelvin sign as an escape',
        '{"coupon":"%C","idempotency_\u212aey":"k2"}', 'idempotency_key'],
    ['dotless i', qq({"coupon":"%C","\xc4\xb1dempotency_key":"k2"}), 'idempotency_key'],
    ['a nested capital', '{"coupon":"%C","order":{"total":4000,"Total":1}}', 'order.total'],
    ['the object in capitals', '{"coupon":"%C","ORDER":{"total":1},"order":{"total":4000}}', 'order'],
    ['a nested duplicate', '{"coupon":"%C","order":{"total":4000,"total":1}}', undef],
    ['a duplicate the gate does not read', '{"coupon":"%C","note":1,"note":2}', undef],
);

for my $t (@refused) {
    my ($what, $body, $field) = @$t;
    my $c = fresh_code();
    $body =~ s/%C/$c/g;
    my $hits = upstream_hits();
    my $r = post_body('/json/x', $body);
    is($r->{status}, 400, "$what: 400");
    my $j = $r->{json} // {};
    is($j->{reason}, 'duplicate_field', "$what: duplicate_field");
    is($j->{field}, $field, "$what: field " . ($field // 'none'));
    like($j->{message} // '', qr/\S/, "$what: a message");
    is(uses($c), 0, "$what: the code was not used");
    is(upstream_hits(), $hits, "$what: the upstream was not called");
}

# keys the gate does not read, and keys that only look alike, pass
my @passed = (
    ['other keys in any case', '{"coupon":"%C","Note":1,"note":2,"order":{"total":4000,"ID":1,"id":2}}'],
    ['longer and shorter names', '{"coupon":"%C","coupons":"X","coupo":"Y","couponx":"Z","order":{"total":4000}}'],
    ['sharp s and ligatures elsewhere', qq({"coupon":"%C","stra\xc3\x9fe":1,"\xef\xac\x81eld":2})],
    ['the read field under an unread object', '{"coupon":"%C","meta":{"Coupon":"B"}}'],
);

for my $t (@passed) {
    my ($what, $body) = @$t;
    my $c = fresh_code();
    $body =~ s/%C/$c/g;
    my $r = post_body('/json/x', $body);
    is($r->{status}, 200, "$what: 200");
    like($r->{body}, qr/^shop: reserved/, "$what: reserved, then the shop");
}

# nginx lower-cases variable names: $VOUCHER_BODY_Coupon reads "coupon"
{
    my $c = fresh_code();
    my $r = post_body('/upper/x', qq({"coupon":"$c"}));
    is($r->{status}, 200, 'upper-case variable: 200');
    like($r->{body}, qr/^shop: valid/, 'upper-case variable: the code was read');
    $r = post_body('/upper/x', qq({"coupon":"$c","Coupon":"B"}));
    is($r->{status}, 400, 'upper-case variable: a variant is refused');
    is(($r->{json} // {})->{field}, 'coupon', 'upper-case variable: field coupon');
}

done_testing();
