# A Redis command that does not answer in time: 503 store_timeout within
# about the timeout, the context is dropped and rebuilt, and nginx answers
# normally once Redis is back.  A redeem that timed out is learned by
# retrying it with the same idempotency key.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% timeout=300ms;');

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'SLOW', campaign => 'c', max_uses => 5);
my $body = {code => 'SLOW', customer => 'a', idempotency_key => 'slow-1',
            order => {amount => 1000}};

is(post($ng, 'validate', $body)->{status}, 200, 'ready');

$redis->pause;
my $t0 = time;
my @r = http_parallel($ng->port, [map { {method => 'POST', path => '/vouchers/redeem', body => $body} } 1 .. 5],
                      concurrency => 5, timeout => 10);
my $took = time - $t0;
$redis->resume;

is(scalar(grep { $_->{status} == 503 } @r), 5, 'all five: 503');
is(scalar(grep { ($_->{json}{reason} // '') =~ /^store_(timeout|unavailable)$/ } @r), 5,
   'store_timeout (or store_unavailable for the ones behind it)');
ok(scalar(grep { $_->{json}{reason} eq 'store_timeout' } @r) >= 1, 'at least one store_timeout');
ok($took < 3, sprintf('answered within the timeout, not hung (%.2fs)', $took));

my $r;
ok(wait_until(sub { $r = post($ng, 'redeem', $body); $r->{status} == 200 }, timeout => 10),
   'works again once Redis answers');
is($redis->cmd('HGET', '{v}:c:SLOW', 'u'), 1,
   'the pipelined retries of one key redeemed once');

like($ng->error_log, qr/command timed out/, 'the timeout is logged');
$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
