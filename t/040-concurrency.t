# No oversell and no double count under real concurrency: 2,000 redeems at
# once for a code limited to 100 uses, and one idempotency key sent 50
# times at once.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(workers => 2,
    http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%% connections=4 timeout=10s;');

campaign($redis, 'flash', kind => 'amount', value => 500);
code($redis, 'FLASH100', campaign => 'flash', max_uses => 100);

my @req = map {
    {method => 'POST', path => '/vouchers/redeem',
     body => {code => 'FLASH100', customer => "cust-$_", idempotency_key => "ord-$_",
              order => {amount => 10000, id => "ord-$_"}}}
} 1 .. 2000;

my @res = http_parallel($ng->port, \@req, concurrency => 2000, timeout => 60);

my %by;
$by{$_->{status}}++ for @res;
is($by{200} // 0, 100, 'exactly 100 of 2,000 concurrent redeems succeed')
    or diag explain \%by;
is($by{409} // 0, 1900, 'the other 1,900 are refused');
is(scalar(grep { $_->{status} == 409 && $_->{json}{reason} eq 'code_exhausted' } @res),
   1900, 'refused as code_exhausted');
is($redis->cmd('HGET', '{v}:c:FLASH100', 'u'), 100, 'the counter says 100');
is($redis->cmd('XLEN', '{v}:log'), 100, 'the stream has 100 entries');
is($redis->cmd('HGET', '{v}:k:flash', 'redeemed'), 100, 'the campaign counted 100');
my %ids = map { $_->{json}{redemption_id} => 1 } grep { $_->{status} == 200 } @res;
is(scalar keys %ids, 100, '100 distinct redemption ids');

# the same 2,000 again with their keys: the same answers, nothing changes
my @again = http_parallel($ng->port, \@req, concurrency => 500, timeout => 60);
my $same = grep { $again[$_]{status} == $res[$_]{status} } 0 .. $#req;
is($same, 2000, 'replay: every request gets its first status');
is($redis->cmd('HGET', '{v}:c:FLASH100', 'u'), 100, 'replay: still 100');
is($redis->cmd('XLEN', '{v}:log'), 100, 'replay: still 100 entries');

# one key, 50 times at once
code($redis, 'MULTI', campaign => 'flash', max_uses => 1000);
my @same = map {
    {method => 'POST', path => '/vouchers/redeem',
     body => {code => 'MULTI', customer => 'one', idempotency_key => 'the-one-key',
              order => {amount => 10000}}}
} 1 .. 50;
my @r50 = http_parallel($ng->port, \@same, concurrency => 50, timeout => 30);
is(scalar(grep { $_->{status} == 200 } @r50), 50, 'idempotency: all 50 answered 200');
my %rid = map { $_->{json}{redemption_id} => 1 } @r50;
is(scalar keys %rid, 1, 'idempotency: one redemption id for all');
is($redis->cmd('HGET', '{v}:c:MULTI', 'u'), 1, 'idempotency: one use counted');
is(scalar(grep { ($_->{headers}{'idempotent-replayed'} // '') eq 'true' } @r50), 49,
   'idempotency: 49 replays');

$ng->stop;
$ng->check_log('error log clean');
$redis->stop;
done_testing;
