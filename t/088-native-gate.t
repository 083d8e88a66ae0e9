# The gate's two-phase redeem through the native module: a checkout
# reserves (VOUCHER.RESERVE), the upstream's 2xx confirms the hold
# (VOUCHER.CONFIRM, "brief"), anything else releases it (VOUCHER.RELEASE);
# a rollback of the confirmed redemption is VOUCHER.ROLLBACK.  A second
# Redis without the module gets the same requests through FCALL: the same
# statuses, answers and counters, and no FCALL reaches the module's Redis.
# A namespace with a loyalty programme is handed to the library inside
# the command (the earn on confirm is the library's).
use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;

my $root = VT::root_dir();
my $so = "$root/build/redis-module/voucher.so";
system('make', '-s', '-C', "$root/redis/module") unless -f $so;
plan skip_all => "the native module is not built ($so): make -C redis/module"
    unless -f $so;

my $redis = VT::Redis->start(args => ['--loadmodule', $so], no_module => 1);
my $plain = VT::Redis->start(no_module => 1);

my %ng;

sub start_ng {
    my ($r) = @_;
    my $up = VT::free_port();
    return VT::Nginx->start(
        redis => $r,
        vars  => { UP => $up },
        http  => <<'EOT',
    voucher_redis 127.0.0.1:%%REDIS_PORT%%;
    server {
        listen 127.0.0.1:%%UP%%;
        location /checkout/ok   { return 200 "order ok\n"; }
        location /checkout/fail { return 500 "crashed\n"; }
    }
EOT
        server => <<'EOT');
        location = /v/vouchers/reserve  { voucher_api reserve; }
        location = /v/vouchers/confirm  { voucher_api confirm; }
        location = /v/vouchers/release  { voucher_api release; }
        location = /v/vouchers/rollback { voucher_api rollback; }
        location /v/checkout/ {
            voucher_gate redeem;
            voucher_code $arg_coupon;
            voucher_customer $http_x_customer;
            voucher_order_amount $http_x_amount;
            proxy_pass http://127.0.0.1:%%UP%%/checkout/;
        }
        location = /l/vouchers/reserve  { voucher_namespace l; voucher_api reserve; }
        location = /l/vouchers/confirm  { voucher_namespace l; voucher_api confirm; }
        location = /l/vouchers/release  { voucher_namespace l; voucher_api release; }
        location = /l/vouchers/rollback { voucher_namespace l; voucher_api rollback; }
        location /l/checkout/ {
            voucher_namespace l;
            voucher_gate redeem;
            voucher_code $arg_coupon;
            voucher_customer $http_x_customer;
            voucher_order_amount $http_x_amount;
            proxy_pass http://127.0.0.1:%%UP%%/checkout/;
        }
EOT
}

sub api {
    my ($w, $ns, $op, $body) = @_;
    return http($ng{$w}->port, 'POST', "/$ns/vouchers/$op", body => $body);
}

%ng = (m => start_ng($redis), p => start_ng($plain));

ok(wait_until(sub { $ng{m}->error_log =~ /native module for .*voucher_reserve voucher_confirm voucher_release voucher_rollback, FCALL for the rest/ },
              timeout => 10),
   'nginx found reserve, confirm, release and rollback in the module');

for my $r ($redis, $plain) {
    for my $ns (qw(v l)) {
        campaign($r, 'gate', ns => $ns, kind => 'amount', value => 500,
                 per_customer => 5);
        campaign($r, 'gift', ns => $ns, kind => 'gift_card');
        code($r, 'GATE', ns => $ns, campaign => 'gate', max_uses => 10);
        code($r, 'CARD', ns => $ns, campaign => 'gift', balance => 2000);
    }
    $r->cmd('FCALL', 'voucher_loyalty_set', 1, '{l}:lp', every => 100,
            points => 1);
}
$redis->reset_stats;

sub both {
    my ($method, $path, %o) = @_;
    my %r;
    for my $w (qw(m p)) {
        $r{$w} = $method eq 'GET'
            ? http($ng{$w}->port, 'GET', $path, %o)
            : api($w, $o{ns}, $path, $o{body});
    }
    return \%r;
}

sub held {
    my ($r, $ns) = @_;
    return $r->cmd('ZCARD', "{$ns}:hz");
}

my %ids;
my $n = 0;
for my $ns (qw(v l)) {
    for my $c (qw(GATE CARD)) {
        for my $path (qw(ok fail)) {
            my $r = both('GET', "/$ns/checkout/$path?coupon=$c",
                         headers => {'X-Customer' => 'cu', 'X-Amount' => 900});
            is($r->{m}{status}, $r->{p}{status},
               "$ns $c gate $path: the same status ($r->{p}{status})");
            is($r->{p}{status}, $path eq 'ok' ? 200 : 500,
               "$ns $c gate $path: the upstream answered");
            # (settled before the next: each reserve finds no hold)
            ok(wait_until(sub { held($redis, $ns) == 0
                                && held($plain, $ns) == 0 }, timeout => 5),
               "$ns $c gate $path: settled");
            $n++;
        }
    }

    # the API: reserve, release, reserve, confirm, roll it back
    for my $step (qw(release confirm)) {
        my $r = both('POST', 'reserve', ns => $ns,
                     body => {code => 'CARD', customer => 'cu',
                              order => {amount => 300}});
        is($r->{m}{status}, 200, "$ns reserve for $step: 200");
        my %id = map { $_ => VT::json_body($r->{$_})->{redemption_id} }
                 qw(m p);
        my %a = map {
            my $j = VT::json_body(api($_, $ns, $step,
                                      {redemption_id => $id{$_}}));
            delete $j->{redemption_id};
            delete $j->{release_id};
            ($_ => $j)
        } qw(m p);
        is_deeply($a{m}, $a{p}, "$ns $step: the same answer");
        $ids{$ns} = \%id if $step eq 'confirm';
    }
    my %a = map {
        my $j = VT::json_body(api($_, $ns, 'rollback',
                                  {redemption_id => $ids{$ns}{$_}}));
        delete @$j{qw(redemption_id rollback_id)};
        ($_ => $j)
    } qw(m p);
    is_deeply($a{m}, $a{p}, "$ns rollback: the same answer");
    is($a{p}{status}, 'rolled_back', "$ns rollback: rolled back");
}

# what both hold: codes, campaigns, the customer's counters
for my $ns (qw(v l)) {
    for my $k ("{$ns}:c:GATE", "{$ns}:c:CARD", "{$ns}:k:gate",
               "{$ns}:k:gift") {
        my %a = @{ $redis->cmd('HGETALL', $k) };
        my %b = @{ $plain->cmd('HGETALL', $k) };
        delete @a{qw(rev)};
        delete @b{qw(rev)};
        is_deeply(\%a, \%b, "$k: the same");
    }
    my %a = @{ $redis->cmd('HGETALL', "{$ns}:u:cu") };
    my %b = @{ $plain->cmd('HGETALL', "{$ns}:u:cu") };
    delete @a{grep { /^h:/ } keys %a};
    delete @b{grep { /^h:/ } keys %b};
    is_deeply(\%a, \%b, "{$ns}:u:cu: the same counters");
    is($redis->cmd('XLEN', "{$ns}:log"), $plain->cmd('XLEN', "{$ns}:log"),
       "{$ns}:log: as many entries");
}

my $cs = $redis->commandstats;
ok(($cs->{'voucher.reserve'} // 0) >= 12, 'reserve went native')
    or diag explain $cs;
ok(($cs->{'voucher.confirm'} // 0) >= 4, 'confirm went native')
    or diag explain $cs;
ok(($cs->{'voucher.release'} // 0) >= 4, 'release went native');
ok(($cs->{'voucher.rollback'} // 0) >= 2, 'rollback went native');
# {v} has no programme: there only the gift card's release (the gate's),
# release and rollback (the API's) were handed over, its refund going
# back into the card's lots with a ledger entry: 3; {l} has one, so its
# 8 confirms, releases and rollbacks were (FCALL from inside the
# command).  Each reserve found its namespace's holds all settled, so
# each told the library's cache of its deadline (voucher_hold_note), or
# was the library's own (a gift card's): 12.
is($cs->{fcall} // 0, 3 + 8 + 12,
   "only the gift card's and {l}'s settlements went to the library, and the hold notes")
    or diag explain $cs;

done_testing();
