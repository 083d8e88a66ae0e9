# Requests beyond what the connections carry (max_pending in flight) wait
# in the worker's queue, up to max_pending more, and go out as replies free
# room, in order, instead of failing; beyond that they get 503.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% connections=1 max_pending=2 timeout=5s;');
campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'Q', campaign => 'c', max_uses => 0);
my $body = {code => 'Q', order => {amount => 1000}};
is(post($ng, 'validate', $body)->{status}, 200, 'ready');

$redis->pause;
pipe(my $rd, my $wr) or die;
my $pid = fork // die;
if ($pid == 0) {
    close $rd;
    my @r = http_parallel($ng->port,
        [map { {method => 'POST', path => '/vouchers/redeem',
                body => {%$body, customer => "c$_"}} } 1 .. 6],
        concurrency => 6, timeout => 10);
    print $wr join(',', map { $_->{status} } @r), "\n";
    exit 0;
}
close $wr;
sleep 0.5;          # all six are in: two sent, two queued, two refused
$redis->resume;
my $line = <$rd>;
waitpid $pid, 0;
chomp $line;
my %by;
$by{$_}++ for split /,/, $line;
is($by{200}, 4, 'two in flight and two queued behind them are answered 200')
    or diag $line;
is($by{503}, 2, 'beyond max_pending in flight and max_pending queued: 503');
is($redis->cmd('HGET', '{v}:c:Q', 'u'), 4, 'each success counted once');

$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
