# Gate mode: nginx in front of a real upstream (a second server of the
# same nginx, and a socket that accepts and never answers).  A good code
# is reserved before the upstream is called, confirmed by a 2xx, released
# by anything else; a bad one never reaches the upstream.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $UP = VT::free_port();
my $H2 = VT::free_port();
my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 128, Proto => 'tcp') or die "listen: $!";
my $HANG = $hang->sockport;

my $redis = VT::Redis->start;
$redis->load_functions;

# what every gated location shares
my $gate = <<'EOT';
            voucher_code $arg_coupon;
            voucher_customer $http_x_customer;
            voucher_order_amount $http_x_amount;
            voucher_order_id $http_x_order;
            proxy_set_header X-Voucher-Status $voucher_status;
            proxy_set_header X-Voucher-Discount $voucher_discount;
            proxy_set_header X-Voucher-After $voucher_amount_after;
            proxy_set_header X-Voucher-Id $voucher_redemption_id;
            proxy_set_header X-Voucher-Campaign $voucher_campaign;
EOT

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP, HANG => $HANG, H2 => $H2 },
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=3s;
    log_format gate '\$uri \$status vs=\$voucher_status vr=\$voucher_reason '
                    'vc=\$voucher_campaign vd=\$voucher_discount '
                    'va=\$voucher_amount_after id=\$voucher_redemption_id';

    # the upstream: answers by path, shows what the gate passed on
    server {
        listen 127.0.0.1:%%UP%%;
        access_log %%SERVROOT%%/logs/upstream.log;
        set \$seen "st=\$http_x_voucher_status disc=\$http_x_voucher_discount after=\$http_x_voucher_after cmp=\$http_x_voucher_campaign id=\$http_x_voucher_id";
        location /checkout/ok       { return 200 "order ok \$seen\\n"; }
        location /checkout/conflict { return 409 "out of stock \$seen\\n"; }
        location /checkout/fail     { return 500 "crashed \$seen\\n"; }
        location /checkout/drop     { return 444; }
        location /body {
            proxy_set_header X-Body \$request_body;
            proxy_pass http://127.0.0.1:%%UP%%/show;
        }
        location /show { return 200 "\$http_x_body"; }
        location /sorry { return 200 "sorry page"; }
    }

    server {
        listen 127.0.0.1:%%H2%% http2;
        location /checkout/ {
            voucher_gate redeem;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
    }
EOT
    server => <<"EOT",
        access_log %%SERVROOT%%/logs/access.log gate;
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/confirm { voucher_api confirm; }
        location = /vouchers/release { voucher_api release; }
        location = /vouchers/redemption { voucher_api rollback; }

        location /checkout/ {
            voucher_gate redeem;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /checkout/hang {
            voucher_gate redeem;
            voucher_hold_time 3s;
$gate
            proxy_read_timeout 1s;
            proxy_pass http://127.0.0.1:%%HANG%%;
        }
        location /checkout/slow {
            voucher_gate redeem;
            voucher_hold_time 2s;
$gate
            proxy_read_timeout 60s;
            proxy_pass http://127.0.0.1:%%HANG%%;
        }
        location /strict/ {
            voucher_gate redeem;
            voucher_code_required on;
$gate
            proxy_pass http://127.0.0.1:%%UP%%/checkout/ok;
        }
        location /peek/ {
            voucher_gate validate;
$gate
            proxy_pass http://127.0.0.1:%%UP%%/checkout/ok;
        }
        location /fallback/ {
            voucher_gate redeem;
$gate
            error_page 502 = \@fallback;
            proxy_intercept_errors on;
            proxy_pass http://127.0.0.1:%%UP%%/checkout/drop;
        }
        location \@fallback {
            voucher_gate redeem;
$gate
            rewrite ^ /checkout/ok break;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /masked/ {
            voucher_gate redeem;
$gate
            proxy_intercept_errors on;
            error_page 500 =200 /sorry;
            proxy_pass http://127.0.0.1:%%UP%%/checkout/fail;
        }
        location = /sorry { proxy_pass http://127.0.0.1:%%UP%%; }
        location /sub/ {
            auth_request /gated-auth;
            voucher_gate redeem;
            voucher_code \$http_x_coupon;
            voucher_order_amount 10000;
            proxy_set_header X-Voucher-Status \$voucher_status;
            proxy_set_header X-Voucher-Discount \$voucher_discount;
            proxy_pass http://127.0.0.1:%%UP%%/checkout/ok;
        }
        location /keep/ {
            voucher_gate redeem;
            voucher_client_abort keep;
$gate
            proxy_read_timeout 60s;
            proxy_pass http://127.0.0.1:%%HANG%%;
        }
        location /json413/ {
            voucher_gate redeem;
            voucher_code \$voucher_body_coupon;
            client_max_body_size 100;
            error_page 413 \@toolarge;
            proxy_pass http://127.0.0.1:%%UP%%/body;
        }
        location \@toolarge {
            rewrite ^ /sorry break;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location = /gated-auth {
            internal;
            voucher_gate redeem;
            voucher_code \$http_x_coupon;
            voucher_order_amount 10000;
            proxy_pass http://127.0.0.1:%%UP%%/checkout/ok;
        }
        location /accept/ {
            voucher_gate redeem;
            voucher_confirm_status 2xx 409;
$gate
            proxy_pass http://127.0.0.1:%%UP%%/checkout/conflict;
        }
        location /json/ {
            voucher_gate redeem;
            voucher_code \$voucher_body_coupon;
            voucher_customer \$voucher_body_customer;
            voucher_order_amount \$voucher_body_order__total;
            proxy_set_header X-Voucher-Discount \$voucher_discount;
            proxy_pass http://127.0.0.1:%%UP%%/body;
        }
EOT
);

campaign($redis, 'flash', kind => 'amount', value => 500);
campaign($redis, 'tiny', kind => 'amount', value => 100, max_redemptions => 1);

my $n = 0;
sub fresh_code {
    my (%o) = @_;
    my $c = 'GATE' . ++$n;
    code($redis, $c, campaign => $o{campaign} // 'flash', max_uses => $o{max_uses} // 1);
    return $c;
}

sub get {
    my ($path, %o) = @_;
    return http($ng->port, 'GET', $path,
                headers => { 'X-Customer' => 'cust', 'X-Amount' => 10000,
                             %{ $o{headers} // {} } },
                timeout => $o{timeout} // 10);
}

sub uses { $redis->cmd('HGET', "{v}:c:$_[0]", 'u') // 0 }
sub held { $redis->cmd('ZCARD', '{v}:hz') }
sub status_of {
    my ($id) = @_;
    my %r = @{ $redis->cmd('FCALL', 'voucher_redemption_get', 1, '{v}:log', $id) // [] };
    return $r{status} // 'none';
}
sub upstream_hits {
    my ($re) = @_;
    my $log = VT::_read_file($ng->servroot . '/logs/upstream.log') // '';
    return scalar(() = $log =~ /$re/g);
}
sub settled { wait_until(sub { held() == 0 }, timeout => 5) }

# the head of the first request matching $re that reaches a listening
# socket nobody answers (earlier tests left connections in its queue);
# the connection stays open, so the upstream still "works"
our @KEEP_OPEN;
sub upstream_request {
    my ($listen, $re, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $rin = '';
        vec($rin, fileno($listen), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.2);
        my $c = $listen->accept or next;
        my $buf = '';
        while ($buf !~ /\r\n\r\n/ && time < $deadline) {
            my $cin = '';
            vec($cin, fileno($c), 1) = 1;
            next unless select(my $cout = $cin, undef, undef, 0.2);
            sysread($c, $buf, 4096, length $buf) or last;
        }
        if ($buf =~ $re) {
            push @KEEP_OPEN, $c;
            return $buf;
        }
        close $c;
    }
    return undef;
}

# --- confirm on 2xx --------------------------------------------------------
{
    my $c = fresh_code();
    my $r = get("/checkout/ok?coupon=$c");
    is($r->{status}, 200, '2xx: the upstream answered');
    like($r->{body}, qr/^order ok st=reserved disc=500 after=9500 cmp=flash id=\d+-\d+$/m,
         'the upstream got the reservation in headers');
    my ($id) = $r->{body} =~ /id=(\S+)/;
    ok(settled(), 'no reservation left held');
    is(status_of($id), 'redeemed', 'confirmed: the redemption stands');
    is(uses($c), 1, 'the code is used once');
    is($redis->cmd('HGET', '{v}:k:flash', 'redeemed'), 1, 'the campaign counts it');
    my $again = get("/checkout/ok?coupon=$c");
    is($again->{status}, 409, 'a used single-use code is refused at the gate');
    is(VT::json_body($again)->{reason}, 'code_exhausted', '... code_exhausted');
}

# --- release on each failure kind -----------------------------------------
for my $case (['conflict', 409], ['fail', 500], ['drop', 502], ['hang', 504]) {
    my ($what, $st) = @$case;
    my $c = fresh_code();
    my $r = get("/checkout/$what?coupon=$c", timeout => 15);
    is($r->{status}, $st, "$what: the client gets $st");
    ok(settled(), "$what: the reservation is settled");
    is(uses($c), 0, "$what: the use came back");
    my $rid = $redis->cmd('XREVRANGE', '{v}:log', '+', '-', 'COUNT', 1)->[0][1];
    my %e = @$rid;
    is($e{type}, 'release', "$what: the stream ends with a release");
    is(status_of($e{ref}), 'released', "$what: the redemption reads released");
    my $ok = get("/checkout/ok?coupon=$c");
    is($ok->{status}, 200, "$what: the same code then goes through");
}

# --- the client leaves while the upstream works ------------------------------
sub open_checkout {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                  Proto => 'tcp') or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: t\r\nX-Amount: 10000\r\n\r\n";
    return $s;
}
{
    my $c = fresh_code();
    my $s = open_checkout("/checkout/slow?coupon=$c");
    ok(wait_until(sub { held() == 1 }, timeout => 5), 'leaving: reserved first');
    is(uses($c), 1, 'leaving: the use is taken while the upstream works');
    close $s;
    ok(wait_until(sub { held() == 0 }, timeout => 5), 'leaving: released');
    is(uses($c), 0, 'leaving: the use came back');
}

# --- a bad code never reaches the upstream -----------------------------------
{
    my $before = upstream_hits(qr/checkout/);
    my $snap = snapshot($redis);
    my $r = get('/checkout/ok?coupon=NOSUCHCODE');
    is($r->{status}, 404, 'unknown code: 404');
    my $api = post($ng, 'reserve', {code => 'NOSUCHCODE', order => {amount => 10000}});
    is(VT::json_body($r)->{reason}, 'not_found', 'unknown code: reason not_found');
    is($api->{status}, 404, 'the API answers the same status');
    is(VT::json_body($r)->{message}, VT::json_body($api)->{message}, '... and message');
    $r = get('/checkout/ok?coupon=' . ('X' x 65));
    is($r->{status}, 400, 'a code too long: 400');
    is(VT::json_body($r)->{reason}, 'invalid_code', '... invalid_code');
    $r = get('/checkout/ok?coupon=A', headers => { 'X-Amount' => '12.50' });
    is($r->{status}, 400, 'a bad amount: 400');
    is(VT::json_body($r)->{field}, 'order_amount', '... names order_amount');
    $r = get('/checkout/ok?coupon=A', headers => { 'X-Customer' => "a\x01b" });
    is($r->{status}, 400, 'a customer with a control character: 400');
    is(upstream_hits(qr/checkout/), $before, 'the upstream was never called');
    is_deeply(snapshot($redis), $snap, 'and nothing changed in Redis');
}

# --- no code: passes through untouched, or is refused ------------------------
{
    my $r = get('/checkout/ok');
    is($r->{status}, 200, 'no code: passes');
    like($r->{body}, qr/st= disc= after= cmp= id=$/m, '... with no voucher headers');
    $r = get('/strict/x');
    is($r->{status}, 400, 'voucher_code_required: 400');
    is(VT::json_body($r)->{reason}, 'missing_field', '... missing_field');
    is(VT::json_body($r)->{field}, 'code', '... field code');
}

# --- validate gate: priced, nothing counted ----------------------------------
{
    my $c = fresh_code();
    my $r = get("/peek/x?coupon=$c");
    is($r->{status}, 200, 'validate gate passes a good code');
    like($r->{body}, qr/st=valid disc=500 after=9500 cmp=flash id=$/m,
         '... priced, with no redemption id');
    is(uses($c), 0, '... and nothing counted');
    is(held(), 0, '... nothing held');
}

# --- internal redirects and error_page -----------------------------------------
{
    my $c = fresh_code(max_uses => 5);
    my $r = get("/fallback/x?coupon=$c");
    is($r->{status}, 200, 'error_page to a gated named location: 200');
    like($r->{body}, qr/st=reserved disc=500/, '... the fallback got the reservation');
    ok(settled(), '... settled');
    is(uses($c), 1, '... counted once, not twice');
    my $xlen = $redis->cmd('XLEN', '{v}:log');

    $r = get("/masked/x?coupon=$c");
    is($r->{status}, 200, 'error_page 500 =200: the client sees 200');
    is($r->{body}, 'sorry page', '... the sorry page');
    ok(settled(), '... settled');
    is(uses($c), 1, '... but the upstream failed: released');
    is($redis->cmd('XLEN', '{v}:log'), $xlen + 2, '... one reservation, one release');

    $r = get("/accept/x?coupon=$c");
    is($r->{status}, 409, 'voucher_confirm_status 2xx 409: a 409 ...');
    ok(settled(), '... settled');
    is(uses($c), 2, '... confirms');
}

# --- a subrequest to a gated location shares the main request's verdict ----------
{
    my $c = fresh_code(max_uses => 5);
    my $r = get('/sub/x', headers => { 'X-Coupon' => $c });
    is($r->{status}, 200, 'auth_request subrequest: 200');
    like($r->{body}, qr/st=reserved disc=500/, '... the main request reserved');
    ok(settled(), '... settled');
    is(uses($c), 1, '... once: the gated subrequest did not reserve again');
}

# --- a refused request's body is discarded, not read as the next request ------
{
    my $evil = "GET /checkout/ok?smuggled=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    my $out = http_raw($ng->port,
        "POST /checkout/ok?coupon=NOSUCHCODE HTTP/1.1\r\nHost: t\r\nX-Amount: 1\r\n"
      . "Content-Length: " . length($evil) . "\r\n\r\n$evil"
      . "GET /checkout/ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    my @st = $out =~ /HTTP\/1\.1 (\d{3}) /g;
    is_deeply(\@st, [404, 200], 'a refused POST, then the next request: two answers') or diag $out;
    is(upstream_hits(qr/smuggled/), 0, 'the body of the refused request never became a request');
}

# --- the same idempotency key on a second checkout -----------------------------
{
    my $c = fresh_code(max_uses => 5);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                  Proto => 'tcp') or die;
    print $s "GET /checkout/slow?coupon=$c HTTP/1.1\r\nHost: t\r\nX-Amount: 10000\r\n"
           . "X-Customer: cust\r\nIdempotency-Key: order-77\r\n\r\n";
    ok(wait_until(sub { held() == 1 }, timeout => 5), 'retry: the first attempt holds the code');
    my $r = get("/checkout/ok?coupon=$c", headers => { 'Idempotency-Key' => 'order-77' });
    is($r->{status}, 409, 'a retry while the first attempt holds it: 409');
    is(VT::json_body($r)->{reason}, 'reservation_in_progress', '... reservation_in_progress');
    close $s;
    ok(settled(), 'the first attempt left: released');
    $r = get("/checkout/ok?coupon=$c", headers => { 'Idempotency-Key' => 'order-77' });
    is($r->{status}, 200, 'the retry after the release reserves anew');
    ok(settled(), '... and is confirmed');
    is(uses($c), 1, '... one use');
    $r = get("/checkout/ok?coupon=$c", headers => { 'Idempotency-Key' => 'order-77' });
    is($r->{status}, 200, 'the same key once more: the confirmed answer, passed on');
    like($r->{body}, qr/st=replayed /, '... as "replayed"');
    ok(settled(), '... nothing held');
    is(uses($c), 1, '... and not counted, nor given back');
}

# --- voucher_client_abort keep ------------------------------------------------------
{
    my $c = fresh_code();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                  Proto => 'tcp') or die;
    print $s "GET /keep/x?coupon=$c HTTP/1.1\r\nHost: t\r\nX-Amount: 10000\r\n\r\n";
    ok(wait_until(sub { held() == 1 }, timeout => 5), 'keep: reserved');
    # the hold is in Redis before nginx has its reply: a client leaving
    # then leaves before any upstream was asked, and is released (rightly).
    # "keep" is about a client leaving once the upstream has the order.
    ok(upstream_request($hang, qr{^GET /keep/x\?coupon=\Q$c\E }, 5),
       'keep: the upstream has the order');
    close $s;
    ok(settled(), 'keep: the client left');
    is(uses($c), 1, 'keep: the use stays taken (the order may have been placed)');
}

# --- an error_page while the body is read: the gate steps aside -------------------
{
    my $big = '{"coupon":"' . ('A' x 200) . '"}';
    my $out = http_raw($ng->port,
        "POST /json413/x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      . sprintf('%x', length $big) . "\r\n$big\r\n0\r\n\r\n", timeout => 5);
    like($out, qr/^HTTP\/1\.1 413 .*sorry page/s,
         'a chunked body over client_max_body_size: the error_page answers');
}

# --- the code in a JSON body ---------------------------------------------------
{
    my $c = fresh_code();
    my $body = qq({"coupon":"$c","customer":"jo","order":{"total":4000},"note":"ü"});
    my $r = http($ng->port, 'POST', '/json/x', body => \$body,
                 headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, 200, 'body: 200');
    is($r->{body}, $body, 'body: the upstream got the body unchanged');
    ok(settled(), 'body: settled');
    is(uses($c), 1, 'body: the code was redeemed');
    my ($confirm, $redeem) = @{ $redis->cmd('XREVRANGE', '{v}:log', '+', '-', 'COUNT', 2) };
    my %c = @{ $confirm->[1] };
    my %e = @{ $redeem->[1] };
    is("$c{type} $c{ref}", "confirm $redeem->[0]", 'body: the trail ends with the confirm');
    is("$e{customer} $e{amount}", "jo 4000", "body: customer and amount from the body");
    for my $bad ('{"coupon":', '{"coupon":"A","coupon":"B"}', '[1]') {
        my $r2 = http($ng->port, 'POST', '/json/x', body => \$bad,
                      headers => { 'Content-Type' => 'application/json' });
        is($r2->{status}, 400, "bad body $bad: 400");
    }
}

# --- HTTP/2 clients --------------------------------------------------------------
SKIP: {
    my $curl = VT::_which('curl');
    skip 'no curl', 4 unless $curl;
    my $c = fresh_code();
    my $out = `$curl -s --http2-prior-knowledge -H 'X-Amount: 10000' -w '\\n%{http_version} %{http_code}' 'http://127.0.0.1:$H2/checkout/ok?coupon=$c'`;
    like($out, qr/order ok st=reserved disc=500/, 'h2: the upstream got the reservation');
    like($out, qr/\n2 200$/, 'h2: HTTP/2, 200');
    ok(settled(), 'h2: settled');
    is(uses($c), 1, 'h2: confirmed');
}

# --- the access log --------------------------------------------------------------
{
    my $log = VT::_read_file($ng->servroot . '/logs/access.log') // '';
    like($log, qr{^/checkout/ok 200 vs=confirmed vr=ok vc=flash vd=500 va=9500 id=\d+-\d+$}m,
         'log_format: a confirmed checkout');
    like($log, qr{^/checkout/conflict 409 vs=released vr=ok vc=flash vd=500 }m,
         'log_format: a released one');
    like($log, qr{^/checkout/ok 404 vs=refused vr=not_found vc=- }m,
         'log_format: a refused one');
    like($log, qr{^/peek/x 200 vs=valid vr=ok vc=flash vd=500 va=9500 id=-$}m,
         'log_format: a validated one');
}

# --- nginx killed between reserve and confirm: the hold expires in Redis -------
{
    my $c = fresh_code();
    my $s = open_checkout("/checkout/slow?coupon=$c");
    ok(wait_until(sub { held() == 1 }, timeout => 5), 'SIGKILL: reserved');
    $ng->kill9_workers;
    close $s;
    is(uses($c), 1, 'SIGKILL: the use is taken while the hold lasts');
    sleep 2.2;
    # any write sweeps; the worker or an operator may call voucher_sweep
    is($redis->cmd('FCALL', 'voucher_sweep', 1, '{v}:hz'), 1, 'SIGKILL: one hold swept');
    is(uses($c), 0, 'SIGKILL: the use came back after the hold time');
    my $e = $redis->cmd('XREVRANGE', '{v}:log', '+', '-', 'COUNT', 1)->[0][1];
    my %e = @$e;
    is($e{type}, 'expire', 'SIGKILL: the stream says expire');
    my $r = get("/checkout/ok?coupon=$c");
    is($r->{status}, 200, 'SIGKILL: the code goes through again');
    ok(settled(), 'SIGKILL: settled');
}

$ng->check_log;
done_testing;
