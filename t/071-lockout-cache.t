# voucher_lockout_cache: once Redis has said a key is locked out, every
# worker of this nginx refuses that key by itself until the ban ends, with
# no Redis call at all; other keys are not touched; dry run bypasses it.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(workers => 2,
    http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%;\n    voucher_lockout_cache 1m;\n"
          . "    log_format lim '\$http_x_client \$status \$voucher_limit_status';",
    server => <<'EOT');
        access_log %%SERVROOT%%/logs/access.log lim;
        location = /vouchers/validate {
            voucher_api validate;
            voucher_lockout $http_x_client failures=3 window=1m ban=2s name=guess;
        }
        location = /other/validate {
            voucher_api validate;
            voucher_namespace other;
            voucher_lockout $http_x_client failures=3 window=1m ban=2s name=guess;
        }
        location = /dry/validate {
            voucher_api validate;
            voucher_lockout $http_x_client failures=3 window=1m ban=2s name=guess;
            voucher_limit_dry_run on;
        }
        location /gate/ {
            voucher_gate validate;
            voucher_code $arg_coupon;
            voucher_lockout $http_x_client failures=3 window=1m ban=2s name=guess;
            proxy_pass http://127.0.0.1:%%PORT%%/passed;
        }
        location = /passed { return 200 "passed\n"; }
EOT

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'REAL1', campaign => 'c');
my $o = {amount => 1000};
sub try { my ($who, $code, $path) = @_;
          http($ng->port, 'POST', $path // '/vouchers/validate',
               headers => { 'X-Client' => $who }, body => {code => $code, order => $o}) }
sub fcalls { $redis->hot_calls }

is(try('a', "BAD$_")->{status}, 404, "guess $_: not_found") for 1 .. 3;
my $r = try('a', 'BAD4');
is($r->{status}, 429, 'Redis locks the key out');
is($r->{json}{reason}, 'locked_out', '... locked_out');

my $before = fcalls();
my @res = map { try('a', "MORE$_") } 1 .. 40;
is(scalar(grep { $_->{status} == 429 && $_->{json}{reason} eq 'locked_out' } @res), 40,
   '40 more attempts: every one locked_out');
is(fcalls() - $before, 0, '... and not one reached Redis (both workers share the cache)');
is($res[0]{json}{limit}, 'guess', 'the answer names the limit');
ok($res[0]{headers}{'retry-after'} >= 1 && $res[0]{headers}{'retry-after'} <= 2,
   'Retry-After: what is left of the ban');
ok($res[0]{json}{retry_after_ms} > 0 && $res[0]{json}{retry_after_ms} <= 2000,
   'retry_after_ms too');
is(try('a', 'REAL1')->{status}, 429, 'a real code from the banned key: refused as well');

# the gate refuses it the same way
my $g = http($ng->port, 'GET', '/gate/x?coupon=REAL1', headers => { 'X-Client' => 'a' });
is($g->{status}, 429, 'the gate: 429 from the cache');
is(fcalls() - $before, 0, '... still no Redis call');

# the same key and limit name in another namespace is another ban
$before = fcalls();
is(try('a', 'ANY', '/other/validate')->{status}, 404, 'namespace "other": not locked out');
is(fcalls() - $before, 1, '... asked of Redis');

# another key is not touched
$before = fcalls();
is(try('b', 'REAL1')->{status}, 200, 'another client: a real code is valid');
is(fcalls() - $before, 1, '... asked of Redis');

# dry run: the cache does not refuse, Redis decides (and only logs)
$before = fcalls();
is(try('a', 'REAL1', '/dry/validate')->{status}, 200, 'dry run: not refused');
is(fcalls() - $before, 1, '... Redis was asked');

# the ban ends: the key is asked of Redis again
sleep 2.2;
$before = fcalls();
is(try('a', 'REAL1')->{status}, 200, 'after the ban: the real code is valid');
is(fcalls() - $before, 1, '... asked of Redis again');

my $log = VT::_read_file($ng->servroot . '/logs/access.log') // '';
like($log, qr/^a 429 LOCKED$/m, '$voucher_limit_status LOCKED for a cached refusal');
like($ng->error_log, qr/limit "guess": LOCKED \(lockout cache\)/, 'logged at voucher_limit_log_level');

# a reload keeps what was learned, a bad size is refused
is(try('c', "X$_")->{status}, 404, "client c, guess $_") for 1 .. 3;
is(try('c', 'X4')->{status}, 429, 'client c locked out by Redis');
$ng->reload;
$before = fcalls();
is(try('c', 'X5')->{status}, 429, 'after a reload: still refused');
is(fcalls() - $before, 0, '... from the cache');

# long keys and keys of any bytes: the cache holds each as Redis does (a key
# of more than 64 bytes by its digest), so a ban never reaches a key that
# only shares a prefix, and the banned key itself is refused from the cache
my $bin = join '', map { chr } grep { $_ != 10 && $_ != 13 } 1 .. 255;
for my $prefix ('Q' x 300, "<$bin$bin>") {
    my $what = $prefix =~ /^Q/ ? '300 Qs' : 'assorted bytes';
    is(try("${prefix}A", "Y$_")->{status}, 404, "$what + A, guess $_") for 1 .. 3;
    is(try("${prefix}A", 'Y4')->{status}, 429, "$what + A: locked out by Redis");
    $before = fcalls();
    is(scalar(grep { try("${prefix}A", 'REAL1')->{status} == 429 } 1 .. 10), 10,
       "$what + A: 10 more attempts refused");
    is(fcalls() - $before, 0, '... from the cache');
    $before = fcalls();
    my $b = try("${prefix}B", 'REAL1');
    is($b->{status}, 200, "$what + B, the same prefix: not refused")
        or diag("got $b->{status} $b->{body}");
    is(fcalls() - $before, 1, '... asked of Redis');
}

$ng->check_log;

my $bad = VT::Nginx->start(redis => $redis, expect_fail => 1,
    http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%;\n    voucher_lockout_cache 1k;");
like($bad->stderr . $bad->error_log, qr/invalid size "1k" of "voucher_lockout_cache"/,
     'a cache too small is refused');

done_testing;
