# Attempt limits held in Redis: GCRA rates with bursts on Redis time,
# lockout of keys that send bad codes, 429 + Retry-After, dry run and
# $voucher_limit_status, and one limit shared by two nginx instances.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use File::Temp ();
use VT;
use VoucherT;

my $redis = VT::Redis->start;
$redis->load_functions;
campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'GOOD', campaign => 'c', max_uses => 0);
my $o = {amount => 1000};

my $http = <<'EOT';
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    log_format lim '$http_x_client $status $voucher_limit_status';
EOT
my $server = <<'EOT';
        access_log %%SERVROOT%%/logs/lim.log lim;
        voucher_limit $http_x_client rate=1r/m burst=4 name=ip;
        location = /vouchers/validate { voucher_api validate; }
        location = /vouchers/redeem   { voucher_api redeem; }
        location = /recover/validate {
            voucher_api validate;
            voucher_limit $http_x_client rate=1r/s name=rec;
        }
        location = /lock/validate {
            voucher_api validate;
            voucher_lockout $http_x_client failures=5 window=10s ban=3s name=guess;
        }
        location = /redeemonly/validate {
            voucher_api validate;
            voucher_limit $http_x_client rate=1r/m scope=redeem;
        }
        location = /dry/validate {
            voucher_api validate;
            voucher_limit $http_x_client rate=1r/m name=dry;
            voucher_limit_dry_run on;
            voucher_limit_log_level notice;
        }
        location = /status/validate {
            voucher_api validate;
            voucher_limit $http_x_client rate=1r/m name=st;
            voucher_limit_status 503;
        }
        location = /long/validate {
            voucher_api validate;
            voucher_limit $http_x_key rate=1r/m name=long;
        }
        location = /longlock/validate {
            voucher_api validate;
            voucher_lockout $http_x_key failures=2 window=1m ban=1m name=longlock;
        }
EOT
my $ng = VT::Nginx->start(redis => $redis, http => $http, server => $server);

sub v {
    my ($path, $client, $code) = @_;
    return http($ng->port, 'POST', $path, headers => {'X-Client' => $client},
                body => {code => $code // 'GOOD', order => $o});
}

# --- GCRA: 1 r/m with a burst of 4 (nothing refills while the test runs) ----
my @st = map { v('/vouchers/validate', 'a')->{status} } 1 .. 6;
is_deeply(\@st, [200, 200, 200, 200, 200, 429], 'burst of 4 over 1 r/m: 5 pass, the 6th is refused');
my $r = v('/vouchers/validate', 'a');
is($r->{status}, 429, 'still refused');
is($r->{json}{reason}, 'rate_limited', 'reason rate_limited');
is($r->{json}{limit}, 'ip', 'names the limit');
ok($r->{json}{retry_after_ms} > 50000 && $r->{json}{retry_after_ms} <= 60000,
   "retry_after_ms within one interval of a minute ($r->{json}{retry_after_ms})");
ok($r->{headers}{'retry-after'} >= 51 && $r->{headers}{'retry-after'} <= 60,
   "Retry-After in whole seconds ($r->{headers}{'retry-after'})");
ok(!exists $r->{json}{_limit}, 'internal pairs stay out of the body');
is(v('/vouchers/validate', 'b')->{status}, 200, 'another key is not limited');
is(v('/vouchers/redeem', 'a')->{status}, 429, 'the limit covers redeem too (scope both)');
# recovery, on Redis time: 1 r/s without a burst
is(v('/recover/validate', 'r')->{status}, 200, '1 r/s: the first passes');
is(v('/recover/validate', 'r')->{status}, 429, 'the next, within the second, is refused');
sleep 1.1;
is(v('/recover/validate', 'r')->{status}, 200, 'after one interval: one more passes');
is(v('/recover/validate', 'r')->{status}, 429, 'and only one');
is(http($ng->port, 'POST', '/vouchers/validate', body => {code => 'GOOD', order => $o})->{status},
   200, 'an empty key is not limited');

# scope=redeem leaves validate alone
is_deeply([map { v('/redeemonly/validate', 's')->{status} } 1 .. 3], [200, 200, 200],
          'scope=redeem: validate is not limited');

# voucher_limit_status
v('/status/validate', 'q');
is(v('/status/validate', 'q')->{status}, 503, 'voucher_limit_status 503');

# --- lockout: an enumeration attack -------------------------------------------
my $hmget = $redis->commandstats->{hmget} // 0;
my @reqs = map {
    {method => 'POST', path => '/lock/validate', headers => {'X-Client' => 'attacker'},
     body => {code => sprintf('GUESS%06d', $_), order => $o}}
} 1 .. 1000;
my %by;
for my $res (map { http_parallel($ng->port, [$_], concurrency => 1) } @reqs[0 .. 9]) {
    $by{$res->{status}}++;
}
$by{$_->{status}}++ for http_parallel($ng->port, [@reqs[10 .. 999]], concurrency => 50);
is($by{404}, 5, 'enumeration: the first 5 guesses get 404');
is($by{429}, 995, 'enumeration: the other 995 are refused');
my $lookups = ($redis->commandstats->{hmget} // 0) - $hmget;
ok($lookups <= 10, "Redis saw at most the threshold's lookups ($lookups HMGETs for 5 codes)");
$r = v('/lock/validate', 'attacker', 'GOOD');
is($r->{status}, 429, 'a locked key is refused whatever code it sends');
is($r->{json}{reason}, 'locked_out', 'reason locked_out');
ok($r->{headers}{'retry-after'} >= 1 && $r->{headers}{'retry-after'} <= 3, 'Retry-After within the ban');
is(v('/lock/validate', 'customer', 'GOOD')->{status}, 200,
   'a real customer from another key still validates');
is(http($ng->port, 'POST', '/vouchers/redeem', headers => {'X-Client' => 'c2'},
        body => {code => 'GOOD', customer => 'c2', order => $o})->{status}, 200,
   '... and redeems');
sleep 3.1;
is(v('/lock/validate', 'attacker', 'GOOD')->{status}, 200, 'the ban ends after ban=3s');

# --- dry run: nothing refused, the verdict logged and in the variable -------
$ng->mark_log;
my @dry = map { v('/dry/validate', 'd')->{status} } 1 .. 3;
is_deeply(\@dry, [200, 200, 200], 'dry run refuses nothing');
like($ng->error_log_since_mark, qr/limit "dry": REJECTED_DRY_RUN/, 'dry run logs what it would refuse');
ok(wait_until(sub { -s $ng->servroot . '/logs/lim.log' }, timeout => 3), 'access log written');
open my $fh, '<', $ng->servroot . '/logs/lim.log' or die;
my @log = <$fh>;
ok((grep { /^d 200 PASSED$/ } @log), '$voucher_limit_status PASSED');
ok((grep { /^d 200 REJECTED_DRY_RUN$/ } @log), '$voucher_limit_status REJECTED_DRY_RUN');
ok((grep { /^a 429 REJECTED$/ } @log), '$voucher_limit_status REJECTED');
ok((grep { /^attacker 429 LOCKED$/ } @log), '$voucher_limit_status LOCKED');

# --- keys of any length and any bytes: never cut, never shared ----------------
# A key of at most 64 bytes is kept as it is; a longer one as "~" and the hex
# BLAKE2b-256 of the key (what `b2sum -l 256` prints), 65 bytes.
sub b2 {
    my ($bytes) = @_;
    my $f = File::Temp->new;
    binmode $f; print $f $bytes; close $f;
    my ($hex) = split ' ', `b2sum -l 256 $f`;
    die "b2sum failed\n" unless $? == 0 && $hex =~ /^[0-9a-f]{64}\z/;
    return $hex;
}
sub k {
    my ($path, $key, $code) = @_;
    return http($ng->port, 'POST', $path, headers => {'X-Key' => $key},
                body => {code => $code // 'GOOD', order => $o});
}
sub rkeys { my %h = map { $_ => 1 } @{$redis->cmd('KEYS', $_[0])}; \%h }

my $P = 'P' x 256;
is(k('/long/validate', "${P}A")->{status}, 200, '257-byte key P..PA: the first passes');
my $lb = k('/long/validate', "${P}B");
is($lb->{status}, 200, 'P..PB, the same 256-byte prefix: another key, it passes too')
    or diag("got $lb->{status} $lb->{body}");
is(k('/long/validate', "${P}A")->{status}, 429, 'P..PA again: refused, its own limit holds');
is(k('/long/validate', "${P}B")->{status}, 429, 'P..PB again: refused');
my $rt = rkeys('{v}:rt:long:*');
ok($rt->{'{v}:rt:long:~' . b2("${P}A")} && $rt->{'{v}:rt:long:~' . b2("${P}B")},
   'Redis keeps a long key as "~" and its BLAKE2b-256 in hex');
ok(!(grep { length($_) > length('{v}:rt:long:') + 65 } keys %$rt),
   'no limit key in Redis is longer than 65 bytes');

# a key that spells the hashed form of another is not that key
my $spelled = '~' . b2("${P}C");
is(k('/long/validate', "${P}C")->{status}, 200, 'P..PC passes');
is(k('/long/validate', $spelled)->{status}, 200,
   'a key spelling "~" + the digest of P..PC is another key: it passes');
my $k64 = 'k' x 64;
is(k('/long/validate', $k64)->{status}, 200, 'a 64-byte key passes');
is(k('/long/validate', $k64)->{status}, 429, '... once');
ok(rkeys('{v}:rt:long:*')->{"{v}:rt:long:$k64"}, '... and is kept as it is');
is(k('/long/validate', "${k64}x")->{status}, 200, 'the 65-byte key that extends it is another');

# any bytes but NUL, CR and LF (what a header can carry), long and short
# (no blank at either end: nginx trims those from a header's value)
my $bin = join '', map { chr } grep { $_ != 10 && $_ != 13 } 1 .. 255;
$bin = "<$bin$bin>";
is(k('/long/validate', "$bin\x01")->{status}, 200, 'assorted bytes + \\x01 passes');
is(k('/long/validate', "$bin\xff")->{status}, 200, 'assorted bytes + \\xff: another key');
is(k('/long/validate', "$bin\x01")->{status}, 429, 'assorted bytes + \\x01 again: refused');
is(k('/long/validate', "\x80:\xfe\x01")->{status}, 200, 'a short key of raw bytes and ":" passes');
is(k('/long/validate', "\x80:\xfe\x02")->{status}, 200, 'one byte apart: another key');
is(k('/long/validate', "\x80:\xfe\x01")->{status}, 429, 'the first again: refused');

# the lockout in Redis: one long key's bad guesses ban only that key
my $L = 'L' x 300;
is(k('/longlock/validate', "${L}A", "NOPE$_")->{status}, 404, "L..LA guess $_: not_found") for 1, 2;
$r = k('/longlock/validate', "${L}A", 'GOOD');
is($r->{status}, 429, 'L..LA is locked out');
is($r->{json}{reason}, 'locked_out', '... locked_out');
$r = k('/longlock/validate', "${L}B", 'GOOD');
is($r->{status}, 200, 'L..LB, the same 300-byte prefix: not locked out')
    or diag("got $r->{status} $r->{body}");
ok(rkeys('{v}:lb:longlock:*')->{'{v}:lb:longlock:~' . b2("${L}A")},
   'the ban is kept under the digest of the key');
is(k('/longlock/validate', "${bin}A", "NOPE$_")->{status}, 404, "assorted A guess $_") for 1, 2;
is(k('/longlock/validate', "${bin}A", 'GOOD')->{status}, 429, 'assorted bytes + A: locked out');
is(k('/longlock/validate', "${bin}B", 'GOOD')->{status}, 200, 'assorted bytes + B: not');

# --- two nginx instances, one Redis, one limit ----------------------------------
my $ng2 = VT::Nginx->start(redis => $redis, http => $http, server => $server);
my @both;
for my $i (1 .. 8) {
    my $n = $i % 2 ? $ng : $ng2;
    push @both, http($n->port, 'POST', '/vouchers/validate', headers => {'X-Client' => 'shared'},
                     body => {code => 'GOOD', order => $o})->{status};
}
is_deeply(\@both, [200, 200, 200, 200, 200, 429, 429, 429],
          'two nginx share one limit: 5 in all pass, not 5 each');

$ng2->stop;
$ng->stop;
$ng->check_log('no alert');
$ng2->check_log('no alert (second nginx)');

# --- codes refused offline meet the limits too: no oracle, and they count -----
{
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $vcode = VT::root_dir() . '/build/vcode';
    system($vcode, 'genkey', "$dir/k") == 0 or die;
    my $m = VT::Nginx->start(redis => $redis,
        http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%; voucher_code_key $dir/k;"
              . ' voucher_code_issued SALE body=8 mac=5; voucher_code_pattern "^[A-Z]{4,12}$";',
        server => 'location = /m/validate { voucher_api validate;'
                . ' voucher_lockout $http_x_client failures=3 window=10s ban=5s name=mac; }');
    my $mv = sub {
        my ($client, $code) = @_;
        http($m->port, 'POST', '/m/validate', headers => {'X-Client' => $client},
             body => {code => $code, order => $o});
    };
    my @forged = map { 'SALE' . ('A' x 12) . $_ } 2 .. 5;
    my $f = $mv->('x', $forged[0]);
    my $u = $mv->('y', 'NOSUCHCODE');
    is($f->{status}, 404, 'forged, under a lockout: 404');
    (my $fb = $f->{body}) =~ s/\Q$forged[0]\E/X/;
    (my $ub = $u->{body}) =~ s/NOSUCHCODE/X/;
    is($fb, $ub, 'the same answer as an unknown code');
    $mv->('x', $forged[$_]) for 1, 2;
    my $lf = $mv->('x', $forged[3]);
    my $lu = $mv->('x', 'NOSUCHCODE');
    is($lf->{status}, 429, 'three forged codes lock the key out: a forged code gets 429');
    is($lu->{status}, 429, '... and so does an unknown one');
    is($lf->{json}{reason}, 'locked_out', 'locked_out');
    $m->stop;
    $m->check_log('no alert (offline + limits)');
}

# --- configuration ------------------------------------------------------------
for my $bad ('voucher_limit $remote_addr burst=5;', 'voucher_limit $remote_addr rate=0r/s;',
             'voucher_limit $remote_addr rate=5r/d;', 'voucher_lockout $remote_addr failures=3;',
             'voucher_limit $remote_addr rate=1r/s name=Bad!;', 'voucher_limit_status 200;') {
    my $n = VT::Nginx->start(redis => $redis, expect_fail => 1,
        http => "voucher_redis 127.0.0.1:%%REDIS_PORT%%; $bad", server => api_server());
    ok($n->start_failed, "refused: $bad");
}

$redis->stop;
done_testing;
