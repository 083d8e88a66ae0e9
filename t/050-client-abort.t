# The client leaves while Redis is working on its redeem: no crash, no
# leak, and the redemption happened exactly once (it is in the stream).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=5s;',
    server => "        access_log %%SERVROOT%%/logs/access.log;\n" . api_server());

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'LEAVE', campaign => 'c', max_uses => 10);

sub redeem_raw {
    my ($key) = @_;
    my $body = qq({"code":"LEAVE","customer":"c-$key","idempotency_key":"$key","order":{"amount":1000}});
    return "POST /vouchers/redeem HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

# warm up, so the connection to Redis is ready
is(post($ng, 'validate', {code => 'LEAVE', order => {amount => 1000}})->{status},
   200, 'ready');

$ng->mark_log;

for my $i (1 .. 5) {
    $redis->pause;                       # Redis holds the reply
    http_raw($ng->port, redeem_raw("gone-$i"), close_after_send => 1);
    sleep 0.3;                           # nginx sees the client leave
    $redis->resume;
}

ok(wait_until(sub { $redis->cmd('XLEN', '{v}:log') == 5 }, timeout => 5),
   'each abandoned redeem happened once: 5 stream entries');
is($redis->cmd('HGET', '{v}:c:LEAVE', 'u'), 5, 'the counter says 5');

# the replies came back to requests that were gone; nginx is fine
my $r = post($ng, 'redeem', {code => 'LEAVE', customer => 'c-gone-1',
                             idempotency_key => 'gone-1', order => {amount => 1000}});
is($r->{status}, 200, 'the retry of an abandoned redeem gets its answer');
is($r->{headers}{'idempotent-replayed'}, 'true', '... as a replay');
is($redis->cmd('HGET', '{v}:c:LEAVE', 'u'), 5, 'and counts nothing more');

# each abandoned request was finished (499) while Redis still held its
# reply: the op was detached, not waited for
my $log = do { local (@ARGV, $/) = ($ng->servroot . '/logs/access.log'); <> } // '';
is(scalar(() = $log =~ /"POST \/vouchers\/redeem HTTP\/1\.1" 499 /g), 5,
   'the five abandoned redeems were finished as 499 before Redis answered');

# a client that leaves while the body is still arriving
http_raw($ng->port, "POST /vouchers/redeem HTTP/1.1\r\nHost: t\r\n"
       . "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"code\":",
         close_after_send => 1);
sleep 0.2;
is(post($ng, 'validate', {code => 'LEAVE', order => {amount => 1000}})->{status},
   200, 'still serving');

$ng->stop;
$ng->check_log('no crash, alert or open socket on exit');
$redis->stop;
done_testing;
