# Gate mode with several codes for one order (voucher_codes): from a header
# with a separator, or from a JSON body array.  Each code is checked offline
# in nginx before Redis; the stack is reserved in one call before the
# upstream, and its parent redemption confirmed by a 2xx, released
# otherwise.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use VT;
use VoucherT;

my $root = VT::root_dir();
my $vcode = "$root/build/vcode";
-x $vcode or BAIL_OUT("build/vcode missing: run scripts/build");
my $dir = tempdir(CLEANUP => 1);
system($vcode, 'genkey', "$dir/k.key") == 0 or die;
my @mac = `$vcode issue $dir/k.key SALE 8 5 3`;
chomp @mac;

my $UP = VT::free_port();
my $redis = VT::Redis->start;
$redis->load_functions;

my $show = <<'EOT';
            proxy_set_header X-Voucher-Status $voucher_status;
            proxy_set_header X-Voucher-Discount $voucher_discount;
            proxy_set_header X-Voucher-After $voucher_amount_after;
            proxy_set_header X-Voucher-Id $voucher_redemption_id;
EOT
my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP },
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=3s;
    voucher_code_key $dir/k.key;
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_pattern "^[A-Z][A-Z0-9]{1,15}\$";
    server {
        listen 127.0.0.1:%%UP%%;
        set \$seen "st=\$http_x_voucher_status disc=\$http_x_voucher_discount after=\$http_x_voucher_after id=\$http_x_voucher_id";
        location /checkout/ok   { return 200 "order ok \$seen\\n"; }
        location /checkout/fail { return 500 "crashed \$seen\\n"; }
        location /peek/         { return 200 "peek \$seen\\n"; }
        location /json/         { return 200 "json \$seen\\n"; }
    }
EOT
    server => <<"EOT",
        location /checkout/ {
            voucher_gate redeem;
            voucher_codes \$http_x_coupons "separator=;";
            voucher_order_amount \$http_x_amount;
            voucher_points \$http_x_points;
$show
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /peek/ {
            voucher_gate validate;
            voucher_code \$arg_coupon;
            voucher_codes \$http_x_coupons;
            voucher_order_amount 10000;
$show
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /json/ {
            voucher_gate redeem;
            voucher_codes \$voucher_body_coupons;
            voucher_order_amount \$voucher_body_amount;
$show
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
);

my %comb = (stacking => 'combinable');
campaign($redis, 'a7', kind => 'amount', value => 700, %comb);
campaign($redis, 'p10', kind => 'percent', value => 1000, %comb);
campaign($redis, 'ex', kind => 'amount', value => 100);
code($redis, $mac[0], campaign => 'a7', max_uses => 1);
code($redis, $mac[1], campaign => 'p10', max_uses => 1);
code($redis, 'TENOFF', campaign => 'p10');
code($redis, 'EXCL', campaign => 'ex');
sub uses { ({ @{ $redis->cmd('FCALL', 'voucher_code_get', 1, "{v}:c:$_[0]") } })->{used} }
sub held { $redis->cmd('ZCARD', '{v}:hz') }
sub checkout {
    my ($path, $codes, %h) = @_;
    return VT::http($ng->port, 'POST', "/checkout/$path",
                    headers => {'X-Coupons' => $codes, 'X-Amount' => 10000, %h},
                    body => '');
}

# --- a header with a separator ------------------------------------------------
{
    (my $typed = lc $mac[1]) =~ s/^(....)/$1-/;
    my $r = checkout('ok', " $mac[0] ;$typed; ");
    is($r->{status}, 200, 'two codes in a header: the upstream answered');
    like($r->{body}, qr/st=reserved disc=1630 after=8370 id=\d+-\d+/,
         'the upstream saw the stack reserved: 7.00 then 10% of 93.00');
    my ($id) = $r->{body} =~ /id=(\S+)/;
    ok(VT::wait_until(sub { held() == 0 }, timeout => 5), 'confirmed: nothing held');
    is_deeply([uses($mac[0]), uses($mac[1])], [1, 1], 'both uses taken');
    my $e = { @{ $redis->cmd('XRANGE', '{v}:log', $id, $id)->[0][1] } };
    is($e->{type}, 'stack', 'the id is the parent');
    is($redis->cmd('XLEN', '{v}:log'), 5,
       'two redeems, the parent, two confirms in the trail');
}
{
    code($redis, 'A7FRESH', campaign => 'a7', max_uses => 1);
    my $r = checkout('fail', 'A7FRESH;TENOFF');
    is($r->{status}, 500, 'the upstream failed');
    ok(VT::wait_until(sub { held() == 0 && uses('A7FRESH') == 0 }, timeout => 5),
       'released: the uses are back');
}

# --- refusals, before the upstream -----------------------------------------------
{
    my $before = snapshot($redis);
    (my $forged = $mac[2]) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    $redis->reset_stats;
    my $r = checkout('ok', "TENOFF;$forged");
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{code}],
              [404, 'not_found', $forged],
              'a forged code among them: not_found naming it, no upstream');
    ok(!$redis->commandstats->{fcall}, '... and no Redis call');
    $r = checkout('ok', 'TENOFF;EXCL');
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{code}],
              [409, 'stack_exclusive', 'EXCL'], 'an exclusive code among them');
    $r = checkout('ok', 'TENOFF;ten-off');
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{field}],
              [400, 'invalid_field', 'codes[1]'], 'the same code twice');
    $r = checkout('ok', join(';', map { "C$_" } 1 .. 31));
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{field}],
              [400, 'invalid_field', 'codes'], 'more than 30');
    $r = checkout('ok', 'TENOFF', 'X-Points' => 5);
    is_deeply([$r->{status}, $r->{json}{reason}],
              [409, 'no_programme'],
              'points with a stack reach Redis: no programme here '
              . '(t/095 pays with them)');
    is_deeply(snapshot($redis), $before, 'none changed anything');
    is(checkout('ok', ' ; ')->{status}, 200,
       'no code at all: passed on, as without a code');
}

# --- validate gate: voucher_code and voucher_codes together ------------------------
{
    my $r = VT::http($ng->port, 'GET', '/peek/x?coupon=TENOFF',
                     headers => {'X-Coupons' => 'A7FRESH'});
    like($r->{body}, qr/st=valid disc=1630 after=8370/,
         'voucher_code first, then voucher_codes: a stack validated');
}

# --- a JSON body array ----------------------------------------------------------
{
    code($redis, 'JSONA7', campaign => 'a7', max_uses => 1);
    my $r = VT::http($ng->port, 'POST', '/json/ok',
                     body => {coupons => ['jsona7', 'TENOFF'], amount => 10000});
    like($r->{body}, qr/st=reserved disc=1630/, 'codes from a body array');
    ok(VT::wait_until(sub { held() == 0 }, timeout => 5), '... confirmed');
    is(uses('JSONA7'), 1, '... the use taken');
    $r = VT::http($ng->port, 'POST', '/json/ok',
                  body => {coupons => ['TENOFF', 5], amount => 10000});
    like($r->{body}, qr/st= /, 'an array holding a number: no codes read');
}

$ng->check_log;
done_testing;
