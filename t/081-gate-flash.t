# A flash sale through the gate: 2,000 concurrent checkouts for a code with
# 100 uses, an upstream that fails one order in three.  Exactly the orders
# that went through hold redemptions, the failed ones gave their use back,
# and the counter never exceeds 100, watched from outside while it runs.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $UP = VT::free_port();
my $redis = VT::Redis->start;
$redis->load_functions;

my $ng = VT::Nginx->start(
    redis => $redis, workers => 2,
    vars  => { UP => $UP },
    http  => <<'EOT',
    voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=5s;
    server {
        listen 127.0.0.1:%%UP%%;
        location /order/ok   { return 200 "placed $http_x_voucher_id\n"; }
        location /order/fail { return 503 "payment failed\n"; }
    }
EOT
    server => <<'EOT',
        location /order/ {
            voucher_gate redeem;
            voucher_code $arg_coupon;
            voucher_customer $arg_customer;
            voucher_order_amount 5000;
            proxy_set_header X-Voucher-Id $voucher_redemption_id;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT
);

campaign($redis, 'sale', kind => 'percent', value => 2000, max_redemptions => 100);
code($redis, 'FLASH100', campaign => 'sale', max_uses => 100);

# the watcher: polls both counters as fast as it can until told to stop
my $stop = VT::tmp_root() . '/stop-watch';
pipe(my $rd, my $wr) or die;
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    close $rd;
    my $c = $redis->conn;
    my ($max, $polls) = (0, 0);
    until (-e $stop) {
        my ($u, $k) = $c->pipeline(['HGET', '{v}:c:FLASH100', 'u'],
                                   ['HGET', '{v}:k:sale', 'redeemed']);
        for ($u, $k) { $max = $_ if defined $_ && $_ > $max }
        $polls++;
    }
    print $wr "$max $polls\n";
    close $wr;
    POSIX::_exit(0);
}
close $wr;

my @req = map {
    { method => 'GET',
      path => ($_ % 3 == 0 ? '/order/fail' : '/order/ok')
              . "?coupon=flash-100&customer=c$_" }
} 1 .. 2000;
my @res = http_parallel($ng->port, \@req, concurrency => 2000, timeout => 60);

my (%by, @ids);
for my $i (0 .. $#res) {
    my $r = $res[$i];
    my $st = $r->{status};
    $by{$st}++;
    push @ids, $1 if $st == 200 && $r->{body} =~ /^placed (\S+)/;
}
note join ' ', map { "$_=$by{$_}" } sort keys %by;

ok(wait_until(sub { $redis->cmd('ZCARD', '{v}:hz') == 0 }, timeout => 10),
   'every reservation is settled');
open my $fh, '>', $stop or die;
close $fh;
my ($max, $polls) = split ' ', scalar <$rd>;
waitpid $pid, 0;

my $ok = $by{200} // 0;
ok($ok > 0 && $ok <= 100, "between 1 and 100 orders went through ($ok)");
is(scalar(@ids), $ok, 'each successful order carried a redemption id');
is(($by{200} // 0) + ($by{503} // 0) + ($by{409} // 0), 2000,
   'every answer is 200, the upstream\'s 503, or the gate\'s 409');
is($redis->cmd('HGET', '{v}:c:FLASH100', 'u'), $ok, 'the code counts exactly the orders placed');
is($redis->cmd('HGET', '{v}:k:sale', 'redeemed'), $ok, 'so does the campaign');
is($redis->cmd('HGET', '{v}:k:sale', 'discount_given'), $ok * 1000,
   'and the discount given');
ok($max <= 100, "the counter never went above 100 ($max at most, $polls polls)");
ok($polls > 10, 'the watcher really watched');

# the stream: each placed order is a redemption not rolled back
my $entries = $redis->cmd('XRANGE', '{v}:log', '-', '+');
my (%redeem, %released);
for my $e (@$entries) {
    my %f = @{ $e->[1] };
    $redeem{ $e->[0] } = 1 if $f{type} eq 'redeem';
    $released{ $f{ref} } = 1 if $f{type} eq 'release';
}
my @standing = sort grep { !$released{$_} } keys %redeem;
is_deeply(\@standing, [sort @ids], 'the standing redemptions are exactly the placed orders');
my $failed_reserved = keys %released;
ok($failed_reserved > 0, "failed orders that had a reservation released it ($failed_reserved)");

# a last order: the code may still have uses when fewer than 100 went through
my $left = 100 - $ok;
my $r = http($ng->port, 'GET', '/order/ok?coupon=FLASH100&customer=late');
is($r->{status}, $left > 0 ? 200 : 409, 'a late order matches the uses left');

$ng->check_log;
done_testing;
