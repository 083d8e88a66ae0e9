#!/usr/bin/perl
#
# Gift cards as stored value, against real Redis, nginx and voucherd:
# credits and debits with a reason through the admin API and voucherctl
# (credits_addition, credits_removal), idempotent by ref, each an entry of
# the card's ledger with the balance after; redeems and rollbacks at the
# edge write theirs (credits_redemption, credits_refund); a credit's expiry
# at local midnight (a date + zone, expires_in_days) kept as lots, spent
# the first to expire first, gone at its instant without a sweep, and the
# sweep's credits_expired entry on voucherd's (fake) clock; the balance is
# the ledger's sum at every step and under hundreds of concurrent redeems,
# credits, debits and rollbacks; the liability report (API, voucherctl
# table, CSV, JSON); every refusal changes nothing.

use strict;
use warnings;
use utf8;
use Test::More;
use JSON::PP;
use POSIX qw(floor);
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use WorkerT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;
my $SECRET = 'gift-secret-0123456789';

my $w = worker_setup();
my $r = $w->redis;
my $tokens = $w->dir . '/tokens';
write_text($tokens, "ops $SECRET\n");
chmod 0600, $tokens;
my $aport = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$aport", tokens_file => $tokens },
                daemon => { poll_ms => 100 });

my $clock = $w->dir . '/clock';
sub set_clock { write_text($clock, "$_[0]\n") }
sub redis_time { $r->cmd('TIME')->[0] }
# voucherd's clock (it runs at the real pace) an hour behind Redis': its
# sweep lags, so what a redeem sees is Redis time alone
set_clock(redis_time() - 3600);
my $d = WorkerT::Daemon->start($w, env => { VOUCHERD_FAKE_NOW => "\@$clock" });

my $ng = VT::Nginx->start(redis => $r, http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;',
                          server => api_server() . <<'EOT');
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/release { voucher_api release; }
EOT

sub api {
    my ($method, $path, $body) = @_;
    my $res = VT::http($aport, $method, $path,
                       headers => { Authorization => "Bearer $SECRET" },
                       (defined $body ? (body => $body) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') ne '';
    return $res;
}

sub fc { $r->cmd('FCALL', @_) }

# the card's ledger, oldest first
sub ledger {
    my ($code) = @_;
    my $x = $r->cmd('XRANGE', "{v}:gl:$code", '-', '+');
    return [map { +{ id => $_->[0], @{ $_->[1] } } } @$x];
}

# the stored balance is the ledger's sum, and every entry's balance the
# sum so far (never below 0)
sub sums {
    my ($code, $name) = @_;
    my ($sum, $chain, $neg) = (0, 1, 0);
    for my $e (@{ ledger($code) }) {
        $sum += $e->{amount};
        $chain &&= $e->{balance} == $sum;
        $neg++ if $e->{balance} < 0;
    }
    my $b = $r->cmd('HGET', "{v}:c:$code", 'b') // 0;
    ok($chain && !$neg && $sum == $b,
       "$name: balance $b == the ledger's sum $sum, entry by entry, never below 0")
        or diag explain ledger($code);
    return $sum;
}

sub refused {
    my ($res, $status, $reason, $name, $field) = @_;
    is($res->{status}, $status, "$name: $status") or diag $res->{body};
    is($res->{json}{reason}, $reason, "$name: $reason");
    is($res->{json}{field}, $field, "$name: field $field") if defined $field;
}

# what a refusal must leave as it was: every key of the namespace
sub state_of {
    my $keys = $r->cmd('KEYS', '{v}:*');
    my %s;
    for my $k (sort @$keys) {
        next if $k =~ /:admin$/;       # read below: no entry either
        my $t = $r->cmd('TYPE', $k);
        $s{$k} = $t eq 'hash' ? join(',', sort @{ $r->cmd('HGETALL', $k) })
               : $t eq 'stream' ? $r->cmd('XLEN', $k)
               : $t eq 'set' ? join(',', sort @{ $r->cmd('SMEMBERS', $k) })
               : $t eq 'zset' ? join(',', @{ $r->cmd('ZRANGE', $k, 0, -1, 'WITHSCORES') })
               : $t eq 'string' ? $r->cmd('GET', $k) : $t;
    }
    $s{admin} = $r->cmd('XLEN', '{v}:admin') // 0;
    return \%s;
}

# local midnight ending the day of unix time t, tz minutes east
sub end_of_day {
    my ($t, $tz) = @_;
    return (floor(($t + $tz * 60) / 86400) + 1) * 86400 - $tz * 60;
}

sub ymd {
    my ($t, $tz) = @_;
    my @g = gmtime($t + $tz * 60);
    return sprintf('%04d-%02d-%02d', $g[5] + 1900, $g[4] + 1, $g[3]);
}

############################################################ issue, credit, debit

is(api('POST', '/v1/campaigns', { id => 'gc', kind => 'gift_card', value => 100000,
                                 currency => 'THB', tz_offset => '+07:00' })->{status},
   201, 'a gift-card campaign, THB, +07:00') ;
is(api('POST', '/v1/campaigns', { id => 'tea', kind => 'percent', value => 1000 })->{status},
   201, 'a percent campaign');
is(api('POST', '/v1/codes', { code => 'TEA10', campaign => 'tea' })->{status}, 201,
   'a code that is no gift card');
is(api('POST', '/v1/codes', { code => 'GC-1', campaign => 'gc' })->{status}, 201,
   'a card, issued with the campaign\'s 100000');
my $l = ledger('GC1');
is_deeply([map { [@$_{qw(type amount balance reason)}] } @$l],
          [['credits_addition', 100000, 100000, 'issued']], '... its ledger opens with it');
sums('GC1', 'issued');

my $res = api('POST', '/v1/codes/GC-1/credit', { amount => 25000, ref => 'top-1', note => 'birthday top-up' });
is($res->{status}, 200, 'a credit with a reason');
is($res->{json}{balance}, 125000, '... the balance after');
is($res->{json}{type}, 'credits_addition', '... credits_addition');
my $again = api('POST', '/v1/codes/GC-1/credit', { amount => 25000, ref => 'top-1', note => 'birthday top-up' });
ok($again->{json}{replayed}, 'the same ref again: replayed');
is($again->{json}{balance}, 125000, '... the first answer, nothing credited twice');
is(scalar(@{ ledger('GC1') }), 2, '... one ledger entry');
$l = ledger('GC1')->[-1];
is_deeply([@$l{qw(type amount balance reason ref expires_at)}],
          ['credits_addition', 25000, 125000, 'birthday top-up', 'top-1', ''],
          'the entry: type, amount, balance after, reason, ref, no expiry');

$res = api('POST', '/v1/codes/GC1/debit', { amount => 5000, ref => 'fix-1', note => 'manual correction' });
is($res->{json}{balance}, 120000, 'a debit');
is($res->{json}{type}, 'credits_removal', '... credits_removal');
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance reason ref)}],
          ['credits_removal', -5000, 120000, 'manual correction', 'fix-1'], '... its entry');
sums('GC1', 'credit and debit');

############################################################ refusals change nothing

my $before = state_of();
my @refusals = (
    ['debit below zero', 'POST', '/v1/codes/GC1/debit', { amount => 120001 }, 409, 'balance_insufficient'],
    ['amount 0', 'POST', '/v1/codes/GC1/credit', { amount => 0 }, 400, 'invalid_field', 'amount'],
    ['a negative amount', 'POST', '/v1/codes/GC1/credit', { amount => -5 }, 400, 'invalid_field', 'amount'],
    ['an amount as a string', 'POST', '/v1/codes/GC1/credit', { amount => '5' }, 400, 'invalid_field', 'amount'],
    ['an amount past 2^53', 'POST', '/v1/codes/GC1/credit', { amount => 2**53 }, 400, 'invalid_field', 'amount'],
    ['no amount', 'POST', '/v1/codes/GC1/credit', {}, 400, 'missing_field', 'amount'],
    ['an unknown code', 'POST', '/v1/codes/NOSUCH/credit', { amount => 5 }, 404, 'not_found'],
    ['not a gift card', 'POST', '/v1/codes/TEA10/debit', { amount => 5 }, 409, 'not_a_gift_card'],
    ['a ref used for another amount', 'POST', '/v1/codes/GC1/credit', { amount => 1, ref => 'top-1' },
     422, 'idempotency_conflict'],
    ['an unknown field', 'POST', '/v1/codes/GC1/credit', { amount => 5, reason => 'x' }, 400, 'unknown_field'],
    ['an expiry past', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_at => '2020-01-01' },
     400, 'invalid_field', 'expires_at'],
    ['an expiry not a date', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_at => '31/12/2030' },
     400, 'invalid_field', 'expires_at'],
    ['no such day', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_at => '2031-02-29' },
     400, 'invalid_field', 'expires_at'],
    ['unix seconds past', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_at => 1000 },
     400, 'invalid_field', 'expires_at'],
    ['both expiries', 'POST', '/v1/codes/GC1/credit',
     { amount => 5, expires_at => '2031-01-01', expires_in_days => 3 }, 400, 'invalid_field', 'expires_at'],
    ['expires_in_days below 0', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_in_days => -1 },
     400, 'invalid_field', 'expires_in_days'],
    ['a debit that expires', 'POST', '/v1/codes/GC1/debit', { amount => 5, expires_in_days => 1 },
     400, 'invalid_field', 'expires_at'],
    ['a bad zone', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_in_days => 1, zone => 'Asia/Bangkok' },
     400, 'invalid_field', 'zone'],
    ['a zone past +14:00', 'POST', '/v1/codes/GC1/credit', { amount => 5, expires_in_days => 1, zone => '+15:00' },
     400, 'invalid_field', 'zone'],
    ['the balance of an unknown code', 'GET', '/v1/codes/NOSUCH/balance', undef, 404, 'not_found'],
    ['the balance of a code that is no gift card', 'GET', '/v1/codes/TEA10/balance', undef, 409,
     'not_a_gift_card'],
    ['the transactions of an unknown code', 'GET', '/v1/codes/NOSUCH/transactions', undef, 404, 'not_found'],
    ['a bad cursor', 'GET', '/v1/codes/GC1/transactions?cursor=abc', undef, 400, 'invalid_field', 'cursor'],
    ['a report with an unknown query', 'GET', '/v1/reports/liability?by=x', undef, 400, 'unknown_field'],
);
for my $x (@refusals) {
    my ($name, $m, $path, $body, $status, $reason, $field) = @$x;
    refused(api($m, $path, $body), $status, $reason, $name, $field);
}
is_deeply(state_of(), $before, 'none of the ' . scalar(@refusals) . ' refusals changed anything');

my $bad = ctl($w, qw(codes debit GC1 999999999));
isnt($bad->{rc}, 0, 'voucherctl codes debit below zero fails');
like($bad->{err}, qr/balance_insufficient/, '... balance_insufficient');
is_deeply(state_of(), $before, '... and changes nothing');

############################################################ expiry, lots

my $now = redis_time();
my $tonight = end_of_day($now, 420);
$res = api('POST', '/v1/codes/GC1/credit', { amount => 3000, expires_in_days => 0, ref => 'tonight' });
is($res->{json}{expires_at}, $tonight, 'expires_in_days 0: local midnight tonight in the campaign\'s zone (+07:00)');
my $day20 = ymd($now + 20 * 86400, 420);
$res = api('POST', '/v1/codes/GC1/credit', { amount => 2000, expires_at => $day20 });
is($res->{json}{expires_at}, end_of_day($now + 20 * 86400, 420),
   "expires_at $day20: the end of that day at +07:00");
$res = api('POST', '/v1/codes/GC1/credit', { amount => 1000, expires_at => $day20, zone => '+08:00' });
is($res->{json}{expires_at}, end_of_day($now + 20 * 86400, 420) - 3600,
   '... with zone +08:00 an hour earlier');
my $soon = redis_time() + 3;
$res = api('POST', '/v1/codes/GC1/credit', { amount => 700, expires_at => $soon, note => 'flash gift' });
is($res->{json}{expires_at}, $soon, 'unix seconds: an exact instant');
is($res->{json}{balance}, 126700, '... the balance with every lot');
my $ctl = ctl($w, qw(codes credit GC1 300 --expires_in_days 1 --note), 'ของขวัญ');
is($ctl->{rc}, 0, 'voucherctl codes credit --expires_in_days 1') or diag $ctl->{err};
is(decode_json($ctl->{out})->{expires_at}, $tonight + 86400, '... the end of tomorrow');
my $reason = ledger('GC1')->[-1]{reason};
utf8::decode($reason);
is($reason, 'ของขวัญ', '... a Thai reason kept as it is');
sums('GC1', 'five lots');

$res = api('GET', '/v1/codes/GC1/balance');
is($res->{json}{balance}, 127000, 'GET balance');
is_deeply([map { [$_->{amount}, $_->{expires_at}] } @{ $res->{json}{lots} }],
          [[700, $soon], [3000, $tonight], [300, $tonight + 86400],
           [1000, end_of_day($now + 20 * 86400, 420) - 3600],
           [2000, end_of_day($now + 20 * 86400, 420)], [120000, undef]],
          '... its lots in the order they are spent: the first to expire first, then the undated');

# a redeem at the edge takes the first to expire first
$res = post($ng, 'redeem', { code => 'GC1', order => { amount => 1000, currency => 'THB' } });
is($res->{status}, 200, 'a redeem of 1000 through nginx') or diag $res->{body};
is($res->{json}{balance}, 126000, '... balance after');
my $rid = $res->{json}{redemption_id};
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance ref)}],
          ['credits_redemption', -1000, 126000, $rid], '... credits_redemption, ref its id');
my $lots = api('GET', '/v1/codes/GC1/balance')->{json}{lots};
is($lots->[0]{amount}, 2700, '... it took the 700 expiring first, then 300 of tonight\'s 3000');
sums('GC1', 'a redeem');

# a partial rollback returns to the lot it came from: the latest first
$res = post($ng, 'rollback', { redemption_id => $rid, amount => 400 });
is($res->{status}, 200, 'a partial rollback of 400') or diag $res->{body};
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance reason ref)}],
          ['credits_refund', 400, 126400, 'rollback', $rid], '... credits_refund');
$lots = api('GET', '/v1/codes/GC1/balance')->{json}{lots};
is_deeply([map { [$_->{amount}, $_->{expires_at}] } @$lots[0, 1]], [[100, $soon], [3000, $tonight]],
   '... back to the lots it was taken from: tonight\'s 300 first, then 100 of the flash gift\'s')
    or diag explain $lots;
sums('GC1', 'a partial rollback');

# the flash gift ends: it stops counting at its instant, no sweep needed
VT::wait_until(sub { redis_time() > $soon }, timeout => 10);
$res = post($ng, 'validate', { code => 'GC1', order => { amount => 500000, currency => 'THB' } });
is($res->{json}{balance}, 126400 - 100, 'validate just after: the expired 100 no longer counts');
is($r->cmd('HGET', '{v}:c:GC1', 'b'), 126400, '... though stored until its entry is written');
sums('GC1', 'an expired lot not yet swept');
my $xl = $r->cmd('XLEN', '{v}:gl:GC1');
$res = post($ng, 'rollback', { redemption_id => $rid, amount => 600 });
is($res->{json}{balance}, 126400 - 100 + 600 - 600, 'the rest rolled back: its part of the flash gift '
   . 'comes back and expires at once');
my @tail = @{ ledger('GC1') }[$xl .. $xl + 2];
is_deeply([map { [$_->{type}, $_->{amount}] } @tail],
          [['credits_refund', 600], ['credits_expired', -100], ['credits_expired', -600]],
          '... credits_refund, then credits_expired for what is due')
    or diag explain \@tail;
sums('GC1', 'a refund into an expired lot');

# the sweep, on voucherd's fake clock: past the 20-day lots
my $gx = $r->cmd('ZRANGE', '{v}:gx', 0, -1);
is_deeply($gx, ['GC1'], 'the card waits in {v}:gx for its first expiry');
$before = $r->cmd('HGET', '{v}:c:GC1', 'b');
set_clock($now + 25 * 86400);
ok(VT::wait_until(sub { !@{ $r->cmd('ZRANGE', '{v}:gx', 0, -1) } }, timeout => 10),
   'voucherd\'s sweep, its clock 25 days on, expires every lot') or diag $d->log;
@tail = grep { $_->{type} eq 'credits_expired' } @{ ledger('GC1') };
is_deeply([map { -$_->{amount} } @tail[2 .. $#tail]], [3000, 300, 1000, 2000],
          '... credits_expired for tonight\'s, tomorrow\'s and the two 20-day lots');
is($r->cmd('HGET', '{v}:c:GC1', 'b'), $before - 6300, '... the balance less what they held');
sums('GC1', 'after the sweep');
like($d->log, qr/gift cards: 1 card\(s\) had credits expire/, '... and voucherd says so');
set_clock(redis_time() - 3600);

############################################################ transactions, paged

my (@items, $cursor, $n);
do {
    my $page = api('GET', '/v1/codes/GC1/transactions?limit=4' . (defined $cursor ? "&cursor=$cursor" : ''));
    is($page->{status}, 200, 'a page of transactions') unless $n;
    push @items, @{ $page->{json}{items} };
    $cursor = $page->{json}{next_cursor};
} while (defined $cursor && ++$n < 100);
is(scalar(@items), scalar(@{ ledger('GC1') }), 'every entry, newest first, four a page');
is_deeply([map { $_->{id} } @items], [reverse map { $_->{id} } @{ ledger('GC1') }], '... in order');
my $sum = 0;
$sum += $_->{amount} for @items;
is($sum, $r->cmd('HGET', '{v}:c:GC1', 'b'), '... summing to the balance');
my $tr = ctl($w, qw(codes transactions GC1 --limit 3));
is(scalar(split /\n/, $tr->{out}), scalar(@items), 'voucherctl codes transactions: every entry (JSON lines)');

############################################################ update, delete

$res = api('PATCH', '/v1/codes/GC1', { balance => 50000 });
is($res->{status}, 200, 'a code update setting the balance') or diag $res->{body};
is_deeply([@{ ledger('GC1')->[-1] }{qw(type reason balance)}], ['credits_removal', 'set', 50000],
          '... writes the difference to the ledger, reason set');
sums('GC1', 'a balance set');
is(api('POST', '/v1/codes', { code => 'GC-DEL', campaign => 'gc', balance => 700 })->{status}, 201,
   'a card of 700');
is(api('DELETE', '/v1/codes/GC-DEL')->{status}, 200, 'deleted');
is_deeply([map { [$_->{type}, $_->{amount}, $_->{reason}] } @{ ledger('GCDEL') }],
          [['credits_addition', 700, 'issued'], ['credits_removal', -700, 'deleted']],
          '... its ledger stays, the balance leaving with reason deleted');
ok(!$r->cmd('SISMEMBER', '{v}:gift', 'GCDEL'), '... and it leaves the liability');

# a reservation and its release; a stack with another code, and its
# rollback
$res = post($ng, 'reserve', { code => 'GC1', order => { amount => 500, currency => 'THB' } });
is($res->{status}, 200, 'a reservation of 500 on the card') or diag $res->{body};
my $hold = $res->{json}{redemption_id};
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance ref)}],
          ['credits_redemption', -500, 49500, $hold], '... credits_redemption at once');
is(post($ng, 'release', { redemption_id => $hold })->{status}, 200, 'released');
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance reason ref)}],
          ['credits_refund', 500, 50000, 'release', $hold], '... credits_refund, reason release');
campaign($r, 'gc', stacking => 'combinable');      # gift cards stack
campaign($r, 'p5', kind => 'percent', value => 500, stacking => 'combinable');
code($r, 'FIVE', campaign => 'p5');
$res = post($ng, 'redeem', { codes => ['FIVE', 'GC1'], order => { amount => 2000, currency => 'THB' } });
is($res->{status}, 200, 'a stack of 5% off and the card, 2000') or diag $res->{body};
my ($part) = grep { $_->{code} eq 'GC1' } @{ $res->{json}{codes} };
is($part->{discount}, 1900, '... the card pays what is left after 5%');
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance ref)}],
          ['credits_redemption', -1900, 48100, $part->{redemption_id}], '... its credits_redemption');
is(post($ng, 'rollback', { redemption_id => $res->{json}{redemption_id} })->{status}, 200,
   'the stack rolled back');
is_deeply([@{ ledger('GC1')->[-1] }{qw(type amount balance)}], ['credits_refund', 1900, 50000],
          '... the card\'s credits_refund');
sums('GC1', 'a reservation, a release, a stack and its rollback');

# cards made in bulk open their ledgers too
is_deeply(fc('voucher_codes_add', 1, '{v}:k:gc', 'new', 1, 'balance', 5000, 'code', 'BULK1', 'BULK2'),
          [2, []], 'two cards made in bulk with 5000');
is(ledger('BULK2')->[0]{reason}, 'issued', '... each with its issued entry');

############################################################ concurrency

is(api('POST', '/v1/codes', { code => 'CONC', campaign => 'gc', balance => 30000 })->{status}, 201,
   'a card of 30000 for the crowd');
srand(152);
my @redeems = map {
    [ 'POST', '/vouchers/redeem',
      { code => 'CONC', order => { amount => 50 + int(rand(450)), currency => 'THB' } } ]
} 1 .. 300;
my @credits = map { +{ amount => 100 + int(rand(200)), ref => "c-$_", note => 'crowd' } } 1 .. 60;
my @debits = map { +{ amount => 50 + int(rand(150)), ref => "d-$_" } } 1 .. 60;

# the admin API's credits and debits from another process, at the same time
my $kid = fork // die "fork: $!";
if (!$kid) {
    my @reqs;
    for my $i (0 .. 59) {
        push @reqs, { method => 'POST', path => '/v1/codes/CONC/credit', body => $credits[$i],
                      headers => { Authorization => "Bearer $SECRET" } };
        push @reqs, { method => 'POST', path => '/v1/codes/CONC/debit', body => $debits[$i],
                      headers => { Authorization => "Bearer $SECRET" } };
    }
    my @out = VT::http_parallel($aport, \@reqs, concurrency => 20);
    my $f = $w->dir . '/admin.json';
    write_text($f, $JSON->encode([map { [$_->{status}, $_->{body}] } @out]));
    POSIX::_exit(0);
}
my @rr = VT::http_parallel($ng->port,
    [map { { method => $_->[0], path => $_->[1], body => $_->[2] } } @redeems], concurrency => 100);
waitpid($kid, 0);
my $admin = $JSON->decode(read_text($w->dir . '/admin.json'));

my @ok = grep { $_->{status} == 200 } @rr;
my @ids = map { $_->{json}{redemption_id} } @ok;
ok(@ok > 50, scalar(@ok) . ' of 300 concurrent redeems went through');
ok(!grep({ $_->{status} != 200 && ($_->{json}{reason} // '') ne 'balance_exhausted' } @rr),
   '... the others were refused balance_exhausted') or diag explain [grep { $_->{status} != 200 } @rr];
ok(!grep({ $_->{json}{balance} < 0 } @ok), '... no redeem left a balance below 0');
ok(scalar(grep { ($_->{json}{computation}{capped_by} // '') eq 'balance' } @ok) >= 1,
   '... and some were partial, capped by the balance');

# rollbacks (half partial) and more redeems, concurrently
my @rb = map { my $i = $_;
    { method => 'POST', path => '/vouchers/rollback',
      body => { redemption_id => $ids[$i], ($i % 2 ? (amount => 10) : ()) } } } 0 .. 39;
push @rb, map { { method => 'POST', path => '/vouchers/redeem',
                  body => { code => 'CONC', order => { amount => 120, currency => 'THB' } } } } 1 .. 40;
my @rr2 = VT::http_parallel($ng->port, \@rb, concurrency => 80);
is(scalar(grep { $_->{status} == 200 } @rr2[0 .. 39]), 40, '40 rollbacks, half of them partial');

my ($cr, $db, $disc, $ref) = (0, 0, 0, 0);
for my $i (0 .. $#$admin) {
    my ($st, $body) = @{ $admin->[$i] };
    my $j = $JSON->decode($body);
    if ($st == 200) {
        $i % 2 ? ($db += $debits[$i >> 1]{amount}) : ($cr += $credits[$i >> 1]{amount});
    } else {
        is($j->{reason}, 'balance_insufficient', 'an admin refusal is balance_insufficient') ;
    }
}
ok($cr > 0 && $db > 0, "credits ($cr) and debits ($db) through the admin API went through");
$disc += $_->{json}{discount} for @ok, grep { $_->{status} == 200 } @rr2[40 .. $#rr2];
$ref += $_->{json}{amount_rolled_back} for @rr2[0 .. 39];
my $final = sums('CONC', 'after the crowd');
is($final, 30000 + $cr - $db - $disc + $ref,
   "... and equals 30000 + credits - debits - redeemed + refunded ($final)");
my %types;
$types{$_->{type}}++ for @{ ledger('CONC') };
is($types{credits_redemption}, scalar(@ok) + scalar(grep { $_->{status} == 200 } @rr2[40 .. $#rr2]),
   '... one credits_redemption per redeem');
is($types{credits_refund}, 40, '... one credits_refund per rollback');

############################################################ liability

# a CNY card in its own zone, and an expiring credit to report
is(api('POST', '/v1/campaigns', { id => 'cn', kind => 'gift_card', value => 20000,
                                 currency => 'CNY', tz_offset => '+08:00' })->{status}, 201,
   'a CNY gift-card campaign');
is(api('POST', '/v1/codes', { code => 'CN1', campaign => 'cn' })->{status}, 201, 'a CNY card');
$now = redis_time();
my $day9 = ymd($now + 9 * 86400, 420);
is(api('POST', '/v1/codes/GC1/credit', { amount => 10000, expires_at => $day9 })->{status}, 200,
   "a credit of 10000 to the end of $day9");

$res = api('GET', '/v1/reports/liability');
is($res->{status}, 200, 'GET /v1/reports/liability');
my $rp = $res->{json};
my %camp = map { $_->{campaign} => $_ } @{ $rp->{campaigns} };
my $thb = 0;
$thb += $r->cmd('HGET', "{v}:c:$_", 'b') for qw(GC1 BULK1 BULK2 CONC);
is_deeply([@{ $camp{gc} }{qw(currency cards outstanding expiring)}], ['THB', 4, $thb, 10000],
          'by campaign: gc, 4 cards, their balances, 10000 of it expiring');
is_deeply([@{ $camp{cn} }{qw(currency cards outstanding)}], ['CNY', 1, 20000], '... cn in CNY');
is_deeply({ map { $_->{currency} => $_->{outstanding} } @{ $rp->{totals} } },
          { THB => $thb, CNY => 20000 }, '... totals per currency');
is_deeply([map { [$_->{currency}, $_->{age}, $_->{outstanding}] } @{ $rp->{by_age} }],
          [['CNY', '0-30', 20000], ['THB', '0-30', $thb]], 'by age: all credited today');
is_deeply([map { [$_->{currency}, $_->{expires_on}, $_->{outstanding}] } @{ $rp->{by_expiry} }],
          [['CNY', undef, 20000], ['THB', $day9, 10000], ['THB', undef, $thb - 10000]],
          'by expiry: what ends on which local day, then what never does');
ok(!grep({ !/^-?\d+$/ } map { $_->{outstanding} } @{ $rp->{campaigns} }, @{ $rp->{by_expiry} }),
   '... every figure an integer in minor units');
is(api('GET', '/v1/reports/liability?campaign=cn')->{json}{campaigns}[0]{campaign}, 'cn',
   'campaign=cn: that campaign alone');

# later: the clock 40 days on, the credit 9 days off is gone, the rest ages
my $cj = ctl($w, { env => { VOUCHERD_FAKE_NOW => $now + 40 * 86400 } }, qw(liability --format json));
my $later = decode_json($cj->{out});
is_deeply([map { [$_->{currency}, $_->{age}] } @{ $later->{by_age} }],
          [['CNY', '31-90'], ['THB', '31-90']], 'voucherctl liability 40 days later: aged 31-90 days');
ok(!grep({ defined $_->{expires_on} } @{ $later->{by_expiry} }), '... the expired credit left out');

my $json = decode_json(ctl($w, { env => { VOUCHERD_FAKE_NOW => $rp->{as_of} } },
                           qw(liability --format json))->{out});
delete $json->{as_of};
my %rp = %$rp;
delete $rp{as_of};
is_deeply($json, \%rp, 'voucherctl liability --format json: the API\'s answer');
my $table = ctl($w, { env => { VOUCHERD_FAKE_NOW => $rp->{as_of} } },
                qw(liability --locale th-TH))->{out};
utf8::decode($table);
like($table, qr/gc\s+4\s+฿[\d,]+\.\d\d\s+฿100\.00/, 'the table in th-TH: baht as people read it')
    or diag $table;
like($table, qr/cn\s+1\s+¥200\.00/, '... yuan with ¥');
my @g = gmtime($now + 9 * 86400 + 7 * 3600);
my $be = $g[5] + 1900 + 543;
like($table, qr/\Q$g[3]\E \S+ $be\s+฿100\.00/, '... the day it ends as a Thai date (Buddhist era)');
like($table, qr/never\s+฿/, '... and what never ends');
my $csv = ctl($w, { env => { VOUCHERD_FAKE_NOW => $rp->{as_of} } }, qw(liability --format csv))->{out};
like($csv, qr/^section,campaign,currency,age,expires_on,cards,outstanding,expiring\n/, 'CSV: a header');
like($csv, qr/^expiry,,THB,,\Q$day9\E,,10000,$/m, '... a row per expiry day, in minor units');
my $zh = ctl($w, { env => { VOUCHERD_FAKE_NOW => $rp->{as_of} } },
             qw(liability --campaign cn --locale zh-CN))->{out};
utf8::decode($zh);
like($zh, qr/¥200\.00/, 'zh-CN: ¥200.00');
unlike($zh, qr/^gc /m, '... campaign cn alone');
my $u = ctl($w, qw(liability --format xml));
is($u->{rc}, 2, 'a bad --format: a usage error');

done_testing();
