#!/usr/bin/perl
#
# The rewards catalogue (redis/lib/rewards.lua): rewards bought with points
# that give a coupon or a gift card from a pool of issued codes (assigned
# to the member) or a free item; stock, limits per member, idempotent
# claims, every refusal changing nothing; 500 concurrent claims of a
# stock-10 reward from 50 connections give exactly 10; and 1,000
# concurrent earns and spends on one member lose nothing and never
# overspend, the ledger summing to the balance.

use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my $r = VT::Redis->start;
$r->load_functions;

sub fc { $r->cmd('FCALL', $_[0], 1, @_[1 .. $#_]) }
sub h { my $x = shift; ref $x eq 'ARRAY' ? +{ _ => $x->[0], @$x[1 .. $#$x] } : $x }
sub is_err { ref $_[0] && ref $_[0] ne 'ARRAY' && $_[0]->isa('VT::Redis::Error') }
sub claim { h(fc('voucher_reward_claim', "{v}:lm:$_[0]", $_[1], $_[2])) }
sub active { h(fc('voucher_loyalty_balance', "{v}:lm:$_[0]"))->{active} }
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

fc('voucher_loyalty_set', '{v}:lp', every => 100, points => 1, notify => 'yes');
campaign($r, 'drink', kind => 'free_item', free_sku => 'DRINK');
campaign($r, 'gift', kind => 'gift_card', value => 10000);
# codes as voucherctl issues them (compact and hash forms alike)
fc('voucher_codes_add', '{v}:k:drink', 'new', 0, 'code', map { "DRK$_" } 1 .. 20);
fc('voucher_codes_add', '{v}:k:gift', 'new', 0, 'code', map { "GFT$_" } 1 .. 3);
code($r, 'MINE1', campaign => 'drink', customer => 'zed');

# --- the catalogue ------------------------------------------------------------
for my $bad ([[cost => 10, kind => 'coupon'], qr/invalid_field campaign: required/],
             [[cost => 10, kind => 'coupon', campaign => 'nope'], qr/campaign: not found/],
             [[cost => 10, kind => 'gift_card', campaign => 'drink'], qr/invalid_field campaign/],
             [[cost => 10, kind => 'item'], qr/invalid_field sku/],
             [[cost => 0, kind => 'item', sku => 'X'], qr/invalid_field cost/],
             [[kind => 'item', sku => 'X'], qr/invalid_field cost: required/],
             [[cost => 5, kind => 'bag'], qr/invalid_field kind/]) {
    my $x = fc('voucher_reward_set', '{v}:lw:bad', @{ $bad->[0] });
    ok(is_err($x) && $x->message =~ $bad->[1], "reward_set @{$bad->[0]}: refused")
        or diag explain $x;
}
is($r->cmd('EXISTS', '{v}:lw:bad'), 0, 'nothing written');

is(fc('voucher_reward_set', '{v}:lw:drink', name => 'A free drink', cost => 10,
      kind => 'coupon', campaign => 'drink', stock => 10, per_member => 2), 'OK', 'reward: a drink');
is(fc('voucher_reward_set', '{v}:lw:card', cost => 500, kind => 'gift_card',
      campaign => 'gift', value => 10000), 'OK', 'reward: a gift card');
is(fc('voucher_reward_set', '{v}:lw:mug', cost => 50, kind => 'item', sku => 'MUG',
      stock => 1), 'OK', 'reward: a mug');
my $x = fc('voucher_reward_pool_add', '{v}:lw:drink', 'DRK1', 'GFT1');
ok(is_err($x) && $x->message =~ /GFT1 is not a code of drink/, 'a code of another campaign refused');
$x = fc('voucher_reward_pool_add', '{v}:lw:drink', 'MINE1');
ok(is_err($x) && $x->message =~ /assigned/, 'an assigned code refused');
is($r->cmd('LLEN', '{v}:lwp:drink'), 0, '... all or nothing');
is(fc('voucher_reward_pool_add', '{v}:lw:drink', map { "drk-$_" } 1 .. 20), 20, 'a pool of 20');
is(fc('voucher_reward_pool_add', '{v}:lw:card', map { "GFT$_" } 1 .. 3), 3, 'a pool of 3 cards');
my %g = @{ fc('voucher_reward_get', '{v}:lw:drink') };
is_deeply([@g{qw(name cost stock pool)}], ['A free drink', 10, 10, 20], 'reward_get');

# --- claims -------------------------------------------------------------------
fc('voucher_loyalty_earn', '{v}:lm:amy', 'a1', 100000, 0);      # 1000 points
{
    my $before = VoucherT::snapshot($r);
    is_deeply(claim('amy', 'nope', 'k0'), { _ => 'unknown_reward', reward => 'nope' }, 'unknown_reward');
    is(claim('bo', 'drink', 'k0')->{_}, 'insufficient_points', 'no points: insufficient_points');
    is_deeply(VoucherT::snapshot($r), $before, 'refusals change nothing');

    my $c = claim('amy', 'drink', 'k1');
    is_deeply([@$c{qw(_ reward kind points active)}], ['ok', 'drink', 'coupon', 10, 990],
              'a drink for 10 points');
    like($c->{code}, qr/^DRK\d+$/, '... with a code from the pool');
    is(+{ @{ fc('voucher_code_get', "{v}:c:$c->{code}") } }->{customer}, 'amy',
              '... which is now amy\'s own');
    is_deeply($r->cmd('ZRANGE', '{v}:w:amy', 0, -1), [$c->{code}],
              '... and in her wallet');
    my $again = claim('amy', 'drink', 'k1');
    is_deeply([@$again{qw(code replayed)}], [$c->{code}, 1], 'the same key: the same code, replayed');
    is(active('amy'), 990, '... and nothing spent twice');
    is(claim('bo', 'drink', 'k1')->{_}, 'idempotency_conflict', 'the key for another member');
    claim('amy', 'drink', 'k2');
    is(claim('amy', 'drink', 'k3')->{_}, 'reward_limit', 'per_member 2: reward_limit');

    my $g = claim('amy', 'card', 'k4');
    like($g->{code}, qr/^GFT\d$/, 'a gift card from its pool');
    my $m = claim('amy', 'mug', 'k5');
    is_deeply([@$m{qw(_ sku)}], ['ok', 'MUG'], 'a free item');
    is(claim('amy', 'mug', 'k6')->{_}, 'reward_out_of_stock', 'stock 1: out of stock');
    fc('voucher_reward_set', '{v}:lw:mug', status => 'paused');
    is(claim('amy', 'mug', 'k7')->{_}, 'reward_inactive', 'paused: reward_inactive');
    my @ev = grep { $_ eq 'reward_redeemed' }
             map { +{ @{ $_->[1] } }->{type} } @{ $r->cmd('XRANGE', '{v}:events', '-', '+') };
    is(scalar @ev, 4, 'reward_redeemed notified once per claim');
    my @t = map { my %e = @{ $_->[1] }; "$e{type}:$e{points}" } @{ $r->cmd('XRANGE', '{v}:lh:amy', '-', '+') };
    is("@t", 'earn:1000 reward:-10 reward:-10 reward:-500 reward:-50', 'the ledger');
    ledger_sums('amy', 'claims');
}

# --- 500 concurrent claims of a stock-10 reward --------------------------------
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
use POSIX ();
{
    fc('voucher_reward_set', '{v}:lw:drink', stock => 10, per_member => 0);
    $r->cmd('DEL', '{v}:lwp:drink');
    fc('voucher_reward_pool_add', '{v}:lw:drink', map { "DRK$_" } 3 .. 20);
    for my $i (1 .. 50) { fc('voucher_loyalty_adjust', "{v}:lm:c$i", '+100', 'grant', "g$i") }
    my $dir = VT::tmp_root() . "/claims.$$";
    mkdir $dir;
    in_children(50, sub {
        my $i = shift;
        my $c = VT::Redis::Conn->new(port => $r->port);
        my $ok = 0;
        for my $j (1 .. 10) {
            my $x = $c->cmd('FCALL', 'voucher_reward_claim', 1, "{v}:lm:c$i", 'drink', "c$i-$j");
            $ok++ if ref $x eq 'ARRAY' && $x->[0] eq 'ok';
        }
        open my $fh, '>', "$dir/$i" or die; print $fh $ok; close $fh;
    });
    my $won = 0;
    for my $i (1 .. 50) { open my $fh, '<', "$dir/$i" or die "$dir/$i: $!"; $won += <$fh> }
    is($won, 10, '500 concurrent claims of a stock-10 reward: exactly 10');
    my %w = @{ fc('voucher_reward_get', '{v}:lw:drink') };
    is_deeply([@w{qw(stock pool)}], [0, 8], 'stock 0, 10 codes handed out');
    my $spent = 0;
    for my $i (1 .. 50) { $spent += 100 - active("c$i") }
    is($spent, 100, 'exactly 10 x 10 points spent');
}

# --- 1,000 concurrent earns and spends on one member ----------------------------
{
    fc('voucher_loyalty_adjust', '{v}:lm:hot', '+1000', 'seed', 'hot-seed');
    my $dir = VT::tmp_root() . "/hot.$$";
    mkdir $dir;
    in_children(20, sub {
        my $i = shift;
        my $c = VT::Redis::Conn->new(port => $r->port);
        my ($earned, $spent) = (0, 0);
        for my $j (1 .. 50) {
            if ($j % 2) {
                my $x = $c->cmd('FCALL', 'voucher_loyalty_earn', 1, '{v}:lm:hot', "h$i-$j", 500, 0);
                $earned += $x->[4] if ref $x eq 'ARRAY' && $x->[0] eq 'ok';
            } else {
                my $x = $c->cmd('FCALL', 'voucher_loyalty_spend', 1, '{v}:lm:hot', 60, "s$i-$j");
                $spent += 60 if ref $x eq 'ARRAY' && $x->[0] eq 'ok';
            }
        }
        open my $fh, '>', "$dir/$i" or die; print $fh "$earned $spent"; close $fh;
    });
    my ($e, $s) = (0, 0);
    for my $i (1 .. 20) {
        open my $fh, '<', "$dir/$i" or die; my ($a, $b) = split ' ', <$fh>; $e += $a; $s += $b;
    }
    is($e, 500 * 5, '500 earns of 5 points, none lost');
    ok($s <= 1000 + 2500 && $s > 0, "spends within what there was ($s)");
    is(active('hot'), 1000 + $e - $s, 'the balance is seed + earned - spent: no lost update');
    ledger_sums('hot', '1,000 concurrent earns and spends');
}

$r->stop;
done_testing;
