#!/usr/bin/perl
#
# Referrals (redis/lib/referrals.lua): a member's referral code (kept while
# valid, made again once expired); a new customer paired with its referrer
# once, the referee's coupon at once from a reward's pool; the referrer's
# points and coupon when the referee's first order is confirmed (an earn,
# or a gate reservation's confirm), once; the fraud cases, each refused
# with its reason and changing nothing: self-referral by id, phone or email
# (any case, any punctuation), a referee already a member (a ledger,
# purchases, a phone or email of another member), a second pairing, an
# unknown or expired code, the cap per referrer per period, the reward out
# of stock; 40 concurrent pairings of one referee give one, and 30 of a
# cap-5 referrer give 5; the report; the ledger sums.

use strict;
use warnings;
use Test::More;
use POSIX ();
use VT;
use VoucherT;

my $r = VT::Redis->start;
$r->load_functions;

sub fc { $r->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub h { my $x = shift; ref $x eq 'ARRAY' ? +{ _ => $x->[0], @$x[1 .. $#$x] } : $x }
sub is_err { ref $_[0] && ref $_[0] ne 'ARRAY' && $_[0]->isa('VT::Redis::Error') }
sub bal { h(fc('voucher_loyalty_balance', "{v}:lm:$_[0]", $_[1] // ())) }
sub ledger_sums {
    my ($m, $name) = @_;
    my $h = +{ @{ $r->cmd('HGETALL', "{v}:lm:$m") } };
    my ($sum, $ok) = (0, 1);
    for my $e (@{ $r->cmd('XRANGE', "{v}:lh:$m", '-', '+') }) {
        my %e = @{ $e->[1] };
        $sum += $e{points};
        $ok &&= $e{active} + $e{pending} == $sum && $e{active} >= 0;
    }
    my $lots = 0;
    $lots += $_ for values %{ +{ @{ $r->cmd('HGETALL', "{v}:ll:$m") } } };
    ok($ok && $sum == ($h->{act} // 0) + ($h->{pend} // 0) && $lots == $sum,
       "$name: the balance equals the ledger ($sum) and the lots ($lots)");
}
sub ledger { map { +{ @{ $_->[1] } } } @{ $r->cmd('XRANGE', "{v}:lh:$_[0]", '-', '+') } }

# the clock: 2027-01-10 12:00 UTC, passed as "at" like voucherd does
my $T = 1799582400;

# no programme yet
is(fc('voucher_referral_code', '{v}:lm:alice', 'REFAAAA', $T)->[0], 'no_programme',
   'a code without a programme: no_programme');
is(fc('voucher_referral_pair', '{v}:lm:bob', 'REFAAAA', '', '', $T)->[0], 'no_programme',
   'a pairing without a programme: no_programme');

campaign($r, 'welcome', kind => 'amount', value => 10000);
campaign($r, 'thanks', kind => 'amount', value => 10000);
fc('voucher_codes_add', '{v}:k:welcome', 'new', 0, 'code', map { "WEL$_" } 1 .. 40);
fc('voucher_codes_add', '{v}:k:thanks', 'new', 0, 'code', map { "THX$_" } 1 .. 40);
fc('voucher_reward_set', '{v}:lw:welcome', cost => 1, kind => 'coupon', campaign => 'welcome');
fc('voucher_reward_set', '{v}:lw:thanks', cost => 1, kind => 'coupon', campaign => 'thanks');
fc('voucher_reward_pool_add', '{v}:lw:welcome', map { "WEL$_" } 1 .. 40);
fc('voucher_reward_pool_add', '{v}:lw:thanks', map { "THX$_" } 1 .. 40);
fc('voucher_loyalty_set', '{v}:lp', every => 100, points => 1, notify => 'yes',
   tiers => 'base:0:100,gold:1000:100',
   referral_referee_reward => 'welcome', referral_referrer_reward => 'thanks',
   referral_referrer_points => 100, referral_cap => 3, referral_period => 'month',
   referral_code_days => 30);
my %p = @{ fc('voucher_loyalty_get', '{v}:lp') };
is_deeply([@p{qw(referral_referee_reward referral_cap referral_period referral_code_days)}],
          ['welcome', 3, 'month', 30], 'the referral fields of the programme');
my $x = fc('voucher_loyalty_set', '{v}:lp', referral_period => 'week');
ok(is_err($x) && $x->message =~ /invalid_field referral_period/, 'a bad period: invalid_field');

# members the checks read
$r->cmd('HSET', '{v}:m:alice', 'phone', '+66811111111', 'email', 'Alice@Shop.example');
$r->cmd('HSET', '{v}:m:frank', 'count', 2, 'spend', 5000);

# --- codes ---------------------------------------------------------------------
{
    my $c = h(fc('voucher_referral_code', '{v}:lm:alice', 'ref-alic-e001', $T));
    is_deeply([@$c{qw(_ code expires_at new)}], ['ok', 'REFALICE001', $T + 30 * 86400, 1],
              'a code: normalised, valid 30 days');
    $c = h(fc('voucher_referral_code', '{v}:lm:alice', 'REFOTHER', $T + 86400));
    is_deeply([@$c{qw(code new)}], ['REFALICE001', 0], 'asked again: the same code');
    $x = fc('voucher_referral_code', '{v}:lm:zoe', 'REFALICE001', $T);
    ok(is_err($x) && $x->message =~ /invalid_field code: exists/, 'a code that exists: refused');
    is($r->cmd('HEXISTS', '{v}:lm:zoe', 'rc'), 0, '... nothing written');
    $x = fc('voucher_referral_code', '{v}:lm:zoe', "bad code\x01", $T);
    ok(is_err($x) && $x->message =~ /invalid_field code/, 'a malformed code: refused');
    is(bal('alice', $T)->{referral_code}, 'REFALICE001', 'the balance names the member\'s code');
    fc('voucher_referral_code', '{v}:lm:carl', 'REFCARL', $T);
}

# --- pairing -------------------------------------------------------------------
{
    my $p = h(fc('voucher_referral_pair', '{v}:lm:bob', 'refalice001', '+66 82 222 2222',
                 'bob@shop.example', $T + 60));
    is_deeply([@$p{qw(_ referrer referee reward code)}], ['ok', 'alice', 'bob', 'welcome', 'WEL1'],
              'bob paired with alice: the welcome coupon at once');
    my %code = @{ fc('voucher_code_get', '{v}:c:WEL1') };
    is($code{customer}, 'bob', '... assigned to bob');
    my @b = ledger('bob');
    is_deeply([map { "$_->{type}:$_->{reason}:$_->{points}" } @b], ['referral:referee:0'],
              '... a referral entry on bob\'s ledger');
    is($b[0]{referrer}, 'alice', '... naming the referrer');
    my @a = ledger('alice');
    is_deeply([map { "$_->{type}:$_->{reason}:$_->{referee}" } @a], ['referral:referrer:bob'],
              '... and on alice\'s');
    is(bal('bob', $T + 60)->{referred_by}, 'alice', 'bob\'s balance says who referred him');
    is($r->cmd('HGET', '{v}:lrf', 'alice'), 1, 'alice has 1 referral');
}

# every refusal: its reason, and nothing changed
sub refused {
    my ($member, $args, $reason, $name) = @_;
    my $before = snapshot($r);
    my $x = fc('voucher_referral_pair', "{v}:lm:$member", @$args);
    is(ref $x eq 'ARRAY' ? $x->[0] : "$x", $reason, "$name: $reason");
    is_deeply(snapshot($r), $before, "$name: nothing changed");
}
refused('bob', ['REFALICE001', '', '', $T + 70], 'already_referred', 'bob again');
refused('bob', ['REFCARL', '', '', $T + 70], 'already_referred', 'bob with another code');
refused('alice', ['REFALICE001', '', '', $T + 70], 'self_referral', 'alice with her own code');
refused('carol', ['REFALICE001', '081-111-1111x', '', $T + 70], 'invalid_field', 'a malformed phone')
    if 0;
refused('carol', ['REFALICE001', '+66 (81) 111-1111', '', $T + 70], 'self_referral',
        'a new id with alice\'s phone');
refused('dave', ['REFALICE001', '', 'ALICE@shop.EXAMPLE', $T + 70], 'self_referral',
        'a new id with alice\'s email in other letters');
refused('gina', ['REFALICE001', '', 'BOB@shop.example', $T + 70], 'referee_already_member',
        'a new id with bob\'s email');
refused('frank', ['REFALICE001', '', '', $T + 70], 'referee_already_member',
        'a customer with purchases');
fc('voucher_loyalty_earn', '{v}:lm:eve', 'e-1', 500, 0, $T);
refused('eve', ['REFALICE001', '', '', $T + 70], 'referee_already_member',
        'a customer with points already');
refused('carl', ['REFALICE001', '', '', $T + 70], 'referee_already_member',
        'a member with a referral code of its own');
refused('hal', ['REFNOPE', '', '', $T + 70], 'referral_not_found', 'an unknown code');
refused('hal', ['REFALICE001', '', '', $T + 31 * 86400], 'referral_expired', 'an expired code');
$x = fc('voucher_referral_pair', '{v}:lm:hal', 'REFALICE001', 'call me', '', $T);
ok(is_err($x) && $x->message =~ /invalid_field phone/, 'a malformed phone: invalid_field');
$x = fc('voucher_referral_pair', '{v}:lm:hal', 'REFALICE001', '', 'nobody', $T);
ok(is_err($x) && $x->message =~ /invalid_field email/, 'a malformed email: invalid_field');
$x = fc('voucher_referral_pair', '{v}:lm:h al', 'REFALICE001', '', '', $T);
ok(is_err($x) && $x->message =~ /bad_key/, 'a member id with a space: bad_key');

# the cap: 3 a month for alice (bob is one)
for my $m (qw(ida jon)) {
    is(fc('voucher_referral_pair', "{v}:lm:$m", 'REFALICE001', '', '', $T + 100)->[0], 'ok',
       "$m paired with alice");
}
refused('kim', ['REFALICE001', '', '', $T + 100], 'referral_cap_reached', 'a fourth in January');
is(fc('voucher_referral_pair', '{v}:lm:kim', 'REFALICE001', '', '', $T + 25 * 86400)->[0], 'ok',
   'in February the cap starts again');

# the referee's reward out of stock: refused, nothing changed
$r->cmd('RENAME', '{v}:lwp:welcome', '{v}:lwp:welcome.kept');
refused('lou', ['REFCARL', '', '', $T + 100], 'reward_out_of_stock', 'the welcome pool empty');
$r->cmd('RENAME', '{v}:lwp:welcome.kept', '{v}:lwp:welcome');

# --- conversion: the referee's first confirmed order ------------------------------
{
    my $e = h(fc('voucher_loyalty_earn', '{v}:lm:bob', 'b-1', 2000, 0, $T + 200));
    is($e->{points}, 20, 'bob\'s first order earns him 20');
    my $a = bal('alice', $T + 200);
    is($a->{active}, 100, 'alice gets 100 points for it');
    is_deeply([@$a{qw(referrals conversions)}], [4, 1], '... 4 referrals, 1 converted');
    my @a = ledger('alice');
    is_deeply([map { "$_->{type}:$_->{reason}:$_->{points}" } $a[-1]], ['referral:converted:100'],
              '... a referral entry with the points');
    is($a[-1]{code}, 'THX1', '... and the thanks coupon');
    my %code = @{ fc('voucher_code_get', '{v}:c:THX1') };
    is($code{customer}, 'alice', '... assigned to alice');
    my @ev = grep { $_->{type} eq 'referral_converted' }
             map { +{ @{ $_->[1] } } } @{ $r->cmd('XRANGE', '{v}:events', '-', '+') };
    is(scalar @ev, 1, 'one referral_converted event');
    is_deeply([@{ $ev[0] }{qw(member referee points earned_points referral_code code)}],
              ['alice', 'bob', 100, 100, 'REFALICE001', 'THX1'], '... with its fields');

    fc('voucher_loyalty_earn', '{v}:lm:bob', 'b-2', 2000, 0, $T + 300);
    is(bal('alice', $T + 300)->{active}, 100, 'bob\'s second order: nothing more for alice');

    # a gate checkout: reserve, confirm (the edge's path to an earn)
    campaign($r, 'off', kind => 'amount', value => 100);
    code($r, 'OFF1', campaign => 'off');
    my $res = fc('voucher_reserve', '{v}:c:OFF1', 60000, 'ida', 5000, '', 'i-1', '', 0);
    my $rid = ref $res eq 'ARRAY' && h($res)->{redemption_id};
    unless ($rid) {
        # the positional ok: the id is the 15th value
        my %o = (mask => $res->[1]);
        ($rid) = grep { defined && /^\d+-\d+$/ } @$res;
    }
    ok($rid, 'ida reserves a coupon') or diag explain $res;
    my $c = fc('voucher_confirm', '{v}:log', $rid, '');
    is($c->[0], 'ok', '... and confirms it');
    my $a2 = bal('alice', $T + 400);
    is($a2->{conversions}, 2, 'the confirm converts ida for alice');
    ok($a2->{active} >= 200, '... another 100 points') or diag explain $a2;

    # the referrer's coupon out of stock at conversion: points still, the
    # entry says what was missed
    $r->cmd('DEL', '{v}:lwp:thanks');
    fc('voucher_loyalty_earn', '{v}:lm:jon', 'j-1', 100, 0, $T + 500);
    @a = ledger('alice');
    is_deeply([@{ $a[-1] }{qw(reason points code missed)}], ['converted', 100, '', 'thanks'],
              'no thanks coupon left: the points, and the entry says so');
    ledger_sums($_, "after conversions: $_") for qw(alice bob ida jon kim);
}

# --- 40 concurrent pairings of one referee, 30 of a capped referrer ----------------
sub in_children {
    my ($n, $work) = @_;
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) { $work->($i); POSIX::_exit(0) }
        push @pids, $pid;
    }
    waitpid($_, 0) for @pids;
}
{
    my @codes = map { "REFC$_" } 1 .. 40;
    fc('voucher_referral_code', "{v}:lm:crowd$_", $codes[$_ - 1], $T) for 1 .. 40;
    my $dir = VT::tmp_root() . "/pairs.$$";
    mkdir $dir;
    in_children(40, sub {
        my $i = shift;
        my $c = VT::Redis::Conn->new(port => $r->port);
        my $x = $c->cmd('FCALL', 'voucher_referral_pair', 1, '{v}:lm:target', $codes[$i - 1], '', '', $T);
        open my $fh, '>', "$dir/$i" or die; print $fh (ref $x eq 'ARRAY' ? $x->[0] : 'err'); close $fh;
    });
    my %n;
    for my $i (1 .. 40) { open my $fh, '<', "$dir/$i" or die; $n{<$fh>}++ }
    is($n{ok}, 1, '40 referrers racing for one referee: one pairs');
    is($n{already_referred}, 39, '... the others: already_referred');

    fc('voucher_loyalty_set', '{v}:lp', referral_cap => 5);
    fc('voucher_referral_code', '{v}:lm:star', 'REFSTAR', $T);
    in_children(30, sub {
        my $i = shift;
        my $c = VT::Redis::Conn->new(port => $r->port);
        my $x = $c->cmd('FCALL', 'voucher_referral_pair', 1, "{v}:lm:fan$i", 'REFSTAR', '', '', $T);
        open my $fh, '>', "$dir/s$i" or die; print $fh (ref $x eq 'ARRAY' ? $x->[0] : 'err'); close $fh;
    });
    %n = ();
    for my $i (1 .. 30) { open my $fh, '<', "$dir/s$i" or die; $n{<$fh>}++ }
    is($n{ok}, 5, '30 referees racing for a cap-5 referrer: 5 pair');
    is($n{referral_cap_reached}, 25, '... the others: referral_cap_reached');
    is($r->cmd('HGET', '{v}:lrf', 'star'), 5, '... and the report counts 5');
}

# --- the report -----------------------------------------------------------------------
{
    my ($cursor, @rows) = ('0');
    do {
        my $page = fc('voucher_referral_report', '{v}:lrf', $cursor, 10);
        $cursor = $page->[0];
        push @rows, map { +{ @$_ } } @{ $page->[1] };
    } while ($cursor ne '0');
    my %by = map { $_->{member} => $_ } @rows;
    is_deeply([@{ $by{alice} }{qw(referrals conversions code)}], [4, 3, 'REFALICE001'],
              'the report: alice 4 referrals, 3 converted');
    is($by{star}{conversions}, 0, '... star 5 referrals, none converted yet');
    $x = fc('voucher_referral_report', '{v}:lrf', '0', 0);
    ok(is_err($x), 'a count of 0: bad_args');
}

done_testing;
