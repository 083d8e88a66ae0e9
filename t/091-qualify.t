# Qualify: the codes that fit an order, best first, from the customer's
# wallet, the public codes and the codes the request names, each judged as
# a validate judges it; those that do not fit with the reason and what is
# missing.  Read-only, one call (FCALL_RO), through nginx and directly.
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
my @mac = `$vcode issue $dir/k.key SALE 8 5 1`;
chomp @mac;

my ($redis, $ng) = start_pair(
    http => <<"EOT",
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $dir/k.key;
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_pattern "^[A-Z][A-Z0-9]{1,15}\$";
EOT
    server => api_server() . <<'EOT');
        location = /vouchers/qualify { voucher_api qualify; }
EOT

sub f { $redis->cmd('FCALL', @_) }
sub err_of { my $x = shift; ref $x && ref $x ne 'ARRAY' ? $x->message : '' }

# the order's arguments, as validate's
sub oargs {
    my %o = @_;
    my @items = @{ $o{items} || [] };
    return ($o{customer} // '', $o{amount} // 0, $o{currency} // '', '', '',
            scalar @items, map { @$_ } @items);
}
# qualify through the function, as perl: {applicable => [{...}], ...}
sub qualify {
    my (%o) = @_;
    my @named = @{ delete $o{codes} || [] };
    my @forged = @{ delete $o{forged} || [] };
    my $r = f('voucher_qualify', 1, '{v}:public', delete $o{channel} // '',
              delete $o{best} ? 1 : 0, scalar @named, @named,
              scalar @forged, @forged, oargs(%o));
    die explain($r) unless ref $r eq 'ARRAY' && $r->[0] eq 'ok';
    my %h = @$r[1 .. $#$r];
    for my $k (qw(applicable inapplicable)) {
        my @l = @{ $h{$k} };
        shift @l;
        $h{$k} = [map { +{@$_} } @l];
    }
    return \%h;
}
sub codes_of { [map { $_->{code} } @{ $_[0] }] }
sub by_code { +{ map { ($_->{code} => $_) } @{ $_[0] } } }

campaign($redis, 'p10', kind => 'percent', value => 1000, min_amount => 50000);
campaign($redis, 'a70', kind => 'amount', value => 7000);
campaign($redis, 'a30', kind => 'amount', value => 3000,
         channels => 'web,app');
campaign($redis, 'thb', kind => 'amount', value => 100, currency => 'THB');
campaign($redis, 'shoe', kind => 'percent', value => 2000,
         include_categories => 'shoes');
campaign($redis, 'off', kind => 'amount', value => 100, status => 'paused');
code($redis, 'TEN', campaign => 'p10', customer => 'ann');
code($redis, 'SEVENTY', campaign => 'a70', customer => 'ann', max_uses => 1);
code($redis, 'APPONLY', campaign => 'a30', customer => 'ann');
code($redis, 'BAHT', campaign => 'thb');
code($redis, 'SHOES20', campaign => 'shoe');
code($redis, 'PAUSED', campaign => 'off');
code($redis, 'BOBS', campaign => 'a70', customer => 'bob');
is(f('voucher_public_add', 1, '{v}:public', 'baht'), 1, 'a public code');
is(f('voucher_public_add', 1, '{v}:public', 'SHOES20'), 1, 'another');
is(f('voucher_public_add', 1, '{v}:public', 'SHOES20'), 0, 'twice: 0');
like(err_of(f('voucher_public_add', 1, '{v}:public', 'BOBS')),
     qr/assigned to a customer/, "a customer's code cannot be public");
like(err_of(f('voucher_public_add', 1, '{v}:public', 'NOPE')),
     qr/not found/, 'nor an unknown one');

# --- best first, and why not ---------------------------------------------------
{
    my $q = qualify(customer => 'ann', amount => 40000, currency => 'EUR',
                    channel => 'pos',
                    items => [['BOOT', 'shoes', 30000, 1],
                              ['SOCK', 'socks', 10000, 1]]);
    is($q->{order_amount}, 40000, 'order_amount');
    is_deeply(codes_of($q->{applicable}), ['SEVENTY', 'SHOES20'],
              'applicable, the biggest discount first');
    my $a = by_code($q->{applicable});
    is_deeply([@{ $a->{SEVENTY} }{qw(discount amount_after source kind value
                                     stacking)}],
              [7000, 33000, 'wallet', 'amount', 7000, 'exclusive'],
              'a wallet code: its discount and the amount after');
    is_deeply([@{ $a->{SHOES20} }{qw(discount amount_after source percent_bp)}],
              [6000, 34000, 'public', 2000],
              'a public percent on the shoes only: 20% of 300.00');
    my $n = by_code($q->{inapplicable});
    is_deeply($n->{TEN}, {code => 'TEN', campaign => 'p10', source => 'wallet',
                          reason => 'order_below_minimum', min_amount => 50000,
                          missing_amount => 10000},
              'below the minimum: what is missing ("add 100.00")');
    is_deeply([@{ $n->{APPONLY} }{qw(reason channels)}],
              ['channel_mismatch', 'web,app'],
              'a campaign for other channels says which');
    is_deeply([@{ $n->{BAHT} }{qw(reason currency source)}],
              ['currency_mismatch', 'THB', 'public'],
              'another currency says which');
    is($q->{inapplicable}[0]{code}, 'TEN',
       'the nearest to applying comes first among the others');

    # the same discounts as a validate
    for my $c (qw(SEVENTY SHOES20)) {
        my $v = VT::ok_pairs(f('voucher_validate', 1, "{v}:c:$c",
                               oargs(customer => 'ann', amount => 40000,
                                     currency => 'EUR',
                                     items => [['BOOT', 'shoes', 30000, 1],
                                               ['SOCK', 'socks', 10000, 1]])));
        my %v = @$v[1 .. $#$v];
        is($v{discount}, $a->{$c}{discount}, "$c: as validate prices it");
    }

    $q = qualify(customer => 'ann', amount => 60000, channel => 'app');
    is_deeply(codes_of($q->{applicable}), ['SEVENTY', 'TEN', 'APPONLY'],
              'from the right channel, at 600.00: all three fit, best first');
    $q = qualify(customer => 'ann', amount => 60000);
    ok(grep({ $_ eq 'APPONLY' } @{ codes_of($q->{applicable}) }),
       'no channel named: channels are not checked');
}

# --- states, named codes, forged codes ----------------------------------------
{
    my $r = f('voucher_redeem', 1, '{v}:c:SEVENTY', oargs(customer => 'ann',
                                                          amount => 9000));
    is($r->[0], 'ok', 'SEVENTY used');
    my $q = qualify(customer => 'ann', amount => 60000,
                    codes => ['PAUSED', 'NOPE', 'BOBS', 'TEN'],
                    forged => ['SALEFORGED']);
    my $n = by_code($q->{inapplicable});
    is($n->{SEVENTY}{reason}, 'code_exhausted', 'a used wallet code: why');
    is($n->{PAUSED}{reason}, 'campaign_inactive', 'a named paused code');
    is($n->{PAUSED}{source}, 'request', '... from the request');
    is($n->{NOPE}{reason}, 'not_found', 'a named unknown code');
    is($n->{BOBS}{reason}, 'customer_mismatch', "another customer's code");
    is($n->{SALEFORGED}{reason}, 'not_found', 'a forged code: not_found');
    is(scalar(grep { $_->{code} eq 'TEN' } @{ $q->{applicable} }), 1,
       'a code both named and in the wallet is judged once');
    $q = qualify(amount => 60000);
    ok(!exists $q->{customer}, 'no customer: no wallet');
    is_deeply([sort @{ codes_of([@{ $q->{applicable} },
                                 @{ $q->{inapplicable} }]) }],
              ['BAHT', 'SHOES20'], '... the public codes only');
    is(by_code($q->{inapplicable})->{SHOES20}{reason}, 'items_required',
       'a public item-scoped code without items');
    like(err_of(f('voucher_qualify', 1, '{v}:public', '', '2', 0, 0,
                  oargs(amount => 1))), qr/bad_args/, 'best must be 0 or 1');
    like(err_of(f('voucher_qualify', 1, '{v}:public', '', '0', 31,
                  map("C$_", 1 .. 31), 0, oargs(amount => 1))),
         qr/bad_args/, 'at most 30 codes');
    like(err_of(f('voucher_qualify', 1, '{v}:c:X', '', '0', 0, 0,
                  oargs(amount => 1))), qr/bad_key/, 'the key is {v}:public');
}

# --- through nginx -------------------------------------------------------------
{
    my $before = snapshot($redis);
    $redis->reset_stats;
    (my $forged = $mac[0]) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    my $r = post($ng, 'qualify', {customer => 'ann', codes => ['pau-sed', $forged],
                                  order => {amount => 60000, channel => 'web'}});
    is($r->{status}, 200, 'qualify: 200');
    is($r->{json}{qualified}, JSON::PP::true, '"qualified": true');
    is_deeply([map { $_->{code} } @{ $r->{json}{applicable} }],
              ['TEN', 'APPONLY'], 'applicable, best first');
    is_deeply($r->{json}{applicable}[0],
              {code => 'TEN', campaign => 'p10', source => 'wallet',
               discount => 6000, amount_after => 54000, kind => 'percent',
               percent_bp => 1000, stacking => 'exclusive'},
              'a code as the JSON shows it');
    my $n = by_code($r->{json}{inapplicable});
    is($n->{PAUSED}{reason}, 'campaign_inactive', 'a named code, normalised');
    is($n->{$forged}{reason}, 'not_found', 'a forged code');
    ok(!exists $r->{json}{best}, 'no best unless asked');
    $r = post($ng, 'qualify', {customer => 'ann', best => JSON::PP::true,
                               order => {amount => 60000, channel => 'web'}});
    is_deeply([map { [@$_{qw(code discount amount_after)}] }
               @{ $r->{json}{best}{codes} }],
              [['TEN', 6000, 54000]],
              'best: these codes are exclusive, so the best one alone');
    is_deeply([@{ $r->{json}{best} }{qw(discount amount_after)}],
              [6000, 54000], "best's total");
    my $st = $redis->commandstats;
    is($st->{fcall_ro}, 2, 'one FCALL_RO each');
    ok(!$st->{fcall}, 'no FCALL');
    is_deeply(snapshot($redis), $before, 'nothing changed');

    $redis->reset_stats;
    for my $case ([{}, 400, 'missing_field', 'order'],
                  [{order => {amount => 1}, codes => ['A', 7]}, 400,
                   'invalid_code', 'codes[1]'],
                  [{order => {amount => 1}, codes => [' - ']}, 400,
                   'invalid_code', 'codes[0]'],
                  [{order => {amount => 1}, best => 'yes'}, 400,
                   'invalid_field', 'best'],
                  [{order => {amount => 1}, code => 'A'}, 400,
                   'unknown_field', 'code']) {
        my $r = post($ng, 'qualify', $case->[0]);
        is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{field}],
                  [@$case[1 .. 3]], "qualify: $case->[2] $case->[3]");
    }
    ok(!$redis->commandstats->{fcall_ro}, '... none reached Redis');
}

$ng->check_log;
done_testing;
