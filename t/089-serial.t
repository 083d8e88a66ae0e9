# Serial series: bulk single-use codes whose body is a serial permuted with
# a key, under the MAC; "used" is one bit of {v}:sb:<series>, and nothing is
# stored per code.  voucherctl series issue registers a series (no key per
# code), export makes the codes again from the key; nginx decodes the
# serial after the offline check and names the bit as a second key.
# Through nginx: validate, redeem (once), rollback and release give the bit
# back, reserve takes it; a code beyond the series' size, of an unknown
# series or forged answers as any unknown code.
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;
use WorkerT;
use JSON::PP ();

worker_bin('voucherctl');

my $w = worker_setup();
my $r = $w->redis;
my $key = $w->{key_file};
sub J { VT::json_body($_[0]) }
sub bit { $r->cmd('GETBIT', "{v}:sb:$_[0]", $_[1]) }

my $UP = VT::free_port();
my %o = (redis => $r, vars => {UP => $UP});
my $ng = VT::Nginx->start(%o, http => <<"EOT", server => api_server() . <<'EOT');
    server {
        listen 127.0.0.1:%%UP%%;
        location / { return 200 "upstream\\n"; }
    }
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    voucher_code_key $key;
    voucher_code_issued SP body=8 mac=5 series=spring;
    voucher_code_issued OR body=8 mac=5 series=oor;
    voucher_code_issued GH body=8 mac=5 series=ghost;
    voucher_code_issued NS body=8 mac=5;
    voucher_code_issued ON body=8 mac=5 series=once;
EOT
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/release { voucher_api release; }
        location /gate/redeem {
            voucher_gate redeem;
            voucher_code $http_x_voucher_code;
            voucher_order_amount 1000;
            add_header X-Gate "$voucher_status $voucher_reason $voucher_discount" always;
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location = /limited/validate {
            voucher_api validate;
            voucher_limit $binary_remote_addr rate=100000r/s burst=100000 name=ip;
        }
        location = /limited/redeem {
            voucher_api redeem;
            voucher_limit $binary_remote_addr rate=100000r/s burst=100000 name=ip;
        }
EOT

campaign($r, 'bulk', kind => 'amount', value => 250);
campaign($r, 'gift', kind => 'gift_card', value => 1000);

# --- issue: a registration, nothing per code -----------------------------------
my $before = $r->cmd('DBSIZE');
my $res = ctl($w, 'series', 'issue', 'spring', 'bulk', '--size', 100000,
              '--prefix', 'SP', '--length', 8, '--mac-length', 5);
is($res->{rc}, 0, 'series issue: 100,000 codes') or diag $res->{err};
like($res->{err}, qr/100000 codes, 0 used/, '... said');
is_deeply([sort @{ $r->cmd('KEYS', '{v}:s*') }], ['{v}:sb:spring', '{v}:sr:spring'],
          '... two keys: the series and its bitmap');
is($r->cmd('DBSIZE') - $before, 3, '... and the admin audit stream, nothing else');
my $adm = $r->cmd('XREVRANGE', '{v}:admin', '+', '-', 'COUNT', 1)->[0][1];
my %adm = @$adm;
is("$adm{op} $adm{target}", 'series.issue spring', '... which names the issue');
my $mem = $r->cmd('MEMORY', 'USAGE', '{v}:sb:spring');
cmp_ok($mem, '<', 100000 / 4, "the bitmap: $mem bytes for 100,000 codes");
is($r->cmd('BITCOUNT', '{v}:sb:spring'), 0, '... none used');

# bad input changes nothing
my $snap = snapshot($r);
for ([['bad name', 'bulk', '--size', 10], qr/invalid_field .*series/, 'a name with a space'],
     [['x', 'bulk', '--size', 10, '--length', 13], qr/invalid_field .*2\^62/,
      'a body beyond 2^62 values'],
     [['x', 'bulk', '--size', 0], qr/invalid_field .*size/, 'size 0'],
     [['x', 'bulk', '--size', 'ten'], qr/invalid_field .*size/, 'size ten'],
     [['x', 'bulk', '--size', 2000, '--length', 2], qr/invalid_field .*holds 1024 codes/,
      'a size beyond what the body holds'],
     [['x', 'bulk', '--size', 10, '--charset', 'AU'], qr/invalid_field .*charset/,
      'a charset outside the alphabet']) {
    my ($args, $re, $what) = @$_;
    my $x = ctl($w, 'series', 'issue', @$args);
    is($x->{rc}, 1, "$what is refused");
    like($x->{err}, $re, '... saying why');
}
is(ctl($w, 'series', 'issue', 'x', 'bulk')->{rc}, 2, 'no --size: usage');
$res = ctl($w, 'series', 'issue', 'x', 'nosuch', '--size', 10);
is($res->{rc}, 1, 'an unknown campaign is refused');
like($res->{err}, qr/invalid_field campaign: not found/, '... named');
like(ctl($w, 'series', 'issue', 'x', 'gift', '--size', 10)->{err},
     qr/invalid_field campaign: a gift card/, 'a gift card campaign is refused');
like(ctl($w, 'series', 'issue', 'spring', 'bulk', '--size', 10, '--prefix', 'SP',
         '--length', 8, '--mac-length', 5)->{err},
     qr/invalid_field size: a series only grows/, 'a series does not shrink');
like(ctl($w, 'series', 'issue', 'spring', 'bulk', '--size', 100000, '--prefix', 'SQ',
         '--length', 8, '--mac-length', 5)->{err},
     qr/invalid_field p: the series was issued in another format/,
     'nor changes its format');
is_deeply(snapshot($r), $snap, '... and nothing was written');
like(($r->cmd('FCALL', 'voucher_series_set', 1, '{v}:sr:a', 'bulk', 'x', '', 8, 5, '', '')
      // '')->message, qr/invalid_field size/, 'voucher_series_set checks the size');
like(($r->cmd('FCALL', 'voucher_series_set', 1, '{v}:sr:a b', 'bulk', 1, '', 8, 5, '', '')
      // '')->message, qr/bad_key/, '... and the name');

# --- export: the codes made again, the same every time ---------------------------
$res = ctl($w, 'series', 'export', 'spring', '--output', $w->dir . '/a.csv');
is($res->{rc}, 0, 'export') or diag $res->{err};
my @lines = split /\n/, read_text($w->dir . '/a.csv');
is(shift @lines, 'serial,code', 'a CSV with a header');
is(scalar @lines, 100000, '... 100,000 codes');
my (%code, %seen);
for (@lines) {
    my ($s, $c) = split /,/;
    $code{$s} = $c;
    $seen{$c}++;
}
is(scalar keys %seen, 100000, '... all different');
is(scalar(grep { /^SP[0-9A-HJKMNP-TV-Z]{13}$/ } keys %seen), 100000, '... all of the format');
is_deeply([sort { $a <=> $b } keys %code], [0 .. 99999], '... serials 0 to 99,999');
my $ordered = grep { $code{$_} lt $code{$_ + 1} } 0 .. 998;
cmp_ok($ordered, '<', 700, "consecutive serials are not in order ($ordered of 999)");
ctl($w, 'series', 'export', 'spring', '--output', $w->dir . '/b.csv');
is(read_text($w->dir . '/b.csv'), read_text($w->dir . '/a.csv'),
   'a second export is the same');
$res = ctl($w, 'series', 'export', 'spring', '--from', 99998, '--count', 5);
is($res->{out}, "serial,code\n99998,$code{99998}\n99999,$code{99999}\n",
   '--from and --count, cut at the size');
like(ctl($w, 'series', 'export', 'nosuch')->{err}, qr/not_found/, 'an unknown series');

# --- through nginx ------------------------------------------------------------------
my $c7 = $code{7};
(my $typed = lc $c7) =~ s/(.{4})/$1-/g;
my $v = post($ng, 'validate', {code => $typed, order => {amount => 1000}});
is($v->{status}, 200, 'validate a serial code typed as people do');
is(J($v)->{code}, $c7, '... answered in canonical form');
is(J($v)->{discount}, 250, '... priced by its campaign');
is(J($v)->{uses_left}, 1, '... single use');
is(bit('spring', 7), 0, 'validate sets no bit');

my @ids;
for my $s (7, 0, 99999, 4242, 50000) {
    my $red = post($ng, 'redeem', {code => $code{$s}, customer => "c$s",
                                   order => {amount => 1000, id => "o$s"}});
    is($red->{status}, 200, "redeem serial $s");
    is(bit('spring', $s), 1, '... its bit is set');
    push @ids, J($red)->{redemption_id};
}
is($r->cmd('BITCOUNT', '{v}:sb:spring'), 5, 'five bits set');
is(bit('spring', 8), 0, 'the neighbours are untouched');
my $again = post($ng, 'redeem', {code => $code{7}, order => {amount => 1000}});
is($again->{status}, 409, 'a second redeem is refused') or diag $again->{body};
is(J($again)->{reason}, 'code_exhausted', '... code_exhausted, as any single-use code');
my $e = $r->cmd('XRANGE', '{v}:log', $ids[0], $ids[0])->[0][1];
my %e = @$e;
is($e{code}, $c7, 'the trail names the code in canonical form');
is($e{serial}, 'spring:7', '... and its serial');
is($e{campaign}, 'bulk', '... and campaign');
my $show = JSON::PP::decode_json(ctl($w, 'series', 'show', 'spring')->{out});
is_deeply($show, {series => 'spring', campaign => 'bulk', size => 100000, used => 5,
                  left => 99995, prefix => 'SP', body => 8, mac => 5, charset => '',
                  suffix => ''}, 'series show: used 5');

# rollback gives the bit back
my $rb = post($ng, 'rollback', {redemption_id => $ids[0]});
is($rb->{status}, 200, 'rollback');
is(bit('spring', 7), 0, '... the bit is clear');
is(post($ng, 'redeem', {code => $code{7}, order => {amount => 1000}})->{status}, 200,
   'the code redeems again');

# reserve takes it, release gives it back
my $h = post($ng, 'reserve', {code => $code{123}, order => {amount => 1000}});
is($h->{status}, 200, 'reserve');
is(bit('spring', 123), 1, '... the bit is set while held');
is(J(post($ng, 'redeem', {code => $code{123}, order => {amount => 1000}}))->{reason},
   'code_exhausted', '... a held code is not redeemed again');
is(post($ng, 'release', {redemption_id => J($h)->{redemption_id}})->{status}, 200,
   'release');
is(bit('spring', 123), 0, '... the bit is clear');

# with limits (voucher_validate_limited, a redeem with its limits)
my $lv = VT::http($ng->port, 'POST', '/limited/validate',
                  body => {code => $code{400}, order => {amount => 1000}});
is($lv->{status}, 200, 'validate with limits');
is(J($lv)->{discount}, 250, '... priced');
is(VT::http($ng->port, 'POST', '/limited/redeem',
            body => {code => $code{400}, order => {amount => 1000}})->{status},
   200, 'redeem with limits');
is(bit('spring', 400), 1, '... sets the bit');
is(J(VT::http($ng->port, 'POST', '/limited/redeem',
              body => {code => $code{400}, order => {amount => 1000}}))->{reason},
   'code_exhausted', '... once');

# the gate: the upstream sees a redeemed serial code once
my $g = VT::http($ng->port, 'GET', '/gate/redeem', headers => {'X-Voucher-Code' => $code{500}});
is($g->{status}, 200, 'the gate passes a serial code to the upstream');
is($g->{headers}{'x-gate'}, 'reserved ok 250', '... held for the checkout, 250 off');
is(bit('spring', 500), 1, '... its bit set');
$g = VT::http($ng->port, 'GET', '/gate/redeem', headers => {'X-Voucher-Code' => $code{500}});
like($g->{headers}{'x-gate'} // '', qr/code_exhausted/, 'the second time: code_exhausted');

# an idempotent retry replays, and sets nothing twice
my %k = (code => $code{300}, order => {amount => 1000}, idempotency_key => 'k300');
my $first = post($ng, 'redeem', \%k);
is($first->{status}, 200, 'redeem with a key');
my $retry = post($ng, 'redeem', \%k);
is($retry->{status}, 200, '... the retry answers');
is($retry->{headers}{'idempotent-replayed'}, 'true', '... as a replay');
is(J($retry)->{redemption_id}, J($first)->{redemption_id}, '... of the same redemption');

# the campaign's rules hold: a customer limit over codes of the series
campaign($r, 'once', kind => 'amount', value => 100, per_customer => 1);
is(ctl($w, 'series', 'issue', 'once', 'once', '--size', 10, '--prefix', 'ON',
       '--length', 8, '--mac-length', 5)->{rc}, 0, 'a series of a campaign once per customer');
my %once = map { (split /,/)[0, 1] } grep { /^\d/ } split /\n/,
    ctl($w, 'series', 'export', 'once')->{out};
is(post($ng, 'redeem', {code => $once{1}, customer => 'ann', order => {amount => 1000}})->{status},
   200, 'ann redeems one code');
is(J(post($ng, 'redeem', {code => $once{2}, customer => 'ann', order => {amount => 1000}}))->{reason},
   'customer_limit', '... not a second of the series');
is(bit('once', 2), 0, '... whose bit stays clear');
is(post($ng, 'redeem', {code => $once{2}, customer => 'bob', order => {amount => 1000}})->{status},
   200, 'bob may');

# a reservation that runs out gives the bit back
my $hz = $r->cmd('FCALL', 'voucher_reserve', 2, '{v}:c:' . $once{5}, "{v}:sb:once:5",
                 1000, 'cy', 1000, '', '', '', 0);
is($hz->[0], 'ok', 'a reservation held for a second');
is(bit('once', 5), 1, '... takes the bit');
select(undef, undef, undef, 1.3);
$r->cmd('FCALL', 'voucher_sweep', 1, '{v}:hz');
is(bit('once', 5), 0, '... the expiry clears it');
is(bit('spring', 300), 1, 'and touches no other bit');

# --- no oracle: beyond the size, an unknown series, forged: as unknown -------------
is(ctl($w, 'series', 'issue', 'oor', 'bulk', '--size', 20, '--prefix', 'OR',
       '--length', 8, '--mac-length', 5)->{rc}, 0, 'a series of 20');
is(ctl($w, 'series', 'issue', 'ghost', 'bulk', '--size', 5, '--prefix', 'GH',
       '--length', 8, '--mac-length', 5)->{rc}, 0, 'and another');
my %oor = map { (split /,/)[0, 1] } grep { /^\d/ } split /\n/,
    ctl($w, 'series', 'export', 'oor')->{out};
my %gh = map { (split /,/)[0, 1] } grep { /^\d/ } split /\n/,
    ctl($w, 'series', 'export', 'ghost')->{out};
is(post($ng, 'redeem', {code => $oor{15}, order => {amount => 1000}})->{status}, 200,
   'serial 15 of 20 redeems');
# what a series beyond its codes and an unknown series look like: the series
# shrunk and removed behind the library's back
$r->cmd('HSET', '{v}:sr:oor', 'n', 10);
$r->cmd('DEL', '{v}:sr:ghost');
sub answer {
    my ($op, $c) = @_;
    my $a = post($ng, $op, {code => $c, order => {amount => 1000}});
    (my $b = $a->{body}) =~ s/\Q$c\E/CODE/g;
    return "$a->{status} $b";
}
my ($forged) = map { my $x = $_; substr($x, -1, 1) = substr($x, -1) eq '0' ? '1' : '0'; $x } $code{5};
my $unknown = 'NS' . ('7' x 13);
my $ref = answer('validate', $forged);
like($ref, qr/^404 .*"reason":"not_found"/, 'a forged code: not_found');
for ([beyond => $oor{15}], [unknown_series => $gh{1}], [plain_unknown_format => $unknown]) {
    my ($what, $c) = @$_;
    for my $op (qw(validate redeem reserve)) {
        is(answer($op, $c), answer($op, $forged), "$what, $op: the same bytes as a forged code");
    }
}
is($r->cmd('GETBIT', '{v}:sb:oor', 15), 1, 'the refused code changed nothing');

done_testing();
