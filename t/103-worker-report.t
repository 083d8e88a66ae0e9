#!/usr/bin/perl
#
# voucherctl report: issued, delivered, failed, redemptions net of
# rollbacks (whole and partial gift-card ones), discount, revenue, ROI and
# who received and who came back, from the delivery log {v}:dl:<campaign>
# and the audit trail {v}:log; the same report through the admin API.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;

worker_bin('voucherctl');

my $w = worker_setup();
my $r = $w->redis;
my $dir = $w->dir;

sub fcall { $r->cmd('FCALL', @_) }
sub redeem {
    my ($code, $cust, $amount) = @_;
    my $x = fcall('voucher_redeem', 1, "{v}:c:$code", $cust, $amount, 'THB', "o-$code-$cust", '', 0);
    die "redeem $code: " . (ref $x eq 'ARRAY' ? $x->[0] : "$x") unless ref $x eq 'ARRAY' && $x->[0] eq 'ok';
    my $p = VT::ok_pairs($x);
    my %h = @$p[1 .. $#$p];
    return $h{redemption_id};
}
sub delivery {
    my ($camp, %f) = @_;
    $r->cmd('XADD', "{v}:dl:$camp", '*', map { ($_, $f{$_} // '') } qw(run member status channel code attempt error));
}

ctl($w, qw(campaign set promo kind amount value 1000 name), 'Spring promo');
ctl($w, qw(campaign set other kind amount value 5));
ctl($w, qw(campaign set gift kind gift_card value 10000));

write_text("$dir/codes.csv", "code,customer\nP-ALICE,alice\nP-BOB,bob\nP-CAROL,carol\nP-DAVE,dave\nSHARED,\n");
is(ctl($w, qw(codes import), "$dir/codes.csv", qw(--campaign promo))->{rc}, 0, 'codes imported');
ctl($w, qw(codes issue promo --count 5 --quiet));
write_text("$dir/o.csv", "code\nOTHER-1\n");
ctl($w, qw(codes import), "$dir/o.csv", qw(--campaign other));
write_text("$dir/g.csv", "code,customer\nGIFT-1,erin\n");
ctl($w, qw(codes import), "$dir/g.csv", qw(--campaign gift));

# deliveries: alice and bob sent, carol failed then sent, dave dead
delivery('promo', run => 1, member => 'alice', status => 'sent', channel => 'sms', code => 'PALICE', attempt => 1);
delivery('promo', run => 1, member => 'bob', status => 'sent', channel => 'line', code => 'PBOB', attempt => 1);
delivery('promo', run => 1, member => 'carol', status => 'failed', channel => 'sms', code => 'PCAROL',
         attempt => 1, error => 'HTTP 503');
delivery('promo', run => 1, member => 'carol', status => 'sent', channel => 'sms', code => 'PCAROL', attempt => 2);
delivery('promo', run => 1, member => 'dave', status => 'failed', channel => 'email', code => 'PDAVE',
         attempt => 1, error => 'smtp: connection refused');
delivery('promo', run => 1, member => 'dave', status => 'dead', channel => 'email', code => 'PDAVE',
         attempt => 4, error => 'smtp: connection refused');
delivery('other', run => 1, member => 'zoe', status => 'sent', channel => 'sms', code => 'OTHER1', attempt => 1);

# redemptions: alice 50000, bob 30000 then rolled back, a walk-in on the
# shared code, another campaign, a gift card partly rolled back
redeem('PALICE', 'alice', 50000);
my $rid = redeem('PBOB', 'bob', 30000);
is(fcall('voucher_rollback', 1, '{v}:log', $rid, '', '')->[0], 'ok', 'bob rolled back');
redeem('SHARED', 'walkin', 20000);
redeem('OTHER1', 'zoe', 1000);
my $gid = redeem('GIFT1', 'erin', 4000);
is(fcall('voucher_rollback', 1, '{v}:log', $gid, 1500, '')->[0], 'ok', 'a partial gift rollback');

my $res = ctl($w, qw(report promo --format json));
is($res->{rc}, 0, 'report json') or diag $res->{err};
my $j = decode_json($res->{out});
is_deeply({ map { $_ => $j->{$_} } qw(campaign name issued codes_used delivered failed redemptions
                                       rollbacks came_back discount_given revenue) },
          { campaign => 'promo', name => 'Spring promo', issued => 10, codes_used => 2,
            delivered => 3, failed => 1, redemptions => 2, rollbacks => 1, came_back => 1,
            discount_given => 2000, revenue => 70000 },
          'the figures: bob rolled back does not count');
is($j->{redemption_rate}, '20.0%', 'redemption rate: 2 of 10 codes');
is($j->{came_back_rate}, '33.3%', 'came back: 1 of 3 delivered');
is($j->{roi}, '34.00', 'ROI (70000 - 2000) / 2000');

my %who = map { $_->{member} => $_ } @{ $j->{recipients} };
is_deeply([sort keys %who], [qw(alice bob carol dave walkin)], 'recipients and redeemers');
is_deeply([@{ $who{alice} }{qw(status channel code deliveries redemptions discount revenue)}],
          ['sent', 'sms', 'PALICE', 1, 1, 1000, 50000], 'alice received and redeemed');
is($who{bob}{redemptions}, 0, 'bob redeemed, then rolled back: 0');
is_deeply([@{ $who{carol} }{qw(status deliveries)}], ['sent', 1], 'carol sent on the 2nd attempt');
ok(!exists $who{carol}{error}, '... the earlier error is gone');
is_deeply([@{ $who{dave} }{qw(status error deliveries)}], ['dead', 'smtp: connection refused', 0],
          'dave never reached, with the reason');
is_deeply([@{ $who{walkin} }{qw(status redemptions revenue)}], ['not_delivered', 1, 20000],
          'a redeemer who was not sent anything');
like($who{alice}{last_sent_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/,
     'when it was sent, in the campaign\'s zone (none: UTC)');
is_deeply($who{alice}{codes}, ['PALICE'], 'every code sent to alice');
is_deeply([map { [@$_{qw(run queued sent failed dead)}] } @{ $j->{runs} }], [[1, 0, 3, 2, 1]],
          'the runs: run 1, three sent, two failed attempts, one dead');

$res = ctl($w, qw(report gift --format json));
$j = decode_json($res->{out});
is_deeply([@$j{qw(redemptions discount_given revenue rollbacks)}], [1, 2500, 4000, 1],
          'a partial gift-card rollback reduces the discount, the redemption stays');

$res = ctl($w, qw(report promo --format csv));
my @l = split /\n/, $res->{out};
is($l[0], 'member,status,channel,code,deliveries,last_sent_at,redemptions,discount,revenue,error,codes',
   'csv header');
like($res->{out}, qr/^dave,dead,email,PDAVE,0,,0,0,0,smtp: connection refused,$/m, 'csv row');

$res = ctl($w, qw(report promo));
like($res->{out}, qr/^campaign\s+promo \(Spring promo\)$/m, 'table: the campaign');
like($res->{out}, qr/^delivered\s+3 members, 1 failed$/m, 'table: delivered');
like($res->{out}, qr/^ROI\s+34\.00/m, 'table: ROI');
like($res->{out}, qr/^alice\s+sent\s+sms\s+PALICE\s/m, 'table: a recipient');

$res = ctl($w, qw(report nosuch));
is($res->{rc}, 1, 'an unknown campaign');
like($res->{err}, qr/no such campaign "nosuch"/, '... named');
is(ctl($w, qw(report promo --format pdf))->{rc}, 2, 'an unknown format');
$res = ctl($w, qw(report promo --from 2027-13-01));
is($res->{rc}, 2, 'a bad --from: a usage error');
like($res->{err}, qr/invalid_field from: expected a day, YYYY-MM-DD/, '... said so');
$j = decode_json(ctl($w, qw(report promo --format json --to 1999-12-31))->{out});
is_deeply([@$j{qw(delivered redemptions to)}, scalar @{ $j->{runs} }], [0, 0, '2000-01-01T00:00:00+00:00', 0],
          '--to before anything happened: nothing delivered or redeemed, the end named');

# days: the streams' entries summed by day of the campaign's zone
my %days;
for my $d (@{ decode_json(ctl($w, qw(report promo --format json))->{out})->{days} }) {
    $days{$_} += $d->{$_} for qw(redemptions discount revenue sent);
}
is_deeply(\%days, { redemptions => 2, discount => 2000, revenue => 70000, sent => 3 },
          'days: the redemptions net of rollbacks and the deliveries sent, as the totals');
ctl($w, qw(campaign set daily kind amount value 100 tz_offset +07:00));
use Time::Local qw(timegm);
my $late = timegm(0, 30, 16, 6, 11, 2026);    # 23:30 on the 6th at +07:00
my $early = timegm(0, 30, 23, 6, 11, 2026);   # 06:30 on the 7th at +07:00
$r->cmd('XADD', '{v}:dl:daily', '*', run => 1, member => 'm1', status => 'sent', channel => 'sms',
        code => 'D1', attempt => 1, at => $late);
$r->cmd('XADD', '{v}:dl:daily', '*', run => 1, member => 'm2', status => 'failed', channel => 'sms',
        code => 'D2', attempt => 1, at => $late);
$r->cmd('XADD', '{v}:log', '*', type => 'redeem', code => 'D1', campaign => 'daily', customer => 'm1',
        amount => 30000, currency => 'THB', discount => 100, at => $early);
$j = decode_json(ctl($w, qw(report daily --format json))->{out});
is_deeply($j->{days}, [
    { day => '2026-12-06', redemptions => 0, discount => 0, revenue => 0, sent => 1 },
    { day => '2026-12-07', redemptions => 1, discount => 100, revenue => 30000, sent => 0 } ],
    'days in the campaign\'s zone: 16:30 and 23:30 UTC fall on two days at +07:00');
$j = decode_json(ctl($w, qw(report daily --format json --from 2026-12-07))->{out});
is_deeply([map { $_->{day} } @{ $j->{days} }], ['2026-12-07'], '... from keeps the days from then');

# a campaign without anything yet
ctl($w, qw(campaign set empty kind amount value 1));
$j = decode_json(ctl($w, qw(report empty --format json))->{out});
is_deeply([@$j{qw(issued delivered redemptions redemption_rate roi)}], [0, 0, 0, '-', '-'],
          'an empty campaign: zeros, no rates');

# the loyalty report: points over the members' records, members per tier
sub lfcall { my $x = fcall(@_); die "$_[0]: $x\n" unless ref $x eq 'ARRAY' || $x eq 'OK'; $x }
lfcall('voucher_loyalty_set', 1, '{v}:lp', qw(every 100 points 1 expiry_months 1),
       tiers => 'base:0:100,silver:100:100,gold:1000:100');
my $long_ago = timegm(0, 0, 12, 1, 0, 2024);
lfcall('voucher_loyalty_earn', 1, '{v}:lm:amy', 'lo-1', 150000, 0);      # 1500: gold
lfcall('voucher_loyalty_earn', 1, '{v}:lm:ben', 'lo-2', 20000, 0);       # 200: silver
lfcall('voucher_loyalty_spend', 1, '{v}:lm:ben', 50, 'sp-1');
lfcall('voucher_loyalty_earn', 1, '{v}:lm:cat', 'lo-3', 3000, 0, $long_ago);   # 30, expired now
lfcall('voucher_loyalty_balance', 1, '{v}:lm:cat');
$res = ctl($w, qw(loyalty report));
is($res->{rc}, 0, 'voucherctl loyalty report') or diag $res->{err};
my $lr = decode_json($res->{out});
is_deeply($lr, { members => 3, points_earned => 1730, points_spent => 50, points_expired => 30,
                 points_active => 1650, points_pending => 0,
                 tiers => [ { tier => 'base', members => 1 }, { tier => 'silver', members => 1 },
                            { tier => 'gold', members => 1 } ] },
          'loyalty report: earned, spent, expired, active; one member in each tier, the programme\'s order');
is(ctl($w, qw(loyalty report --limit 5))->{rc}, 2, '... takes no options');

# the same report through the admin API: one implementation
SKIP: {
    skip 'voucherd not built', 8 unless -x WorkerT::bin_dir() . '/voucherd';
    my $secret = 'report-secret-0123456789';
    write_text("$dir/tokens", "ops $secret\n");
    my $port = VT::free_port();
    $w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => "$dir/tokens" });
    my $d = WorkerT::Daemon->start($w);
    my $h = { Authorization => "Bearer $secret" };
    my $api = VT::http($port, 'GET', '/v1/campaigns/promo/report', headers => $h);
    is($api->{status}, 200, 'GET /v1/campaigns/promo/report');
    is_deeply(decode_json($api->{body}), decode_json(ctl($w, qw(report promo --format json))->{out}),
              '... the report voucherctl prints');
    $api = VT::http($port, 'GET', '/v1/campaigns/promo/report?from=2000-01-01&to=2099-12-31', headers => $h);
    is_deeply(decode_json($api->{body}),
              decode_json(ctl($w, qw(report promo --format json --from 2000-01-01 --to 2099-12-31))->{out}),
              '... with from and to too');
    $api = VT::http($port, 'GET', '/v1/campaigns/promo/report?from=yesterday', headers => $h);
    is_deeply([$api->{status}, decode_json($api->{body})->{reason}], [400, 'invalid_field'],
              '... a bad from: 400 invalid_field');
    $api = VT::http($port, 'GET', '/v1/loyalty/report', headers => $h);
    is_deeply([$api->{status}, decode_json($api->{body})], [200, $lr], 'GET /v1/loyalty/report: the same');
    $api = VT::http($port, 'GET', '/v1/loyalty/report?tier=gold', headers => $h);
    is_deeply([$api->{status}, decode_json($api->{body})->{reason}], [400, 'unknown_field'],
              '... an unknown query argument: 400 unknown_field');
    $api = VT::http($port, 'GET', '/v1/campaigns/nosuch/report', headers => $h);
    is($api->{status}, 404, '... an unknown campaign: 404');
    is(decode_json($api->{body})->{reason}, 'not_found', '... not_found');
    $d->stop;
}

$r->stop;
done_testing;
