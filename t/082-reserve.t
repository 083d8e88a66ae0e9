# Reservations through the API (reserve, confirm, release), and the gate
# when Redis is away, slow, or nginx reloads mid-checkout.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $UP = VT::free_port();
my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 128, Proto => 'tcp') or die "listen: $!";
my $HANG = $hang->sockport;

my $redis = VT::Redis->start(args => ['--appendonly', 'yes', '--appendfsync', 'always']);
$redis->load_functions;

my $gate = <<'EOT';
            voucher_code $arg_coupon;
            voucher_order_amount 10000;
            proxy_set_header X-Voucher-Id $voucher_redemption_id;
EOT

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP, HANG => $HANG },
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=500ms connect_timeout=300ms;
    server {
        listen 127.0.0.1:%%UP%%;
        access_log %%SERVROOT%%/logs/upstream.log;
        location / { return 200 "upstream \$http_x_voucher_id\\n"; }
    }
EOT
    server => api_server() . <<"EOT",
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/confirm { voucher_api confirm; }
        location = /vouchers/release { voucher_api release; }
        location /gate/ {
            voucher_gate redeem;
            voucher_hold_time 1s;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /peek/ {
            voucher_gate validate;
            voucher_validate_fail_open on;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /slow/ {
            voucher_gate redeem;
            voucher_hold_time 10s;
$gate
            proxy_read_timeout 1s;
            proxy_pass http://127.0.0.1:%%HANG%%;
        }
        location /limited/ {
            voucher_api reserve;
            voucher_limit \$arg_who rate=1r/m burst=0 scope=redeem name=per_who;
        }
EOT
);

campaign($redis, 'r', kind => 'amount', value => 700);
my $n = 0;
sub fresh { my $c = 'RES' . ++$n; code($redis, $c, campaign => 'r', max_uses => 1, @_); $c }
sub uses { $redis->cmd('HGET', "{v}:c:$_[0]", 'u') // 0 }
sub held { $redis->cmd('ZCARD', '{v}:hz') }
sub J { VT::json_body($_[0]) }
sub reserve { post($ng, 'reserve', {code => shift, order => {amount => 10000}, @_}) }

# --- reserve, then confirm ---------------------------------------------------
{
    my $c = fresh();
    my $r = reserve($c);
    is($r->{status}, 200, 'reserve: 200');
    my $j = J($r);
    is($j->{reserved}, JSON::PP::true, 'reserve: "reserved": true');
    is($j->{status}, 'reserved', 'reserve: status reserved');
    is($j->{discount}, 700, 'reserve: priced');
    my $now = redis_now($redis);
    ok($j->{hold_expires_at} >= $now + 299 && $j->{hold_expires_at} <= $now + 301,
       'reserve: held for voucher_hold_time (5m by default)');
    is(uses($c), 1, 'reserve: the use is taken');
    is(held(), 1, 'reserve: one hold');
    my $id = $j->{redemption_id};

    $r = post($ng, 'confirm', {redemption_id => $id});
    is($r->{status}, 200, 'confirm: 200');
    is_deeply([@{ J($r) }{qw(confirmed status code campaign)}],
              [JSON::PP::true, 'confirmed', $c, 'r'], 'confirm: the answer');
    is(held(), 0, 'confirm: no longer held');
    is(post($ng, 'confirm', {redemption_id => $id})->{status}, 200,
       'confirm again: 200, the same outcome');
    $r = post($ng, 'release', {redemption_id => $id});
    is($r->{status}, 409, 'release after confirm: 409');
    is(J($r)->{reason}, 'reservation_confirmed', '... reservation_confirmed');
    is(uses($c), 1, '... and the use stays taken');
}

# --- reserve, then release ---------------------------------------------------
{
    my $c = fresh();
    my $id = J(reserve($c))->{redemption_id};
    my $r = post($ng, 'release', {redemption_id => $id});
    is($r->{status}, 200, 'release: 200');
    is_deeply([@{ J($r) }{qw(released status amount_rolled_back)}],
              [JSON::PP::true, 'released', 700], 'release: the answer');
    is(uses($c), 0, 'release: the use is back');
    is($redis->cmd('HGET', '{v}:k:r', 'discount_given'), 700,
       'release: the campaign gave back the discount (700 left from the confirmed one)');
    $r = post($ng, 'release', {redemption_id => $id});
    is($r->{status}, 200, 'release again: 200');
    is($r->{headers}{'idempotent-replayed'}, 'true', '... as a replay');
    is(uses($c), 0, '... nothing given back twice');
    $r = post($ng, 'confirm', {redemption_id => $id});
    is($r->{status}, 409, 'confirm after release: 409');
    is(J($r)->{reason}, 'reservation_released', '... reservation_released');
}

# --- idempotency keys on confirm and release -----------------------------------
{
    my $c = fresh();
    my $id = J(reserve($c))->{redemption_id};
    my $a = post($ng, 'release', {redemption_id => $id, idempotency_key => 'rel-1'});
    is($a->{status}, 200, 'release with a key: 200');
    my $b = post($ng, 'release', {redemption_id => $id},
                  headers => { 'Idempotency-Key' => 'rel-1' });
    is($b->{headers}{'idempotent-replayed'}, 'true', 'the same key (header): replayed');
    is(J($b)->{release_id}, J($a)->{release_id}, '... the first answer itself');
    my $x = post($ng, 'confirm', {redemption_id => $id, idempotency_key => 'rel-1'});
    is($x->{status}, 422, 'the key reused for a confirm: 422');
    is(J($x)->{reason}, 'idempotency_conflict', '... idempotency_conflict');

    $c = fresh();
    $id = J(reserve($c))->{redemption_id};
    my $len = $redis->cmd('XLEN', '{v}:log');
    is(post($ng, 'confirm', {redemption_id => $id, idempotency_key => 'cf-1'})->{status},
       200, 'confirm with a key: 200');
    my %e = @{ $redis->cmd('XREVRANGE', '{v}:log', '+', '-', 'COUNT', 1)->[0][1] };
    is("$e{type} $e{ref} $e{idem}", "confirm $id cf-1", 'the trail has the confirm');
    my $again = post($ng, 'confirm', {redemption_id => $id, idempotency_key => 'cf-1'});
    is($again->{headers}{'idempotent-replayed'}, 'true', 'confirm again with the key: replayed');
    is(post($ng, 'confirm', {redemption_id => $id})->{status}, 200, '... and without: 200');
    is($redis->cmd('XLEN', '{v}:log'), $len + 1, 'one confirm entry, however often it is sent');
}

# --- a hold that runs out --------------------------------------------------------
{
    my $c = fresh();
    my $r = reserve($c, hold_seconds => 1);
    my $id = J($r)->{redemption_id};
    is(uses($c), 1, 'hold_seconds 1: taken');
    sleep 1.2;
    $r = post($ng, 'confirm', {redemption_id => $id});
    is($r->{status}, 409, 'confirm too late: 409');
    is(J($r)->{reason}, 'reservation_expired', '... reservation_expired');
    is(uses($c), 0, '... the use is back');
    is(J(post($ng, 'release', {redemption_id => $id}))->{reason}, 'reservation_expired',
       'release after expiry: reservation_expired');
}

# --- idempotent reserve --------------------------------------------------------------
{
    my $c = fresh(max_uses => 5);
    my $a = reserve($c, idempotency_key => 'k1');
    my $b = reserve($c, idempotency_key => 'k1');
    is($b->{status}, 409, 'a repeated reserve while the first holds the code: 409');
    is(J($b)->{reason}, 'reservation_in_progress', '... reservation_in_progress');
    is(J($b)->{redemption_id}, J($a)->{redemption_id}, '... naming the reservation that holds it');
    is(uses($c), 1, '... counted once');
    post($ng, 'release', {redemption_id => J($a)->{redemption_id}});
    my $d = reserve($c, idempotency_key => 'k1');
    is($d->{status}, 200, 'the same key after a release: 200');
    isnt(J($d)->{redemption_id}, J($a)->{redemption_id}, '... a new reservation, not the released one');
    is(uses($c), 1, '... holding one use');
    is(post($ng, 'confirm', {redemption_id => J($d)->{redemption_id}})->{status}, 200,
       'confirmed');
    my $e = reserve($c, idempotency_key => 'k1');
    is($e->{status}, 200, 'the same key after the confirm: 200');
    is($e->{headers}{'idempotent-replayed'}, 'true', '... the confirmed answer replayed');
    is(J($e)->{redemption_id}, J($d)->{redemption_id}, '... the same reservation');
    is(uses($c), 1, '... nothing more counted');
    my $rb = post($ng, 'rollback', {redemption_id => J($d)->{redemption_id}});
    is($rb->{status}, 200, 'a confirmed reservation can be rolled back');
    is(held(), 0, '... nothing held');
    is(J(post($ng, 'confirm', {redemption_id => J($d)->{redemption_id}}))->{reason},
       'reservation_rolled_back', '... confirm says reservation_rolled_back');
}

# --- a held reservation rolled back ---------------------------------------------------
{
    my $c = fresh();
    my $id = J(reserve($c))->{redemption_id};
    is(post($ng, 'rollback', {redemption_id => $id})->{status}, 200,
       'a held reservation can be rolled back');
    is(held(), 0, '... and is no longer held');
    is(uses($c), 0, '... its use is back');
    is(J(post($ng, 'confirm', {redemption_id => $id}))->{reason}, 'reservation_rolled_back',
       '... confirm says reservation_rolled_back');
}

# --- a key used for a redeem is not a reservation's ------------------------------------
{
    my $c = fresh(max_uses => 5);
    my $red = post($ng, 'redeem', {code => $c, order => {amount => 10000}, idempotency_key => 'k-both'});
    is($red->{status}, 200, 'a redeem with key k-both');
    my $res = reserve($c, idempotency_key => 'k-both');
    is($res->{status}, 200, 'a reserve with the same key: its own answer');
    ok(!$res->{headers}{'idempotent-replayed'}, '... not the redeem replayed');
    isnt(J($res)->{redemption_id}, J($red)->{redemption_id}, '... a new reservation');
    is(post($ng, 'release', {redemption_id => J($res)->{redemption_id}})->{status}, 200, '(released)');
}

# --- what is not a reservation, and bad input --------------------------------------
{
    my $c = fresh();
    my $id = J(post($ng, 'redeem', {code => $c, order => {amount => 10000}}))->{redemption_id};
    my $r = post($ng, 'confirm', {redemption_id => $id});
    is($r->{status}, 409, 'confirm a plain redeem: 409');
    is(J($r)->{reason}, 'not_a_reservation', '... not_a_reservation');
    $r = post($ng, 'release', {redemption_id => '1-1'});
    is($r->{status}, 404, 'release an unknown id: 404');
    is(J($r)->{reason}, 'redemption_not_found', '... redemption_not_found');

    my $snap = snapshot($redis);
    for my $case (
        ['reserve', {code => $c, hold_seconds => 0}, 400, 'invalid_field', 'hold_seconds'],
        ['reserve', {code => $c, hold_seconds => 86401}, 400, 'invalid_field', 'hold_seconds'],
        ['reserve', {code => $c, hold_seconds => '60'}, 400, 'invalid_field', 'hold_seconds'],
        ['reserve', {code => $c, hold => 60}, 400, 'unknown_field', 'hold'],
        ['confirm', {}, 400, 'missing_field', 'redemption_id'],
        ['confirm', {redemption_id => 'abc'}, 400, 'invalid_field', 'redemption_id'],
        ['release', {redemption_id => '1-1', amount => 5}, 400, 'unknown_field', 'amount'],
        ['confirm', {redemption_id => '1-1', idempotency_key => "a\tb"}, 400, 'invalid_field', 'idempotency_key'],
        ['release', [], 400, 'invalid_request', undef],
    ) {
        my ($op, $body, $st, $reason, $field) = @$case;
        my $r = post($ng, $op, $body);
        my $what = "$op " . JSON::PP->new->canonical->encode($body);
        is($r->{status}, $st, "$what: $st");
        is(J($r)->{reason}, $reason, "$what: $reason");
        is(J($r)->{field}, $field, "$what: field") if defined $field;
    }
    my $r2 = http($ng->port, 'GET', '/vouchers/confirm');
    is($r2->{status}, 405, 'GET confirm: 405');
    is_deeply(snapshot($redis), $snap, 'bad requests changed nothing');
}

# --- limits count a reserve as a redeem ----------------------------------------------
{
    my $c = fresh(max_uses => 5);
    my $body = {code => $c, order => {amount => 10000}};
    my $first = http($ng->port, 'POST', '/limited/?who=a', body => $body);
    is($first->{status}, 200, 'limit: the first reserve passes');
    my $r = http($ng->port, 'POST', '/limited/?who=a', body => $body);
    is($r->{status}, 429, 'limit: the second is refused');
    is(J($r)->{reason}, 'rate_limited', '... rate_limited');
    is(post($ng, 'release', {redemption_id => J($first)->{redemption_id}})->{status}, 200,
       'limit: released again');
}

# --- Redis slow: the gate answers 503, a late reservation expires ---------------------
{
    my $c = fresh();
    $redis->pause;
    my $r = http($ng->port, 'GET', "/gate/x?coupon=$c");
    is($r->{status}, 503, 'Redis paused: 503');
    is(J($r)->{reason}, 'store_timeout', '... store_timeout');
    $redis->resume;
    # Redis ran the reservation it had already received
    ok(wait_until(sub { uses($c) == 1 }, timeout => 5), 'the late reservation was made');
    ok(wait_until(sub {
        $redis->cmd('FCALL', 'voucher_sweep', 1, '{v}:hz');
        uses($c) == 0 }, timeout => 10),
       '... and expired: the use came back');
}

# --- Redis away: redeem gate closed, validate gate open ---------------------------
{
    my $c = fresh();
    my $before = () = (VT::_read_file($ng->servroot . '/logs/upstream.log') // '') =~ /GET/g;
    $redis->stop;
    my $r = http($ng->port, 'GET', "/gate/x?coupon=$c");
    is($r->{status}, 503, 'Redis down: the redeem gate answers 503');
    like(J($r)->{reason}, qr/^store_(unavailable|timeout)$/, '... store_*');
    $r = http($ng->port, 'GET', "/peek/x?coupon=$c");
    is($r->{status}, 200, 'Redis down: the validate gate with fail_open passes');
    my $after = () = (VT::_read_file($ng->servroot . '/logs/upstream.log') // '') =~ /GET/g;
    is($after, $before + 1, 'only the fail-open request reached the upstream');
    $redis->start_again(keep_data => 1);
    ok(wait_until(sub { http($ng->port, 'GET', "/gate/x?coupon=$c")->{status} == 200 },
                  timeout => 15), 'Redis back: the gate works again');
    ok(wait_until(sub { held() == 0 }, timeout => 5), '... and settles')
        or diag explain [$redis->cmd('ZRANGE', '{v}:hz', 0, -1, 'WITHSCORES'),
                         redis_now($redis), grep { /voucher/ } split /\n/, $ng->error_log];
}

# --- a reload while checkouts wait on the upstream ------------------------------------
{
    my @c = map { fresh() } 1 .. 3;
    my @s = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                      Proto => 'tcp') or die;
        print $s "GET /slow/x?coupon=$_ HTTP/1.1\r\nHost: t\r\n\r\n";
        $s
    } @c;
    ok(wait_until(sub { held() == 3 }, timeout => 5), 'HUP: three checkouts reserved');
    $ng->reload;
    my @st = map { my $l = <$_>; $l =~ /^HTTP\/1\.1 (\d+)/ ? $1 : 0 } @s;
    is_deeply(\@st, [504, 504, 504], 'HUP: the old worker finished them (upstream timeout)');
    ok(wait_until(sub { held() == 0 }, timeout => 5), 'HUP: and released them');
    is_deeply([map { uses($_) } @c], [0, 0, 0], 'HUP: every use came back');
    is(http($ng->port, 'GET', "/gate/x?coupon=$c[0]")->{status}, 200,
       'HUP: the new worker reserves');
}

$ng->check_log;
done_testing;
