#!/usr/bin/perl
#
# One voucherd for several stores ("stores" in the configuration): each
# store on its own Redis and namespace, with its own key; a process per
# store runs its automations (a signup delivered by webhook in each), and
# the admin API chooses the store by the path's prefix /stores/{store}
# (store_required, unknown_store, a token limited to stores: 403
# store_forbidden); /metrics with a store label; voucherctl --store; one
# store's Redis killed: the other's automation still delivers and its admin
# API answers; the Redis back: the first resumes without a restart; bad
# configurations; -t; SIGTERM stops every store's process.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;

# voucherd -t -c FILE: {status, out} (stdout and stderr)
sub dtest {
    my ($conf) = @_;
    my $bin = WorkerT::bin_dir() . '/voucherd';
    my $out = `$bin -t -c $conf 2>&1`;
    return { status => $? >> 8, out => $out };
}
my $OPS = 'ops-secret-0123456789';
my $BOB = 'bob-secret-0123456789';

my $ra = VT::Redis->start;
my $rb = VT::Redis->start;
my $hook = SinkT::HTTP->start;

my $w = worker_setup(redis => $ra);
my $dir = $w->dir;
write_text("$dir/hook.secret", "hook-secret-123\n");
write_text("$dir/tokens", "ops $OPS\nbob $BOB stores=b\n");
my $SCRAPE = 'scrape-secret-0123456789';
write_text("$dir/metrics.token", "$SCRAPE\n");
chmod 0600, "$dir/tokens";
my $port = VT::free_port();
my $cfg = {
    stores => {
        a => { redis => { address => '127.0.0.1:' . $ra->port, timeout_ms => 1000 },
               namespace => 'v', key_file => "$dir/a.key" },
        b => { redis => { address => '127.0.0.1:' . $rb->port, timeout_ms => 1000 },
               namespace => 'w', key_file => "$dir/b.key" },
    },
    channels => { hook => { type => 'webhook', url => $hook->url('/hook'),
                            secret_file => "$dir/hook.secret", timeout_ms => 2000 } },
    daemon => { poll_ms => 50 },
    admin  => { listen => "127.0.0.1:$port", tokens_file => "$dir/tokens",
                metrics_token_file => "$dir/metrics.token" },
};
write_text($w->conf, $JSON->encode($cfg));

# voucherctl chooses the store
my $res = ctl($w, qw(campaign list));
isnt($res->{rc}, 0, 'voucherctl without --store on a configuration with stores: refused');
like($res->{err}, qr/the configuration has 2 stores: choose one \(voucherctl --store NAME\)/,
     '... saying so');
$res = ctl($w, qw(--store zz campaign list));
like($res->{err}, qr/stores: no store "zz"/, '--store of no such store: refused');
for my $s (qw(a b)) {
    is(ctl($w, '--store', $s, qw(key generate))->{rc}, 0, "key generate --store $s");
    ok(-s "$dir/$s.key", "... $s.key written");
    is(ctl($w, "--store=$s", qw(campaign set welcome kind amount value 10000 currency THB))->{rc},
       0, "a campaign in store $s");
    write_text("$dir/welcome.csv", "code\nWELCOME-\U$s\E\n");
    is(ctl($w, '--store', $s, qw(codes import), "$dir/welcome.csv", qw(--campaign welcome))->{rc},
       0, "... a shared code");
    write_text("$dir/auto.json", encode_json({ trigger => { event => 'signup' }, issue => 'shared',
        code => "WELCOME-\U$s\E", channel => 'hook', per_member => 'every run',
        message => "store $s: {{code}}" }));
    $res = ctl($w, '--store', $s, qw(auto set welcome), "$dir/auto.json");
    is($res->{rc}, 0, "... its automation") or diag $res->{err};
}
sub nkeys { my ($r, $pat) = @_; scalar @{ $r->cmd('KEYS', $pat) } }
ok(nkeys($ra, '{v}:cb:*') == 1 && nkeys($ra, '{v}:k:welcome') == 1 && nkeys($ra, '{w}:*') == 0,
   "store a's campaign and code in a's Redis, namespace v") or diag explain $ra->cmd('KEYS', '*');
ok(nkeys($rb, '{w}:cb:*') == 1 && nkeys($rb, '{w}:k:welcome') == 1 && nkeys($rb, '{v}:*') == 0,
   "store b's campaign and code in b's Redis, namespace w") or diag explain $rb->cmd('KEYS', '*');

# -t checks each store
my $t = dtest($w->conf);
is($t->{status}, 0, 'voucherd -t with stores') or diag $t->{out};
like($t->{out}, qr/store a: .*is fine.*\n.*store b: .*is fine/s, '... each store checked');
$t = dtest($w->conf . ' --store b');
is($t->{status}, 0, 'voucherd --store b -t');
unlike($t->{out}, qr/store a/, '... checks b only');

my $d = WorkerT::Daemon->start($w);
ok(wait_until(sub { $d->log =~ /store a: process \d+/ && $d->log =~ /store b: process \d+/ },
              timeout => 10), 'a process for each store');
my %child = $d->log =~ /store (\w): process (\d+)/g;
ok(wait_until(sub { $d->log =~ m{voucherd/a\[$child{a}\]: started: .*store a, namespace \{v\}}
                    && $d->log =~ m{voucherd/b\[$child{b}\]: started: .*store b, namespace \{w\}} },
              timeout => 10), "each store's process logs as voucherd/NAME");

sub signup { my ($r, $ns, $m) = @_; $r->cmd('XADD', "{$ns}:events", '*', type => 'signup', member => $m) }
sub hooked { my ($m) = @_; scalar grep { ($_->{body} // '') =~ /"$m"/ } $hook->accepted }

signup($ra, 'v', 'alice');
signup($rb, 'w', 'bob');
ok(wait_until(sub { hooked('alice') && hooked('bob') }, timeout => 20),
   'each store delivers its signup') or diag $d->log;
ok((grep { $_->{body} =~ /store a: WELCOME-?A/ } $hook->accepted), "... a's message, a's code");
ok((grep { $_->{body} =~ /store b: WELCOME-?B/ } $hook->accepted), "... b's message, b's code");

# the admin API
sub api {
    my ($method, $path, %o) = @_;
    my $r = VT::http($port, $method, $path,
                     headers => { Authorization => 'Bearer ' . ($o{token} // $OPS) },
                     (exists $o{body} ? (body => $o{body}) : ()));
    $r->{json} = eval { $JSON->decode($r->{body}) } if ($r->{body} // '') ne '';
    return $r;
}
sub refused {
    my ($r, $status, $reason, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    is($r->{json}{reason}, $reason, "$name: $reason");
}
ok(wait_until(sub { api('GET', '/stores/a/v1/campaigns/welcome')->{status} == 200 }, timeout => 10),
   'GET /stores/a/v1/campaigns/welcome: 200');
is(api('GET', '/stores/a/v1/codes/WELCOME-A')->{json}{campaign}, 'welcome', "a's code by a's path");
refused(api('GET', '/stores/b/v1/codes/WELCOME-A'), 404, 'not_found', "a's code by b's path");
is(api('GET', '/stores/b/v1/codes/WELCOME-B')->{status}, 200, "b's code by b's path");
refused(api('GET', '/v1/campaigns'), 404, 'store_required', 'no store in the path');
refused(api('GET', '/stores/zz/v1/campaigns'), 404, 'unknown_store', 'a store not configured');
refused(api('GET', '/stores//v1/campaigns'), 404, 'unknown_store', 'an empty store name');
refused(api('GET', '/stores/a'), 404, 'unknown_store', 'a store and no route');
refused(api('GET', '/stores/a/v1/nothing'), 404, 'unknown_path', 'a store and an unknown route');
refused(api('GET', '/stores/a/v1/campaigns', token => $BOB), 403, 'store_forbidden',
        "bob's token (stores=b) on store a");
is(api('GET', '/stores/b/v1/campaigns', token => $BOB)->{status}, 200, '... on store b: 200');
refused(api('GET', '/metrics', token => $BOB), 403, 'store_forbidden',
        "bob's token on /metrics of every store");
is(api('GET', '/stores/a/v1/campaigns', token => 'not-a-token-0123456789')->{status}, 401,
   'a wrong token: 401 before the store is looked at');
$res = api('POST', '/stores/b/v1/campaigns', body => { id => 'bonly', kind => 'percent', value => 500 });
is($res->{status}, 201, 'a write through /stores/b/v1/');
ok($rb->cmd('EXISTS', '{w}:k:bonly') && !$ra->cmd('EXISTS', '{v}:k:bonly'),
   "... in b's Redis and namespace only");
like(join(' ', @{ $rb->cmd('XREVRANGE', '{w}:admin', '+', '-', 'COUNT', 1)->[0][1] // [] }),
     qr/bonly/, "... audited in b's stream");

like($d->log, qr/admin: store b: token:ops POST \/v1\/campaigns 201/, '... logged with its store');

# SIGHUP: the API and every store's process read the file again
my $n_reload = () = $d->log =~ /configuration \S+ reloaded/g;
$d->hup;
ok(wait_until(sub { my $n = () = $d->log =~ /configuration \S+ reloaded/g; $n >= $n_reload + 3 },
              timeout => 10), 'SIGHUP: reloaded by the API and both stores');
ok(wait_until(sub { api('GET', '/stores/a/v1/campaigns/welcome')->{status} == 200 }, timeout => 10),
   '... the API answers again');

# /metrics: each series with its store, each family once
my $m;
ok(wait_until(sub { $m = api('GET', '/metrics')->{body} // '';
                    $m =~ /voucherd_deliveries_total\{store="a",channel="hook",outcome="sent"\} 1/
                    && $m =~ /voucherd_deliveries_total\{store="b",channel="hook",outcome="sent"\} 1/ },
              timeout => 10), '/metrics: deliveries by store') or diag $m;
like($m, qr/voucherd_redis_up\{store="a"\} 1/, '... redis_up of a');
my @help = $m =~ /^# HELP voucherd_deliveries_total /mg;
is(scalar @help, 1, '... one HELP per family');
$m = api('GET', '/stores/b/metrics', token => $BOB)->{body} // '';
like($m, qr/voucherd_deliveries_total\{store="b",channel="hook",outcome="sent"\} 1/,
     "/stores/b/metrics: b's series, with bob's token");
unlike($m, qr/store="a"/, "... and none of a's");
like(api('GET', '/stores/a/metrics', token => $SCRAPE)->{body} // '', qr/store="a"/,
     "/stores/a/metrics with the metrics token");
like(api('GET', '/metrics', token => $SCRAPE)->{body} // '', qr/store="b"/, '/metrics with it');
is(api('GET', '/stores/a/v1/campaigns', token => $SCRAPE)->{status}, 401, '... nothing else');

# store a's Redis killed: b still delivers and answers
$ra->kill9;
signup($rb, 'w', 'carol');
ok(wait_until(sub { hooked('carol') }, timeout => 20), "a's Redis down: b still delivers");
is(api('GET', '/stores/b/v1/campaigns/welcome')->{status}, 200, "... b's admin API answers");
refused(api('GET', '/stores/a/v1/campaigns/welcome'), 503, 'store_unavailable', "a's admin API");
ok(wait_until(sub { (api('GET', '/metrics')->{body} // '') =~ /voucherd_redis_up\{store="a"\} 0/ },
              timeout => 10), '... /metrics: redis_up of a is 0');

# a's Redis back, with its data: a resumes by itself
$ra->start_again;
is(ctl($w, qw(--store a campaign set welcome kind amount value 10000 currency THB))->{rc}, 0,
   "a's Redis back (empty): its campaign again");
write_text("$dir/welcome.csv", "code\nWELCOME-A\n");
ctl($w, qw(--store a codes import), "$dir/welcome.csv", qw(--campaign welcome));
write_text("$dir/auto.json", encode_json({ trigger => { event => 'signup' }, issue => 'shared',
    code => 'WELCOME-A', channel => 'hook', per_member => 'every run', message => 'store a: {{code}}' }));
is(ctl($w, qw(--store a auto set welcome), "$dir/auto.json")->{rc}, 0, '... its automation');
signup($ra, 'v', 'dave');
ok(wait_until(sub { hooked('dave') }, timeout => 30), '... store a delivers again') or diag $d->log;
ok(wait_until(sub { api('GET', '/stores/a/v1/campaigns/welcome')->{status} == 200 }, timeout => 10),
   "... a's admin API answers (each thread connects again)");
my %child2 = $d->log =~ /store (\w): process (\d+)/g;
is_deeply(\%child2, \%child, '... with the same processes (no restart)');

# SIGTERM: every store's process stops with it
is($d->stop, 0, 'voucherd stopped');
ok(!VT::_pid_running($child{a}) && !VT::_pid_running($child{b}), "... and the stores' processes");

# bad configurations
for my $bad ([{ %$cfg, redis => { address => '127.0.0.1:1' } },
              qr/stores: "redis", "namespace" and "key_file" go in each store/],
             [{ %$cfg, stores => { 'a b' => {} } }, qr/stores: a store's name: 1-64 of/],
             [{ %$cfg, stores => {} }, qr/stores: expected an object of 1 to 64 stores/],
             [{ %$cfg, stores => { a => { redis => { adress => 'x' } } } },
              qr/stores\.a\.redis: unknown field "adress"/],
             [{ %$cfg, stores => { a => { colour => 'red' } } }, qr/stores\.a\.?: unknown field "colour"/]) {
    write_text("$dir/bad.json", $JSON->encode($bad->[0]));
    my $r = dtest("$dir/bad.json");
    isnt($r->{status}, 0, 'a bad configuration refused');
    like($r->{out}, $bad->[1], '... saying why') or diag $r->{out};
}
write_text("$dir/bad.tokens", "ops $OPS colour=red\n");
write_text("$dir/bad.json", $JSON->encode({ %$cfg, admin => { listen => '127.0.0.1:' . VT::free_port(),
                                                              tokens_file => "$dir/bad.tokens" } }));
my $bd = eval { WorkerT::Daemon->start($w, conf => "$dir/bad.json") };
like($@, qr/after the secret, only stores=NAME,NAME/,
     'a tokens file with a bad stores= field: voucherd does not start, saying why');

done_testing;
