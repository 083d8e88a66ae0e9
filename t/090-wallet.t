# The wallet: codes given to a customer (voucher_code_set, voucher_codes_add,
# voucher_wallet_add, a delivery voucherd sent) and codes he saves
# (voucher_wallet_save, "voucher_api wallet_save"), listed with their state
# through voucher_wallet and "voucher_api wallet", paged with a cursor.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use VT;
use VoucherT;

my $root = VT::root_dir();
my $vcode = "$root/build/vcode";
-x $vcode or BAIL_OUT("build/vcode missing: run scripts/build");
my $dir = tempdir(CLEANUP => 1);
system($vcode, 'genkey', "$dir/k.key") == 0 or die;
my @mac = `$vcode issue $dir/k.key SALE 8 5 2`;
chomp @mac;

my ($redis, $ng) = start_pair(
    http => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $dir/k.key;
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_pattern "^[A-Z][A-Z0-9]{1,15}\$";
EOT
    server => api_server() . <<'EOT');
        location = /vouchers/reserve     { voucher_api reserve; }
        location = /vouchers/wallet      { voucher_api wallet; }
        location = /vouchers/wallet_save { voucher_api wallet_save; }
        location = /limited/wallet_save {
            voucher_api wallet_save;
            voucher_lockout $arg_who failures=3 window=1m ban=1m name=saves;
        }
EOT

sub f { $redis->cmd('FCALL', @_) }
sub err_of { my $x = shift; ref $x && ref $x ne 'ARRAY' ? $x->message : '' }
sub wallet_keys { [sort @{ $redis->cmd('ZRANGE', "{v}:w:$_[0]", 0, -1) }] }

# a page through the functions, as a perl structure: [{code => .., ...}]
sub page {
    my ($cust, $cursor, $count) = @_;
    my $r = f('voucher_wallet', 1, "{v}:w:$cust", $cursor // '0',
              $count // 100);
    die explain($r) unless ref $r eq 'ARRAY' && $r->[0] eq 'ok';
    my %h = @$r[1 .. $#$r];
    my @codes = @{ $h{codes} };
    is(shift @codes, '[]', 'the list starts with its "[]" mark');
    return ([map { +{@$_} } @codes], $h{next_cursor});
}
sub rid { my $p = VT::ok_pairs($_[0]); my %h = @$p[1 .. $#$p]; $h{redemption_id} }
sub states { my ($items) = @_; +{ map { ($_->{code} => $_->{state}) } @$items } }

campaign($redis, 'p10', kind => 'percent', value => 1000, min_amount => 5000);
campaign($redis, 'a5', kind => 'amount', value => 500);
campaign($redis, 'gone', kind => 'amount', value => 100, status => 'paused');
campaign($redis, 'gift', kind => 'gift_card', value => 3000);

# --- given by an operator ----------------------------------------------------
code($redis, 'ASSIGNED1', campaign => 'p10', customer => 'ann');
is_deeply(wallet_keys('ann'), ['ASSIGNED1'],
          'voucher_code_set with a customer puts the code in his wallet');
code($redis, 'ASSIGNED1', customer => 'bea');
is_deeply([wallet_keys('ann'), wallet_keys('bea')], [[], ['ASSIGNED1']],
          'given to another customer: it moves wallets');
code($redis, 'ASSIGNED1', customer => '');
is_deeply(wallet_keys('bea'), [], 'given to nobody: out of the wallet');

my $add = f('voucher_codes_add', 1, '{v}:k:a5', 'new', 0, 'code,customer',
            'BULK1', 'cat', 'BULK2', '', 'BULK3', 'cat');
is_deeply($add, [3, []], 'codes_add with a customer column');
is_deeply(wallet_keys('cat'), ['BULK1', 'BULK3'],
          'bulk-issued codes with a customer are in his wallet');
$add = f('voucher_codes_add', 1, '{v}:k:a5', 'new', 0, 'code,customer',
         'BULK4', 'dan', 'BULK1', 'dan');
like(err_of($add), qr/exists \(row 2\)/, 'a bulk add that fails half-way');
is_deeply(wallet_keys('dan'), [], '... leaves no code in a wallet');

is(f('voucher_wallet_add', 1, '{v}:w:cat', 'bulk2'), 1,
   'voucher_wallet_add: 1 (the code in any case)');
is(f('voucher_wallet_add', 1, '{v}:w:cat', 'BULK2'), 0, '... 0 the second time');
like(err_of(f('voucher_wallet_add', 1, '{v}:w:cat', 'NOPE')),
     qr/invalid_field code: not found/, 'an unknown code is an error');
code($redis, 'ANNS', campaign => 'a5', customer => 'ann');
like(err_of(f('voucher_wallet_add', 1, '{v}:w:cat', 'ANNS')),
     qr/assigned to another customer/, "another customer's code is an error");
is(f('voucher_wallet_del', 1, '{v}:w:cat', 'BULK2'), 1, 'voucher_wallet_del');
is_deeply(wallet_keys('cat'), ['BULK1', 'BULK3'], '... takes it out');

# --- delivered by voucherd ---------------------------------------------------
{
    f('voucher_auto_set', 1, '{v}:a:a5', '{}', 0);
    my $q = f('voucher_run_add', 1, '{v}:a:a5', 'r1', 0, 'line', 'unique',
              '', '', 0, 'always', redis_now($redis), 0, 'eve', 'fay');
    is_deeply($q, [2, 0, 0], 'a run queues two deliveries');
    is_deeply(wallet_keys('eve'), [], 'queued: not in the wallet yet');
    my $c = f('voucher_delivery_claim', 1, '{v}:queue', 1, 60000, 'w1', 10);
    is(scalar @$c, 2, 'both claimed');
    # each its unique code, made just before it is sent
    my %item;
    for my $d (@$c) {
        my ($member) = $d->[0] =~ /\t([^\t]+)$/;
        my $code = $member eq 'eve' ? 'DELIV1' : 'DELIV2';
        is_deeply(f('voucher_delivery_code', 1, '{v}:queue', $d->[0], 'w1',
                    $code), ['ok', $code], "$member gets $code");
        $item{$code} = $d->[0];
    }
    is_deeply(wallet_keys('eve'), [], 'a code made: not in the wallet yet');
    is(f('voucher_delivery_done', 1, '{v}:queue', $item{DELIV1}, 'w1', 'sent',
         0, ''), 1, 'one sent');
    is(f('voucher_delivery_done', 1, '{v}:queue', $item{DELIV2}, 'w1', 'dead',
         0, 'gateway says no'), 1, 'one dead');
    is_deeply([wallet_keys('eve'), wallet_keys('fay')], [['DELIV1'], []],
              'a code sent is in the member\'s wallet; one never sent is not');
}

# --- states -----------------------------------------------------------------
{
    my $now = redis_now($redis);
    code($redis, 'USE1', campaign => 'a5', max_uses => 1);
    code($redis, 'RES1', campaign => 'a5', max_uses => 1);
    code($redis, 'OLD1', campaign => 'a5', ends_at => $now - 10);
    code($redis, 'SOON', campaign => 'a5', starts_at => $now + 3600);
    code($redis, 'OFF1', campaign => 'a5', status => 'disabled');
    code($redis, 'PAUS', campaign => 'gone');
    code($redis, 'GIFT1', campaign => 'gift');
    code($redis, 'MIN1', campaign => 'p10');
    for my $c (qw(USE1 RES1 OLD1 SOON OFF1 PAUS GIFT1 MIN1)) {
        is(f('voucher_wallet_add', 1, '{v}:w:gus', $c), 1, "gus gets $c");
    }
    my $r = f('voucher_redeem', 1, '{v}:c:USE1', 'gus', 1000, '', '', '', 0);
    is($r->[0], 'ok', 'USE1 redeemed');
    $r = f('voucher_reserve', 1, '{v}:c:RES1', 60000, 'gus', 1000, '', '', '',
           0);
    is($r->[0], 'ok', 'RES1 reserved');
    my ($items) = page('gus');
    is_deeply(states($items), {
        USE1 => 'used', RES1 => 'reserved', OLD1 => 'expired',
        SOON => 'not_started', OFF1 => 'inactive', PAUS => 'inactive',
        GIFT1 => 'usable', MIN1 => 'usable',
    }, 'every state, as a validate judges the code');
    my %by = map { ($_->{code} => $_) } @$items;
    is($by{RES1}{redemption_id}, rid($r),
       'a reserved code names its reservation');
    is($by{OFF1}{reason}, 'code_inactive', 'an inactive code says why');
    is($by{OLD1}{reason}, 'expired', 'so does an expired one');
    ok(!exists $by{MIN1}{reason}, 'a usable one has no reason');
    is_deeply([@{ $by{MIN1} }{qw(campaign kind percent_bp min_amount)}],
              ['p10', 'percent', 1000, 5000], 'the offer of a percent code');
    is_deeply([@{ $by{GIFT1} }{qw(kind balance)}], ['gift_card', 3000],
              'a gift card shows its balance');
    is($by{USE1}{uses_left}, undef, 'a used code has no uses_left');
    like($by{USE1}{added_at}, qr/^\d{10}$/, 'added_at in seconds');

    # the hold ends: used for good once confirmed, usable once released
    my $id = $by{RES1}{redemption_id};
    f('voucher_release', 1, '{v}:log', $id, '');
    is(states((page('gus'))[0])->{RES1}, 'usable', 'released: usable again');
    $r = f('voucher_reserve', 1, '{v}:c:RES1', 60000, 'gus', 1000, '', '', '',
           0);
    f('voucher_confirm', 1, '{v}:log', rid($r), '');
    is(states((page('gus'))[0])->{RES1}, 'used', 'confirmed: used');
}

# --- paging -----------------------------------------------------------------
{
    # 7 codes, several in the same millisecond: pages of 3 give each once
    code($redis, "PG$_", campaign => 'a5') for 1 .. 7;
    f('voucher_wallet_add', 1, '{v}:w:pam', "PG$_") for 1 .. 7;
    my ($cursor, @seen, $pages) = ('0');
    do {
        my ($items, $next) = page('pam', $cursor, 3);
        push @seen, map { $_->{code} } @$items;
        # codes added while paging do not make a page repeat or skip one
        if (!$pages++) {
            code($redis, 'PGNEW', campaign => 'a5');
            f('voucher_wallet_add', 1, '{v}:w:pam', 'PGNEW');
        }
        $cursor = $next;
    } while ($cursor ne '0');
    is_deeply([sort @seen], [map { "PG$_" } 1 .. 7],
              'pages of 3: every code once, a code added meanwhile not '
              . 'repeated in them');
    is($pages, 3, 'three pages');
    my ($all) = page('pam');
    is($all->[0]{code}, 'PGNEW', 'newest first');
    for my $bad (['x', 3], ['1:2', 3], ['0', 0], ['0', 101], ['0']) {
        like(err_of(f('voucher_wallet', 1, '{v}:w:pam', @$bad)), qr/bad_args/,
             "voucher_wallet @$bad: bad_args");
    }
}

# --- saved by the customer, through nginx -------------------------------------
my $save = sub { post($ng, 'wallet_save', {customer => $_[0], code => $_[1]}) };
{
    code($redis, 'SHARED5', campaign => 'a5');
    my $r = $save->('hal', 'shared-5');
    is($r->{status}, 200, 'wallet_save: 200');
    is_deeply($r->{json}, {
        saved => JSON::PP::true, customer => 'hal', added => 1,
        code => 'SHARED5', campaign => 'a5', state => 'usable',
        kind => 'amount', value => 500, added_at => $r->{json}{added_at},
    }, 'the answer: the code as the wallet lists it');
    is($save->('hal', 'SHARED5')->{json}{added}, 0, 'saved twice: added 0');

    my $before = snapshot($redis);
    $r = $save->('hal', 'NOPE1');
    is($r->{status}, 404, 'an unknown code: 404');
    is($r->{json}{reason}, 'not_found', '... not_found');
    is($save->('hal', 'ANNS')->{json}{reason}, 'customer_mismatch',
       "another customer's code: customer_mismatch");
    is($save->('hal', 'OFF1')->{json}{reason}, 'code_inactive',
       'a disabled code: code_inactive');
    is_deeply(snapshot($redis), $before, 'refused saves change nothing');

    # a forged code never reaches Redis: the answer of an unknown one
    (my $forged = $mac[0]) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    $redis->reset_stats;
    $r = $save->('hal', $forged);
    is_deeply([$r->{status}, $r->{json}{reason}], [404, 'not_found'],
              'a forged code: not_found');
    ok(!$redis->commandstats->{fcall}, '... without a Redis call');

    # a full wallet refuses a save
    for my $i (1 .. 500) { $redis->cmd('ZADD', '{v}:w:ivy', $i, "FILL$i") }
    $r = $save->('ivy', 'SHARED5');
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{max_codes}],
              [409, 'wallet_full', 500], 'a full wallet: 409 wallet_full');

    # bad input: 400, no Redis call
    $redis->reset_stats;
    for my $case ([{code => 'A1'}, 'missing_field', 'customer'],
                  [{customer => 'x'}, 'missing_field', 'code'],
                  [{customer => '', code => 'A1'}, 'invalid_field', 'customer'],
                  [{customer => 'x', code => 'A1', n => 1}, 'unknown_field', 'n']) {
        my $r = post($ng, 'wallet_save', $case->[0]);
        is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{field}],
                  [400, $case->[1], $case->[2]], "wallet_save: $case->[1] $case->[2]");
    }
    ok(!$redis->commandstats->{fcall}, '... none reached Redis');
}

# --- listed through nginx ---------------------------------------------------
{
    my $r = post($ng, 'wallet', {customer => 'gus', count => 3});
    is($r->{status}, 200, 'wallet: 200');
    is($r->{json}{wallet}, JSON::PP::true, '"wallet": true');
    is(ref $r->{json}{codes}, 'ARRAY', 'codes is a JSON array');
    is(scalar @{ $r->{json}{codes} }, 3, 'of 3');
    my @all = @{ $r->{json}{codes} };
    my $cursor = $r->{json}{next_cursor};
    while ($cursor ne '0') {
        $r = post($ng, 'wallet', {customer => 'gus', count => 3,
                                  cursor => $cursor});
        push @all, @{ $r->{json}{codes} };
        $cursor = $r->{json}{next_cursor};
    }
    is_deeply(states(\@all), states((page('gus'))[0]),
              'the pages through nginx hold what the function lists');
    $r = post($ng, 'wallet', {customer => 'nobody'});
    is_deeply([$r->{status}, $r->{json}{codes}, $r->{json}{next_cursor}],
              [200, [], '0'], 'an empty wallet: [] and cursor "0"');

    $redis->reset_stats;
    for my $case ([{}, 'missing_field', 'customer'],
                  [{customer => 'g', cursor => 'abc'}, 'invalid_field', 'cursor'],
                  [{customer => 'g', count => 101}, 'invalid_field', 'count'],
                  [{customer => 'g', code => 'X'}, 'unknown_field', 'code']) {
        my $r = post($ng, 'wallet', $case->[0]);
        is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{field}],
                  [400, $case->[1], $case->[2]], "wallet: $case->[1] $case->[2]");
    }
    ok(!$redis->commandstats->{fcall}, '... none reached Redis');
}

# --- saves are limited as validates are ----------------------------------------
{
    my $lim = sub {
        VT::http($ng->port, 'POST', "/limited/wallet_save?who=$_[0]",
                 body => {customer => 'jo', code => $_[1]});
    };
    is($lim->('m1', "GUESS$_")->{json}{reason}, 'not_found', "guess $_")
        for 1 .. 3;
    my $r = $lim->('m1', 'SHARED5');
    is_deeply([$r->{status}, $r->{json}{reason}], [429, 'locked_out'],
              'three unknown codes saved: the key is locked out');
    is($lim->('m2', 'SHARED5')->{status}, 200, 'another key still saves');
}

$ng->check_log;
done_testing;
