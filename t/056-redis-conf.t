# voucher_redis parameters: ACL user/password, password_file, a unix
# socket, db=N; a wrong password is refused and never logged; bad
# configurations fail at start with a clear message.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use VT;
use VoucherT;

my $secret = 's3cr3t-' . int(rand(1e9));
my $dir = tempdir(CLEANUP => 1);
open my $fh, '>', "$dir/pw" or die; print $fh "$secret\n"; close $fh;

my $redis = VT::Redis->start(password => $secret, unixsocket => 1);
$redis->load_functions;
$redis->cmd('ACL', 'SETUSER', 'shop', 'on', ">$secret", '~*', '+@all');
$redis->cmd('SELECT', 3);
campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'DB3', campaign => 'c');
$redis->cmd('SELECT', 0);

my $body = {code => 'DB3', order => {amount => 1000}};

for my $case (
    ['password and db', "voucher_redis 127.0.0.1:%%REDIS_PORT%% db=3 password=$secret;"],
    ['ACL user', "voucher_redis 127.0.0.1:%%REDIS_PORT%% db=3 user=shop password=$secret;"],
    ['password_file', "voucher_redis 127.0.0.1:%%REDIS_PORT%% db=3 password_file=$dir/pw;"],
    ['unix socket', "voucher_redis unix:%%REDIS_SOCKET%% db=3 password=$secret;"],
    ['host name resolved at start', "voucher_redis localhost:%%REDIS_PORT%% db=3 password=$secret;"],
) {
    my ($name, $http) = @$case;
    my $ng = VT::Nginx->start(redis => $redis, http => $http, server => api_server());
    my $r;
    ok(wait_until(sub { $r = post($ng, 'validate', $body); $r->{status} == 200 }, timeout => 10),
       "$name: works") or diag explain $r;
    $ng->stop;
    $ng->check_log("$name: no alert");
}

my $ng = VT::Nginx->start(redis => $redis, server => api_server(),
    http => "voucher_redis 127.0.0.1:%%REDIS_PORT%% password=wrong-$secret connect_timeout=200ms;");
my $r = post($ng, 'validate', $body);
is($r->{status}, 503, 'wrong password: 503');
is($r->{json}{reason}, 'store_unavailable', 'wrong password: store_unavailable');
Time::HiRes::sleep(0.5);
my $log = $ng->error_log;
like($log, qr/AUTH refused/, 'the refusal is logged');
unlike($log, qr/\Q$secret\E/, 'the password never reaches the log');
$ng->stop;

for my $bad (
    ['no voucher_redis', '', qr/needs "voucher_redis"/],
    ['bad parameter', 'voucher_redis 127.0.0.1:1 bogus=1;', qr/invalid parameter #2/],
    ['bad port', 'voucher_redis 127.0.0.1:99999;', qr/invalid port|voucher_redis/],
    ['missing password file', "voucher_redis 127.0.0.1:1 password_file=$dir/none;", qr/failed/],
    ['secret in bad parameter is not echoed', "voucher_redis 127.0.0.1:1 pasword=$secret;", qr/invalid parameter/],
) {
    my ($name, $http, $re) = @$bad;
    my $n = VT::Nginx->start(redis => $redis, http => $http, server => api_server(),
                             expect_fail => 1);
    ok($n->start_failed, "$name: nginx refuses to start");
    my $err = $n->stderr . $n->error_log;
    like($err, $re, "$name: says why");
    unlike($err, qr/\Q$secret\E/, "$name: no secret in the message");
}

$redis->stop;
done_testing;
