# Offline checks in the nginx worker: normalisation of what people type,
# issued codes with a keyed MAC (typos and forgeries die without Redis),
# vanity codes by pattern, key rotation with a grace period, and no oracle:
# a refused code gets the very answer of an unknown code.
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
system($vcode, 'genkey', "$dir/new.key") == 0 or die;
system($vcode, 'genkey', "$dir/old.key") == 0 or die;
sub issue { my ($key, $n) = @_; my @c = `$vcode issue $dir/$key SALE 8 5 $n`; chomp @c; @c }

my @new = issue('new.key', 3);
my @old = issue('old.key', 2);
# keypad codes: digits only, a fixed suffix
my @pin = `$vcode issue $dir/new.key 9 10 6 3 0123456789 TH`;
chomp @pin;

my $now = time;
my $http = <<"EOT";
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $dir/new.key;
    voucher_code_key_previous $dir/old.key until=@{[ $now + 3600 ]};
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_issued 9 body=10 mac=6 charset=0123456789 suffix=th;
    voucher_code_pattern "^[A-Z]{4,12}\$";
EOT
my ($redis, $ng) = start_pair(http => $http, server => api_server() . <<'EOT');
        keepalive_requests 1000000;
        location = /debug/validate { voucher_api validate; voucher_code_debug on; }
EOT

campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, $_, campaign => 'c') for @new, @old, @pin, 'BLACKFRIDAY';
my $o = {amount => 1000};

# --- what a customer types --------------------------------------------------
my $typed = lc($new[0]);
$typed =~ s/^(....)(....)(....)(.*)$/$1-$2 $3-$4/;
$typed =~ tr/01/oi/;                       # look-alikes for 0 and 1
my $r = post($ng, 'validate', {code => $typed, order => $o});
is($r->{status}, 200, "typed as \"$typed\": valid");
is($r->{json}{code}, $new[0], 'answered with the stored form');
is(post($ng, 'validate', {code => 'black-friday', order => $o})->{status}, 200,
   'a vanity code by pattern, typed in lower case with a dash');
is(post($ng, 'redeem', {code => " \L$new[1]\E ", order => $o})->{status}, 200,
   'redeem of a code typed with spaces around it');

# --- another charset and a suffix ------------------------------------------------
like($pin[0], qr/^9\d{16}TH$/, 'a keypad code: 9, 16 digits, TH');
is(post($ng, 'validate', {code => lc($pin[0]), order => $o})->{status}, 200,
   'it passes the offline check (the suffix typed in lower case)');
{
    my $calls0 = $redis->hot_calls;
    my $bad = $pin[1];
    substr($bad, 5, 1) = substr($bad, 5, 1) eq '7' ? '8' : '7';
    is(post($ng, 'validate', {code => $bad, order => $o})->{status}, 404,
       'a mistyped keypad code: 404');
    (my $nosfx = $pin[1]) =~ s/TH$/TX/;
    is(post($ng, 'validate', {code => $nosfx, order => $o})->{status}, 404,
       'another suffix: 404');
    (my $letter = $pin[1]) =~ s/^9(\d)/9A/;
    is(post($ng, 'validate', {code => $letter, order => $o})->{status}, 404,
       'a letter where the charset has none: 404');
    is(($redis->hot_calls) - $calls0, 0, '... all three without Redis');
}

# --- forged and mistyped codes die in the worker ----------------------------
my $calls = $redis->hot_calls;

my $typo = $new[2];
substr($typo, 6, 1) = substr($typo, 6, 1) eq 'A' ? 'B' : 'A';
my $forged = post($ng, 'validate', {code => $typo, order => $o});
my $unknown = post($ng, 'validate', {code => 'NOSUCHCODE', order => $o});  # passes the pattern
is($unknown->{status}, 404, 'an unknown code that reaches Redis: 404');
is($forged->{status}, 404, 'a mistyped code: 404');
(my $f = $forged->{body}) =~ s/\Q$typo\E/X/;
(my $u = $unknown->{body}) =~ s/NOSUCHCODE/X/;
is($f, $u, 'the same answer as an unknown code, byte for byte (no oracle)');
is_deeply([map { $forged->{headers}{$_} } qw(content-type cache-control)],
          [map { $unknown->{headers}{$_} } qw(content-type cache-control)],
          'and the same headers');
is(($redis->hot_calls) - $calls, 1, 'only the unknown code reached Redis');

# the worker renders that answer once per operation and keeps all but the
# code: later ones, other codes, codes needing escapes and other operations
# still match Redis' byte for byte
for my $case (['validate', 'SALE' . ('Q' x 13)], ['validate', 'SALE"\\' . ('Q' x 11)],
              ['redeem', $typo], ['redeem', 'SALE' . ('R' x 13)]) {
    my ($op, $c) = @$case;
    my $off = post($ng, $op, {code => $c, order => $o});
    my $red = post($ng, $op, {code => 'NOSUCHCODE', order => $o});
    (my $want = $red->{body}) =~ s/NOSUCHCODE/X/;
    (my $esc = $c) =~ s/(["\\])/\\$1/g;
    (my $got = $off->{body}) =~ s/\Q$esc\E/X/;
    is($off->{status}, 404, "$op of a refused code \"$c\": 404");
    is($got, $want, "... the answer Redis gives an unknown code, byte for byte");
}

# 100,000 random well-formed codes: zero Redis commands
my @alpha = split //, '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
my @reqs;
for (1 .. 100_000) {
    my $c = 'SALE' . join('', map { $alpha[rand @alpha] } 1 .. 13);
    push @reqs, ['POST', '/vouchers/validate',
                 qq({"code":"$c","order":{"amount":1000}})];
}
my $stats = $redis->cmd('INFO', 'commandstats');
$calls = $redis->hot_calls;
my $res = http_pipeline($ng->port, \@reqs, conns => 16, timeout => 300);
my $n404 = grep { $_ && $_->[0] == 404 && $_->[1] =~ /"reason":"not_found"/ } @$res;
is($n404, 100_000, '100,000 random codes: every one 404 not_found');
is(($redis->hot_calls) - $calls, 0, '... with zero FCALLs');
my $after = $redis->cmd('INFO', 'commandstats');
s/usec[^,]*//g for $stats, $after;
my @cmds = grep { !/cmdstat_(info)\b/ } split /\n/, $after;
my @was = grep { !/cmdstat_(info)\b/ } split /\n/, $stats;
is_deeply(\@cmds, \@was, '... and no Redis command at all (INFO commandstats unchanged)');

# malformed codes
for my $m ('SALE1234', 'ab$cd', 'TOOLONGFORTHEPATTERNREALLY', "SALE" . ('U' x 13)) {
    my $x = post($ng, 'validate', {code => $m, order => $o});
    is($x->{status}, 404, "\"$m\" refused offline: 404 not_found");
}

# voucher_code_debug tells them apart, for operators
$r = http($ng->port, 'POST', '/debug/validate', body => {code => $typo, order => $o});
is($r->{json}{reason}, 'code_forged', 'debug: code_forged');
$r = http($ng->port, 'POST', '/debug/validate', body => {code => 'ab$cd', order => $o});
is($r->{json}{reason}, 'code_malformed', 'debug: code_malformed');

# --- key rotation -------------------------------------------------------------
is(post($ng, 'validate', {code => $old[0], order => $o})->{status}, 200,
   'a code under the previous key works during the grace period');
$http =~ s/until=\d+/until=@{[ $now - 1 ]}/;
$ng->reload(http => $http);
is(post($ng, 'validate', {code => $old[1], order => $o})->{status}, 404,
   'and not after it');
is(post($ng, 'validate', {code => $new[0], order => $o})->{status}, 200,
   'the current key still works');

# --- configuration errors ---------------------------------------------------
open my $bad, '>', "$dir/bad.key" or die; print $bad "not hex\n"; close $bad;
for my $case (
    ["voucher_code_key $dir/bad.key;", qr/bad\.key/],
    ["voucher_code_key $dir/none.key;", qr/none\.key/],
    ["voucher_code_issued SALE body=8 mac=5;", qr/needs "voucher_code_key"/],
    ["voucher_code_key $dir/new.key; voucher_code_issued SALE body=0 mac=5;", qr/invalid parameter/],
    ["voucher_code_key $dir/new.key; voucher_code_issued SALE body=8 mac=5 charset=01O;", qr/no I, L, O, U/],
    ["voucher_code_key $dir/new.key; voucher_code_issued SALE body=8 mac=5 charset=0;", qr/2 to 32 characters/],
    ["voucher_code_key $dir/new.key; voucher_code_issued SALE body=8 mac=5 suffix=\x01;", qr/invalid "suffix=/],
    ["voucher_code_key $dir/new.key; voucher_code_issued SALE body=40 mac=10 suffix=ABCDEFGHJKMNPQRST;", qr/longer than 64/],
    ['voucher_code_pattern "([";', qr/pcre|regex|missing/i],
    ["voucher_code_key_previous $dir/old.key until=someday;", qr/invalid "until="/],
) {
    my ($conf, $re) = @$case;
    my $n = VT::Nginx->start(redis => $redis, expect_fail => 1, server => api_server(),
        http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%; $conf");
    ok($n->start_failed, "refused: $conf");
    like($n->stderr . $n->error_log, $re, '... and says why');
}
my $keytext = do { open my $k, '<', "$dir/new.key" or die; local $/; <$k> };
chomp $keytext;
unlike($ng->error_log, qr/\Q$keytext\E/, 'the key never reaches the log');

$ng->stop;
$ng->check_log('no alert');
$redis->stop;
done_testing;
