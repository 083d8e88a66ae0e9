# voucher_metrics: the module's Prometheus text, against a real nginx with
# two workers and a real Redis.  Known traffic moves the figures as it
# should: requests by operation, status and reason (summed over both
# workers: each answer names its worker), offline refusals, limit
# decisions, the lockout cache (bans learned, refusals without Redis,
# entries), the hot code cache, the gate and its settlements, Redis round
# trips as a histogram, connections up and down while Redis is stopped
# and back.  The counts survive a reload; promtool accepts every scrape
# and the alert rules of docs/operations.md; GET only; the location is
# closed the nginx way; no code, customer or key is ever in the text.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep);
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use VT;
use VoucherT;

my $root = VT::root_dir();
my $vcode = "$root/build/vcode";
-x $vcode or BAIL_OUT("build/vcode missing: run scripts/build");
my $promtool = -x '/usr/bin/promtool' ? '/usr/bin/promtool' : undef;
my $dir = tempdir(CLEANUP => 1);
system($vcode, 'genkey', "$dir/k.key") == 0 or die;
my ($issued) = `$vcode issue $dir/k.key SALE 8 5 1`;
chomp $issued;
# the same shape, another MAC: forged
my $forged = substr($issued, 0, -1) . (substr($issued, -1) eq 'A' ? 'B' : 'A');

my $http = <<"EOT";
    voucher_redis 127.0.0.1:%%REDIS_PORT%% connections=2 connect_timeout=10s timeout=2s;
    voucher_code_key $dir/k.key;
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_pattern "^[A-Z]{4,12}\$";
    voucher_lockout_cache 1m;
    voucher_hot_cache 1m time=30s;
EOT
# an upstream of this test: it answers once Redis is away
my $up = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                               Listen => 8, Proto => 'tcp') or die "listen: $!";
my $UP = $up->sockport;

my $server = <<"EOT";
        location /short/ {
            voucher_gate redeem;
            voucher_code \$arg_coupon;
            voucher_hold_time 2s;
            proxy_pass http://127.0.0.1:$UP;
        }
        location = /lost { return 200 "\$voucher_lost_confirms"; }
EOT
$server .= <<'EOT';
        add_header X-Worker $pid always;
        location = /metrics {
            allow 127.0.0.1;
            deny all;
            voucher_metrics;
        }
        location = /closed/metrics {
            deny all;
            voucher_metrics;
        }
        location = /vouchers/validate { voucher_api validate; }
        location = /vouchers/redeem   { voucher_api redeem; }
        location = /vouchers/events   { voucher_api event; }
        location = /limit/validate {
            voucher_api validate;
            voucher_limit $http_x_client rate=1r/m name=ip;
        }
        location = /lock/validate {
            voucher_api validate;
            voucher_lockout $http_x_client failures=3 window=1m ban=1m name=guess;
        }
        location /gate/ {
            voucher_gate redeem;
            voucher_code $arg_coupon;
            voucher_customer $arg_customer;
            proxy_pass http://127.0.0.1:%%PORT%%/passed;
        }
        location /passed { return 200 "passed\n"; }
EOT
my ($redis, $ng) = start_pair(workers => 2, http => $http, server => $server);

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'REAL', campaign => 'c', max_uses => 0);
code($redis, 'SOLD', campaign => 'c', max_uses => 1);
code($redis, 'GATED', campaign => 'c', max_uses => 0);
my $o = { amount => 1000 };

my $scrapes = 0;
my $last_text = '';

# one scrape: {series => value}; promtool checks the text
sub scrape {
    my $res = http($ng->port, 'GET', '/metrics');
    die "scrape: $res->{status}" unless $res->{status} == 200;
    $scrapes++;
    $last_text = $res->{body};
    if ($promtool) {
        VT::_write_file("$dir/scrape.txt", $res->{body});
        my $out = `$promtool check metrics < '$dir/scrape.txt' 2>&1`;
        ok($? == 0, "promtool check metrics accepts scrape $scrapes") or diag $out;
    }
    my %m;
    for (split /\n/, $res->{body}) {
        next if /^#/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return \%m;
}

sub metric { my ($m, $k) = @_; $m->{$k} // 0 }

sub req { my ($op, $status, $reason) = @_;
          qq(voucher_requests_total{op="$op",status="$status",reason="$reason"}) }
sub conns { my ($state) = @_; qq(voucher_redis_connections{store="",role="master",state="$state"}) }

######################################################## the location

my $res = http($ng->port, 'GET', '/metrics');
is($res->{status}, 200, 'GET /metrics: 200');
is($res->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   '... Prometheus text, format 0.0.4');
is(http($ng->port, 'HEAD', '/metrics')->{status}, 200, 'HEAD: 200');
is(http($ng->port, 'POST', '/metrics', body => 'x')->{status}, 405, 'POST: 405');
is(http($ng->port, 'DELETE', '/metrics')->{status}, 405, 'DELETE: 405');
is(http($ng->port, 'GET', '/closed/metrics')->{status}, 403, 'deny all: 403, the nginx way');

my $m0;
ok(VT::wait_until(sub { $m0 = scrape(); metric($m0, conns('up')) == 4 }, timeout => 10),
   'two workers, two connections each: voucher_redis_connections up 4')
    or diag $last_text;
is(metric($m0, conns('down')) + metric($m0, conns('connecting')), 0, '... none down or connecting');
is(metric($m0, 'voucher_redis_native{store=""}'), 0, 'no native module: voucher_redis_native 0');
is(metric($m0, 'voucher_redis_waiting{store=""}'), 0, 'nothing waiting');
like($last_text, qr/^# TYPE voucher_requests_total counter$/m, 'HELP and TYPE lines');
my ($lib) = VT::_read_file("$root/common/voucher_lua.h") =~ /VOUCHER_LUA_VERSION\s+"(\w+)"/;
is(metric($m0, qq(voucher_info{library="$lib"})), 1, "voucher_info{library=\"$lib\"} 1");
like($last_text, qr/^# HELP voucher_redis_duration_seconds /m, '... for the histogram too');

######################################################## validates, summed over both workers

my (%pids, $n);
for my $round (1 .. 20) {
    my @r = http_parallel($ng->port, [ map { { method => 'POST', path => '/vouchers/validate',
                                               body => { code => 'REAL', order => $o } } } 1 .. 10 ],
                          concurrency => 10);
    $n += grep { $_->{status} == 200 } @r;
    $pids{ $_->{headers}{'x-worker'} // '' }++ for @r;
    last if keys %pids >= 2;
}
is(scalar(keys %pids), 2, "both workers answered validates ($n in all)");
my $m1 = scrape();
is(metric($m1, req('validate', 200, 'ok')), $n, "voucher_requests_total validate 200 ok: $n, both workers' sum");

# redeems, refusals with reasons
is(post($ng, 'redeem', { code => 'REAL', order => $o })->{status}, 200, 'a redeem') for 1 .. 2;
is(post($ng, 'validate', { code => 'ZZZZ', order => $o })->{status}, 404, 'an unknown code: 404');
is(post($ng, 'validate', { code => $forged, order => $o })->{status}, 404, 'a forged code: 404 too');
is(post($ng, 'validate', { code => 'no!', order => $o })->{status}, 404, 'a malformed code: 404 too');
is(post($ng, 'validate', '{"code":', headers => { 'Content-Type' => 'application/json' })->{status}, 400,
   'bad JSON: 400');
is(post($ng, 'validate', { code => 'REAL', order => $o, bogus => 1 })->{status}, 400, 'an unknown field: 400');
is(http($ng->port, 'GET', '/vouchers/validate')->{status}, 405, 'GET on the API: 405');

my $m2 = scrape();
is(metric($m2, req('redeem', 200, 'ok')), 2, 'redeem 200 ok: 2');
is(metric($m2, req('validate', 404, 'not_found')), 3, 'validate 404 not_found: 3 (Redis once, offline twice)');
is(metric($m2, 'voucher_offline_refusals_total{reason="code_forged"}'), 1, 'offline refusals: code_forged 1');
is(metric($m2, 'voucher_offline_refusals_total{reason="code_malformed"}'), 1, '... code_malformed 1');
is(metric($m2, req('validate', 400, 'invalid_json')), 1, 'validate 400 invalid_json: 1');
is(metric($m2, req('validate', 400, 'unknown_field')), 1, 'validate 400 unknown_field: 1');
is(metric($m2, req('validate', 405, 'method_not_allowed')), 1, 'validate 405 method_not_allowed: 1');
is(metric($m2, req('validate', 200, 'ok')), $n, 'validate 200 ok unchanged');

# storefront events
my $ev = { id => 'ev-m-1', type => 'signup', customer => 'mali' };
is(http($ng->port, 'POST', '/vouchers/events', body => $ev)->{status}, 200, 'an event') for 1 .. 2;
is(http($ng->port, 'POST', '/vouchers/events', body => { %$ev, customer => 'somchai' })->{status}, 422,
   'the same id, another body: 422');
my $m2e = scrape();
is(metric($m2e, req('event', 200, 'ok')), 2, 'event 200 ok: 2 (a replay counts as an answer)');
is(metric($m2e, req('event', 422, 'event_conflict')), 1, 'event 422 event_conflict: 1');

######################################################## limits, the lockout cache

sub lim { http($ng->port, 'POST', $_[0], headers => { 'X-Client' => $_[1] },
               body => { code => $_[2], order => $o }) }
is(lim('/limit/validate', 'a', 'REAL')->{status}, 200, 'a limited location: the first passes');
is(lim('/limit/validate', 'a', 'REAL')->{status}, 429, '... the second is rate_limited');
my $m3 = scrape();
is(metric($m3, 'voucher_limit_decisions_total{decision="passed"}'), 1, 'limit decisions: passed 1');
is(metric($m3, 'voucher_limit_decisions_total{decision="rejected"}'), 1, '... rejected 1');
is(metric($m3, req('validate', 429, 'rate_limited')), 1, 'validate 429 rate_limited: 1');

is(lim('/lock/validate', 'b', "BAD$_")->{status}, 404, "guess $_") for qw(A B C);
is(lim('/lock/validate', 'b', 'BADD')->{status}, 429, 'Redis locks the key out');
my @locked = map { lim('/lock/validate', 'b', "MORE$_") } qw(A B C D E);
is(scalar(grep { $_->{status} == 429 } @locked), 5, 'five more: refused');
my $m4 = scrape();
is(metric($m4, 'voucher_lockout_cache_bans_total'), 1, 'voucher_lockout_cache_bans_total 1');
is(metric($m4, 'voucher_lockout_cache_refusals_total'), 5, 'voucher_lockout_cache_refusals_total 5: no Redis');
is(metric($m4, 'voucher_lockout_cache_entries'), 1, 'voucher_lockout_cache_entries 1');
is(metric($m4, 'voucher_limit_decisions_total{decision="locked"}'), 1, 'limit decisions: locked 1 (Redis)');
is(metric($m4, req('validate', 429, 'locked_out')), 6, 'validate 429 locked_out: 6');

######################################################## the hot code cache

is(post($ng, 'redeem', { code => 'SOLD', order => $o })->{status}, 200, 'SOLD: its one use');
is(post($ng, 'redeem', { code => 'SOLD', order => $o })->{status}, 409, '... then code_exhausted from Redis');
is(post($ng, 'validate', { code => 'SOLD', order => $o })->{status}, 409, '... and from the hot cache');
my $m5 = scrape();
is(metric($m5, 'voucher_hot_cache_answers_total'), 1, 'voucher_hot_cache_answers_total 1');
is(metric($m5, req('redeem', 409, 'code_exhausted')), 1, 'redeem 409 code_exhausted: 1');
is(metric($m5, req('validate', 409, 'code_exhausted')), 1, 'validate 409 code_exhausted: 1');

######################################################## the gate, settlements

is(http($ng->port, 'GET', '/gate/x?coupon=GATED&customer=c1')->{status}, 200, 'the gate passes a code');
is(http($ng->port, 'GET', '/gate/x?coupon=ZZZZ&customer=c1')->{status}, 404, '... refuses another');
is(http($ng->port, 'GET', '/gate/x')->{status}, 200, '... and passes a request without a code');
my $m6;
ok(VT::wait_until(sub { $m6 = scrape();
                        metric($m6, 'voucher_settlements_total{kind="confirm",outcome="started"}') == 1 },
                  timeout => 5), 'the gate confirms: settlements confirm started 1');
is(metric($m6, req('gate_redeem', 200, 'ok')), 1, 'gate_redeem 200 ok: 1');
is(metric($m6, req('gate_redeem', 404, 'not_found')), 1, 'gate_redeem 404 not_found: 1');
is(metric($m6, 'voucher_settlements_total{kind="confirm",outcome="lost"}'), 0, '... none lost');

######################################################## the histogram

my $count = metric($m6, 'voucher_redis_duration_seconds_count{store="",path="fcall"}');
ok($count >= $n + 10, "round trips timed: $count (FCALL)");
is(metric($m6, 'voucher_redis_duration_seconds_bucket{store="",path="fcall",le="+Inf"}'), $count,
   '... +Inf bucket = count');
my @le = map { metric($m6, qq(voucher_redis_duration_seconds_bucket{store="",path="fcall",le="$_"})) }
         qw(0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 +Inf);
ok(!grep({ $le[$_] < $le[$_ - 1] } 1 .. $#le), '... buckets cumulative');
ok(metric($m6, 'voucher_redis_duration_seconds_sum{store="",path="fcall"}') > 0, '... a sum in seconds');
is(metric($m6, 'voucher_redis_duration_seconds_count{store="",path="native"}'), 0, '... none native');

######################################################## nothing secret in the text

unlike($last_text, qr/REAL|SOLD|GATED|ZZZZ|BAD|MORE|\Q$forged\E|\bc1\b/, 'no code or customer in the text');
unlike($last_text, qr/k\.key|password/, '... nor a key');

######################################################## a reload keeps the counts

$ng->reload;
my $m7;
ok(VT::wait_until(sub { $m7 = scrape(); metric($m7, conns('up')) == 4
                        && metric($m7, conns('connecting')) + metric($m7, conns('down')) == 0 },
                  timeout => 15), 'after a reload: 4 connections up, the old workers\' gone')
    or diag $last_text;
for my $k (req('validate', 200, 'ok'), req('redeem', 200, 'ok'), 'voucher_lockout_cache_bans_total',
           'voucher_offline_refusals_total{reason="code_forged"}',
           'voucher_redis_duration_seconds_count{store="",path="fcall"}') {
    is(metric($m7, $k), metric($m6, $k), "... $k kept");
}
is(post($ng, 'validate', { code => 'REAL', order => $o })->{status}, 200, 'a validate after the reload');
is(metric(scrape(), req('validate', 200, 'ok')), metric($m7, req('validate', 200, 'ok')) + 1,
   '... counted on top');

######################################################## Redis that does not answer

# new workers find a Redis that accepts connections and answers nothing:
# their connections stay connecting, a request waits for one, then times out
$redis->pause;
$ng->reload;
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    my $r = post($ng, 'validate', { code => 'REAL', order => $o });
    POSIX::_exit($r->{status} == 503 && ($r->{json}{reason} // '') eq 'store_timeout' ? 0 : 1);
}
my $mw;
ok(VT::wait_until(sub { $mw = scrape(); metric($mw, 'voucher_redis_waiting{store=""}') == 1 }, timeout => 10),
   'Redis paused, new workers: one request waiting for a connection') or diag $last_text;
is(metric($mw, conns('connecting')), 4, '... 4 connections connecting');
is(waitpid($kid, 0), $kid, '... the request ends');
is($?, 0, '... 503 store_timeout');
$mw = scrape();
is(metric($mw, 'voucher_redis_waiting{store=""}'), 0, 'none waiting now');
ok(metric($mw, 'voucher_redis_timeouts_total{store=""}') >= 1, 'voucher_redis_timeouts_total counts it');
is(metric($mw, req('validate', 503, 'store_timeout')), 1, 'validate 503 store_timeout: 1');
$redis->resume;
ok(VT::wait_until(sub { metric(scrape(), conns('up')) == 4 }, timeout => 15), 'Redis answers: 4 up');
$m7 = scrape();

######################################################## Redis away, and back

my $reconnects = metric($m7, 'voucher_redis_reconnects_total{store=""}');

# a checkout reserved, then Redis goes before the upstream answers: the
# confirm is tried again until the hold (2 s) is over, then lost
my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port, Proto => 'tcp')
    or die "connect: $!";
print $c "GET /short/x?coupon=GATED HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
ok(IO::Select->new($up)->can_read(10), 'a checkout through the gate reaches the upstream');
my $u = $up->accept or die "accept: $!";
$redis->stop;
print $u "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
close $u;
IO::Select->new($c)->can_read(10);
like(<$c> // '', qr{^HTTP/1\.1 200}, 'Redis away: the order is placed (200)');
close $c;
my $ms;
ok(VT::wait_until(sub { $ms = scrape();
                        metric($ms, 'voucher_settlements_total{kind="confirm",outcome="lost"}') == 1 },
                  timeout => 15), 'the confirm is lost once its hold is over: lost 1');
ok(metric($ms, 'voucher_settlements_total{kind="confirm",outcome="retried"}') >= 1,
   '... after being tried again: retried '
   . metric($ms, 'voucher_settlements_total{kind="confirm",outcome="retried"}'));
is(metric($ms, 'voucher_settlements_total{kind="confirm",outcome="started"}'), 2, '... started 2 in all');
is(http($ng->port, 'GET', '/lost')->{body}, '1', '... as $voucher_lost_confirms says');

my $m8;
ok(VT::wait_until(sub { $m8 = scrape(); metric($m8, conns('up')) == 0 }, timeout => 10),
   'Redis stopped: no connection up') or diag $last_text;
is(metric($m8, conns('down')) + metric($m8, conns('connecting')), 4, '... all 4 down or connecting');
is(post($ng, 'validate', { code => 'REAL', order => $o })->{status}, 503, 'a validate: 503');
my $m9 = scrape();
is(metric($m9, req('validate', 503, 'store_unavailable')), 1, 'validate 503 store_unavailable: 1');

$redis->start_again(keep_data => 1);
ok(VT::wait_until(sub { metric(scrape(), conns('up')) == 4 }, timeout => 15), 'Redis back: 4 up again');
ok(metric(scrape(), 'voucher_redis_reconnects_total{store=""}') > $reconnects, '... reconnects counted');
is(post($ng, 'validate', { code => 'ZZZZ', order => $o })->{status}, 404, 'Redis answers again');

######################################################## the alert rules of docs/operations.md

SKIP: {
    skip 'no promtool', 2 unless $promtool;
    my $doc = VT::_read_file("$root/docs/operations.md");
    my @rules = $doc =~ /```yaml\n(groups:.*?)```/sg;
    ok(@rules && grep({ /name: voucher-nginx/ && /voucher_redis_connections/ } @rules),
       'docs/operations.md: alert rules for the module');
    my $bad = 0;
    for my $i (0 .. $#rules) {
        VT::_write_file("$dir/rules$i.yml", $rules[$i]);
        my $out = `$promtool check rules '$dir/rules$i.yml' 2>&1`;
        $bad++, diag $out if $?;
    }
    is($bad, 0, '... promtool check rules accepts every one');
}

$ng->check_log('no alert');
$ng->stop;

######################################################## stores by name, the native path

my $so = "$root/build/redis-module/voucher.so";
system('make', '-s', '-C', "$root/redis/module") unless -f $so;
SKIP: {
    skip "the native module is not built ($so)", 10 unless -f $so;
    my $nat = VT::Redis->start(args => ['--loadmodule', $so, '--enable-module-command', 'local'],
                               no_module => 1);
    my $plain = VT::Redis->start(no_module => 1);
    my $repl = VT::Redis->start(no_module => 1, args => ['--replicaof', '127.0.0.1', $plain->port]);
    $_->load_functions for $nat, $plain;
    for my $r ($nat, $plain) {
        campaign($r, 'c', kind => 'amount', value => 100);
        code($r, 'REAL', campaign => 'c', max_uses => 0);
    }
    my $ng2 = VT::Nginx->start(redis => $nat, workers => 2,
        vars => { PLAIN => $plain->port, REPL => $repl->port },
        http => "voucher_redis 127.0.0.1:%%REDIS_PORT%% connections=1;\n"
              . "    voucher_store shop_b 127.0.0.1:%%PLAIN%% connections=1 replicas=127.0.0.1:%%REPL%%;",
        server => <<'EOT');
        location = /metrics { voucher_metrics; }
        location = /vouchers/validate { voucher_api validate; }
        location = /b/validate { voucher_api validate; voucher_store_use shop_b; }
EOT
    my $m;
    my $get = sub { my $r = http($ng2->port, 'GET', '/metrics'); $last_text = $r->{body};
                    my %m = map { /^(\S+)\s+(\S+)$/ ? ($1 => $2) : () } grep { !/^#/ } split /\n/, $r->{body};
                    \%m };
    ok(VT::wait_until(sub { $m = $get->(); metric($m, 'voucher_redis_native{store=""}') == 1
                            && metric($m, conns('up')) == 2
                            && metric($m, 'voucher_redis_connections{store="shop_b",role="master",state="up"}') == 2 },
                      timeout => 10), 'voucher_redis_native{store=""} 1: the module answers')
        or diag $last_text;
    is(metric($m, 'voucher_redis_native{store="shop_b"}'), 0, 'voucher_redis_native{store="shop_b"} 0: FCALL');
    ok(VT::wait_until(sub { $m = $get->();
                            metric($m, 'voucher_redis_connections{store="shop_b",role="replica",state="up"}') == 2 },
                      timeout => 15), 'shop_b\'s replica: one connection up in each worker, role="replica"')
        or diag $last_text;
    is(post($ng2, 'validate', { code => 'REAL', order => $o })->{status}, 200, 'a validate, native');
    is(http($ng2->port, 'POST', '/b/validate', body => { code => 'REAL', order => $o })->{status}, 200,
       'a validate on shop_b, FCALL');
    $m = $get->();
    is(metric($m, 'voucher_redis_duration_seconds_count{store="",path="native"}'), 1, 'timed as native');
    is(metric($m, 'voucher_redis_duration_seconds_count{store="",path="fcall"}'), 0, '... not as FCALL');
    is(metric($m, 'voucher_redis_duration_seconds_count{store="shop_b",path="fcall"}'), 1, 'shop_b: as FCALL');
    if ($promtool) {
        VT::_write_file("$dir/scrape.txt", $last_text);
        my $out = `$promtool check metrics < '$dir/scrape.txt' 2>&1`;
        ok($? == 0, 'promtool accepts it') or diag $out;
    } else {
        pass('no promtool');
    }
    $ng2->check_log('no alert (stores)');
}

done_testing;
