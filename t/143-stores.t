# A store per tenant: voucher_store NAME ... at http level, chosen with
# voucher_store_use in a server or location.  Each store has its own
# connections and loads its own library; the same code means what each
# tenant's Redis says; the gate settles in the location's store; one
# tenant's Redis down (kill -9) leaves the other serving under load, and it
# comes back without a reload.  Bad configurations are refused.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use WorkerT;

my $ra = VT::Redis->start;
my $rb = VT::Redis->start;
my $P2 = VT::free_port();

my $ng = VT::Nginx->start(redis => $ra, workers => 2,
    vars => { RB => $rb->port, P2 => $P2 },
    http => <<'EOT',
    voucher_store shop_a 127.0.0.1:%%REDIS_PORT%% timeout=500ms;
    voucher_store shop_b 127.0.0.1:%%RB%% timeout=500ms connections=1;
    voucher_lockout_cache 1m;
    voucher_hot_cache 1m time=5s;
    server {
        listen 127.0.0.1:%%P2%%;
        voucher_store_use shop_b;
        location = /vouchers/validate { voucher_api validate; }
        location = /vouchers/redeem   { voucher_api redeem; }
    }
EOT
    server => <<'EOT');
        location /a/ {
            voucher_store_use shop_a;
            location = /a/validate { voucher_api validate; }
            location = /a/redeem   { voucher_api redeem; }
            location /a/checkout {
                voucher_gate redeem;
                voucher_code $arg_coupon;
                voucher_order_amount 1000;
                proxy_pass http://127.0.0.1:%%PORT%%/placed;
            }
        }
        location = /b/validate { voucher_store_use shop_b; voucher_api validate; }
        location = /placed { return 200 "placed\n"; }
EOT

my $o = {amount => 1000};
sub a { my ($op, $code) = @_;
        http($ng->port, 'POST', "/a/$op", body => {code => $code, order => $o}) }
sub b { my ($op, $code) = @_;
        http($P2, 'POST', "/vouchers/$op", body => {code => $code, order => $o}) }

# each store loaded its own library (neither Redis had one)
ok(wait_until(sub { !VT::Redis::is_error($ra->cmd('FCALL', 'voucher_version', 0))
                    && !VT::Redis::is_error($rb->cmd('FCALL', 'voucher_version', 0)) },
              timeout => 10),
   'both Redis got the library from nginx');

campaign($ra, 'ka', kind => 'amount', value => 100);
code($ra, 'SHARED', campaign => 'ka', max_uses => 1);
campaign($rb, 'kb', kind => 'amount', value => 250);
code($rb, 'SHARED', campaign => 'kb');

my $x = a('validate', 'SHARED');
is($x->{json}{discount}, 100, "tenant A: the code as A's Redis has it") or diag $x->{body};
$x = b('validate', 'SHARED');
is($x->{json}{discount}, 250, "tenant B (its server's store): as B's Redis has it") or diag $x->{body};
is(http($ng->port, 'POST', '/b/validate', body => {code => 'SHARED', order => $o})->{json}{discount},
   250, 'a location of the default server that uses shop_b');

is(a('redeem', 'SHARED')->{status}, 200, 'A redeems its one use');
is($ra->cmd('HGET', '{v}:c:SHARED', 'u'), 1, '... counted in A');
ok(!defined $rb->cmd('HGET', '{v}:c:SHARED', 'u'), '... not in B');

# a reload with two stores: the old workers leave, the new ones serve both
my $t0 = VT::now();
ok($ng->reload, 'nginx -s reload');
cmp_ok(VT::now() - $t0, '<', 5, '... done at once');
is(b('validate', 'SHARED')->{json}{discount}, 250, 'tenant B after the reload');

# the hot code cache is per store: A's sold-out code is not B's
is(a('redeem', 'SHARED')->{json}{reason}, 'code_exhausted', 'A: now code_exhausted');
my $bb = $rb->hot_calls;
is(b('redeem', 'SHARED')->{status}, 200, "B's code of the same name still redeems");
is($rb->hot_calls - $bb, 1, '... asked of B');

# the gate settles in its location's store
code($ra, 'GATE1', campaign => 'ka');
my $g = http($ng->port, 'GET', '/a/checkout?coupon=GATE1');
is($g->{status}, 200, 'the gate in a shop_a location passes');
ok(wait_until(sub { ($ra->cmd('ZCARD', '{v}:hz') // 1) == 0 }, timeout => 5),
   '... and its confirm lands in A');
my $types = join ',', map { my %h = @{ $_->[1] }; $h{type} // '' }
    @{ $ra->cmd('XRANGE', '{v}:log', '-', '+') };
like($types, qr/confirm/, "A's trail holds the confirm");
is($rb->cmd('EXISTS', '{v}:hz'), 0, 'B saw nothing of it');

# tenant B's Redis dies: A serves on, B answers 503, then comes back
code($ra, "LOAD$_", campaign => 'ka') for 1 .. 4;
$rb->kill9;
$t0 = VT::now();
my @req = map { { method => 'POST', path => '/a/validate',
                  headers => { 'Content-Type' => 'application/json' },
                  body => '{"code":"LOAD' . (1 + $_ % 4) . '","order":{"amount":1000}}' } } 1 .. 400;
my @res = http_parallel($ng->port, \@req, concurrency => 20, timeout => 30);
my $took = VT::now() - $t0;
is(scalar(grep { $_->{status} == 200 } @res), 400,
   "B down: 400 validates of tenant A, 20 at a time: all 200");
note sprintf 'tenant A with B down: 400 requests in %.2f s', $took;
my $down = b('validate', 'SHARED');
is($down->{status}, 503, 'tenant B: 503 ...');
is($down->{json}{reason}, 'store_unavailable', '... store_unavailable');
is(a('validate', 'LOAD1')->{status}, 200, 'A still 200 after B answered 503');

# and hangs (SIGSTOP): its requests time out, A's do not wait on them
$rb->start_again;
ok(wait_until(sub { b('validate', 'SHARED')->{status} != 503 }, timeout => 10), 'B up');
$rb->pause;
@res = http_parallel($ng->port, \@req, concurrency => 20, timeout => 30);
is(scalar(grep { $_->{status} == 200 } @res), 400, 'B hung: A still answers all 400');
my $hung = b('validate', 'SHARED');
is($hung->{json}{reason}, 'store_timeout', 'B hung: 503 store_timeout after its timeout');
$rb->resume;
$rb->kill9;
$rb->start_again;
ok(wait_until(sub { b('validate', 'SHARED')->{status} != 503 }, timeout => 10),
   "B back (empty, as kill -9 left it): its tenant is answered again, with no reload");
campaign($rb, 'kb', kind => 'amount', value => 250);
code($rb, 'SHARED', campaign => 'kb');
is(b('validate', 'SHARED')->{json}{discount}, 250, '... from the library nginx loaded into it again');

$ng->check_log;
like($ng->error_log, qr/redis shop_b\@127\.0\.0\.1:\d+/, 'logs name the store');

# the worker: one voucherd per store, each with its own configuration; one
# tenant's Redis down leaves the other's voucherd working
my $wa = worker_setup(redis => $ra, config => { daemon => { poll_ms => 50 } });
my $wb = worker_setup(redis => $rb, config => { daemon => { poll_ms => 50 } });
my $da = WorkerT::Daemon->start($wa);
my $db = WorkerT::Daemon->start($wb);
$rb->kill9;
code($ra, 'HOLDME', campaign => 'ka', max_uses => 1);
is($ra->cmd('FCALL', 'voucher_reserve', 1, '{v}:c:HOLDME', 1000, 'c1', 5000, '', 'o1', '', 0)->[0],
   'ok', "a 1 s hold in A's store, B's Redis down");
ok(wait_until(sub { ($ra->cmd('HGET', '{v}:c:HOLDME', 'u') // 0) == 0 }, timeout => 5),
   "A's voucherd gave the use back after the hold");
ok($db->alive, "B's voucherd waits for its Redis");
$rb->start_again;
ok(wait_until(sub { !VT::Redis::is_error($rb->cmd('FCALL', 'voucher_version', 0)) }, timeout => 10),
   'B back, its library loaded again');
campaign($rb, 'kb', kind => 'amount', value => 250);
code($rb, 'HOLDB', campaign => 'kb', max_uses => 1);
is($rb->cmd('FCALL', 'voucher_reserve', 1, '{v}:c:HOLDB', 1000, 'c1', 5000, '', 'o1', '', 0)->[0],
   'ok', "a 1 s hold in B's store");
ok(wait_until(sub { ($rb->cmd('HGET', '{v}:c:HOLDB', 'u') // 0) == 0 }, timeout => 8),
   "B's voucherd found its Redis again and gave the use back")
    or diag $db->log;
$da->stop;
$db->stop;

# bad configurations
for my $bad (
    ["voucher_store a 127.0.0.1:1;\n    voucher_store a 127.0.0.1:2;", qr/duplicate store "a"/],
    ["voucher_store a/b 127.0.0.1:1;", qr/needs a name of letters, digits/],
    ["voucher_store a;", qr/invalid number of arguments in "voucher_store"/],
    ["voucher_store a 127.0.0.1:1 bogus=1;", qr/invalid parameter #3 of "voucher_store"/],
    ["voucher_store a 127.0.0.1:1;\n    voucher_store_use nope;", qr/no "voucher_store nope" for "voucher_store_use"/],
    ["voucher_store a 127.0.0.1:1;", qr/"voucher_api" needs "voucher_redis" in the http block, or "voucher_store_use"/],
) {
    my $ng2 = VT::Nginx->start(redis => $ra, expect_fail => 1, http => $bad->[0],
                               server => "        location = /v { voucher_api validate; }\n");
    like($ng2->stderr . $ng2->error_log, $bad->[1], "refused: $bad->[0]");
}

done_testing;
