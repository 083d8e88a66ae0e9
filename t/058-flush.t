# The commands of a cycle go out in one posted flush; the write event is
# armed only while the socket to Redis is full.  Here Redis is stopped
# while megabytes of commands pile up behind it, so the worker's write()
# fills the socket and meets EAGAIN; once Redis runs again every command
# must still go out, none lost or sent twice, and the context must go
# back to posted flushes (a request after the burst answers at once).
# Over a Unix socket the kernel holds about net.core.wmem_default bytes,
# so the burst surely overflows it; over TCP on loopback the receive
# buffer may grow to hold most of it, so there it is a load test only.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use VT;
use VoucherT;

my $N = 150;            # requests, each a command of about 29 KB
my $ITEMS = 100;

my @items = map { { sku => sprintf('%s%03d', 'S' x 125, $_),
                    category => sprintf('%s%03d', 'C' x 125, $_),
                    price => 10, quantity => 1 } } 1 .. $ITEMS;
sub body { {code => 'F', customer => "u$_[0]", order => {amount => 1000,
            items => \@items}} }

# bytes on their way to Redis that the kernel holds
sub kernel_bytes {
    my $redis = shift;
    my $sum = 0;
    if (my $path = $redis->socket_path) {
        # a Unix stream queues at the receiver: Redis' side, named by path
        for (`ss -xn 2>/dev/null`) {
            my @f = split ' ';
            $sum += $f[2] if @f > 5 && $f[1] eq 'ESTAB' && $f[4] eq $path;
        }
        return $sum;
    }
    # TCP: Redis' receive queue and the worker's send queue
    open my $fh, '<', '/proc/net/tcp' or return 0;
    while (<$fh>) {
        my @f = split ' ';
        next unless @f > 4 && $f[3] eq '01';        # established
        my ($lp, $rp) = map { hex((split /:/)[1]) } @f[1, 2];
        next unless $lp == $redis->port || $rp == $redis->port;
        my ($tx, $rx) = map { hex } split /:/, $f[4];
        $sum += $lp == $redis->port ? $rx : $tx;
    }
    return $sum;
}

for my $unix (1, 0) {
    my $how = $unix ? 'unix' : 'tcp';
    my $redis = VT::Redis->start(unixsocket => $unix);
    $redis->load_functions;
    my $addr = $unix ? 'unix:%%REDIS_SOCKET%%' : '127.0.0.1:%%REDIS_PORT%%';
    my $ng = VT::Nginx->start(
        redis => $redis,
        http => "voucher_redis $addr connections=1 timeout=20s;",
        server => api_server(extra => 'voucher_max_body_size 128k; '
                                    . 'client_body_buffer_size 128k;'));
    campaign($redis, 'c', kind => 'amount', value => 100);
    code($redis, 'F', campaign => 'c', max_uses => 0);

    my $r = post($ng, 'redeem', body(0));
    is($r->{status}, 200, "$how: a large command goes through") or diag explain $r;
    my $in0 = $redis->info('stats')->{total_net_input_bytes};

    $redis->pause;
    pipe(my $rd, my $wr) or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $rd;
        my @r = http_parallel($ng->port,
            [map { {method => 'POST', path => '/vouchers/redeem', body => body($_)} }
             1 .. $N], concurrency => $N, timeout => 60);
        print $wr join(',', map { $_->{status} . ':'
                       . ($_->{json} && $_->{json}{redeemed} ? 1 : 0) } @r), "\n";
        exit 0;
    }
    close $wr;

    # wait until every request is in and the socket takes no more
    my ($held, $last, $since, $t0) = (0, -1, time, time);
    while (time - $t0 < 20) {
        sleep 0.25;
        $held = kernel_bytes($redis);
        ($last, $since) = ($held, time) if $held != $last;
        last if time - $t0 > 2 && time - $since > 1.5;
    }
    $redis->resume;

    my $line = <$rd> // '';
    waitpid $pid, 0;
    chomp $line;
    my @st = split /,/, $line;
    is(scalar(@st), $N, "$how: every request got an answer");
    is(scalar(grep { $_ eq '200:1' } @st), $N, "$how: every one redeemed, 200")
        or diag $line;
    is($redis->cmd('HGET', '{v}:c:F', 'u'), $N + 1, "$how: each counted once");
    is($redis->cmd('XLEN', '{v}:log'), $N + 1, "$how: one log entry each");

    # the burst went past what the socket holds: the rest waited in
    # hiredis' buffer for the write event
    my $sent = $redis->info('stats')->{total_net_input_bytes} - $in0;
    if ($unix) {
        ok($held > 0 && $sent > $held + 1024 * 1024,
           "$how: the socket filled up ($held bytes in the kernel, $sent in all)");
    } else {
        note("$how: $held bytes in the kernel, $sent in all");
    }

    my $t1 = time;
    $r = post($ng, 'redeem', body($N + 1));
    is($r->{status}, 200, "$how: a request after the burst");
    ok(time - $t1 < 2, sprintf("$how: answers at once (%.2fs)", time - $t1));
    is($redis->cmd('HGET', '{v}:c:F', 'u'), $N + 2, "$how: counted");

    $ng->stop;
    $ng->check_log("$how: no alert");
    unlike($ng->error_log, qr/timed out|reconnecting/,
           "$how: no timeout, no reconnect");
    $redis->stop;
}

done_testing;
