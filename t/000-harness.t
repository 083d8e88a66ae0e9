# Self-test of t/lib/VT.pm: redis, RESP parsing, nginx lifecycle, HTTP client.
# Needs no voucher module and no redis functions.

use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use VT;

my $ROOT = root_dir();
ok(-f "$ROOT/t/lib/VT.pm", 'root_dir finds the project root');

sub running { my ($st) = VT::_proc_stat(shift); defined $st && $st ne 'Z' && $st ne 'X' }

# processes whose command line mentions $dir (the way pgrep -f does it)
sub procs_mentioning {
    my $dir = shift;
    opendir(my $dh, '/proc') or return;
    my @p = grep { /^\d+\z/ && $_ != $$ && running($_)
                   && index(VT::_proc_cmdline($_), $dir) >= 0 } readdir $dh;
    return @p;
}

# ---------------------------------------------------------------------------
subtest 'RESP parser on fragmented input' => sub {
    my $parse = sub {
        my ($wire, $size, $count) = @_;
        my @chunks = $size ? unpack("(a$size)*", $wire) : ($wire);
        my $c = VT::Redis::Conn->_from_chunks(@chunks);
        my @v;
        push @v, $c->read_reply for 1 .. $count;
        ok(!eval { $c->read_reply; 1 }, 'nothing left over') if $count > 1;
        return @v;
    };
    my $wire = "+OK\r\n" . "-ERR wrong type\r\n" . ":-42\r\n" . "\$5\r\nhe\r\no\r\n"
             . "\$0\r\n\r\n" . "\$-1\r\n" . "*-1\r\n" . "*0\r\n"
             . "*3\r\n:1\r\n*2\r\n\$1\r\na\r\n*1\r\n\$-1\r\n-ERR inner\r\n"
             . "_\r\n" . "#t\r\n" . "%1\r\n+k\r\n:7\r\n";
    for my $size (0, 1, 2, 3, 7) {
        my @v = $parse->($wire, $size, 12);
        is(scalar @v, 12, "12 replies (chunks of " . ($size || 'all') . ')');
        is($v[0], 'OK', 'simple string');
        isa_ok($v[1], 'VT::Redis::Error');
        is($v[1]->message, 'ERR wrong type', 'error message');
        is($v[2], -42, 'integer');
        is($v[3], "he\r\no", 'bulk with CRLF inside');
        is($v[4], '', 'empty bulk');
        ok(!defined $v[5] && !defined $v[6], 'nil bulk, nil array');
        is_deeply($v[7], [], 'empty array');
        is($v[8][0], 1, 'nested: int');
        is_deeply($v[8][1], ['a', [undef]], 'nested arrays with nil');
        isa_ok($v[8][2], 'VT::Redis::Error', 'error inside an array');
        ok(!defined $v[9], 'RESP3 null');
        is($v[10], 1, 'RESP3 boolean');
        is_deeply($v[11], { k => 7 }, 'RESP3 map');
    }
    my $big = 'x' x 3_000_000;
    my ($v) = $parse->('$' . length($big) . "\r\n$big\r\n", 65536, 1);
    ok(defined $v && $v eq $big, '3 MB bulk string in 64 KB pieces');
    ok(!eval { VT::Redis::Conn->_from_chunks("?x\r\n")->read_reply; 1 }, 'protocol error dies');
    like($@, qr/protocol error/, '... with a message');
    ok(!eval { VT::Redis::Conn->_from_chunks("\$10\r\nabc")->read_reply; 1 },
       'incomplete reply dies');
};

# ---------------------------------------------------------------------------
subtest 'HTTP response parser' => sub {
    my $p = sub { my $b = shift; VT::_parse_response(\$b, @_) };
    my $r = $p->("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello", 0);
    is($r->{status}, 200, 'status');
    is($r->{body}, 'hello', 'content-length body');
    is($r->{headers}{'x-a'}, '1, 2', 'repeated headers joined');
    ok(!defined $p->("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 0), 'partial body: incomplete');
    like($p->("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 1)->{error}, qr/3 of 5/,
         'truncated body at EOF is an error');
    my $ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
           . "4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n";
    for my $cut (1 .. length($ch) - 1) {
        my $part = substr($ch, 0, $cut);
        if (defined $p->($part, 0)) { fail("chunked complete after $cut bytes"); last }
    }
    $r = $p->($ch, 0);
    is($r->{body}, '{"a":1}', 'chunked body decoded');
    is_deeply($r->{json}, { a => 1 }, 'json decoded');
    is_deeply($r->{trailers}, ['X-Trailer: t'], 'trailers');
    $r = $p->("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 0);
    is($r->{status}, 204, '1xx skipped, 204 without body');
    $r = $p->("HTTP/1.0 200 OK\r\n\r\nuntil close", 1);
    is($r->{body}, 'until close', 'body delimited by close');
    ok(!defined $p->("HTTP/1.0 200 OK\r\n\r\nuntil", 0), '... incomplete before EOF');
    is($p->("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 0, 'HEAD')->{body}, '', 'HEAD');
    is($p->('', 1)->{status}, 0, 'no response at all: status 0');
    like($p->("garbage\r\n\r\n", 0)->{error}, qr/bad status line/, 'bad status line');
    like($p->("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0)->{error},
         qr/bad chunk size/, 'bad chunk size');
};

# ---------------------------------------------------------------------------
my $redis = VT::Redis->start;
subtest 'redis' => sub {
    ok($redis->port >= 12000 && $redis->port <= 32767, 'port in range');
    ok(running($redis->pid), 'redis-server running');
    ok(!defined $redis->socket_path, 'no unix socket by default');
    is($redis->cmd('SET', 'k', 'v'), 'OK', 'SET');
    is($redis->cmd('GET', 'k'), 'v', 'GET');
    ok(!defined $redis->cmd('GET', 'nope'), 'GET missing key: undef');
    is($redis->cmd('INCR', 'n'), 1, 'INCR');
    is($redis->cmd('INCRBY', 'n', 41), 42, 'INCRBY');
    my $e = $redis->cmd('INCR', 'k');
    ok(VT::Redis::is_error($e), 'error reply is an error object');
    like($e->message, qr/^ERR .*not an integer/, 'error message');
    like("$e", qr/not an integer/, 'error stringifies');
    like($redis->cmd('NOSUCHCOMMAND'), qr/unknown command/, 'unknown command: error, no die');
    is($redis->cmd('RPUSH', 'l', 1 .. 5), 5, 'RPUSH');
    is_deeply($redis->cmd('LRANGE', 'l', 0, -1), [1 .. 5], 'LRANGE array');
    is_deeply($redis->cmd('EVAL', "return {1, {'a', {false, 'b'}}, redis.error_reply('E x')}", 0),
              [1, ['a', [undef, 'b']], VT::Redis::Error->new('E x')], 'nested array from EVAL');
    my $snow = "caf\x{e9} \x{2603}";
    $redis->cmd('SET', 'u', $snow);
    my $got = $redis->cmd('GET', 'u');
    utf8::decode($got);
    is($got, $snow, 'wide characters are sent as UTF-8');

    my $big = join '', map { chr(65 + $_ % 26) } 1 .. 5_000_000;
    is($redis->cmd('SET', 'big', $big), 'OK', 'SET 5 MB');
    ok($redis->cmd('GET', 'big') eq $big, 'GET 5 MB back');
    $redis->cmd('DEL', 'biglist');
    for my $i (0 .. 9) {
        $redis->cmd('RPUSH', 'biglist', map { "e$_" } $i * 10000 .. $i * 10000 + 9999);
    }
    my $list = $redis->cmd('LRANGE', 'biglist', 0, -1);
    is(scalar @$list, 100_000, '100k-element array');
    is($list->[99_999], 'e99999', '... last element');
    my @pl = $redis->pipeline(['SET', 'p', 1], ['INCR', 'p'], ['GET', 'p']);
    is_deeply(\@pl, ['OK', 2, 2], 'pipeline');

    my $st = $redis->commandstats;
    cmp_ok($st->{set}, '>=', 3, 'commandstats counts SET');
    cmp_ok($st->{incr}, '>=', 2, 'commandstats counts INCR');

    # load_functions with a library of our own (the project's may not exist yet)
    my $lua = VT::tmp_root() . '/vt_test.lua';
    VT::_write_file($lua, "#!lua name=vttest\n"
        . "redis.register_function('vt_ver', function() return '__VOUCHER_LIB_VERSION__' end)\n");
    is($redis->load_functions(file => $lua), 'vttest', 'load_functions: library name');
    is($redis->cmd('FCALL', 'vt_ver', 0), 'test', '__VOUCHER_LIB_VERSION__ replaced by test');
    is($redis->commandstats->{fcall}, 1, 'commandstats: fcall => 1');
    VT::_write_file($lua, "#!lua name=vttest\nthis is not lua\n");
    ok(!eval { $redis->load_functions(file => $lua); 1 }, 'load_functions dies on error');
    like($@, qr/FUNCTION LOAD .* failed: ERR/, '... with the redis error');

    # the client reconnects when the server dropped the connection
    my $c2 = $redis->conn;
    $c2->cmd('CLIENT', 'SETNAME', 'victim');
    $redis->cmd('CLIENT', 'KILL', 'USER', 'default') ;
    is($redis->cmd('GET', 'k'), 'v', 'reconnects after CLIENT KILL');
    is($c2->cmd('PING'), 'PONG', 'second connection reconnects too');

    # pause / resume
    $redis->timeout(0.5);
    $redis->pause;
    my $t0 = VT::now();
    ok(!eval { $redis->cmd('PING'); 1 }, 'cmd on a paused redis times out');
    like($@, qr/timeout/, '... with a timeout error');
    cmp_ok(VT::now() - $t0, '<', 3, '... in time');
    $redis->resume;
    $redis->timeout(10);
    is($redis->cmd('PING'), 'PONG', 'after resume');

    # stop / start_again: same port, empty data
    my ($port, $pid) = ($redis->port, $redis->pid);
    $redis->stop;
    ok(!running($pid), 'stopped');
    $redis->start_again;
    is($redis->port, $port, 'start_again: same port');
    isnt($redis->pid, $pid, 'start_again: new pid');
    ok(!defined $redis->cmd('GET', 'k'), 'start_again: fresh empty data');
    $redis->cmd('SET', 'k', 'v2');

    my $aof = VT::Redis->start(args => ['--appendonly', 'yes', '--appendfsync', 'always']);
    $aof->cmd('SET', 'kept', 1);
    $aof->start_again(keep_data => 1);
    is($aof->cmd('GET', 'kept'), 1, 'start_again(keep_data => 1) keeps the AOF data');
    $aof->start_again;
    ok(!defined $aof->cmd('GET', 'kept'), 'start_again without it: empty');
    $aof->stop;

    $pid = $redis->pid;
    $redis->kill9;
    ok(!running($pid), 'kill9');
    ok(!eval { $redis->cmd('PING'); 1 }, 'cmd on a killed redis dies');
    $redis->start_again;
    is($redis->cmd('DBSIZE'), 0, 'start_again after kill9: empty');
};

subtest 'redis with password and unix socket' => sub {
    my $r = VT::Redis->start(password => 's3cr3t', unixsocket => 1,
                             args => ['--maxmemory', '64mb']);
    is($r->cmd('SET', 'a', 1), 'OK', 'AUTH done automatically');
    ok(-S $r->socket_path, 'unix socket exists');
    is($r->conn(unix => 1)->cmd('GET', 'a'), 1, 'cmd over the unix socket');
    my $noauth = VT::Redis::Conn->new(port => $r->port);
    like($noauth->cmd('GET', 'a'), qr/NOAUTH/, 'without password: NOAUTH');
    is($r->cmd('CONFIG', 'GET', 'maxmemory')->[1], 64 * 1024 * 1024, 'args passed');
    ok(index(VT::_proc_cmdline($r->pid), $r->dir) >= 0, 'process title names its temp dir');
    my $pid = $r->pid;
    my $other = VT::Redis->start;          # registering another must not pin $r
    undef $r;
    ok(!running($pid), 'DESTROY stops redis');
    ok(running($other->pid), 'the other one still runs');
};

# ---------------------------------------------------------------------------
my $long = 'x' x 2500;
my $server = <<"EOC";
        location = /static { return 200 "ok"; }
        location = /arg { return 200 "\$arg_i"; }
        location = /hdr { return 200 "\$content_length|\$content_type|\$http_x_test|\$request_method"; }
        location = /echo {
            client_body_buffer_size 64k;
            client_body_in_single_buffer on;
            proxy_set_header X-Body \$request_body;
            proxy_pass http://127.0.0.1:%%PORT%%/__inner;
        }
        location = /__inner { return 200 \$http_x_body; }
        location = /chunked {
            sub_filter_types *;
            sub_filter_once off;
            sub_filter 'a' 'b';
            return 200 "aaaa-%%WORD%%";
        }
        location = /slow { limit_rate 1k; return 200 "$long"; }
        location = /redis { return 200 "%%REDIS_PORT%%"; }
        location = /stub { stub_status; }
EOC

my $ng = VT::Nginx->start(server => $server, module => 0, workers => 2, redis => $redis,
                          vars => { WORD => 'zz' });
my $port = $ng->port;
my @workers0 = $ng->worker_pids;

subtest 'nginx start and http()' => sub {
    ok($port >= 12000 && $port <= 32767, 'port in range');
    ok(running($ng->master_pid), 'master running');
    is(scalar @workers0, 2, 'two workers');
    like(VT::_proc_cmdline($workers0[0]), qr/nginx: worker process/, 'worker pid is a worker');
    like($ng->conf, qr/^daemon off;$/m, 'conf: daemon off');
    unlike($ng->conf, qr/load_module/, 'module => 0: no load_module');
    like($ng->conf, qr/listen 127\.0\.0\.1:$port;/, 'conf: listen');

    my $r = http($port, 'GET', '/static');
    is($r->{status}, 200, 'GET /static');
    is($r->{body}, 'ok', 'body');
    is($r->{headers}{'content-length'}, 2, 'content-length header');
    is(http($ng, 'GET', '/redis')->{body}, $redis->port, '%%REDIS_PORT%% expanded, object as port');

    $r = http($port, 'POST', '/hdr', body => { b => [1, 2], a => "\x{e9}" },
              headers => { 'X-Test' => 'yes' });
    my $json = '{"a":"' . "\xc3\xa9" . '","b":[1,2]}';
    is($r->{body}, length($json) . "|application/json|yes|POST",
       'hashref body: canonical JSON, Content-Length, default Content-Type');
    $r = http($port, 'POST', '/echo', body => { b => [1, 2], a => 'z' });
    is($r->{body}, '{"a":"z","b":[1,2]}', 'body arrives intact (echo through proxy)');
    is_deeply($r->{json}, { a => 'z', b => [1, 2] }, 'json decoded');
    is_deeply(json_body($r), { a => 'z', b => [1, 2] }, 'json_body');
    ok(!defined json_body(http($port, 'GET', '/static')), 'json_body of non-JSON: undef');
    is(http($port, 'POST', '/hdr', body => 'x=1',
            headers => { 'Content-Type' => 'text/plain' })->{body},
       '3|text/plain||POST', 'string body keeps given Content-Type');
    is(http($port, 'POST', '/hdr')->{body}, '0|||POST', 'POST without body: Content-Length 0');
    is(http($port, 'HEAD', '/static')->{body}, '', 'HEAD: no body expected');

    $r = http($port, 'GET', '/chunked');
    is($r->{headers}{'transfer-encoding'}, 'chunked', 'response is chunked');
    is($r->{body}, 'bbbb-zz', 'chunked body decoded, vars expanded');

    $r = http($port, 'GET', '/static', keepalive => 1);
    is($r->{body}, 'ok', 'keepalive request read by length');

    $r = http($port, 'GET', '/slow', timeout => 0.5);
    is($r->{status}, 0, 'timeout: status 0');
    like($r->{error}, qr/timeout/, 'timeout: error');
    $r = http($port, 'GET', '/slow', timeout => 10);
    is(length $r->{body}, 2500, 'rate-limited body read completely');

    my $closed = VT::free_port();
    $r = http($closed, 'GET', '/');
    is($r->{status}, 0, 'connection refused: status 0');
    like($r->{error}, qr/connect/, 'connection refused: error');
};

subtest 'http_raw' => sub {
    my $raw = http_raw($port, "GET /static HTTP/1.0\r\nHost: x\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 200 OK\r\n}, 'raw status line');
    like($raw, qr/\r\n\r\nok\z/, 'raw body');
    $raw = http_raw($port, ["GET /sta", "tic HTTP/1.1\r\nHo", "st: x\r\nConnection: close\r\n\r\n"],
                    delay => 0.05);
    like($raw, qr/\r\n\r\nok\z/, 'request sent in pieces');
    is(http_raw($port, "GET /static HTTP/1.1\r\nHost: x\r\n\r\n", close_after_send => 1), '',
       'close_after_send');
    $raw = http_raw($port, "GET /static HTTP/1.1\r\nHost: x\r\n\r\n", until => qr/\r\n\r\nok/);
    like($raw, qr/ok\z/, 'until: stops without waiting for close');
    $raw = http_raw($port, "GET /static HTTP/1.1\r\nHost: x\r\n\r\n", timeout => 0.3);
    ok($VT::RAW_TIMED_OUT, 'keep-alive connection: timeout flag');
    like($raw, qr/ok\z/, '... and the response');
    $raw = http_raw($port, "garbage\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 400}, 'bad request: 400');
};

subtest 'http_parallel' => sub {
    my @reqs = map { { method => 'GET', path => "/arg?i=$_" } } 0 .. 499;
    my @res = http_parallel($port, \@reqs, concurrency => 500, timeout => 30);
    is(scalar @res, 500, '500 responses');
    is(scalar(grep { $_->{status} == 200 } @res), 500, 'all 200');
    is(scalar(grep { $res[$_]{body} eq $_ } 0 .. 499), 500, 'responses in request order');

    @res = http_parallel($port, [ map { { method => 'POST', path => '/echo', body => { i => $_ } } }
                                  1 .. 200 ], concurrency => 50);
    is(scalar(grep { $res[$_ - 1]{json} && $res[$_ - 1]{json}{i} == $_ } 1 .. 200), 200,
       'POST bodies with concurrency 50');
    is($VT::LAST_PARALLEL->{max_open}, 50, 'never more than 50 sockets');

    # 2000 sockets at once: each response takes ~2 s (limit_rate)
    my $n = 2000;
    my $t0 = VT::now();
    @res = http_parallel($port, [ ({ path => '/slow' }) x $n ], concurrency => $n, timeout => 60);
    my $el = VT::now() - $t0;
    is(scalar(grep { $_->{status} == 200 && length($_->{body}) == 2500 } @res), $n,
       "$n slow requests all complete") or diag explain [ grep { !$_->{status} } @res[0 .. 4] ];
    is($VT::LAST_PARALLEL->{max_open}, $n, "$n sockets open at once");
    cmp_ok($el, '<', 30, "they ran concurrently (${\ sprintf '%.1f', $el} s)");

    my $closed = VT::free_port();
    @res = http_parallel($closed, [ ({ path => '/' }) x 3 ]);
    is(scalar(grep { $_->{status} == 0 && $_->{error} =~ /connect/ } @res), 3,
       'refused connections: status 0 with error');
};

subtest 'reload, kill9_workers, logs' => sub {
    $ng->mark_log;
    is($ng->generation, 1, 'generation 1');
    ok($ng->reload(server => $server . qq{location = /new { return 200 "new"; }\n}), 'reload');
    is($ng->generation, 2, 'generation 2');
    is(http($port, 'GET', '/new')->{body}, 'new', 'new location answers');
    my @w1 = $ng->worker_pids;
    is(scalar @w1, 2, 'two new workers');
    ok(!(grep { running($_) } @workers0), 'old workers are gone');
    like($ng->error_log_since_mark, qr/signal 1 \(SIGHUP\) received/, 'error_log_since_mark');
    unlike($ng->error_log_since_mark, qr/start worker processes\n(?s:.*)\bstart worker processes\b.*\n.*SIGHUP/,
           'marked part is the new part');

    ok(!$ng->reload(server => 'bogus_directive on;', expect_fail => 1),
       'rejected reload returns 0 with expect_fail');
    is(http($port, 'GET', '/new')->{body}, 'new', 'old config still serves');
    ok(!eval { $ng->reload(server => 'return 200 "%%NOPE%%";'); 1 }, 'unknown placeholder dies');
    like($ng->conf, qr{location = /new}, 'conf on disk restored');
    ok($ng->reload, 'reload without changes');
    is($ng->generation, 3, 'generation 3');

    my @killed = $ng->kill9_workers;
    is(scalar @killed, 2, 'kill9_workers killed two');
    ok(!(grep { running($_) } @killed), 'killed workers are gone');
    is(scalar(my @w = $ng->worker_pids), 2, 'master started two new ones');
    is(http($port, 'GET', '/static')->{body}, 'ok', 'serving after kill9_workers');
    like($ng->error_log, qr/exited on signal 9/, 'error.log records the kill');

    my @bad = VT::Nginx::_log_problems(join("\n",
        '2024/01/01 00:00:00 [info] 1#1: fine',
        '2024/01/01 00:00:00 [alert] 1#1: worker process 77 exited on signal 11 (core dumped)',
        '2024/01/01 00:00:00 [alert] 1#1: worker process 78 exited on signal 9',
        '2024/01/01 00:00:00 [alert] 5#5: *3 open socket #12 left in connection 4',
        '2024/01/01 00:00:00 [crit] 5#5: something',
        '2024/01/01 00:00:00 [emerg] 5#5: something',
        '==123==ERROR: AddressSanitizer: heap-use-after-free',
        'x.c:10:5: runtime error: signed integer overflow',
    ), killed => { 78 => 1 }, san => 1);
    is(scalar @bad, 6, 'check_log patterns (kill9 of our own pid ignored, sanitizer lines)');
    is(scalar(VT::Nginx::_log_problems("[alert] 1#1: worker process 78 exited on signal 9")), 1,
       'signal 9 of a pid we did not kill counts');
};

subtest 'stop' => sub {
    my @w = $ng->worker_pids;
    my $master = $ng->master_pid;
    ok($ng->stop, 'stop');
    ok(!running($master), 'master gone');
    ok(!(grep { running($_) } @w), 'workers gone');
    ok(!kill(0, $master), 'master reaped (no zombie)');
    is(http($port, 'GET', '/static')->{status}, 0, 'port closed');
    $ng->check_log('error.log is clean');
    ok($ng->stop, 'stop twice is harmless');
};

subtest 'start failures' => sub {
    my $bad = VT::Nginx->start(module => 0, server => 'bogus_directive on;', expect_fail => 1);
    ok($bad->start_failed, 'expect_fail: start_failed');
    like($bad->stderr . $bad->error_log, qr/unknown directive "bogus_directive"/,
         'stderr/error_log say why');
    ok(!$bad->running, 'not running');

    ok(!eval { VT::Nginx->start(module => 0, server => 'bogus_directive on;'); 1 },
       'start failure dies');
    like($@, qr/unknown directive "bogus_directive".*--- conf\/nginx\.conf ---/s,
         '... with the error log and the numbered config');

    ok(!eval { VT::Nginx->start(module => "$ROOT/build/does-not-exist.so"); 1 },
       'missing module dies');
    like($@, qr/does not exist/, '... saying so');

    my $ok = VT::Nginx->start(module => 0, server => 'location = /x { return 204; }',
                              expect_fail => 1);
    my $r  = VT::Redis->start(password => 'hunter2-not-shown');
    ok(!eval { VT::Nginx->start(module => 0, redis => $r, server =>
        "set \$p hunter2-not-shown;\nmy_password 'x y';\nbogus_directive on;"); 1 },
       'start failure with a password in the config');
    unlike($@, qr/hunter2|x y/, 'failure report masks secrets');
    like($@, qr/my_password \*\*\*;/, '... directive shown as ***');
    $r->stop;

    ok(!$ok->start_failed, 'expect_fail but started: start_failed false');
    is(http($ok->port, 'GET', '/x')->{status}, 204, 'and it serves');
    ok(!eval { $ok->reload(server => 'bogus_directive on;'); 1 }, 'rejected reload dies');
    like($@, qr/unknown directive "bogus_directive"/, '... with the [emerg] line');
    is(http($ok->port, 'GET', '/x')->{status}, 204, 'old config still serves');
    my $pid = $ok->master_pid;
    undef $ok;
    ok(!running($pid), 'DESTROY stops nginx') or diag VT::_proc_cmdline($pid);
};

subtest 'stop escalates to SIGKILL' => sub {
    my $n = VT::Nginx->start(module => 0, workers => 2);
    my ($m, @w) = ($n->master_pid, $n->worker_pids);
    kill 'STOP', $m;                       # a master that ignores QUIT and TERM
    my $t0 = VT::now();
    ok($n->stop(timeout => 0.5), 'stop');
    cmp_ok(VT::now() - $t0, '<', 5, 'in time');
    ok(!running($m) && !VT::_proc_stat($m), 'master killed and reaped');
    ok(!(grep { running($_) } @w), 'orphaned workers killed');
    ok(!(grep { VT::_proc_stat($_) } @w), 'and reaped (no zombies)');
};

# ---------------------------------------------------------------------------
# A test that dies (or is killed) half way must leave nothing running.
subtest 'cleanup when a test dies' => sub {
    my $script = <<'EOS';
use strict; use warnings; use VT;
$| = 1;
my $mode = shift;
my $r  = VT::Redis->start(unixsocket => 1);
my $ng = VT::Nginx->start(module => 0, redis => $r, workers => 2,
                          server => 'location = /s { return 200 "%%REDIS_PORT%%"; }');
print "TMP ", VT::tmp_root(), "\n";
print "PIDS ", join(' ', $r->pid, $ng->master_pid, $ng->worker_pids), "\n";
print "BODY ", http($ng->port, 'GET', '/s')->{body}, "\n";
if ($mode eq 'die') { die "deliberate death\n" }
kill $mode, $$;
sleep 30;
EOS
    for my $mode (qw(die TERM INT KILL)) {
        my $pid = open(my $fh, '-|');
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            open(STDERR, '>', '/dev/null');
            exec $^X, "-I$ROOT/t/lib", '-e', $script, $mode;
            exit 127;
        }
        my %out = map { /^(\w+) (.*)/ ? ($1, $2) : () } <$fh>;
        close $fh;
        my $status = $?;
        my $tmp  = $out{TMP} // '';
        my @pids = split ' ', $out{PIDS} // '';
        is(scalar @pids, 4, "$mode: child started redis, nginx and 2 workers");
        ok(length $out{BODY}, "$mode: child talked to nginx");
        ok($status != 0, "$mode: child failed (" . VT::_status_text($status) . ')');
        # after SIGKILL the kernel sends SIGTERM (PR_SET_PDEATHSIG): allow a moment
        ok(wait_until(sub { !grep { running($_) } @pids }, timeout => $mode eq 'KILL' ? 15 : 2),
           "$mode: no redis/nginx process left") or diag "still running: @pids";
        my @left = procs_mentioning($tmp);
        ok(length $tmp && !@left, "$mode: nothing mentions $tmp (pgrep -f)")
            or diag join "\n", map { "$_: " . VT::_proc_cmdline($_) } @left;
        if (-x '/usr/bin/pgrep' && length $tmp) {
            open(my $pg, '-|', '/usr/bin/pgrep', '-f', '--', $tmp) or die "pgrep: $!";
            my @found = <$pg>;
            close $pg;
            is(scalar @found, 0, "$mode: pgrep -f finds nothing") or diag "@found";
        }
        if ($mode eq 'KILL') {
            # the killed child's servers were adopted by us (subreaper): reap them
            VT::_reap($_, 2) for grep { ((VT::_proc_stat($_))[0] // '') eq 'Z' } @pids;
            ok(!(grep { VT::_proc_stat($_) } @pids), 'KILL: no zombies left') or diag "zombies: @pids";
            File::Path::remove_tree($tmp) if length $tmp && $tmp =~ m{/vt-[\w-]+\z};
        } else {
            ok(!-e $tmp, "$mode: temp dir removed");
        }
    }
};

$redis->stop;
ok(!running($redis->pid), 'redis stopped');

done_testing;
