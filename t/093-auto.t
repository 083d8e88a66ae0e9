# Automatic promotions: a campaign with auto_apply 1 applies without a
# code, through the same evaluation: qualify shows it (source "auto"), a
# stack adds it when it fits the order and the codes named (or alone, with
# "codes": []), its part is counted, in the trail and rolled back like a
# code's; a single-code call does not apply it, and nobody can type it.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(server => api_server() . <<'EOT');
        location = /vouchers/qualify { voucher_api qualify; }
EOT

sub f { $redis->cmd('FCALL', @_) }
sub err_of { my $x = shift; ref $x && ref $x ne 'ARRAY' ? $x->message : '' }
sub h { my $x = shift; ref $x eq 'ARRAY' ? +{ @$x[1 .. $#$x] } : {} }
sub parts {
    my @l = @{ h($_[0])->{codes} || [] };
    shift @l;
    return [map { my %p = @$_; [@p{qw(code discount amount_after)}] } @l];
}
sub stack {
    my ($op, $codes, %o) = @_;
    my @items = @{ $o{items} || [] };
    return f('voucher_stack', 1, '{v}:log', $op, '', $o{channel} // '',
             scalar @$codes, @$codes, $o{customer} // '', $o{amount} // 0,
             '', '', $o{idem} // '', scalar @items, map { @$_ } @items);
}
my @cart = (['BOOT', 'shoes', 6000, 1], ['TEA', 'tea', 4000, 1]);

campaign($redis, 'shoes10', kind => 'percent', value => 1000,
         include_categories => 'shoes', auto_apply => 1,
         stacking => 'combinable', stack_category => 'shoes');
campaign($redis, 'flat1', kind => 'amount', value => 100, auto_apply => 1);
campaign($redis, 'a7', kind => 'amount', value => 700,
         stacking => 'combinable');
code($redis, 'A7', campaign => 'a7');

is_deeply([sort @{ $redis->cmd('SMEMBERS', '{v}:auto') }],
          ['flat1', 'shoes10'], 'auto_apply 1: the campaign is automatic');
is({ @{ f('voucher_campaign_get', 1, '{v}:k:shoes10') } }->{auto_apply}, 1,
   'campaign_get shows auto_apply');

# --- qualify shows them ---------------------------------------------------
{
    my $q = h(f('voucher_qualify', 1, '{v}:public', '', 0, 1, 'A7', 0, 'c1',
                10000, '', '', '', scalar @cart, map { @$_ } @cart));
    my @a = @{ $q->{applicable} };
    shift @a;
    my %a = map { my %p = @$_; ($p{code} => \%p) } @a;
    is_deeply([@{ $a{'auto:shoes10'} }{qw(campaign source discount)}],
              ['shoes10', 'auto', 600], 'an automatic promotion in qualify');
    is($a{'auto:flat1'}{source}, 'auto', 'and the other');
    my $b = h(f('voucher_qualify', 1, '{v}:public', '', 1, 1, 'A7', 0, 'c1',
                10000, '', '', '', scalar @cart, map { @$_ } @cart));
    my $best = h(['x', @{ $b->{best} }]);
    my @bl = @{ $best->{codes} };
    shift @bl;
    is_deeply([map { { @$_ }->{code} } @bl], ['A7', 'auto:shoes10'],
              'the best: the code and the promotion that stacks with it');
    is($best->{discount}, 700 + 600, '... 7.00 then 10% of the 60.00 shoes');
}

# --- a stack adds what fits -----------------------------------------------------
my $parent;
{
    my $x = stack('validate', ['A7'], amount => 10000, items => \@cart);
    is_deeply(parts($x), [['A7', 700, 9300], ['auto:shoes10', 600, 8700]],
              'a stack with a code gets the combinable promotion; the '
              . 'exclusive one stays out');
    my @l = @{ h($x)->{codes} };
    is({ @{ $l[2] } }->{automatic}, 1, 'marked automatic');
    $x = stack('redeem', [], amount => 10000, items => \@cart);
    is_deeply(parts($x), [['auto:shoes10', 600, 9400]],
              'codes []: the promotions alone, the largest that fits first '
              . '(the exclusive one cannot join it)');
    $x = stack('redeem', ['A7'], amount => 10000, items => \@cart,
               customer => 'c2');
    is($x->[0], 'ok', 'redeemed with the promotion');
    $parent = h($x)->{redemption_id};
    is($redis->cmd('HGET', '{v}:k:shoes10', 'redeemed'), 2,
       "the promotion's campaign counts its redemptions");
    my $e = { @{ $redis->cmd('XRANGE', '{v}:log', $parent, $parent)->[0][1] } };
    is($e->{code}, 'A7,auto:shoes10', 'the parent lists it');
    my $rb = f('voucher_rollback', 1, '{v}:log', $parent, '', '');
    is(h($rb)->{amount_rolled_back}, 1300, 'a rollback gives its part back too');
    is($redis->cmd('HGET', '{v}:k:shoes10', 'redeemed'), 1,
       '... and its count');
    $x = stack('validate', [], amount => 10000, items => [['TEA', 'tea', 10000, 1]]);
    is_deeply(parts($x), [['auto:flat1', 100, 9900]],
              'no shoes: the other promotion applies');
}

# --- through nginx, and what does not apply it ------------------------------------
{
    my $r = post($ng, 'validate', {codes => [], order => {amount => 10000,
             items => [map { {sku => $_->[0], category => $_->[1],
                              price => $_->[2]} } @cart]}});
    is_deeply([$r->{status}, $r->{json}{discount}, $r->{json}{amount_after}],
              [200, 600, 9400], 'the cart price with "codes": [] through nginx');
    $r = post($ng, 'redeem', {code => 'A7', order => {amount => 10000}});
    is_deeply([$r->{status}, $r->{json}{discount}], [200, 700],
              'a single-code redeem does not apply promotions');
    $r = post($ng, 'redeem', {code => 'auto:flat1', order => {amount => 10000}});
    is_deeply([$r->{status}, $r->{json}{reason}, $r->{json}{code}],
              [404, 'not_found', 'AUTO:FLAT1'], 'nobody can type one');
}

# --- switched off, and the limit -------------------------------------------------
{
    campaign($redis, 'flat1', auto_apply => 0);
    is_deeply(parts(stack('validate', [], amount => 10000,
                          items => [['TEA', 'tea', 10000, 1]])), [],
              'auto_apply 0: it no longer applies');
    ok($redis->cmd('EXISTS', '{v}:c:auto:flat1'),
       'its code stays, for the redemptions it made');
    campaign($redis, "many$_", kind => 'amount', value => 1, auto_apply => 1)
        for 1 .. 19;
    like(err_of(f('voucher_campaign_set', 1, '{v}:k:one-more', 'kind',
                  'amount', 'auto_apply', 1)),
         qr/invalid_field auto_apply: at most 20/, 'at most 20 automatic '
         . 'campaigns');
    ok(!$redis->cmd('EXISTS', '{v}:k:one-more'), '... and nothing written');
}

$ng->check_log;
done_testing;
