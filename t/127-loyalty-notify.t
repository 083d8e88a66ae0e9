#!/usr/bin/perl
#
# Automations triggered by the loyalty programme's notices, on voucherd's
# fake clock, delivered to a webhook sink: tier_upgraded (on the order
# that crosses), reward_redeemed (a claim), referral_converted (the
# referee's first purchase), points_expiring (notice_days before the
# points expire) and tier_will_drop (tier_notice_days before the review),
# each with the template fields {{points}} {{tier}}
# {{points_to_next_tier}} {{expiring_points}} {{expiry_date}}
# {{referral_code}} filled from the notice and the member's balance; a
# scheduled message reads the balance; an unknown field is refused when
# the automation is set.

use strict;
use warnings;
use Test::More;
use JSON::PP qw(encode_json decode_json);
use Time::Local qw(timegm);
use VT;
use VoucherT;
use WorkerT;
use SinkT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $hook = SinkT::HTTP->start;
my $tmp = VT::tmp_root();
write_text("$tmp/hook.secret", "hook-secret-123\n");
my $w = worker_setup(config => {
    log      => { level => 'info' },
    daemon   => { poll_ms => 50 },
    delivery => { attempts => 3, backoff_ms => 200, backoff_max_ms => 1000, lease_s => 5 },
    channels => { hook => { type => 'webhook', url => $hook->url('/hook'),
                            secret_file => "$tmp/hook.secret", timeout_ms => 2000 } },
});
my $r = $w->redis;
my $dir = $w->dir;
my $clock = "$dir/now";
sub set_clock { write_text($clock, "$_[0]\n") }
sub day { timegm(0, 0, 12, $_[2], $_[1] - 1, $_[0]) }
my %fake = (env => { VOUCHERD_FAKE_NOW => "\@$clock" });
sub fc { $r->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub event { my ($type, $m, %f) = @_; $r->cmd('XADD', '{v}:events', '*', type => $type, member => $m, %f) }

set_clock(day(2025, 3, 10));

# the members, the programme, a reward, a shared code the messages carry
write_text("$dir/m.csv", "id,name,email\nann,Ann,ann\@example.com\nbob,Bob,bob\@example.com\n");
is(ctl($w, qw(members import), "$dir/m.csv")->{rc}, 0, 'members imported');
ctl($w, qw(campaign set thanks kind amount value 100));
$r->cmd('FCALL', 'voucher_code_set', 1, '{v}:c:THANKYOU', 'campaign', 'thanks');
fc('voucher_loyalty_set', '{v}:lp', every => 100, points => 1, notify => 'yes',
   expiry_months => 6, expiry_round => 'month', notice_days => 14,
   tiers => 'member:0:100,gold:500:100', tier_grace_days => 30, tier_notice_days => 7,
   referral_referrer_points => 50);
fc('voucher_reward_set', '{v}:lw:mug', cost => 100, kind => 'item', sku => 'MUG-1', name => 'A mug');

sub auto_set {
    my ($camp, $def) = @_;
    ctl($w, qw(campaign set), $camp, qw(kind amount value 100)) unless $camp eq 'thanks';
    write_text("$dir/$camp.json", encode_json($def));
    my $res = ctl($w, \%fake, qw(auto set), $camp, "$dir/$camp.json");
    is($res->{rc}, 0, "auto set $camp") or diag $res->{err};
}
my %msg = (
    up      => [tier_upgraded => 'Welcome to {{tier}}, {{name}}: {{points}} points, {{points_to_next_tier}} to go'],
    claimed => [reward_redeemed => 'Enjoy it: {{points}} points left'],
    conv    => [referral_converted => 'Your friend joined with {{referral_code}}: {{points}} points now'],
    expiry  => [points_expiring => '{{expiring_points}} of your {{points}} points expire on {{expiry_date}}'],
    drop    => [tier_will_drop => 'Your {{tier}} ends {{expiry_date}}: {{points_to_next_tier}} more points keep it'],
);
for my $c (sort keys %msg) {
    auto_set($c => { trigger => { event => $msg{$c}[0] }, issue => 'shared', code => 'THANKYOU',
                     channel => 'hook', message => $msg{$c}[1] });
}

# a template field that does not exist is refused when set
write_text("$dir/bad.json", encode_json({ trigger => { event => 'tier_upgraded' }, issue => 'shared',
                                          code => 'THANKYOU', channel => 'hook',
                                          message => '{{points}} and {{pints}}' }));
my $bad = ctl($w, \%fake, qw(auto set thanks), "$dir/bad.json");
is($bad->{rc}, 1, 'an unknown field: refused');
like($bad->{err}, qr/unknown field "pints" \(known: (?=.*\bpoints\b)(?=.*\btier\b)(?=.*\bpoints_to_next_tier\b)(?=.*\bexpiring_points\b)(?=.*\bexpiry_date\b)(?=.*\breferral_code\b)/,
     '... naming the loyalty fields among the known ones');
write_text("$dir/bad.json", encode_json({ trigger => { event => 'tier_will_go' }, issue => 'shared',
                                          code => 'THANKYOU', channel => 'hook', message => 'x' }));
like(ctl($w, \%fake, qw(auto set thanks), "$dir/bad.json")->{err}, qr/trigger\.event: expected .*tier_will_drop/,
     'an unknown trigger: refused');

my $d = WorkerT::Daemon->start($w, %fake);

# what the sink received, by automation (and member)
sub received {
    my ($camp, $member) = @_;
    return map { $_->{message} }
           grep { $_->{campaign} eq $camp && (!$member || $_->{member}{id} eq $member) }
           map { decode_json($_->{body}) } grep { $_->{status} == 200 } $hook->requests;
}
sub wait_msg {
    my ($camp, $n, $name) = @_;
    ok(VT::wait_until(sub { received($camp, 'ann') >= $n }, timeout => 20), "$name: delivered")
        or diag $d->log;
    return (received($camp, 'ann'))[$n - 1];
}

# --- tier_upgraded: the order that crosses 500 --------------------------------------
event('purchase', 'ann', amount => 60000, order => 'o-1', ts => day(2025, 3, 10));
is(wait_msg('up', 1, 'tier_upgraded'), 'Welcome to gold, Ann: 600 points, 0 to go',
   'the receiver got the tier, the points and what is left to the next tier');

# --- reward_redeemed ---------------------------------------------------------------------
is(fc('voucher_reward_claim', '{v}:lm:ann', 'mug', 'claim-1', day(2025, 3, 10))->[0], 'ok', 'ann claims a mug');
is(wait_msg('claimed', 1, 'reward_redeemed'), 'Enjoy it: 500 points left', 'reward_redeemed: the points left');

# --- referral_converted: bob signs up with ann's code, then buys ---------------------
fc('voucher_referral_code', '{v}:lm:ann', 'REFANN', day(2025, 3, 10));
$w->reconfigure(key_file => undef);
delete $w->{config}{key_file};
$w->reconfigure();
$d->hup;
ok(VT::wait_until(sub { $d->log =~ /reloaded/ }, timeout => 10), 'reloaded (no MAC key: the library decides)');
set_clock(day(2025, 3, 12));
event('signup', 'bob', name => 'Bob', referral_code => 'REFANN', ts => day(2025, 3, 11));
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:lm:bob', 'rby') // '') eq 'ann' }, timeout => 10),
   'bob is paired with ann');
event('purchase', 'bob', amount => 1000, order => 'b-1', ts => day(2025, 3, 12));
is(wait_msg('conv', 1, 'referral_converted'), 'Your friend joined with REFANN: 550 points now',
   'referral_converted: the code and the referrer\'s points');

# --- points_expiring: 14 days before the end of September --------------------------------
set_clock(day(2025, 9, 20));
is(wait_msg('expiry', 1, 'points_expiring'), '550 of your 550 points expire on 2025-09-30',
   'points_expiring: how many, of how many, on which day');
ok(VT::wait_until(sub { received('expiry', 'bob') >= 1 }, timeout => 20), 'bob\'s too');
is((received('expiry', 'bob'))[0], '10 of your 10 points expire on 2025-09-30', '... with his own figures');
is(received('expiry'), 2, '... once each');

# --- tier_will_drop: 2026 earned nothing; the review is 30 days after it ends, ---------
# --- the notice 7 days before the review ---------------------------------------------------
set_clock(day(2027, 1, 24) + 3600);
is(wait_msg('drop', 1, 'tier_will_drop'), 'Your gold ends 2027-01-30: 500 more points keep it',
   'tier_will_drop: the tier, the day it drops, what keeps it');
set_clock(day(2027, 2, 1));
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:lm:ann', 'tier') // '') eq 'member' }, timeout => 10),
   'and at the review ann is down to member');
is(received('up'), 1, 'no second upgrade message');

# --- a scheduled message reads the balance -------------------------------------------------
auto_set(weekly => { schedule => 'daily 13:00', segment => 'all', issue => 'shared', code => 'THANKYOU',
                     channel => 'hook', message => '{{name}}: {{points}} points, {{tier}}, {{referral_code}}' });
$d->hup;
ok(VT::wait_until(sub { $d->log =~ /reloaded/ }, timeout => 10), 'reloaded');
set_clock(day(2027, 2, 1) + 3600 + 60);
ok(VT::wait_until(sub { received('weekly') >= 2 }, timeout => 20), 'the scheduled run is delivered') or diag $d->log;
is_deeply([sort(received('weekly'))], ['Ann: 0 points, member, REFANN', 'Bob: 0 points, member, '],
          'each member\'s own balance, tier and referral code');

$d->stop;
done_testing;
