# The gate is not tied to proxy_pass: the same reservation, confirm and
# release in front of a FastCGI application (a small responder written
# here) and of a gRPC upstream (an HTTP/2 nginx server, through grpc_pass).
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use VT;
use VoucherT;

# --- a FastCGI responder: answers by SCRIPT_NAME, echoes the discount ----
my $fcgi = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 64, Proto => 'tcp', ReuseAddr => 1)
    or die "listen: $!";
my $FCGI = $fcgi->sockport;
my $pid = fork // die "fork: $!";
if (!$pid) {
    $SIG{$_} = 'DEFAULT' for qw(TERM INT);
    while (my $c = $fcgi->accept) {
        my ($buf, %p, $id) = ('');
        my $done = 0;
        while (!$done) {
            my $n = sysread($c, $buf, 65536, length $buf);
            last unless $n;
            while (length($buf) >= 8) {
                my ($ver, $type, $rid, $len, $pad) = unpack('CCnnC', $buf);
                last if length($buf) < 8 + $len + $pad;
                my $body = substr($buf, 8, $len);
                substr($buf, 0, 8 + $len + $pad, '');
                $id = $rid;
                if ($type == 4) {                   # PARAMS
                    while (length $body) {
                        my @l;
                        for (1 .. 2) {
                            my $b = ord $body;
                            if ($b < 128) { push @l, $b; substr($body, 0, 1, '') }
                            else { push @l, unpack('N', $body) & 0x7fffffff; substr($body, 0, 4, '') }
                        }
                        my $k = substr($body, 0, $l[0], '');
                        $p{$k} = substr($body, 0, $l[1], '');
                    }
                } elsif ($type == 5 && $len == 0) {   # end of STDIN
                    $done = 1;
                }
            }
        }
        my $st = ($p{SCRIPT_NAME} // '') =~ /fail/ ? '502 Bad Gateway' : '200 OK';
        my $out = "Status: $st\r\nContent-Type: text/plain\r\n\r\n"
                . "fcgi disc=" . ($p{HTTP_X_VOUCHER_DISCOUNT} // '') . "\n";
        my $rec = sub { my ($t, $d) = @_; pack('CCnnCC', 1, $t, $id, length $d, 0, 0) . $d };
        syswrite($c, $rec->(6, $out) . $rec->(6, '') . $rec->(3, pack('NCx3', 0, 0)));
        close $c;
    }
    POSIX::_exit(0);
}
close $fcgi;
END { local $?; if ($pid) { kill "TERM", $pid; waitpid $pid, 0 } }

my $H2UP = VT::free_port();
my $redis = VT::Redis->start;
$redis->load_functions;

my $gate = <<'EOT';
            voucher_gate redeem;
            voucher_code $arg_coupon;
            voucher_order_amount 10000;
EOT

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { FCGI => $FCGI, H2UP => $H2UP },
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%H2UP%% http2;
        location /grpc/ok   { return 200 "grpc disc=\$http_x_voucher_discount\\n"; }
        location /grpc/fail { return 503 "grpc unavailable\\n"; }
        location /grpc/declined {
            add_header grpc-status 9;
            add_header grpc-message "payment declined";
            return 200 "";
        }
    }
EOT
    server => <<"EOT",
        location /fcgi/ {
$gate
            fastcgi_param SCRIPT_NAME \$uri;
            fastcgi_param HTTP_X_VOUCHER_DISCOUNT \$voucher_discount;
            fastcgi_pass 127.0.0.1:%%FCGI%%;
        }
        location /grpc/ {
$gate
            grpc_set_header X-Voucher-Discount \$voucher_discount;
            grpc_pass grpc://127.0.0.1:%%H2UP%%;
        }
EOT
);

campaign($redis, 'b', kind => 'amount', value => 300);
my $n = 0;
sub fresh { my $c = 'BK' . ++$n; code($redis, $c, campaign => 'b', max_uses => 1); $c }
sub uses { $redis->cmd('HGET', "{v}:c:$_[0]", 'u') // 0 }
sub settled { wait_until(sub { $redis->cmd('ZCARD', '{v}:hz') == 0 }, timeout => 5) }

for my $be (qw(fcgi grpc)) {
    my $c = fresh();
    my $r = http($ng->port, 'GET', "/$be/ok?coupon=$c");
    is($r->{status}, 200, "$be: 200");
    like($r->{body}, qr/^$be disc=300$/m, "$be: the backend got the discount");
    ok(settled(), "$be: settled");
    is(uses($c), 1, "$be: confirmed");
    is(http($ng->port, 'GET', "/$be/ok?coupon=$c")->{status}, 409, "$be: a second use is refused");

    $c = fresh();
    $r = http($ng->port, 'GET', "/$be/fail?coupon=$c");
    ok($r->{status} >= 500, "$be: the backend fails ($r->{status})");
    ok(settled(), "$be: settled");
    is(uses($c), 0, "$be: released");
}

# gRPC answers a failed call with HTTP 200 and a grpc-status
{
    my $c = fresh();
    my $r = http($ng->port, 'GET', "/grpc/declined?coupon=$c");
    is($r->{status}, 200, 'grpc: HTTP 200 with grpc-status 9');
    ok(settled(), 'grpc: settled');
    is(uses($c), 0, 'grpc: a non-zero grpc-status releases');
}

$ng->check_log;
done_testing;
