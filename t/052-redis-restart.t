# Redis restarts in the middle of a load: every request gets an answer
# (200, or 503 while Redis is away), nginx reconnects and reloads the
# functions by itself, and every success is in the stream exactly once.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(workers => 2,
    redis_opts => {args => ['--appendonly', 'yes', '--appendfsync', 'always']},
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=2s connect_timeout=300ms;');

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'LOAD', campaign => 'c', max_uses => 0);

pipe(my $rd, my $wr) or die;
my $pid = fork // die;
if ($pid == 0) {
    close $rd;
    my %by;
    for my $round (1 .. 12) {
        my @req = map {
            {method => 'POST', path => '/vouchers/redeem',
             body => {code => 'LOAD', customer => "c$round-$_", order => {amount => 1000}}}
        } 1 .. 100;
        for my $r (http_parallel($ng->port, \@req, concurrency => 20, timeout => 20)) {
            my $k = $r->{status} == 503 ? "503-$r->{json}{reason}" : $r->{status};
            $by{$k}++;
        }
        sleep 0.1;
    }
    print $wr join(',', map { "$_=$by{$_}" } sort keys %by), "\n";
    close $wr;
    exit 0;
}
close $wr;

sleep 0.5;
$redis->stop;              # AOF keeps the data across the restart
sleep 0.5;
$redis->start_again(keep_data => 1);

my $line = <$rd>;
waitpid $pid, 0;
chomp $line;
my %by = map { split /=/ } split /,/, $line;
note "answers: $line";

my $ok = $by{200} // 0;
my $other = 0;
$other += $by{$_} for grep { !/^(200|503-store_(unavailable|timeout))$/ } keys %by;
is($other, 0, 'every answer is 200 or a 503 store_* (no 5xx, no dropped connection)');
ok($ok > 0, "some redeems succeeded ($ok)");
ok(($by{'503-store_unavailable'} // 0) + ($by{'503-store_timeout'} // 0) > 0,
   'some hit the restart') or diag $line;
ok(wait_until(sub { post($ng, 'validate', {code => 'LOAD', order => {amount => 1}})->{status} == 200 },
              timeout => 15), 'recovered after the restart');

my $xlen = $redis->cmd('XLEN', '{v}:log');
my $used = $redis->cmd('HGET', '{v}:c:LOAD', 'u');
is($used, $xlen, 'counter and stream agree (no double count)');
ok($xlen >= $ok, "every success is in the stream ($xlen >= $ok; a lost reply may add one)");
ok($xlen - $ok <= ($by{'503-store_unavailable'} // 0) + ($by{'503-store_timeout'} // 0),
   'extra entries are only from answers lost in the restart');

$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
