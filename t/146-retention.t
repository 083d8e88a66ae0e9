# Trail retention (trail_retention of the namespace's settings), run by
# voucherd: the audit trail, the delivery logs and the records of finished
# runs lose what is older than the retention, and nothing a rollback, a
# confirm or a report still needs: a held reservation keeps its entry (and
# every later one) however old, the reports give the same figures after
# (what went was archived first), a run with a delivery still queued keeps
# its records.  With no retention nothing goes.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use WorkerT;

worker_bin('voucherd');
my $w = worker_setup(config => { daemon => { poll_ms => 50, retention_ms => 200 } });
my $r = $w->redis;

sub fcall { my ($fn, $key, @a) = @_; $r->cmd('FCALL', $fn, 1, $key, @a) }
sub redeem {
    my ($code, $cust, $amount) = @_;
    my $x = fcall('voucher_redeem', "{v}:c:$code", $cust, $amount, '', '', '', 0);
    die "redeem $code: " . (ref $x eq 'ARRAY' ? $x->[0] : $x) unless ref $x eq 'ARRAY' && $x->[0] eq 'ok';
    return (grep { /^\d+-\d+$/ } @$x)[0];
}
sub report {
    my ($camp, @opt) = @_;
    my $res = ctl($w, 'report', $camp, '--format', 'json', @opt);
    die "report $camp: $res->{err}" if $res->{rc} != 0;
    return decode_json($res->{out});
}
sub xlen { $r->cmd('XLEN', $_[0]) // 0 }
sub has_entry { my $e = $r->cmd('XRANGE', '{v}:log', $_[0], $_[0]); ref $e && @$e == 1 }

campaign($r, 'ret', kind => 'amount', value => 100);
campaign($r, 'gc', kind => 'gift_card', value => 1000);
code($r, $_, campaign => 'ret') for qw(A1 A2 A3 A4);
code($r, 'G1', campaign => 'gc');

# the old part of the trail: a redemption, one rolled back, a gift card
# rolled back in part
my $r1 = redeem('A1', 'c1', 1000);
my $r2 = redeem('A2', 'c2', 2000);
is(fcall('voucher_rollback', '{v}:log', $r2, '', '')->[0], 'ok', 'a rollback');
# (a credit that ends: the redemption takes from it first and keeps
# which lots it took, for a refund)
is(fcall('voucher_balance', '{v}:c:G1', 'credit', 500, '', 'ends', '+30', '')->[0], 'ok',
   'an ending credit on the gift card');
my $r3 = redeem('G1', 'c3', 300);
is(fcall('voucher_rollback', '{v}:log', $r3, 100, '')->[0], 'ok', 'a partial gift-card rollback');
is($r->cmd('EXISTS', "{v}:gs:$r3"), 1, '... the lots it took still kept for the rest');

# deliveries: run 100 finished (one sent, one dead), run 200 still queued
my $now = $r->cmd('TIME');
my $ms = $now->[0] * 1000 + int($now->[1] / 1000);
fcall('voucher_run_add', '{v}:a:ret', '100', $ms, 'email', 'shared', 'A1', '', '',
      'always', $now->[0], 0, 'm1', 'm2');
fcall('voucher_run_add', '{v}:a:ret', '200', $ms + 3600_000, 'email', 'shared', 'A1',
      '', '', 'always', $now->[0], 0, 'm3');
my $claimed = fcall('voucher_delivery_claim', '{v}:queue', $ms + 1, 60000, 'test', 10);
is(scalar @$claimed, 2, "run 100's two deliveries claimed");
for my $c (@$claimed) {
    my $how = $c->[0] =~ /m1$/ ? 'sent' : 'dead';
    is(fcall('voucher_delivery_done', '{v}:queue', $c->[0], 'test', $how, 0,
             $how eq 'dead' ? 'no such mailbox' : ''), 1, "delivery $c->[0]: $how");
}

# a campaign at +07:00 with entries on two of its days: 23:30 on the 6th
# (16:30 UTC) and 00:30 on the 7th (17:30 UTC), by the daemon's clock
# ("at"), which the report and the archive both go by
campaign($r, 'tz7', kind => 'amount', value => 100, tz_offset => '+07:00');
use Time::Local qw(timegm);
my $late = timegm(0, 30, 16, 6, 11, 2026);
my $early = $late + 3600;
my @tz7 = map {
    $r->cmd('XADD', '{v}:log', '*', type => 'redeem', code => "T$_->[0]",
            campaign => 'tz7', customer => "t$_->[0]", order_id => '',
            amount => $_->[1], currency => 'THB', discount => 100,
            balance => '', idem => '', ref => '', at => $_->[2])
} [1, 30000, $late], [2, 5000, $early], [3, 7000, $early];
$r->cmd('XADD', '{v}:dl:tz7', '*', run => 1, member => 't1', status => 'sent',
        channel => 'sms', code => 'T1', attempt => 1, at => $late);
$r->cmd('XADD', '{v}:dl:tz7', '*', run => 1, member => 't2', status => 'sent',
        channel => 'sms', code => 'T2', attempt => 1, at => $early);
my @tz7_days = (
    { day => '2026-12-06', redemptions => 1, discount => 100, revenue => 30000, sent => 1 },
    { day => '2026-12-07', redemptions => 2, discount => 200, revenue => 12000, sent => 1 });
is_deeply(report('tz7')->{days}, \@tz7_days,
          'campaign tz7: 23:30 and 00:30 at +07:00 on two days') or diag explain report('tz7');

# a reservation held long, then more trail after it
my $h = fcall('voucher_reserve', '{v}:c:A3', 600_000, 'c4', 500, '', 'o4', '', 0);
my ($hid) = grep { /^\d+-\d+$/ } @$h;
ok($hid, "a reservation held for 10 minutes ($hid)");
my $r4 = redeem('A4', 'c1', 700);

my %before = (ret => report('ret'), gc => report('gc'), tz7 => report('tz7'),
              tz7_7th => report('tz7', '--from', '2026-12-07'));
is_deeply([map { $_->{day} } @{ $before{tz7_7th}{days} }], ['2026-12-07'],
          '... from the 7th: that day only');
my $len0 = xlen('{v}:log');

# no retention: voucherd removes nothing
my $d = WorkerT::Daemon->start($w);
sleep 0.8;
is(xlen('{v}:log'), $len0, 'without trail_retention the trail keeps everything');
is(xlen('{v}:dl:ret'), 5, '... and so does the delivery log');

# a retention of 2 s: the old part goes, what the hold pins stays
my $set = ctl($w, 'settings', 'set', 'trail_retention', 2);
is($set->{rc}, 0, 'voucherctl settings set trail_retention 2') or diag $set->{err};
is($r->cmd('HGET', '{v}:cfg', 'trail_retention'), 2, '... in the settings');
ok(wait_until(sub { !has_entry($r1) }, timeout => 5), 'voucherd trimmed the trail');
ok(!has_entry($_), "$_ is gone") for $r2, $r3;
ok(has_entry($hid), 'the held reservation keeps its entry, older than the retention');
ok(has_entry($r4), 'and the entries after it');
is($r->cmd('EXISTS', "{v}:rb:$r2", "{v}:rb:$r3"), 0, 'the rollback records went with their entries');
is($r->cmd('EXISTS', "{v}:gs:$r3"), 0, '... and the lots the gift card\'s redemption took');
is_deeply(report('ret'), $before{ret}, 'campaign ret: the same report after the trim');
is_deeply(report('gc'), $before{gc}, 'campaign gc (a gift card rolled back in part): the same report');
ok(!has_entry($_), "tz7's $_ is gone") for @tz7;
ok(wait_until(sub { xlen('{v}:dl:tz7') == 0 }, timeout => 5), "tz7's delivery log is trimmed");
is($r->cmd('HGET', '{v}:ar:tz7', 'day:2026-12-07:r'), 2, "the archive keeps tz7's redemptions by its days");
is_deeply(report('tz7'), $before{tz7}, 'campaign tz7: the same report after the trim');
is_deeply(report('tz7')->{days}, \@tz7_days, '... the same days, each entry on its local day');
is_deeply(report('tz7', '--from', '2026-12-07')->{days}, $before{tz7_7th}{days},
          '... and from the 7th, the archived 6th stays out of the days');

is(xlen('{v}:dl:ret'), 0, 'the delivery log is trimmed');
is($r->cmd('EXISTS', '{v}:d:ret:100'), 0, "run 100's records (all done) are gone");
is($r->cmd('EXISTS', '{v}:d:ret:200'), 1, "run 200's (a delivery still queued) stay");

# what the trim kept does its work
my $c = fcall('voucher_confirm', '{v}:log', $hid, '');
is($c->[0], 'ok', 'the held reservation is confirmed');
my $rb = fcall('voucher_rollback', '{v}:log', $r1, '', '');
is($rb->[0], 'redemption_not_found', 'a redemption past the retention cannot be rolled back');

# once confirmed, the hold no longer pins: the rest goes when it is old
%before = (ret => report('ret'), gc => report('gc'));
ok(wait_until(sub { xlen('{v}:log') == 0 }, timeout => 6),
   'after the confirm, the rest of the trail goes once older than the retention');
is_deeply(report('ret'), $before{ret}, 'the report is still the same');
is($before{ret}{redemptions}, 3, '... 3 redemptions net (A1, A3 confirmed, A4)') or diag explain $before{ret};

like($d->log, qr/retention: \d+ entries and runs older than the retention archived and removed/,
     'voucherd logs what it removed');
$d->stop;

# bad input changes nothing
my $bad = fcall('voucher_trail_trim', '{v}:log', 0);
like(ref $bad ? $bad->message : $bad, qr/bad_args/, 'voucher_trail_trim with max 0: bad_args');
$bad = fcall('voucher_dlog_trim', '{v}:log', 10);
like(ref $bad ? $bad->message : $bad, qr/bad_key/, 'voucher_dlog_trim of another key: bad_key');

done_testing;
