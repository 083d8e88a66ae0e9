# Settlement across reloads and shutdowns while Redis is briefly away: a
# confirm or release the upstream decided reaches Redis after
# "nginx -s reload" (the old worker stays until it is delivered, at most
# until the hold runs out); one that cannot be delivered is logged at
# [error] with its redemption id and counted ($voucher_lost_confirms).
#
# The upstream is a socket of this test: the test accepts the proxied
# request, makes Redis unreachable, and only then answers, so the confirm
# is decided while Redis is away.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $up = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                               Listen => 64, Proto => 'tcp') or die "listen: $!";
my $UP = $up->sockport;

my $redis = VT::Redis->start(args => ['--appendonly', 'yes', '--appendfsync', 'always']);
$redis->load_functions;

my $gate = <<'EOT';
            voucher_gate redeem;
            voucher_code $arg_coupon;
            voucher_order_amount 10000;
            proxy_set_header X-Voucher-Id $voucher_redemption_id;
            proxy_read_timeout 60s;
            proxy_pass http://127.0.0.1:%%UP%%;
EOT

my $ng = VT::Nginx->start(
    redis => $redis,
    vars  => { UP => $UP },
    http  => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=500ms connect_timeout=300ms;',
    server => <<"EOT",
        location /shop/ {
            voucher_hold_time 8s;
$gate
        }
        location /short/ {
            voucher_hold_time 2s;
$gate
        }
        location = /vouchers/validate { voucher_api validate; }
        location = /lost {
            return 200 "\$voucher_lost_confirms \$voucher_lost_releases";
        }
EOT
);

campaign($redis, 'r', kind => 'amount', value => 700);
my $n = 0;
sub fresh { my $c = 'SETTLE' . ++$n; code($redis, $c, campaign => 'r', max_uses => 1); $c }
sub uses { $redis->cmd('HGET', "{v}:c:$_[0]", 'u') // 0 }
sub lost { http($ng->port, 'GET', '/lost')->{body} }

# the types of the trail's entries about redemption $id
sub trail {
    my ($id) = @_;
    my @t;
    for my $e (@{ $redis->cmd('XRANGE', '{v}:log', '-', '+') }) {
        my %f = @{ $e->[1] };
        push @t, $f{type} if $e->[0] eq $id || ($f{ref} // '') eq $id;
    }
    return join ' ', @t;
}

# a checkout up to the upstream: the client's socket, the upstream's end
# of the proxied request, and the redemption id the gate passed on
sub checkout {
    my ($path, $code) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                  Proto => 'tcp') or die "connect: $!";
    print $c "GET $path?coupon=$code HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    IO::Select->new($up)->can_read(10) or die "the gate did not call the upstream\n";
    my $u = $up->accept or die "accept: $!";
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        IO::Select->new($u)->can_read(10) or die "no request from the gate\n";
        sysread($u, $head, 4096, length $head) or die "upstream request cut short\n";
    }
    my ($id) = $head =~ /^X-Voucher-Id: (\S+)\r$/mi;
    return ($c, $u, $id);
}

# the upstream answers; the client reads the status
sub answer {
    my ($c, $u, $status) = @_;
    print $u "HTTP/1.1 $status X\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    close $u;
    IO::Select->new($c)->can_read(10) or return 0;
    my $line = <$c> // '';
    close $c;
    return $line =~ /^HTTP\/1\.1 (\d+)/ ? $1 : 0;
}

# "nginx -s reload" (the same configuration), without waiting for the old
# workers to exit: VT::Nginx::reload would wait for them
sub hup {
    my @old = $ng->worker_pids;
    kill 'HUP', $ng->master_pid or die "HUP: $!";
    my %old = map { $_ => 1 } @old;
    ok(wait_until(sub { grep { !$old{$_} } $ng->worker_pids }, timeout => 10),
       'reload: a new worker is up');
    return @old;
}

# the worker has Redis again
sub ready {
    my ($c) = @_;
    my $body = {code => $c, order => {amount => 10000}};
    ok(wait_until(sub { post($ng, 'validate', $body)->{status} == 200 }, timeout => 15),
       'the worker reaches Redis');
}

sub sweep { $redis->cmd('FCALL', 'voucher_sweep', 1, '{v}:hz') }

# --- a confirm and a release decided while Redis is away, then a reload ---------
{
    my ($ca, $cb) = (fresh(), fresh());
    my $t0 = VT::now();
    my @a = checkout('/shop/', $ca);
    my @b = checkout('/shop/', $cb);
    ok($a[2] && $b[2], 'two checkouts reserved and passed upstream');
    is(uses($ca) + uses($cb), 2, '... each holding its use');

    $redis->stop;
    is(answer(@a[0, 1], 200), 200, 'Redis away: the shop places order A (200)');
    is(answer(@b[0, 1], 502), 502, '... and fails order B (502)');

    my @old = hup();
    sleep 0.5;
    ok((grep { kill 0, $_ } @old), 'the old worker stays while its settlements wait');

    $redis->start_again(keep_data => 1);
    ok(wait_until(sub { !grep { kill 0, $_ } @old }, timeout => 15),
       'Redis back: the old worker settles and exits');
    ok(VT::now() < $t0 + 8, '... before the holds ran out');

    # past the hold: an unsettled reservation would have expired by now
    sleep($t0 + 9 - VT::now()) if VT::now() < $t0 + 9;
    sweep();
    is(uses($ca), 1, 'after the hold: order A keeps its use (confirmed, not expired)');
    is(trail($a[2]), 'redeem confirm', "... the trail says redeem, confirm");
    is(uses($cb), 0, 'order B got its use back');
    is(trail($b[2]), 'redeem release', '... released, not expired');
    is(lost(), '0 0', 'nothing counted as lost');
    unlike($ng->error_log, qr/\[error\].*(confirm|release) of/, 'nothing logged as lost');
}

# --- Redis away past the hold: the confirm cannot be delivered ------------------
{
    my $c = fresh();
    ready($c);
    my @a = checkout('/short/', $c);
    ok($a[2], 'a checkout with a 2 s hold reserved');
    $redis->stop;
    is(answer(@a[0, 1], 200), 200, 'Redis away: the shop places the order');
    my @old = hup();
    ok(wait_until(sub { !grep { kill 0, $_ } @old }, timeout => 15),
       'the old worker gives up when the hold runs out, and exits');
    like($ng->error_log,
         qr/\[error\][^\n]*voucher gate: confirm of \Q$a[2]\E lost/,
         '[error] names the lost confirm by its redemption id');
    $redis->start_again(keep_data => 1);
    ok(wait_until(sub { lost() eq '1 0' }, timeout => 10),
       '$voucher_lost_confirms counts it, across the reload')
        or diag lost();
    sweep();
    is(uses($c), 0, '... and Redis expired the hold: the use is back');
    is(trail($a[2]), 'redeem expire', '... the trail says expire');
}

# --- a confirm refused as a whole (the library flushed) is sent again -------------
{
    my $c = fresh();
    ready($c);
    my @a = checkout('/shop/', $c);
    ok($a[2], 'a checkout reserved');
    $redis->cmd('FUNCTION', 'FLUSH');
    is(answer(@a[0, 1], 200), 200, 'the library flushed: the shop places the order');
    ok(wait_until(sub { trail($a[2]) eq 'redeem confirm' }, timeout => 10),
       'the confirm that met "function not found" went again: confirmed')
        or diag trail($a[2]);
    is(uses($c), 1, '... the use kept');
    is(lost(), '1 0', '... nothing more counted as lost');
    # (with the native module the confirm needed no library: nothing
    # made nginx load it again)
    $redis->load_functions unless @{ $redis->cmd('FUNCTION', 'LIST') };
}

# --- a fast shutdown (SIGTERM) with a confirm still waiting ------------------------
{
    my $c = fresh();
    ready($c);
    my @t = checkout('/shop/', $c);
    ok($t[2], 'a checkout reserved');
    $redis->stop;
    is(answer(@t[0, 1], 200), 200, 'Redis away: the shop places the order');
    sleep 0.3;
    $ng->stop(fast => 1);
    like($ng->error_log,
         qr/\[error\][^\n]*voucher gate: confirm of \Q$t[2]\E lost/,
         'SIGTERM: the confirm still waiting is logged as lost, by its id');
    $redis->start_again(keep_data => 1);
}

$ng->check_log;
done_testing;
