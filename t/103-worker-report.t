#!/usr/bin/perl
#
# voucherctl report: issued, delivered, failed, redemptions net of
# rollbacks (whole and partial gift-card ones), discount, revenue, ROI and
# who received and who came back, from the delivery log {v}:dl:<campaign>
# and the audit trail {v}:log.

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

# a campaign without anything yet
ctl($w, qw(campaign set empty kind amount value 1));
$j = decode_json(ctl($w, qw(report empty --format json))->{out});
is_deeply([@$j{qw(issued delivered redemptions redemption_rate roi)}], [0, 0, 0, '-', '-'],
          'an empty campaign: zeros, no rates');

$r->stop;
done_testing;
