# No oracle: with voucher_code_debug off, a code whose tag does not verify
# (refused in the worker) answers exactly as a genuine code that Redis does
# not hold, however it is typed: look-alikes (O for 0, I or L for 1), lower
# case, dashes and spaces.  Both echo the code in its canonical form, the
# form Redis stores.  Checked byte for byte (status, headers but Date, body)
# over many issued codes and their variants, in the API (with and without
# limits, where refusals go to Redis as voucher_guess), in the gate (with its
# variables in a header) and in lockout answers.
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

my $CROCK = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
# prefix, body, mac, suffix, charset, how many
my @fmt = (['SALE', 8, 5, '', $CROCK, 120],
           ['', 12, 4, '', $CROCK, 60],
           ['9', 10, 6, 'TH', '0123456789', 60]);

my $UP = VT::free_port();
my $http = <<"EOT";
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $dir/k.key;
    voucher_code_issued SALE body=8 mac=5;
    voucher_code_issued "" body=12 mac=4;
    voucher_code_issued 9 body=10 mac=6 charset=0123456789 suffix=TH;
    voucher_lockout_cache 1m;
    server {
        listen 127.0.0.1:%%UP%%;
        location / { return 200 "upstream\\n"; }
    }
EOT
my $gate = <<'EOT';
            voucher_code $http_x_voucher_code;
            voucher_order_amount 1000;
            add_header X-Gate "$voucher_status $voucher_reason $voucher_campaign" always;
            proxy_pass http://127.0.0.1:%%UP%%;
EOT
my $redis = VT::Redis->start;
$redis->load_functions;
my $ng = VT::Nginx->start(redis => $redis, vars => {UP => $UP}, http => $http,
                          server => api_server() . <<"EOT");
        keepalive_requests 1000000;
        location = /limited/validate {
            voucher_api validate;
            voucher_limit \$binary_remote_addr rate=1000000r/s burst=1000000 name=ip;
        }
        location = /banned/validate {
            voucher_api validate;
            voucher_lockout \$http_x_who failures=2 window=1h ban=1h name=guess;
        }
        location /gate/validate { voucher_gate validate;
$gate
        }
        location /gate/redeem { voucher_gate redeem;
$gate
        }
EOT

# the canonical form of what a customer typed, by the rule the README states
sub canon {
    (my $n = uc shift) =~ s/[ \t-]//g;
    for my $f (@fmt) {
        my ($p, $b, $m, $s, $cs) = @$f;
        next unless length($n) == length($p) + $b + $m + length($s)
            && substr($n, 0, length $p) eq $p
            && substr($n, length($n) - length($s)) eq $s;
        (my $mid = substr($n, length $p, $b + $m)) =~ tr/OIL/011/;
        next if $mid =~ /[^\Q$cs\E]/;
        return $p . $mid . $s;
    }
    return $n;
}

# genuine codes, never stored; each forged by changing its tag's last
# character to another of its charset
my (@pairs, %seen);
for my $f (@fmt) {
    my ($p, $b, $m, $s, $cs, $n) = @$f;
    my @c = `$vcode issue $dir/k.key '$p' $b $m $n @{[ $cs eq $CROCK ? '-' : $cs ]} $s`;
    chomp @c;
    is(scalar @c, $n, "$n codes issued in the format \"$p\" body=$b mac=$m");
    for my $g (@c) {
        my $at = length($p) + $b + $m - 1;
        my $ch = substr($g, $at, 1);
        my $i = index($cs, $ch);
        my $forged = $g;
        substr($forged, $at, 1) = substr($cs, ($i + 1 + int(rand(length($cs) - 1)))
                                              % length($cs), 1);
        push @pairs, [$g, $forged, $at];
    }
}

# what people type: look-alikes, lower case, dashes and spaces
my @variants = (
    sub { $_[0] },
    sub { lc $_[0] },
    sub { (my $x = $_[0]) =~ tr/0/O/; $x },
    sub { (my $x = $_[0]) =~ tr/1/I/; $x },
    sub { (my $x = $_[0]) =~ tr/1/l/; $x },
    sub { (my $x = lc $_[0]) =~ tr/01/oi/; $x =~ s/(....)(....)(....)/$1-$2 $3-/; $x },
    sub { (my $x = $_[0]) =~ tr/01/OL/; join ' ', split //, $x },
);

my (@typed, $looks);
for my $pr (@pairs) {
    my ($g, $forged, $at) = @$pr;
    my %v;
    for my $v (@variants) {
        my ($tg, $tf) = ($v->($g), $v->($forged));
        next if $v{$tg}++;
        (my $n = uc $tg) =~ s/[ \t-]//g;
        $looks++ if $n ne $g;                  # look-alikes in it
        push @typed, [$tg, $tf, $g, $forged, $at];
    }
}
is(canon($_->[0]), $_->[2], 'the test\'s rule gives a genuine code its stored form')
    for @typed[0 .. 2];
ok($looks > 300, scalar(@typed) . " typed pairs, $looks of them with look-alikes");

sub esc { (my $x = shift) =~ s/(["\\])/\\$1/g; $x }
sub shape {
    my ($res) = @_;
    join "\n", "$res->{status} $res->{reason}",
        (map { "$_->[0]: $_->[1]" } grep { lc $_->[0] ne 'date' } @{ $res->{header_list} }),
        '', $res->{body};
}

# an endpoint: [name, request for a typed code]
my @ends = (
    ['API validate', sub { {method => 'POST', path => '/vouchers/validate',
                            body => {code => $_[0], order => {amount => 1000}}} }],
    ['API redeem', sub { {method => 'POST', path => '/vouchers/redeem',
                          body => {code => $_[0], order => {amount => 1000}}} }],
    ['API validate with a limit', sub { {method => 'POST', path => '/limited/validate',
                          body => {code => $_[0], order => {amount => 1000}}} }],
    ['gate validate', sub { {method => 'GET', path => '/gate/validate',
                             headers => {'X-Voucher-Code' => $_[0]}} }],
    ['gate redeem', sub { {method => 'GET', path => '/gate/redeem',
                           headers => {'X-Voucher-Code' => $_[0]}} }],
);

my $fcalls = $redis->hot_calls;
my $forged_to_redis = 0;

for my $e (@ends) {
    my ($name, $req) = @$e;
    my @reqs = map { ($req->($_->[0]), $req->($_->[1])) } @typed;
    my @res = VT::http_parallel($ng->port, \@reqs, concurrency => 32, timeout => 300);
    $forged_to_redis += @typed if $name =~ /limit/;

    my (%ref, @bad);      # one reference answer per length of code
    for my $k (0 .. $#typed) {
        my ($tg, $tf, $g, $forged, $at) = @{ $typed[$k] };
        my ($rg, $rf) = @res[2 * $k, 2 * $k + 1];
        my ($eg, $ef) = (canon($tg), canon($tf));
        my ($sg, $sf) = (shape($rg), shape($rf));
        my $ok = $rg->{status} == 404
            && $sg =~ s/"code":"\Q@{[ esc($eg) ]}\E"/"code":X/
            && $sf =~ s/"code":"\Q@{[ esc($ef) ]}\E"/"code":X/;
        my $ref = $ok ? ($ref{length $eg} //= $sg) : '';
        # what an attacker compares: the two echoes differ only where the
        # forgery changed the tag
        my ($cg) = ($rg->{body} // '') =~ /"code":"([^"]*)"/;
        my ($cf) = ($rf->{body} // '') =~ /"code":"([^"]*)"/;
        substr($cf, $at, 1) = substr($cg, $at, 1)
            if defined $cf && defined $cg && length $cf > $at;
        push @bad, "\"$tg\" / \"$tf\":\n$rg->{status} $rg->{body}\n$rf->{status} $rf->{body}"
            unless $ok && $sg eq $ref && $sf eq $ref && defined $cg && $cg eq ($cf // '');
    }
    is(scalar @bad, 0, "$name: " . scalar(@typed) . " genuine-unknown and forged codes, "
                       . 'typed alike, answer alike byte for byte')
        or diag(join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
    is(scalar(keys %ref), 3, "$name: ... three lengths of code") or next;
    like($ref{$_}, qr/^404 .*"reason":"not_found"/s, "$name: ... 404 not_found, length $_")
        for sort keys %ref;
    like($ref{17}, qr/^X-Gate: refused not_found\s*$/m, "$name: ... with the same variables")
        if $name =~ /gate/;
}

is($redis->hot_calls - $fcalls, @typed * @ends + $forged_to_redis,
   'every genuine code reached Redis, forged ones only where a limit applies');

# the lockout: Redis' locked_out answer and the lockout cache's carry the
# same form of the code too
my $who = 0;
my @bad;
for my $t (@typed[grep { $_ % 7 == 5 } 0 .. $#typed]) {
    my @ans;
    for my $c ($t->[0], $t->[1]) {
        $who++;
        my @r = map { http($ng->port, 'POST', '/banned/validate', headers => {'X-Who' => "w$who"},
                           body => {code => $c, order => {amount => 1000}}) } 1 .. 4;
        push @ans, join ' ', map { "$_->{status} " . ($_->{json}{reason} // '-') . ' '
                                   . ($_->{json}{code} // '-') } @r;
    }
    my ($eg, $ef) = (canon($t->[0]), canon($t->[1]));
    push @bad, "$t->[0] / $t->[1]: @ans" unless $ans[0] eq join(' ', map {
        ("404 not_found $eg", "404 not_found $eg", "429 locked_out $eg", "429 locked_out $eg")[$_]
    } 0 .. 3) && $ans[1] eq join(' ', map {
        ("404 not_found $ef", "404 not_found $ef", "429 locked_out $ef", "429 locked_out $ef")[$_]
    } 0 .. 3);
}
is(scalar @bad, 0, 'lockout: not_found, then locked_out (Redis, then the cache), '
                   . 'each with the canonical code, genuine or forged')
    or diag(join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]);

# a code that Redis holds, typed with look-alikes, is found
my ($g0) = grep { /[01]/ } map { $_->[0] } @pairs;
campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, $g0, campaign => 'c');
(my $t0 = lc $g0) =~ tr/01/ol/;
my $r = post($ng, 'validate', {code => $t0, order => {amount => 1000}});
is($r->{status}, 200, "a stored code typed \"$t0\": valid");
is($r->{json}{code}, $g0, '... answered in its stored form');

$ng->check_log;

# formats one code can fit, reading O, I or L differently: nginx warns
for my $case (['"" body=12 mac=5', 'SALE body=8 mac=5', 1],
              ['"" body=12 mac=5', 'SAVE body=8 mac=5', 0],
              ['"" body=12 mac=4', 'SALE body=8 mac=5', 0],
              ['SALE body=8 mac=5', 'SAL body=9 mac=5', 0],
              ['SAL body=9 mac=5', 'SA body=10 mac=5', 1],
              ['SALE body=8 mac=5', 'SALT body=8 mac=5', 0],
              ['9 body=10 mac=6 charset=0123456789', '9L body=9 mac=6 charset=0123456789', 1],
              ['9 body=10 mac=6 charset=23456789', '9O body=9 mac=6 charset=0123456789', 0]) {
    my ($a, $b, $warn) = @$case;
    my $n = VT::Nginx->start(redis => $redis, server => api_server(), http => <<"EOT");
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $dir/k.key;
    voucher_code_issued $a;
    voucher_code_issued $b;
EOT
    my $log = $n->stderr . $n->error_log;
    my $said = $log =~ /a code can fit both this format and the one with the prefix/ ? 1 : 0;
    is($said, $warn, ($warn ? 'a warning' : 'no warning') . " for \"$a\" and \"$b\"");
    $n->stop;
}

done_testing;
