# Redis is down when nginx starts: 503 store_unavailable (or, with
# voucher_validate_fail_open, an unverified validate), and nginx recovers
# by itself once Redis comes up, without a reload.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my $redis = VT::Redis->start;
my $port = $redis->port;
$redis->stop;                           # the port is known, Redis is down

my $ng = VT::Nginx->start(
    vars => {RP => $port},
    http => 'voucher_redis 127.0.0.1:%%RP%% connect_timeout=200ms;',
    server => api_server() . <<'EOT');
        location = /open/validate { voucher_api validate; voucher_validate_fail_open on; }
        location = /open/redeem { voucher_api redeem; voucher_validate_fail_open on; }
EOT

my $body = {code => 'UP', customer => 'a', order => {amount => 1000}};
my $r = post($ng, 'redeem', $body);
is($r->{status}, 503, 'redeem with Redis down: 503');
is($r->{json}{reason}, 'store_unavailable', 'reason store_unavailable');
$r = post($ng, 'validate', $body);
is($r->{status}, 503, 'validate: 503 too (fail closed by default)');

$r = http($ng->port, 'POST', '/open/validate', body => $body);
is($r->{status}, 200, 'fail-open validate: 200');
ok($r->{json}{valid} && $r->{json}{unverified}, 'fail-open validate: valid, unverified');
$r = http($ng->port, 'POST', '/open/redeem', body => $body);
is($r->{status}, 503, 'fail-open never applies to redeem');

$redis->start_again;
$redis->load_functions;
campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'UP', campaign => 'c');

ok(wait_until(sub { post($ng, 'validate', $body)->{status} == 200 }, timeout => 15),
   'recovered by itself once Redis came up');
is(post($ng, 'redeem', $body)->{status}, 200, 'redeem works again');

$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
