#!/usr/bin/perl
#
# The storefront's loyalty endpoints: voucher_api loyalty_earn (an order's
# points without a coupon, once per order, whichever path reports it),
# loyalty_balance (active, pending, expiring next, tier, points to the next
# tier) and loyalty_history (the ledger, paged); their limits (rate, dry
# run, a lockout's ban from the cache); bad input refused before Redis and
# changing nothing; Redis away.  The balance equals the ledger after each
# part.

use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my $redis = VT::Redis->start;
$redis->load_functions;

my $ng = VT::Nginx->start(
    redis => $redis,
    http  => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_lockout_cache 1m;
EOT
    server => <<"EOT",
        location = /loyalty/earn    { voucher_api loyalty_earn; }
        location = /loyalty/balance { voucher_api loyalty_balance; }
        location = /loyalty/history { voucher_api loyalty_history; }
        location = /limited/earn {
            voucher_api loyalty_earn;
            voucher_limit \$http_x_api_key rate=2r/m burst=1 name=key;
        }
        location = /limited/balance {
            voucher_api loyalty_balance;
            voucher_limit \$http_x_api_key rate=1r/m scope=redeem name=key2;
        }
        location = /dry/earn {
            voucher_api loyalty_earn;
            voucher_limit \$http_x_api_key rate=1r/m name=dry;
            voucher_limit_dry_run on;
            add_header X-Limit \$voucher_limit_status;
        }
        location = /banned/balance {
            voucher_api loyalty_balance;
            voucher_lockout \$http_x_api_key failures=1 window=1m ban=1h name=ban;
        }
EOT
);

sub J { VT::json_body($_[0]) }
sub call {
    my ($path, $body, %h) = @_;
    return http($ng->port, 'POST', $path, body => $body,
                headers => { 'Content-Type' => 'application/json', %h });
}
sub fc { $redis->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub ledger_sums {
    my ($m, $name) = @_;
    my $h = +{ @{ $redis->cmd('HGETALL', "{v}:lm:$m") } };
    my ($sum, $ok) = (0, 1);
    for my $e (@{ $redis->cmd('XRANGE', "{v}:lh:$m", '-', '+') }) {
        my %e = @{ $e->[1] };
        $sum += $e{points};
        $ok &&= $e{active} + $e{pending} == $sum && $e{active} >= 0;
    }
    ok($ok && $sum == ($h->{act} // 0) + ($h->{pend} // 0),
       "$name: the balance equals the ledger ($sum)");
}

# --- no programme yet ---------------------------------------------------------
{
    my $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o0","amount":1000}}');
    is($r->{status}, 409, 'earn without a programme: 409');
    is(J($r)->{reason}, 'no_programme', '... no_programme');
    is(J($r)->{earned}, JSON::PP::false(), '... "earned":false');
    $r = call('/loyalty/history', '{"customer":"ann"}');
    is(J($r)->{reason}, 'no_programme', 'history without a programme: no_programme');
    is($redis->cmd('EXISTS', '{v}:lm:ann', '{v}:lh:ann'), 0, '... nothing written');
}

fc('voucher_loyalty_set', '{v}:lp', every => 100, points => 1, pending_days => 0,
   expiry_months => 12, expiry_round => 'month',
   tiers => 'base:0:100,silver:100:150,gold:1000:200');

# --- earn -----------------------------------------------------------------------
{
    my $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o1","amount":9999}}');
    is($r->{status}, 200, 'earn: 200') or diag $r->{body};
    is_deeply(J($r), { earned => JSON::PP::true(), order_id => 'o1', points => 99,
                       active => 99, pending => 0, tier => 'base' },
              'earn: 99 points for 9999 (1 per 100), in the base tier');
    is($r->{headers}{'cache-control'}, 'no-store', '... not cached');

    $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o1","amount":9999}}');
    is($r->{status}, 409, 'the same order again: 409');
    is(J($r)->{reason}, 'already_earned', '... already_earned');
    is(J($r)->{order_id}, 'o1', '... naming the order');
    is(fc('voucher_loyalty_earn', '{v}:lm:ann', 'o1', 9999, 0)->[0], 'already_earned',
       'the storefront event path agrees: already_earned');

    # crossing 100 qualified: silver at once, and its multiplier after
    $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o2","amount":200}}');
    is(J($r)->{points}, 2, 'o2 earns 2');
    is(J($r)->{tier}, 'silver', '... and crosses into silver');
    $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o3","amount":1000}}');
    is(J($r)->{points}, 15, 'o3 earns 10 x 1.5 in silver');

    # items: the amount from them when it is absent
    $r = call('/loyalty/earn', '{"customer":"bob","order":{"id":"o4","items":'
              . '[{"sku":"TEA","price":250,"quantity":2}]}}');
    is(J($r)->{points}, 5, 'the amount from the items: 500 earns 5');
    ledger_sums('ann', 'earn');
    ledger_sums('bob', 'earn with items');
}

# --- balance ----------------------------------------------------------------------
{
    my $r = call('/loyalty/balance', '{"customer":"ann"}');
    is($r->{status}, 200, 'balance: 200');
    my $b = J($r);
    is($b->{balance}, JSON::PP::true(), '"balance":true');
    is($b->{member}, 'ann', '... the member');
    is($b->{active}, 116, '... active 116');
    is($b->{pending}, 0, '... pending 0');
    is($b->{expiring_points}, 116, '... all of it expiring next');
    like($b->{expiry_date}, qr/^\d{4}-\d\d-\d\d$/, '... on a date');
    is($b->{tier}, 'silver', '... silver');
    is($b->{next_tier}, 'gold', '... gold next');
    is($b->{points_to_next_tier}, 1000 - 116, '... 884 points to it');

    $r = call('/loyalty/balance', '{"customer":"nobody"}');
    is(J($r)->{active}, 0, 'an unknown customer has 0 points');
    is(J($r)->{tier}, 'base', '... in the base tier');
    is($redis->cmd('EXISTS', '{v}:lm:nobody', '{v}:lh:nobody'), 0, '... and is not written');
}

# --- history --------------------------------------------------------------------------
{
    my $r = call('/loyalty/history', '{"customer":"ann","limit":2}');
    is($r->{status}, 200, 'history: 200');
    my $h = J($r);
    is(ref $h->{entries}, 'ARRAY', 'the entries are a list');
    is(scalar @{ $h->{entries} }, 2, '... of 2 (the limit)');
    is($h->{entries}[0]{type}, 'earn', '... newest first');
    is($h->{entries}[0]{order}, 'o3', '... o3');
    is($h->{entries}[0]{points}, 15, '... points as a number');
    is($h->{entries}[1]{type}, 'tier_upgraded', '... then the upgrade');
    ok($h->{next}, '... and where the next page starts');
    my @all = @{ $h->{entries} };
    while ($h->{next}) {
        $r = call('/loyalty/history', qq({"customer":"ann","limit":2,"before":"$h->{next}"}));
        $h = J($r);
        push @all, @{ $h->{entries} };
    }
    is_deeply([map { $_->{type} } @all], [qw(earn tier_upgraded earn earn)],
              'the pages hold the whole ledger, once');
    is($all[-1]{active}, 99, 'each entry has the balance after it');

    $r = call('/loyalty/history', '{"customer":"nobody"}');
    is_deeply(J($r)->{entries}, [], 'no ledger: an empty list');
    is(J($r)->{next}, '', '... and no next page');
}

# --- bad input: refused before Redis, nothing changes --------------------------------
{
    my $before = $redis->cmd('XLEN', '{v}:lh:ann');
    my @bad = (
        ['/loyalty/earn', '{"order":{"id":"o9","amount":1}}', 'missing_field', 'customer'],
        ['/loyalty/earn', '{"customer":"ann","order":{"amount":1}}', 'missing_field', 'order.id'],
        ['/loyalty/earn', '{"customer":"a n","order":{"id":"o9","amount":1}}', 'invalid_field', 'customer'],
        ['/loyalty/earn', '{"customer":"ann","order":{"id":"o9","amount":-5}}', 'invalid_field', 'order.amount'],
        ['/loyalty/earn', '{"customer":"ann","order":{"id":"o9","amount":1.5}}', 'invalid_field', 'order.amount'],
        ['/loyalty/earn', '{"customer":"ann","order":{"id":"o9","amount":99999999999999}}', 'invalid_field', 'order.amount'],
        ['/loyalty/earn', '{"customer":"ann","code":"X","order":{"id":"o9","amount":1}}', 'unknown_field', 'code'],
        ['/loyalty/earn', '{"customer":"ann","order":{"id":"o9","amount":1},"customer":"bob"}', 'duplicate_field', undef],
        ['/loyalty/balance', '{"customer":"ann","points":1}', 'unknown_field', 'points'],
        ['/loyalty/history', '{"customer":"ann","limit":101}', 'invalid_field', 'limit'],
        ['/loyalty/history', '{"customer":"ann","before":"abc"}', 'invalid_field', 'before'],
        ['/loyalty/balance', '[1]', 'invalid_request', undef],
        ['/loyalty/balance', '{"customer":', 'invalid_json', undef],
    );
    for my $b (@bad) {
        my ($path, $body, $reason, $field) = @$b;
        my $r = call($path, $body);
        is($r->{status}, 400, "$path $body: 400");
        is(J($r)->{reason}, $reason, "... $reason");
        is(J($r)->{field}, $field, '... field ' . ($field // 'none')) if defined $field;
    }
    my $r = http($ng->port, 'GET', '/loyalty/balance');
    is($r->{status}, 405, 'GET: 405');
    is(J($r)->{balance}, JSON::PP::false(), '... "balance":false');
    $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o9","amount":1}}',
              'Content-Type' => 'text/plain');
    is($r->{status}, 415, 'not JSON: 415');
    is($redis->cmd('XLEN', '{v}:lh:ann'), $before, 'bad input changed nothing');
    is($redis->cmd('EXISTS', '{v}:lo:o9'), 0, '... earned nothing');

    # a paused programme earns nothing, and says so
    fc('voucher_loyalty_set', '{v}:lp', status => 'paused');
    $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o9","amount":100}}');
    is($r->{status}, 409, 'paused: 409');
    is(J($r)->{reason}, 'programme_paused', '... programme_paused');
    is($redis->cmd('EXISTS', '{v}:lo:o9'), 0, '... and o9 did not earn');
    is(J(call('/loyalty/balance', '{"customer":"ann"}'))->{active}, 116,
       '... the balance still answers');
    fc('voucher_loyalty_set', '{v}:lp', status => 'active');
    ledger_sums('ann', 'after the refusals');
}

# --- limits ------------------------------------------------------------------------------
{
    my @s = map {
        call('/limited/earn', qq({"customer":"cat","order":{"id":"l$_","amount":100}}),
             'X-Api-Key' => 'shop-1')
    } 1 .. 3;
    is_deeply([map { $_->{status} } @s], [200, 200, 429], 'a rate per API key: 2 pass, then 429');
    is(J($s[2])->{reason}, 'rate_limited', '... rate_limited');
    is(J($s[2])->{limit}, 'key', '... naming the limit');
    ok(!exists J($s[2])->{code}, '... and no code');
    ok($s[2]{headers}{'retry-after'} >= 1, '... with Retry-After');
    is($redis->cmd('EXISTS', '{v}:lo:l3'), 0, '... and the refused order earned nothing');
    my $r = call('/limited/earn', '{"customer":"cat","order":{"id":"l4","amount":100}}',
                 'X-Api-Key' => 'shop-2');
    is($r->{status}, 200, 'another key has its own rate');
    $r = call('/limited/earn', '{"customer":"cat","order":{"id":"l5","amount":100}}');
    is($r->{status}, 200, 'an empty key is not limited');

    # a redeem-scoped limit does not count a balance (a validate)
    is(join(' ', map { call('/limited/balance', '{"customer":"cat"}', 'X-Api-Key' => 'k')->{status} } 1 .. 3),
       '200 200 200', 'a balance is a validate to the scopes');

    $r = call('/dry/earn', '{"customer":"cat","order":{"id":"d1","amount":100}}', 'X-Api-Key' => 'z');
    $r = call('/dry/earn', '{"customer":"cat","order":{"id":"d2","amount":100}}', 'X-Api-Key' => 'z');
    is($r->{status}, 200, 'dry run: over the rate, still 200');
    is($r->{headers}{'x-limit'}, 'REJECTED_DRY_RUN', '... $voucher_limit_status says so');

    # a lockout's ban (set the way a guesser earns it) refuses the key; the
    # cache then answers without Redis
    $redis->cmd('SET', '{v}:lb:ban:evil', 1, 'PX', 3600000);
    $r = call('/banned/balance', '{"customer":"cat"}', 'X-Api-Key' => 'evil');
    is($r->{status}, 429, 'a banned key: 429');
    is(J($r)->{reason}, 'locked_out', '... locked_out');
    ok(!exists J($r)->{code}, '... no code in the answer');
    $redis->cmd('DEL', '{v}:lb:ban:evil');
    $r = call('/banned/balance', '{"customer":"cat"}', 'X-Api-Key' => 'evil');
    is(J($r)->{reason}, 'locked_out', 'the lockout cache answers it without Redis');
    ok(!exists J($r)->{code}, '... the same answer, no code');
    is(call('/banned/balance', '{"customer":"cat"}', 'X-Api-Key' => 'good')->{status}, 200,
       'another key passes');
    ledger_sums('cat', 'limits');
}

# --- Redis away ------------------------------------------------------------------------------
{
    $redis->stop;
    my $r = call('/loyalty/earn', '{"customer":"ann","order":{"id":"o8","amount":100}}');
    is($r->{status}, 503, 'Redis away: 503');
    is(J($r)->{reason}, 'store_unavailable', '... store_unavailable');
    $r = call('/loyalty/balance', '{"customer":"ann"}');
    is($r->{status}, 503, 'a balance too: 503 (no fail-open for loyalty)');
}

$ng->stop;
done_testing;
