#!/usr/bin/perl
#
# Loyalty through voucherd's admin API: the programme (get, set, bad
# fields), a member's balance, history (paged) and adjustment (with a
# reason, once per key, never below zero), the rewards catalogue (set,
# get, list, a pool filled with codes issued with the MAC) and claims;
# every refusal with its status and nothing changed; every change in the
# admin audit stream with who made it, before and after.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;
my $SECRET = 'loyalty-secret-0123456789';

my $w = worker_setup();
write_text($w->dir . '/tokens', "crm $SECRET\n");
chmod 0600, $w->dir . '/tokens';
my $port = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $w->dir . '/tokens' },
                daemon => { poll_ms => 100 });
my $d = WorkerT::Daemon->start($w);
ok(wait_until(sub { $d->log =~ /admin API on/ }, timeout => 10), 'the admin API is served');
my $R = $w->redis;

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

sub audit {
    my @e = map { +{ @{ $_->[1] } } } @{ $R->cmd('XRANGE', $w->key('admin'), '-', '+') };
    return @e;
}

sub ledger_sums {
    my ($m, $name) = @_;
    my $h = +{ @{ $R->cmd('HGETALL', $w->key("lm:$m")) } };
    my ($sum, $ok) = (0, 1);
    for my $e (@{ $R->cmd('XRANGE', $w->key("lh:$m"), '-', '+') }) {
        my %e = @{ $e->[1] };
        $sum += $e{points};
        $ok &&= $e{active} + $e{pending} == $sum && $e{active} >= 0;
    }
    ok($ok && $sum == ($h->{act} // 0) + ($h->{pend} // 0),
       "$name: the balance equals the ledger ($sum)");
}

########################################################### the programme

refused(api('GET', '/v1/loyalty/programme'), 404, 'not_found', 'no programme yet');
refused(api('GET', '/v1/loyalty/members/ann'), 409, 'no_programme', 'a balance without a programme');

my $res = api('PATCH', '/v1/loyalty/programme',
              body => { every => 100, points => 1, point_value => 10,
                        tiers => ['base:0:100', 'silver:100:150', 'gold:1000:200'],
                        events => 'signup:50', expiry_months => 12, tz_offset => '+07:00' });
is($res->{status}, 200, 'the programme set') or diag $res->{body};
is_deeply([@{ $res->{json} }{qw(status every points tiers tz_offset)}],
          ['active', 100, 1, 'base:0:100,silver:100:150,gold:1000:200', 420],
          '... and answered as stored, integers as integers');
is(api('GET', '/v1/loyalty/programme')->{json}{point_value}, 10, 'get');

my $n = audit();
refused(api('PATCH', '/v1/loyalty/programme', body => { tiers => 'base:5:100' }), 400,
        'invalid_field', 'tiers not starting at 0', 'tiers');
refused(api('PATCH', '/v1/loyalty/programme', body => { colour => 'red' }), 400,
        'unknown_field', 'an unknown field', 'colour');
refused(api('PATCH', '/v1/loyalty/programme', body => { every => 'ten' }), 400,
        'invalid_field', 'a string for an integer', 'every');
refused(api('PATCH', '/v1/loyalty/programme', body => {}), 400, 'missing_field', 'nothing to set');
is(scalar(audit()), $n, '... none of them audited');
is(api('GET', '/v1/loyalty/programme')->{json}{tiers}, 'base:0:100,silver:100:150,gold:1000:200',
   '... and the programme unchanged');
my ($e) = grep { $_->{op} eq 'loyalty.set' } audit();
is($e->{who}, 'token:crm', 'the change is audited with the token');
is($JSON->decode($e->{before}), undef, '... before: none');
is($JSON->decode($e->{after})->{every}, '100', '... after: the programme');

########################################################### a member

# points from the storefront's side, then the admin's view
$R->cmd('FCALL', 'voucher_loyalty_earn', 1, $w->key('lm:ann'), "o$_", 5000, 0) for 1 .. 3;
$res = api('GET', '/v1/loyalty/members/ann');
is($res->{status}, 200, 'a balance');
is_deeply([@{ $res->{json} }{qw(member active pending tier next_tier points_to_next_tier)}],
          ['ann', 175, 0, 'silver', 'gold', 825],
          '... 50 + 50 in base, then 75 in silver; 825 to gold');
is(api('GET', '/v1/loyalty/members/nobody')->{json}{active}, 0, 'a member not in the programme: 0');
refused(api('GET', '/v1/loyalty/members/a%20b'), 400, 'invalid_field', 'a member id with a space', 'id');

$res = api('POST', '/v1/loyalty/members/ann/adjust', body => { points => 25, reason => 'goodwill', key => 'adj-1' });
is($res->{status}, 200, 'adjust +25') or diag $res->{body};
is($res->{json}{active}, 200, '... 200 active');
refused(api('POST', '/v1/loyalty/members/ann/adjust', body => { points => 25, reason => 'goodwill', key => 'adj-1' }),
        409, 'already_applied', 'the same key again', 'key');
refused(api('POST', '/v1/loyalty/members/ann/adjust', body => { points => -500, reason => 'fraud' }),
        409, 'insufficient_points', 'taking more than there is', 'points');
refused(api('POST', '/v1/loyalty/members/ann/adjust', body => { points => 0, reason => 'x' }),
        400, 'invalid_points', 'zero points', 'points');
refused(api('POST', '/v1/loyalty/members/ann/adjust', body => { points => 5 }),
        400, 'missing_field', 'no reason', 'reason');
refused(api('POST', '/v1/loyalty/members/ann/adjust', body => { points => 9007199254740992, reason => 'x' }),
        400, 'invalid_field', 'past 2^53-1', 'points');
refused(api('POST', '/v1/loyalty/members/ann/adjust', body => { points => '5', reason => 'x' }),
        400, 'invalid_field', 'a string for points', 'points');
$res = api('POST', '/v1/loyalty/members/ann/adjust', body => { points => -20, reason => 'typo' });
is($res->{json}{active}, 180, 'adjust -20: 180');
is(api('GET', '/v1/loyalty/members/ann')->{json}{active}, 180, '... the balance says so');
($e) = grep { $_->{op} eq 'loyalty.adjust' } audit();
is_deeply([$e->{target}, $JSON->decode($e->{before})->{active}, $JSON->decode($e->{after})->{active}],
          ['ann', 175, 200], 'an adjustment is audited with the balance before and after');
ledger_sums('ann', 'adjustments');

my @all;
my $cursor;
do {
    $res = api('GET', '/v1/loyalty/members/ann/history?limit=2' . ($cursor ? "&cursor=$cursor" : ''));
    push @all, @{ $res->{json}{items} };
    $cursor = $res->{json}{next_cursor};
} while ($cursor);
is_deeply([map { $_->{type} } @all], [qw(adjust adjust earn tier_upgraded earn earn)],
          'history: every page, newest first');
is($all[0]{points}, -20, '... integers as integers');
is($all[0]{reason}, 'typo', '... the reason');
like($all[0]{id}, qr/^\d+-\d+$/, '... the entry id');
refused(api('GET', '/v1/loyalty/members/ann/history?cursor=x'), 400, 'invalid_field', 'a bad cursor', 'cursor');
refused(api('GET', '/v1/loyalty/members/ann/history?limit=0'), 400, 'invalid_field', 'limit 0', 'limit');

########################################################### rewards

api('POST', '/v1/campaigns', body => { id => 'drink', kind => 'free_item', free_sku => 'TEA' });
$res = api('PUT', '/v1/loyalty/rewards/tea', body => { name => 'A free tea', cost => 50, kind => 'coupon',
                                                       campaign => 'drink', stock => 2, per_member => 5 });
is($res->{status}, 200, 'a reward set') or diag $res->{body};
is_deeply([@{ $res->{json} }{qw(id cost stock pool status)}], ['tea', 50, 2, 0, 'active'], '... as stored');
refused(api('PUT', '/v1/loyalty/rewards/cake', body => { cost => 5, kind => 'coupon', campaign => 'nope' }),
        400, 'invalid_field', 'a reward of no campaign', 'campaign');
refused(api('PUT', '/v1/loyalty/rewards/cake', body => { cost => 5, kind => 'coupon', campaign => 'drink', size => 1 }),
        400, 'unknown_field', 'a reward with an unknown field', 'size');
refused(api('GET', '/v1/loyalty/rewards/cake'), 404, 'not_found', 'a reward that does not exist');
api('PUT', '/v1/loyalty/rewards/mug', body => { cost => 500, kind => 'item', sku => 'MUG-1' });
is_deeply([map { $_->{id} } @{ api('GET', '/v1/loyalty/rewards')->{json}{items} }], ['mug', 'tea'],
          'the catalogue');

# the pool: codes issued here with the MAC, redeemable at the edge
$res = api('POST', '/v1/loyalty/rewards/tea/pool', body => { count => 3, prefix => 'TEA' });
is($res->{status}, 200, 'the pool filled') or diag $res->{body};
is($res->{json}{pool}, 3, '... with 3 codes');
my @pool = @{ $R->cmd('LRANGE', $w->key('lwp:tea'), 0, -1) };
is(scalar(grep { /^TEA[0-9A-Z]{12}$/ } @pool), 3, '... issued with the prefix, a body and a MAC');
my $chk = ctl($w, 'codes', 'check', $pool[0], '--prefix', 'TEA', '--mac-length', 4);
is($chk->{rc}, 0, '... whose MAC checks') or diag $chk->{err} . $chk->{out};
sub code_get { +{ @{ $R->cmd('FCALL', 'voucher_code_get', 1, $w->key("c:$_[0]")) // [] } } }
is(code_get($pool[0])->{campaign}, 'drink', '... a code of the campaign');
refused(api('POST', '/v1/loyalty/rewards/mug/pool', body => { count => 1 }), 400, 'invalid_field',
        'a pool for an item', 'reward');
refused(api('POST', '/v1/loyalty/rewards/cake/pool', body => { count => 1 }), 404, 'not_found',
        'a pool for no reward');
refused(api('POST', '/v1/loyalty/rewards/tea/pool', body => { count => 1001 }), 400, 'invalid_field',
        'too many at once', 'count');
is($R->cmd('LLEN', $w->key('lwp:tea')), 3, '... none of them added anything');
($e) = grep { $_->{op} eq 'reward.fill' } audit();
is($JSON->decode($e->{after})->{pool}, 3, 'the fill is audited');

# claims
$res = api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea', key => 'c-1' });
is($res->{status}, 201, 'a claim') or diag $res->{body};
is($res->{json}{code}, $pool[0], '... gives the first code of the pool');
is($res->{json}{active}, 130, '... for 50 points');
is(code_get($pool[0])->{customer}, 'ann', '... assigned to the member');
$res = api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea', key => 'c-1' });
is_deeply([$res->{json}{code}, $res->{json}{replayed}], [$pool[0], JSON::PP::true], 'the same key: the same answer, replayed');
refused(api('POST', '/v1/loyalty/members/bob/claims', body => { reward => 'tea', key => 'c-1' }),
        422, 'idempotency_conflict', 'the key for another member', 'key');
refused(api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'cake', key => 'c-2' }),
        404, 'unknown_reward', 'an unknown reward', 'reward');
refused(api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'mug', key => 'c-3' }),
        409, 'insufficient_points', 'too dear', 'points');
refused(api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea' }),
        400, 'missing_field', 'no key', 'key');
api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea', key => 'c-4' });
refused(api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea', key => 'c-5' }),
        409, 'reward_out_of_stock', 'stock 2 given twice', 'reward');
api('PUT', '/v1/loyalty/rewards/tea', body => { stock => 5, per_member => 2 });
refused(api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea', key => 'c-6' }),
        409, 'reward_limit', 'per_member 2 reached', 'reward');
api('PUT', '/v1/loyalty/rewards/tea', body => { status => 'paused' });
refused(api('POST', '/v1/loyalty/members/ann/claims', body => { reward => 'tea', key => 'c-7' }),
        409, 'reward_inactive', 'a paused reward', 'reward');
is(api('GET', '/v1/loyalty/members/ann')->{json}{active}, 80, 'the refusals took no points');
ledger_sums('ann', 'claims');
($e) = grep { $_->{op} eq 'reward.claim' } audit();
is_deeply([$e->{target}, $JSON->decode($e->{before})->{active}, $JSON->decode($e->{after})->{active}],
          ['ann', 180, 130], 'a claim is audited');

########################################################### referrals

api('POST', '/v1/campaigns', body => { id => 'hello', kind => 'amount', value => 10000 });
api('PUT', '/v1/loyalty/rewards/hello', body => { cost => 1, kind => 'coupon', campaign => 'hello' });
api('POST', '/v1/loyalty/rewards/hello/pool', body => { count => 5, prefix => 'HI' });
$res = api('PATCH', '/v1/loyalty/programme', body => { referral_referee_reward => 'hello',
                                                       referral_referrer_points => 300,
                                                       referral_cap => 2, referral_code_days => 90 });
is($res->{json}{referral_cap}, 2, 'the programme takes the referral fields');
api('POST', '/v1/members', body => { id => 'ann', phone => '+66 81 000 0001', email => 'ann@shop.example' });

$res = api('POST', '/v1/loyalty/members/ann/referral-code');
is($res->{status}, 201, 'a referral code made') or diag $res->{body};
my $ref = $res->{json}{code};
like($ref, qr/^REF[0-9A-Z]{12}$/, '... REF, a body and a MAC');
is($res->{json}{new}, JSON::PP::true, '... new');
is(ctl($w, 'codes', 'check', $ref, '--prefix', 'REF', '--mac-length', 4)->{rc}, 0, '... whose MAC checks');
$res = api('POST', '/v1/loyalty/members/ann/referral-code');
is_deeply([$res->{status}, $res->{json}{code}, $res->{json}{new}], [200, $ref, JSON::PP::false],
          'asked again: the same code');
is(api('GET', '/v1/loyalty/members/ann')->{json}{referral_code}, $ref, 'the balance names it');

# a code one character off: refused without Redis (its MAC is wrong)
(my $forged = $ref) =~ s/(.)$/$1 eq '0' ? '1' : '0'/e;
$R->cmd('HSET', $w->key("rc:$forged"), 'm', 'ann', 'exp', 0);
refused(api('POST', '/v1/loyalty/referrals', body => { code => $forged, member => 'ben' }), 404,
        'referral_not_found', 'a forged code (even one Redis knows)', 'code');
$R->cmd('DEL', $w->key("rc:$forged"));

$res = api('POST', '/v1/loyalty/referrals', body => { code => lc $ref, member => 'ben', phone => '+66 81 000 0002' });
is($res->{status}, 201, 'ben paired with ann') or diag $res->{body};
is_deeply([@{ $res->{json} }{qw(referrer referee reward)}], ['ann', 'ben', 'hello'], '... as the answer says');
like($res->{json}{code}, qr/^HI/, '... with the hello coupon');
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'ben' }), 409,
        'already_referred', 'ben again', 'member');
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'ann' }), 409,
        'self_referral', 'ann herself', 'member');
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'cid', email => 'ANN@shop.example' }), 409,
        'self_referral', 'ann\'s email', 'member');
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'cid', phone => '+66810000002' }), 409,
        'referee_already_member', 'ben\'s phone', 'member');
refused(api('POST', '/v1/loyalty/referrals', body => { code => 'REF0000000000000', member => 'cid' }), 404,
        'referral_not_found', 'a code of the wrong length', 'code');
refused(api('POST', '/v1/loyalty/referrals', body => { member => 'cid' }), 400, 'missing_field', 'no code', 'code');
$R->cmd('HSET', $w->key("rc:$ref"), 'exp', 1);
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'cid' }), 409,
        'referral_expired', 'an expired code', 'code');
$R->cmd('HSET', $w->key("rc:$ref"), 'exp', 0);
is($R->cmd('EXISTS', $w->key('lm:cid')), 0, 'none of the refusals made cid a member');
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'c d' }), 400,
        'invalid_field', 'a member id with a space', 'member');
api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'dee' });
refused(api('POST', '/v1/loyalty/referrals', body => { code => $ref, member => 'eli' }), 409,
        'referral_cap_reached', 'a third referral this month (cap 2)', 'code');
($e) = grep { $_->{op} eq 'referral.pair' } audit();
is_deeply([$e->{target}, $JSON->decode($e->{after})->{referred_by}], ['ben', 'ann'], 'a pairing is audited');

# a referee's first order converts: through the storefront's purchase event
$R->cmd('XADD', $w->key('events'), '*', type => 'purchase', member => 'ben', amount => 1000, order => 'b-1');
ok(wait_until(sub { (api('GET', '/v1/loyalty/members/ann')->{json}{conversions} // 0) == 1 }, timeout => 10),
   'ben\'s first purchase converts: ann has 1 conversion');
is(api('GET', '/v1/loyalty/members/ann')->{json}{active}, 80 + 300, '... and 300 more points');

# a signup event with a referral code pairs the new customer
$R->cmd('FCALL', 'voucher_loyalty_set', 1, $w->key('lp'), 'referral_cap', 0);
$R->cmd('XADD', $w->key('events'), '*', type => 'signup', member => 'fay', email => 'fay@shop.example',
        referral_code => $ref);
ok(wait_until(sub { ($R->cmd('HGET', $w->key('lm:fay'), 'rby') // '') eq 'ann' }, timeout => 10),
   'a signup event with the code pairs fay with ann');
$R->cmd('XADD', $w->key('events'), '*', type => 'signup', member => 'gus', referral_code => $forged);
ok(wait_until(sub { $d->log =~ /referral code of member gus refused: referral_not_found/ }, timeout => 10),
   'a signup with a forged code: logged, not paired');
is($R->cmd('HGET', $w->key('lm:gus'), 'rby'), undef, '... gus has no referrer');

my @rows = @{ api('GET', '/v1/loyalty/referrals?limit=10')->{json}{items} };
is_deeply([map { "$_->{member}:$_->{referrals}:$_->{conversions}:$_->{code}" } @rows], ["ann:3:1:$ref"],
          'the report: ann referred 3 (ben, dee, fay), 1 converted');
ledger_sums($_, "referrals: $_") for qw(ann ben);

########################################################### voucherctl

# the same operations on a terminal: worker/ops is shared
sub cli { my $x = ctl($w, 'loyalty', @_); $x->{json} = eval { $JSON->decode($x->{out}) }; $x }
my $c = cli('get');
is($c->{rc}, 0, 'voucherctl loyalty get') or diag $c->{err};
is($c->{json}{every}, 100, '... the programme');
$c = cli('set', 'cap_order', 500, 'notice_days', 7);
is_deeply([$c->{rc}, @{ $c->{json} }{qw(cap_order notice_days)}], [0, 500, 7], 'voucherctl loyalty set');
$c = cli('tiers', 'base:0:100,silver:100:150,gold:2000:200', '--tier_grace_days', 30);
is_deeply([$c->{rc}, @{ $c->{json} }{qw(tiers tier_grace_days)}],
          [0, 'base:0:100,silver:100:150,gold:2000:200', 30], 'voucherctl loyalty tiers');
$c = cli('set', 'tiers', 'gold:5:100');
is($c->{rc}, 1, 'a bad programme field: exit 1');
like($c->{err}, qr/invalid_field/, '... and the same error as the API');
$c = cli('balance', 'ann');
is_deeply([$c->{rc}, @{ $c->{json} }{qw(member active tier)}], [0, 'ann', 380, 'silver'], 'voucherctl loyalty balance');
$c = cli('adjust', 'ann', 20, '--reason', 'birthday', '--key', 'bd-ann');
is_deeply([$c->{rc}, $c->{json}{active}], [0, 400], 'voucherctl loyalty adjust');
$c = cli('adjust', 'ann', -5000, '--reason', 'oops');
is($c->{rc}, 1, 'adjusting below zero: exit 1');
like($c->{err}, qr/insufficient_points/, '... insufficient_points');
$c = cli('history', 'ann', '--limit', 2);
my @lines = map { $JSON->decode($_) } grep { /\S/ } split /\n/, $c->{out};
ok(@lines > 2, 'voucherctl loyalty history: every page, JSON lines');
is_deeply([@{ $lines[0] }{qw(type reason points)}], ['adjust', 'birthday', 20], '... newest first');
$c = cli('rewards');
is_deeply([map { $JSON->decode($_)->{id} } grep { /\S/ } split /\n/, $c->{out}], [qw(hello mug tea)],
          'voucherctl loyalty rewards');
$c = cli('reward-set', 'mug', 'cost', 300);
is_deeply([$c->{rc}, $c->{json}{cost}], [0, 300], 'voucherctl loyalty reward-set');
$c = cli('reward-fill', 'hello', '--count', 2, '--prefix', 'HI');
is_deeply([$c->{rc}, $c->{json}{pool}], [0, 4], 'voucherctl loyalty reward-fill: 2 more, issued with the key');
$c = cli('claim', 'ann', 'mug', '--key', 'cli-1');
is_deeply([$c->{rc}, $c->{json}{sku}, $c->{json}{active}], [0, 'MUG-1', 100], 'voucherctl loyalty claim');
is(cli('reward', 'mug')->{json}{given}, 1, 'voucherctl loyalty reward');
$c = cli('referral-code', 'ann');
is($c->{json}{code}, $ref, 'voucherctl loyalty referral-code: the same code');
$c = cli('refer', $ref, '--member', 'hugo', '--email', 'hugo@shop.example');
is_deeply([$c->{rc}, $c->{json}{referrer}], [0, 'ann'], 'voucherctl loyalty refer');
$c = cli('refer', $ref, '--member', 'hugo');
is($c->{rc}, 1, 'hugo again: exit 1');
like($c->{err}, qr/already_referred/, '... already_referred');
$c = cli('referrals');
is($JSON->decode((split /\n/, $c->{out})[0])->{referrals}, 4, 'voucherctl loyalty referrals: the report');
my @cli = grep { $_->{who} =~ /^cli:/ } audit();
is_deeply([sort { $a cmp $b } keys %{ +{ map { $_->{op} => 1 } @cli } }],
          [qw(loyalty.adjust loyalty.set referral.pair reward.claim reward.fill reward.set)],
          'the CLI\'s changes are audited as cli:<user>');
$c = ctl($w, 'loyalty', 'frob');
is($c->{rc}, 2, 'an unknown loyalty command: usage, exit 2');
like($c->{err}, qr/voucherctl loyalty adjust ID points \[--reason V\]/, '... listing the commands');
ledger_sums('ann', 'after voucherctl');

########################################################### no key

$w->reconfigure(key_file => undef);
delete $w->{config}{key_file};
$w->reconfigure();
$d->hup;
ok(wait_until(sub { $d->log =~ /reloaded/ }, timeout => 10), 'reloaded without a key');
api('PUT', '/v1/loyalty/rewards/tea', body => { status => 'active' });
refused(api('POST', '/v1/loyalty/rewards/tea/pool', body => { count => 1 }), 409, 'key_required',
        'a pool without the MAC key');
refused(api('POST', '/v1/loyalty/members/hal/referral-code'), 409, 'key_required',
        'a referral code without the MAC key');
is($R->cmd('HGET', $w->key('lm:hal'), 'rc'), undef, '... none made');
is($R->cmd('LLEN', $w->key('lwp:tea')), 1, '... added nothing');

$d->stop;
done_testing;
