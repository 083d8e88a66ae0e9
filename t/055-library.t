# The function library is loaded and checked automatically: with none in
# Redis, the module's becomes the primary ("voucher"); with another
# version's primary there, the module loads its own beside it
# ("voucher_<version>") and never replaces the primary; a library flushed
# while nginx runs comes back by itself.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

# the library path itself: with the native module a validate needs no
# library (VOUCHER_REDIS_MODULE does not apply here)
my $redis = VT::Redis->start(no_module => 1);

# another version's primary (a stub): it stays, ours goes beside it
$redis->cmd('FUNCTION', 'LOAD',
    "#!lua name=voucher\nredis.register_function('voucher_version', function() return 'old' end)");

my $ng = VT::Nginx->start(redis => $redis,
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;', server => api_server());

sub libs { map { $_->[1] } @{ $redis->cmd('FUNCTION', 'LIST') } }
my $ver;
ok(wait_until(sub { ($ver) = map { /^voucher_([0-9a-f]{16})\z/ ? $1 : () } libs(); $ver },
              timeout => 10),
   'the module loaded its own library beside the other version');
like($ver, qr/^[0-9a-f]{16}$/, "named by the version, the library's hash ($ver)");
is($redis->cmd('FCALL', 'voucher_version', 0), 'old', 'the primary was not replaced');
is($redis->cmd('FCALL', "voucher_version_$ver", 0), $ver, 'its functions answer by their versioned names');

# no library at all: the module's becomes the primary
$redis->cmd('FUNCTION', 'FLUSH');
$ng->stop;
$ng = VT::Nginx->start(redis => $redis,
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;', server => api_server());
ok(wait_until(sub { my $v = $redis->cmd('FCALL', 'voucher_version', 0);
                    !ref $v && $v eq $ver }, timeout => 10),
   'with none in Redis, the module loaded its library as the primary');
is_deeply([libs()], ['voucher'], '... and no other');

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'LIB', campaign => 'c');
my $body = {code => 'LIB', order => {amount => 1000}};
is(post($ng, 'validate', $body)->{status}, 200, 'works');

$redis->cmd('FUNCTION', 'FLUSH');
my $r = post($ng, 'validate', $body);
is($r->{status}, 503, 'first call after FUNCTION FLUSH: 503');
is($r->{json}{reason}, 'store_unavailable', '... store_unavailable, nothing ran');
ok(wait_until(sub { post($ng, 'validate', $body)->{status} == 200 }, timeout => 10),
   'the library came back by itself');
is($redis->cmd('FCALL', 'voucher_version', 0), $ver, 'same version');

# the built header is generated from redis/lib/*.lua
my $root = VT::root_dir();
my $out = `perl $root/scripts/gen-lua --header /tmp/vt-lua-$$.h && cat /tmp/vt-lua-$$.h`;
unlink "/tmp/vt-lua-$$.h";
open my $fh, '<', "$root/common/voucher_lua.h" or die;
my $built = do { local $/; <$fh> };
is($out, $built, 'common/voucher_lua.h is in step with redis/lib/*.lua');
like($built, qr/VOUCHER_LUA_VERSION\s+"\Q$ver\E"/, 'and the module loaded that version');

$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
