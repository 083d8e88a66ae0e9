# Every rule, through nginx: each reason comes back with its documented
# HTTP status, and a refused code changes nothing.  (t/010-functions.t
# checks the arithmetic of each rule in depth, against Redis directly.)
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(server => api_server() . <<'EOT');
        location = /shop2/redeem { voucher_api redeem; voucher_namespace shop2; }
EOT
my $now = redis_now($redis);

# one campaign per rule, one code each
my %c = (
    base      => [{kind => 'amount', value => 100}, {}],
    paused    => [{kind => 'amount', value => 100, status => 'paused'}, {}],
    later     => [{kind => 'amount', value => 100, starts_at => $now + 3600}, {}],
    over      => [{kind => 'amount', value => 100, ends_at => $now - 1, starts_at => $now - 7200}, {}],
    wrongday  => [{kind => 'amount', value => 100, tz_offset => 0,
                   days => (((int($now / 86400) + 3) % 7) + 1) % 7 + 1}, {}],
    mine      => [{kind => 'amount', value => 100}, {customer => 'alice'}],
    once      => [{kind => 'amount', value => 100}, {max_uses => 1}],
    gift      => [{kind => 'gift_card'}, {balance => 0}],
    budget1   => [{kind => 'amount', value => 100, max_redemptions => 1}, {}],
    percust   => [{kind => 'amount', value => 100, per_customer => 1}, {}],
    percode   => [{kind => 'amount', value => 100, per_customer_code => 1}, {}],
    thb       => [{kind => 'amount', value => 100, currency => 'THB'}, {}],
    min       => [{kind => 'amount', value => 100, min_amount => 5000}, {}],
    skus      => [{kind => 'percent', value => 1000, include_skus => 'A,B'}, {}],
    free      => [{kind => 'free_item', free_sku => 'MUG'}, {}],
    money     => [{kind => 'amount', value => 600, max_discount => 1000}, {}],
);
for my $id (sort keys %c) {
    campaign($redis, $id, %{ $c{$id}[0] });
    code($redis, uc($id), campaign => $id, %{ $c{$id}[1] });
}
code($redis, 'OFF', campaign => 'base', status => 'disabled');

my $o = {amount => 1000};
my @cases = (
    ['unknown code',          {code => 'NONE', order => $o},                404, 'not_found'],
    ['disabled code',         {code => 'OFF', order => $o},                 409, 'code_inactive'],
    ['paused campaign',       {code => 'PAUSED', order => $o},              409, 'campaign_inactive'],
    ['before start',          {code => 'LATER', order => $o},               409, 'not_started'],
    ['after end',             {code => 'OVER', order => $o},                409, 'expired'],
    ['wrong day of week',     {code => 'WRONGDAY', order => $o},            409, 'outside_window'],
    ['assigned, no customer', {code => 'MINE', order => $o},                409, 'customer_required'],
    ['assigned to another',   {code => 'MINE', customer => 'bob', order => $o}, 409, 'customer_mismatch'],
    ['gift card empty',       {code => 'GIFT', order => $o},                409, 'balance_exhausted'],
    ['wrong currency',        {code => 'THB', order => {amount => 1000, currency => 'USD'}}, 409, 'currency_mismatch'],
    ['below minimum',         {code => 'MIN', order => $o},                 409, 'order_below_minimum'],
    ['items needed',          {code => 'SKUS', order => $o},                409, 'items_required'],
    ['no item matches',       {code => 'SKUS', order => {items => [{sku => 'C', price => 1000}]}}, 409, 'no_matching_items'],
    ['free item missing',     {code => 'FREE', order => {items => [{sku => 'TEA', price => 1000}]}}, 409, 'free_item_missing'],
);

my $before = snapshot($redis);
for my $case (@cases) {
    my ($name, $body, $status, $reason) = @$case;
    for my $op (qw(validate redeem)) {
        my $r = post($ng, $op, $body);
        is($r->{status}, $status, "$op, $name: $status");
        is($r->{json}{reason}, $reason, "$op, $name: $reason");
    }
}
is_deeply(snapshot($redis), $before, 'refused codes changed nothing');

# limits that need a first use
my @limits = (
    ['code used up',        'ONCE',    {},                 'code_exhausted'],
    ['campaign used up',    'BUDGET1', {},                 'campaign_exhausted'],
    ['customer, campaign',  'PERCUST', {customer => 'c1'}, 'customer_limit'],
    ['customer, code',      'PERCODE', {customer => 'c1'}, 'customer_code_limit'],
    ['discount budget',     'MONEY',   {},                 'campaign_budget_exhausted'],
);
for my $l (@limits) {
    my ($name, $code, $extra, $reason) = @$l;
    my $first = post($ng, 'redeem', {code => $code, order => $o, %$extra});
    is($first->{status}, 200, "$name: first redeem 200");
    my $r = post($ng, 'redeem', {code => $code, order => $o, %$extra});
    is($r->{status}, 409, "$name: then 409");
    is($r->{json}{reason}, $reason, "$name: $reason");
}
my $r = post($ng, 'redeem', {code => 'PERCUST', customer => 'c2', order => $o});
is($r->{status}, 200, 'per-customer limit: another customer still redeems');
$r = post($ng, 'redeem', {code => 'PERCUST', order => $o});
is($r->{json}{reason}, 'customer_required', 'per-customer limit needs a customer');

# namespaces keep shops apart, and every key carries the hash tag
campaign($redis, 'c', kind => 'amount', value => 100, ns => 'shop2');
code($redis, 'SHOP2', campaign => 'c', ns => 'shop2');
$r = http($ng->port, 'POST', '/shop2/redeem', body => {code => 'SHOP2', customer => 'x', order => $o});
is($r->{status}, 200, 'voucher_namespace shop2: redeem');
is(post($ng, 'redeem', {code => 'SHOP2', order => $o})->{json}{reason}, 'not_found',
   'the default namespace does not see shop2');
my @keys = @{ $redis->cmd('KEYS', '*') };
is(scalar(grep { !/^\{(v|shop2)\}:/ } @keys), 0, 'every key has a {namespace} hash tag')
    or diag explain \@keys;

# bytes that are not UTF-8, written into Redis behind the library's back,
# still make a valid JSON answer: they become U+FFFD
$redis->cmd('HSET', '{v}:k:odd', 'status', "p\xffa\xe2\x82use\xed\xa0\x80d\xc3\xa9", 'kind', 'amount',
            'value', 100, 'rev', 'x1');
$redis->cmd('HSET', '{v}:c:ODD', 'k', 'odd');
$r = post($ng, 'validate', {code => 'ODD', order => $o});
is($r->{status}, 409, 'a campaign status of stray bytes: still 409');
my $st = eval { JSON::PP->new->utf8->decode($r->{body})->{status} };
is($st, "p\x{fffd}a\x{fffd}\x{fffd}use\x{fffd}\x{fffd}\x{fffd}d\x{e9}",
   'the answer is valid JSON: stray, truncated and surrogate bytes are U+FFFD, valid UTF-8 stays');

$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
