#!/usr/bin/perl
#
# voucherd and the loyalty programme on a fake clock: storefront purchase
# events earn through voucher_loyalty_earn once per order (a repeated
# event, and the same order reported under another event id, earn
# nothing more); a simulated year worked by the daemon's sweep alone
# (no other call touches the member): pending points activate, the
# member goes up a tier at once, is reviewed down after the year and its
# grace, and the points expire; the balance equals the ledger.

use strict;
use warnings;
use Test::More;
use Time::Local qw(timegm);
use VT;
use VoucherT;
use WorkerT;

worker_bin('voucherd');

my $w = worker_setup(config => { daemon => { poll_ms => 50 } });
my $r = $w->redis;
my $clock = $w->dir . '/now';
sub set_clock { WorkerT::write_text($clock, "$_[0]\n") }
sub day { timegm(0, 0, 12, $_[2], $_[1] - 1, $_[0]) }
sub fc { $r->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub member { +{ @{ $r->cmd('HGETALL', '{v}:lm:ann') } } }
sub ledger { [map { +{ @{ $_->[1] } } } @{ $r->cmd('XRANGE', '{v}:lh:ann', '-', '+') }] }
sub ledger_sums {
    my $name = shift;
    my $h = member();
    my ($sum, $ok) = (0, 1);
    for my $e (@{ ledger() }) {
        $sum += $e->{points};
        $ok &&= $e->{active} + $e->{pending} == $sum && $e->{active} >= 0;
    }
    ok($ok && $sum == ($h->{act} // 0) + ($h->{pend} // 0),
       "$name: the balance equals the ledger ($sum)");
}

is(fc('voucher_loyalty_set', '{v}:lp', every => 2500, points => 1, pending_days => 14,
      expiry_months => 12, expiry_round => 'month',
      tiers => 'member:0:100,gold:100:200', tier_grace_days => 30), 'OK', 'a programme');

set_clock(day(2025, 1, 10));
my $d = WorkerT::Daemon->start($w, env => { VOUCHERD_FAKE_NOW => "\@$clock" });

$r->cmd('XADD', '{v}:events', '*', type => 'purchase', member => 'ann',
        amount => 250000, order => 'o-1', ts => day(2025, 1, 10));
ok(VT::wait_until(sub { (member()->{pend} // 0) == 100 }, timeout => 5),
   'a purchase event earns 100 pending points') or diag $d->log;
is(member()->{tier}, 'gold', '... and gold at once');
$r->cmd('XADD', '{v}:events', '*', type => 'purchase', member => 'ann',
        amount => 250000, order => 'o-1', ts => day(2025, 1, 10));
$r->cmd('XADD', '{v}:events', '*', type => 'purchase', member => 'ann',
        amount => 100000, id => 'shop-77', ts => day(2025, 1, 10));
ok(VT::wait_until(sub { $d->log =~ /order shop-77/ }, timeout => 5),
   'the next event is handled (its id is the order)');
is(member()->{pend}, 100 + 80, 'the same order again earns nothing; shop-77 earns 40 x2');
is(fc('voucher_loyalty_earn', '{v}:lm:ann', 'o-1', 250000, 0)->[0], 'already_earned',
   'the order is earned, whichever path reports it');

# 14 days later the daemon activates them (nothing else touches ann)
set_clock(day(2025, 1, 24) + 60);
ok(VT::wait_until(sub { (member()->{act} // 0) == 180 }, timeout => 5),
   'voucherd activates the pending points on its clock') or diag explain member();
like($d->log, qr/loyalty: 1 member\(s\) had points or a tier due/, 'and logs it');

# 2026: gold earned in 2025 holds; reviewed at 2027-01-31, one level down
set_clock(day(2026, 2, 2));
ok(VT::wait_until(sub { (member()->{act} // 1) == 0 }, timeout => 5),
   'the points expire at the end of the month 12 months on (31 Jan 2026)') or diag explain member();
is(member()->{tier}, 'gold', 'still gold through 2026');
set_clock(day(2027, 2, 1));
ok(VT::wait_until(sub { (member()->{tier} // '') eq 'member' }, timeout => 5),
   'after 2026 and its grace: down to member') or diag explain member();
is(join(' ', map { $_->{type} } @{ ledger() }),
   'earn tier_upgraded earn activate expire tier_downgraded', 'the year in the ledger');
ledger_sums('a simulated year');
is($r->cmd('ZSCORE', '{v}:lz', 'ann'), undef, 'nothing due any more: out of the index');

$d->stop;
done_testing;
