# voucher_hot_cache: once Redis has answered a code code_exhausted,
# campaign_exhausted or campaign_budget_exhausted, nginx gives the same
# answer (the same bytes) for that code from shared memory for "time=",
# with no Redis call; a restock is seen once the time is up.  A campaign's
# answer is learned per code, a budget's only for orders as large without
# items, a redeem with an idempotency key always asks Redis.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(workers => 2,
    http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%;\n"
          . "    voucher_hot_cache 1m time=1s;",
    server => api_server() . <<'EOT');
        location = /vouchers/reserve { voucher_api reserve; }
        location = /other/validate {
            voucher_api validate;
            voucher_namespace other;
        }
        location /gate/ {
            voucher_gate validate;
            voucher_code $arg_coupon;
            voucher_order_amount 1000;
            proxy_pass http://127.0.0.1:%%PORT%%/passed;
        }
        location = /passed { return 200 "passed\n"; }
EOT

sub fcalls { $redis->hot_calls }   # FCALL or the native module's commands
my $o = {amount => 1000};
sub try {
    my ($op, $code, %x) = @_;
    my $h = delete $x{headers} // {};
    return post($ng, $op, {code => $code, order => $x{order} // $o}, headers => $h);
}
# the hot answers that a window holds, and the Redis calls they cost
sub burst {
    my ($n, @args) = @_;
    my $before = fcalls();
    my @r = map { try(@args) } 1 .. $n;
    return (\@r, fcalls() - $before);
}

# --- code_exhausted
campaign($redis, 'flash', kind => 'amount', value => 100);
code($redis, 'FLASH', campaign => 'flash', max_uses => 3);
is(try('redeem', 'FLASH')->{status}, 200, "redeem $_ of 3") for 1 .. 3;

my $before = fcalls();
my $first = try('redeem', 'FLASH');
is($first->{status}, 409, 'the 4th redeem: 409');
is($first->{json}{reason}, 'code_exhausted', '... code_exhausted, from Redis');
is(fcalls() - $before, 1, '... one Redis call');

my ($r, $calls) = burst(60, 'redeem', 'FLASH');
is(scalar(grep { $_->{status} == 409 && $_->{body} eq $first->{body} } @$r), 60,
   '60 more redeems: the same status and the same bytes as Redis answered');
is($calls, 0, '... and not one reached Redis (both workers share the cache)');

($r, $calls) = burst(5, 'validate', 'flash');
is(scalar(grep { $_->{json}{reason} // '' eq 'code_exhausted' } @$r), 5,
   'a validate of the code, typed in lower case: code_exhausted too');
is($calls, 0, '... from the cache');

($r, $calls) = burst(3, 'reserve', 'FLASH');
is(scalar(grep { $_->{status} == 409 && $_->{json}{reason} eq 'code_exhausted' } @$r),
   3, 'a reserve: the same');
is($calls, 0, '... from the cache');

my $g = http($ng->port, 'GET', '/gate/x?coupon=FLASH');
is($g->{status}, 409, 'the gate refuses it from the cache as well');
is($g->{json}{reason}, 'code_exhausted', '... code_exhausted');
is(fcalls() - $before - 1, 0, '... with no Redis call');

$before = fcalls();
my $k = try('redeem', 'FLASH', headers => { 'Idempotency-Key' => 'retry-1' });
is($k->{json}{reason}, 'code_exhausted', 'a redeem with an idempotency key ...');
is(fcalls() - $before, 1, '... asks Redis: a retry must get its first answer');

$before = fcalls();
my $other = http($ng->port, 'POST', '/other/validate',
                 body => {code => 'FLASH', order => $o});
is($other->{json}{reason}, 'not_found', 'the same code in another namespace: not cached');
is(fcalls() - $before, 1, '... asked of Redis');

# a restock within the window is not seen; after it, it is
code($redis, 'FLASH', campaign => 'flash', max_uses => 10);
($r, $calls) = burst(3, 'redeem', 'FLASH');
is(scalar(grep { $_->{json}{reason} eq 'code_exhausted' } @$r), 3,
   'restocked within the window: still code_exhausted from the cache');
is($calls, 0, '... no Redis call');
sleep 1.1;
$before = fcalls();
my $again = try('redeem', 'FLASH');
is($again->{status}, 200, 'after the window: the restocked code redeems');
is(fcalls() - $before, 1, '... asked of Redis');
is($redis->cmd('HGET', '{v}:c:FLASH', 'u'), 4, 'the code has 4 uses, as Redis counts');

# a validate's bytes: Redis' own answer against the cached one
code($redis, 'FLASH', campaign => 'flash', max_uses => 4);
sleep 1.1;
$before = fcalls();
my $vr = try('validate', 'FLASH');
my $vh = try('validate', 'FLASH');
is($vr->{json}{reason}, 'code_exhausted', 'a validate answered code_exhausted by Redis');
is($vh->{body}, $vr->{body}, 'the cached validate: the same bytes');
is($vh->{status}, $vr->{status}, '... the same status');
is(fcalls() - $before, 1, '... one Redis call for the two');

# --- campaign_exhausted: learned per code
campaign($redis, 'cap', kind => 'amount', value => 100, max_redemptions => 2);
code($redis, "CAP$_", campaign => 'cap') for 1 .. 2;
campaign($redis, 'else', kind => 'amount', value => 100);
code($redis, 'ELSE1', campaign => 'else');
is(try('redeem', 'CAP1')->{status}, 200, "campaign cap: redeem $_") for 1 .. 2;
$before = fcalls();
is(try('redeem', 'CAP1')->{json}{reason}, 'campaign_exhausted', 'CAP1: campaign_exhausted');
($r, $calls) = burst(10, 'redeem', 'CAP1');
is(scalar(grep { $_->{json}{reason} eq 'campaign_exhausted' } @$r), 10,
   'CAP1 again: campaign_exhausted');
is($calls, 0, '... from the cache');
$before = fcalls();
is(try('validate', 'CAP2')->{json}{reason}, 'campaign_exhausted',
   'CAP2, of the same campaign: campaign_exhausted ...');
is(fcalls() - $before, 1, '... from Redis: a campaign is learned per code');
$before = fcalls();
is(try('redeem', 'ELSE1')->{status}, 200, 'a code of another campaign redeems');
is(fcalls() - $before, 1, '... asked of Redis');

# --- campaign_budget_exhausted: for orders as large, without items
campaign($redis, 'bud', kind => 'amount', value => 400, max_discount => 1000);
code($redis, 'BUD', campaign => 'bud');
is(try('redeem', 'BUD')->{status}, 200, "budget: redeem $_ (400 of 1000)") for 1 .. 2;
$before = fcalls();
is(try('redeem', 'BUD')->{json}{reason}, 'campaign_budget_exhausted',
   'a third 400: campaign_budget_exhausted');
($r, $calls) = burst(5, 'redeem', 'BUD', order => {amount => 5000});
is(scalar(grep { $_->{json}{reason} eq 'campaign_budget_exhausted' } @$r), 5,
   'larger orders: refused');
is($calls, 0, '... from the cache');
$before = fcalls();
my $small = try('redeem', 'BUD', order => {amount => 150});
is($small->{status}, 200, 'a smaller order, which the budget still covers, redeems')
    or diag $small->{body};
is(fcalls() - $before, 1, '... asked of Redis');
$before = fcalls();
my $items = try('redeem', 'BUD', order => {amount => 5000,
    items => [{sku => 'A', category => 'x', price => 5000, quantity => 1}]});
is($items->{json}{reason}, 'campaign_budget_exhausted', 'an order with items ...');
is(fcalls() - $before, 1, '... asks Redis');

# --- nothing else is cached
code($redis, 'OFF', campaign => 'flash', status => 'disabled');
$before = fcalls();
is(try('validate', 'OFF')->{json}{reason}, 'code_inactive', "code_inactive: $_")
    for 1 .. 3;
is(fcalls() - $before, 3, '... asked of Redis each time');

# a reload keeps what was learned (until its time)
code($redis, 'FLASH', campaign => 'flash', max_uses => 4);
sleep 1.1;
is(try('redeem', 'FLASH')->{json}{reason}, 'code_exhausted', 'FLASH exhausted again');
$ng->reload;
$before = fcalls();
is(try('redeem', 'FLASH')->{json}{reason}, 'code_exhausted', 'after a reload ...');
is(fcalls() - $before, 0, '... still from the cache');

$ng->check_log;

for my $bad (['1k', qr/invalid size "1k" of "voucher_hot_cache"/],
             ['1m time=0', qr/invalid time "0" of "voucher_hot_cache"/],
             ['1m ttl=1s', qr/invalid parameter "ttl=1s" of "voucher_hot_cache"/]) {
    my $ng2 = VT::Nginx->start(redis => $redis, expect_fail => 1,
        http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%;\n    voucher_hot_cache $bad->[0];");
    like($ng2->stderr . $ng2->error_log, $bad->[1], "\"$bad->[0]\" is refused");
}

done_testing;
