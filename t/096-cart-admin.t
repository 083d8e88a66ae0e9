#!/usr/bin/perl
#
# The cart through voucherd's admin API and voucherctl, beside nginx on one
# Redis: a member's wallet listed with each code's state, paged with the
# library's exact cursor (the same pages as the edge's wallet, a code added
# mid-way repeating or skipping none); a code added and removed, audited
# with who, before and after; a full wallet refused; qualify answering
# what the edge's voucher_api qualify answers (best too), read-only; every
# bad input refused with its stable reason, nothing changed.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use VoucherT;
use WorkerT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;
my $SECRET = 'cart-secret-0123456789';

my $redis = VT::Redis->start;
$redis->load_functions;
my $ng = VT::Nginx->start(
    redis  => $redis,
    http   => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;',
    server => api_server() . <<'EOT',
        location = /vouchers/wallet  { voucher_api wallet; }
        location = /vouchers/qualify { voucher_api qualify; }
        location = /vouchers/reserve { voucher_api reserve; }
EOT
);

my $w = worker_setup(redis => $redis);
write_text($w->dir . '/tokens', "crm $SECRET\n");
chmod 0600, $w->dir . '/tokens';
my $port = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $w->dir . '/tokens' });
my $d = WorkerT::Daemon->start($w);
ok(wait_until(sub { $d->log =~ /admin API on/ }, timeout => 10), 'the admin API is served');

sub api {
    my ($method, $path, %o) = @_;
    my $res = VT::http($port, $method, $path, headers => { Authorization => "Bearer $SECRET" },
                       (exists $o{body} ? (body => $o{body}) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') ne '';
    return $res;
}

sub refused {
    my ($res, $status, $reason, $name, $field) = @_;
    is($res->{status}, $status, "$name: $status") or diag $res->{body};
    is($res->{json}{reason}, $reason, "$name: $reason");
    ok(length($res->{json}{message} // ''), "$name: a message");
    is($res->{json}{field}, $field, "$name: field $field") if defined $field;
}

sub edge { my $r = post($ng, $_[0], $_[1]); $r->{json} = json_body($r); $r }
sub audit { map { +{ @{ $_->[1] } } } @{ $redis->cmd('XRANGE', '{v}:admin', '-', '+') } }
sub state { my $s = snapshot($redis); $s->{admin} = $redis->cmd('XLEN', '{v}:admin'); $s }

my %comb = (stacking => 'combinable');
campaign($redis, 'p10', kind => 'percent', value => 1000, min_amount => 5000, %comb,
         stack_category => 'pct');
campaign($redis, 'a5', kind => 'amount', value => 500, %comb);
campaign($redis, 'a70', kind => 'amount', value => 7000);
campaign($redis, 'shoe', kind => 'percent', value => 2000, include_categories => 'shoes', %comb);
campaign($redis, 'app', kind => 'amount', value => 3000, channels => 'app');
code($redis, 'SUMMER5', campaign => 'a5');
code($redis, 'TEN', campaign => 'p10');
code($redis, 'SEVENTY', campaign => 'a70');
code($redis, 'SHOES20', campaign => 'shoe');
code($redis, 'APPONLY', campaign => 'app');
code($redis, 'USED1', campaign => 'a5', max_uses => 1);
code($redis, 'BOBS', campaign => 'a5', customer => 'bob');
$redis->cmd('FCALL', 'voucher_public_add', 1, '{v}:public', 'SHOES20');
post($ng, 'redeem', {code => 'USED1', order => {amount => 1000}});

############################################################ the wallet

{
    my $res = api('GET', '/v1/members/ann/wallet');
    is($res->{status}, 200, 'an empty wallet') or diag $res->{body};
    is_deeply($res->{json}, {customer => 'ann', items => [], next_cursor => undef},
              '... no codes, no next page');

    $res = api('POST', '/v1/members/ann/wallet', body => { code => 'summer-5' });
    is($res->{status}, 200, 'a code added') or diag $res->{body};
    is_deeply($res->{json}, {customer => 'ann', code => 'SUMMER5', added => JSON::PP::true},
              '... normalised, added');
    my @a = audit();
    is(scalar @a, 1, '... one audit entry');
    my $after = $JSON->decode($a[0]{after});
    is_deeply([@{ $a[0] }{qw(who op target before)}, $after->{code}],
              ['token:crm', 'wallet.add', 'ann', 'null', 'SUMMER5'],
              '... with who, the member, before null and after the code');
    ok($after->{added_at} > 1_700_000_000, '... and when it came in');
    $res = api('POST', '/v1/members/ann/wallet', body => { code => 'SUMMER5' });
    is_deeply([$res->{status}, $res->{json}{added}], [200, JSON::PP::false], 'added again: false');
    is(scalar(audit()), 1, '... and nothing audited');

    for my $c (qw(TEN SEVENTY USED1 APPONLY)) {
        api('POST', '/v1/members/ann/wallet', body => { code => $c });
    }
    my $page = api('GET', '/v1/members/ann/wallet')->{json};
    my $e = edge('wallet', {customer => 'ann', count => 100})->{json};
    is_deeply($page->{items}, $e->{codes}, "the admin API's page is the edge's, states and all");
    my %st = map { ($_->{code} => $_->{state}) } @{ $page->{items} };
    is_deeply([@st{qw(SUMMER5 USED1)}], ['usable', 'used'], '... a used code shown used');

    # pages of 2 with a code added mid-way: no repeat, no skip
    my (@seen, $cursor);
    my $first = api('GET', '/v1/members/ann/wallet?limit=2');
    is(scalar @{ $first->{json}{items} }, 2, 'a page of 2');
    my $ec = edge('wallet', {customer => 'ann', count => 2})->{json};
    is($first->{json}{next_cursor}, $ec->{next_cursor}, "... its cursor is the library's");
    push @seen, map { $_->{code} } @{ $first->{json}{items} };
    $cursor = $first->{json}{next_cursor};
    api('POST', '/v1/members/ann/wallet', body => { code => 'SHOES20' });
    while (defined $cursor) {
        my $p = api('GET', "/v1/members/ann/wallet?limit=2&cursor=$cursor")->{json};
        push @seen, map { $_->{code} } @{ $p->{items} };
        $cursor = $p->{next_cursor};
    }
    is_deeply([sort @seen], [sort qw(SUMMER5 TEN SEVENTY USED1 APPONLY)],
              'every code once, the one added mid-way on a new listing');
    is(scalar(@{ api('GET', '/v1/members/ann/wallet')->{json}{items} }), 6,
       '... where it comes first');

    $res = api('POST', '/v1/members/ann/wallet/remove', body => { code => 'shoes-20' });
    is_deeply($res->{json}, {customer => 'ann', code => 'SHOES20', removed => JSON::PP::true},
              'a code removed');
    my $last = (audit())[-1];
    is_deeply([@$last{qw(who op target after)}, $JSON->decode($last->{before})->{code}],
              ['token:crm', 'wallet.remove', 'ann', 'null', 'SHOES20'],
              '... audited: before the code, after null');
    my $n = scalar audit();
    $res = api('POST', '/v1/members/ann/wallet/remove', body => { code => 'SHOES20' });
    is_deeply([$res->{status}, $res->{json}{removed}], [200, JSON::PP::false], 'removed again: false');
    is(scalar(audit()), $n, '... nothing audited');

    # refusals, nothing changed
    my $before = state();
    refused(api('POST', '/v1/members/ann/wallet', body => { code => 'NOPE' }), 400,
            'invalid_field', 'an unknown code', 'code');
    refused(api('POST', '/v1/members/ann/wallet', body => { code => 'BOBS' }), 400,
            'invalid_field', "another member's code", 'code');
    refused(api('POST', '/v1/members/ann/wallet', body => { code => '- -' }), 400,
            'invalid_field', 'a code empty once normalised', 'code');
    refused(api('POST', '/v1/members/ann/wallet', body => { code => 'X' x 129 }), 400,
            'invalid_field', 'a code too long', 'code');
    refused(api('POST', '/v1/members/ann/wallet', body => {}), 400,
            'missing_field', 'no code', 'code');
    refused(api('POST', '/v1/members/ann/wallet', body => { code => 5 }), 400,
            'invalid_field', 'a code that is a number', 'code');
    refused(api('POST', '/v1/members/ann/wallet', body => { code => 'TEN', why => 1 }), 400,
            'unknown_field', 'an unknown field', 'why');
    refused(api('POST', '/v1/members/ann/wallet/remove', body => { codes => ['TEN'] }), 400,
            'unknown_field', 'remove: an unknown field', 'codes');
    refused(api('POST', '/v1/members/' . ('m' x 129) . '/wallet', body => { code => 'TEN' }), 400,
            'invalid_field', 'a member id too long', 'id');
    refused(api('POST', '/v1/members/a%01b/wallet', body => { code => 'TEN' }), 400,
            'invalid_request', 'a control character in the id');
    refused(api('GET', '/v1/members/ann/wallet?limit=0'), 400, 'invalid_field', 'limit 0', 'limit');
    refused(api('GET', '/v1/members/ann/wallet?limit=101'), 400, 'invalid_field', 'limit 101', 'limit');
    refused(api('GET', '/v1/members/ann/wallet?cursor=abc'), 400, 'invalid_field', 'a cursor not given',
            'cursor');
    refused(api('GET', '/v1/members/ann/wallet?cursor='), 400, 'invalid_field', 'an empty cursor',
            'cursor');
    refused(api('GET', '/v1/members/ann/wallet?count=5'), 400, 'unknown_field', 'the edge\'s count',
            'count');
    refused(api('DELETE', '/v1/members/ann/wallet'), 405, 'method_not_allowed', 'DELETE');
    refused(api('GET', '/v1/members/ann/wallet/remove'), 405, 'method_not_allowed',
            'GET of remove');
    is_deeply(state(), $before, 'none of them changed anything, nor was audited');

    # a full wallet: refused, nothing dropped
    $redis->cmd('ZADD', '{v}:w:ivy', $_, "FILL$_") for 1 .. 500;
    $before = state();
    refused(api('POST', '/v1/members/ivy/wallet', body => { code => 'TEN' }), 409, 'wallet_full',
            'a full wallet', 'code');
    is_deeply(state(), $before, '... nothing dropped, nothing added');
}

########################################################### qualify

{
    my $items = [{sku => 'BOOT', category => 'shoes', price => 30000},
                 {sku => 'SOCK', category => 'socks', price => 5000, quantity => 2}];
    my @cases = (
        ['the wallet and public codes', {customer => 'ann', order => {amount => 40000, currency => 'THB',
                                                                         items => $items}}],
        ['the best combination', {customer => 'ann', best => JSON::PP::true,
                                  order => {items => $items, channel => 'web'}}],
        ['below a minimum, named codes', {customer => 'ann', codes => ['ten', 'NOPE', 'bobs', 'TEN'],
                                          order => {amount => 3000, id => 'o-9'}}],
        ['a channel', {customer => 'ann', order => {amount => 10000, channel => 'app'}}],
        ['no customer', {order => {amount => 8000}, best => JSON::PP::true}],
    );
    for my $c (@cases) {
        my ($name, $body) = @$c;
        my $before = state();
        my $res = api('POST', '/v1/qualify', body => $body);
        is($res->{status}, 200, "qualify, $name") or diag $res->{body};
        my $e = edge('qualify', $body);
        is($e->{status}, 200, '... the edge answers too');
        delete $e->{json}{qualified};
        is_deeply($res->{json}, $e->{json}, '... the same answer as the edge');
        is_deeply(state(), $before, '... nothing changed');
    }
    my $j = api('POST', '/v1/qualify', body => $cases[2][1])->{json};
    my %in = map { ($_->{code} => $_) } @{ $j->{inapplicable} };
    is_deeply([@{ $in{TEN} }{qw(reason missing_amount)}, $in{NOPE}{reason}, $in{BOBS}{reason}],
              ['order_below_minimum', 2000, 'not_found', 'customer_mismatch'],
              'the reasons: a minimum missing 20.00, unknown, another customer\'s');
    $j = api('POST', '/v1/qualify', body => $cases[1][1])->{json};
    ok($j->{best} && $j->{best}{discount} > 0, 'best: a combination with its total');

    my $before = state();
    my $q = sub { api('POST', '/v1/qualify', body => $_[0]) };
    refused($q->({}), 400, 'missing_field', 'no order', 'order');
    refused($q->({order => 5}), 400, 'invalid_field', 'an order that is a number', 'order');
    refused($q->({order => {}}), 400, 'missing_field', 'neither amount nor items', 'order.amount');
    refused($q->({order => {amount => '5'}}), 400, 'invalid_field', 'an amount in a string',
            'order.amount');
    refused($q->({order => {amount => -1}}), 400, 'invalid_field', 'a negative amount', 'order.amount');
    refused($q->({order => {amount => 1.5}}), 400, 'invalid_field', 'an amount of 1.5', 'order.amount');
    refused($q->({order => {amount => 10 ** 14}}), 400, 'invalid_field', 'an amount over 10^13',
            'order.amount');
    refused($q->({order => {amount => 1, currency => 'thb'}}), 400, 'invalid_field',
            'a currency in lower case', 'order.currency');
    refused($q->({order => {amount => 1, channel => 'a b'}}), 400, 'invalid_field',
            'a channel with a space', 'order.channel');
    refused($q->({order => {amount => 1, colour => 'red'}}), 400, 'unknown_field',
            'an unknown order field', 'order.colour');
    refused($q->({order => {items => [{sku => 'A'}]}}), 400, 'missing_field', 'an item without a price',
            'order.items[0].price');
    refused($q->({order => {items => [{sku => 'A', price => 1, qty => 2}]}}), 400, 'unknown_field',
            'an unknown item field', 'order.items[0].qty');
    refused($q->({order => {items => [{sku => 'A', price => 1, quantity => 0}]}}), 400,
            'invalid_field', 'a quantity of 0', 'order.items[0].quantity');
    refused($q->({order => {items => [map { {sku => "S$_", price => 1} } 1 .. 101]}}), 400,
            'invalid_field', '101 items', 'order.items');
    refused($q->({order => {amount => 1}, codes => 'TEN'}), 400, 'invalid_field',
            'codes not an array', 'codes');
    refused($q->({order => {amount => 1}, codes => ['TEN', '--']}), 400, 'invalid_field',
            'a code empty once normalised', 'codes[1]');
    refused($q->({order => {amount => 1}, codes => ['TEN', "T\x{e9}N"]}), 400, 'invalid_field',
            'a code that is not ASCII', 'codes[1]');
    refused($q->({order => {amount => 1}, codes => [map { "C$_" } 1 .. 31]}), 400, 'invalid_field',
            'more than 30 codes', 'codes');
    refused($q->({order => {amount => 1}, best => 'yes'}), 400, 'invalid_field', 'best in a string',
            'best');
    refused($q->({order => {amount => 1}, customer => ''}), 400, 'invalid_field', 'an empty customer',
            'customer');
    refused($q->({order => {amount => 1}, points => 5}), 400, 'unknown_field',
            'points (qualify takes none)', 'points');
    refused(api('GET', '/v1/qualify'), 405, 'method_not_allowed', 'GET of qualify');
    is_deeply(state(), $before, 'none of them changed anything');
}

############################################################ voucherctl

{
    my $r = ctl($w, 'wallet', 'list', 'ann', '--limit', '2');
    is($r->{rc}, 0, 'voucherctl wallet list') or diag $r->{err};
    my @lines = map { $JSON->decode($_) } split /\n/, $r->{out};
    is_deeply(\@lines, api('GET', '/v1/members/ann/wallet')->{json}{items},
              '... every page, one code a line: the API\'s list');
    $r = ctl($w, 'wallet', 'add', 'cat', 'ten');
    is($r->{rc}, 0, 'voucherctl wallet add') or diag $r->{err};
    is($JSON->decode($r->{out})->{added}, JSON::PP::true, '... added');
    my $last = (audit())[-1];
    like($last->{who}, qr/^cli:/, '... audited as cli:<user>');
    is($last->{op}, 'wallet.add', '... wallet.add');
    $r = ctl($w, 'wallet', 'remove', 'cat', 'TEN');
    is($JSON->decode($r->{out})->{removed}, JSON::PP::true, 'voucherctl wallet remove');
    $r = ctl($w, 'wallet', 'add', 'cat', 'NOPE');
    is($r->{rc}, 1, 'an unknown code: exit 1');
    like($r->{err}, qr/invalid_field/, '... with the reason');
    is(ctl($w, 'wallet', 'add', 'cat')->{rc}, 2, 'no code: usage');

    my $body = {customer => 'ann', best => JSON::PP::true,
                order => {amount => 40000, currency => 'THB'}};
    $r = ctl($w, 'qualify', $JSON->encode($body));
    is($r->{rc}, 0, 'voucherctl qualify') or diag $r->{err};
    is_deeply($JSON->decode($r->{out}), api('POST', '/v1/qualify', body => $body)->{json},
              '... the API\'s answer');
    write_text($w->dir . '/q.json', $JSON->encode($body));
    is_deeply($JSON->decode(ctl($w, 'qualify', '@' . $w->dir . '/q.json')->{out}),
              $JSON->decode($r->{out}), '... from a file');
    is_deeply($JSON->decode(ctl($w, {stdin => $JSON->encode($body)}, 'qualify', '-')->{out}),
              $JSON->decode($r->{out}), '... from standard input');
    is(ctl($w, 'qualify', '{"order":')->{rc}, 2, 'a body that is no JSON: usage');
    $r = ctl($w, 'qualify', '{"order":{"amount":"x"}}');
    is($r->{rc}, 1, 'a bad amount: refused');
    like($r->{err}, qr/invalid_field/, '... invalid_field');
}

$d->stop;
$ng->check_log;
done_testing;
