#!/usr/bin/perl
#
# voucherd's /metrics on the admin listener against a real voucherd,
# Redis and an HTTP sink: the scraper's token (metrics_token_file) opens
# /metrics and nothing else, an admin token opens it too, none is 401;
# the figures move as they should: a scheduled run and its lag (a fake
# clock), deliveries by channel and outcome (sent, retry, dead), the
# queue, dead letters, events consumed and the groups' lag, jobs by state,
# webhook deliveries; promtool check metrics accepts every scrape.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $JSON = JSON::PP->new->utf8->canonical;
my $TOKEN = 'metrics-admin-0123456789';
my $SCRAPE = 'scrape-token-0123456789';
my $promtool = -x '/usr/bin/promtool' ? '/usr/bin/promtool' : undef;

$ENV{TZ} = 'UTC';
POSIX::tzset();

my $w = worker_setup();
my $r = $w->redis;
my $dir = $w->dir;
my $hook = SinkT::HTTP->start;
my $subs = SinkT::HTTP->start;
write_text("$dir/tokens", "ops $TOKEN\n");
chmod 0600, "$dir/tokens";
write_text("$dir/scrape", "$SCRAPE\n");
write_text("$dir/hook.secret", "hook-secret\n");
my $port = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => "$dir/tokens",
                           metrics_token_file => "$dir/scrape" },
                daemon => { poll_ms => 50 },
                delivery => { attempts => 2, backoff_ms => 100, lease_s => 5 },
                channels => { hook => { type => 'webhook', url => $hook->url('/hook'),
                                        secret_file => "$dir/hook.secret" } });

my $clock = "$dir/now";
sub set_clock { write_text($clock, "$_[0]\n") }
my $t0 = POSIX::mktime(50, 59, 8, 10, 2, 125);    # 2025-03-10 08:59:50 UTC
set_clock($t0);
my $d = WorkerT::Daemon->start($w, env => { VOUCHERD_FAKE_NOW => "\@$clock" });

sub api {
    my ($method, $path, $body, $type) = @_;
    my $res = VT::http($port, $method, $path, headers => { Authorization => "Bearer $TOKEN",
                                                         ($type ? ('Content-Type' => $type) : ()) },
                       (defined $body ? (body => $body) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') =~ /^\{/;
    return $res;
}

my $scrapes = 0;

# one scrape: {name{labels} => value}; promtool checks the text
sub scrape {
    my $res = VT::http($port, 'GET', '/metrics', headers => { Authorization => "Bearer $SCRAPE" });
    die "scrape: $res->{status}" unless $res->{status} == 200;
    $scrapes++;
    if ($promtool) {
        write_text("$dir/scrape.txt", $res->{body});
        my $out = `$promtool check metrics < '$dir/scrape.txt' 2>&1`;
        ok($? == 0, "promtool check metrics accepts scrape $scrapes") or diag $out;
    }
    my %m;
    for (split /\n/, $res->{body}) {
        next if /^#/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return \%m;
}

sub metric { my ($m, $k) = @_; $m->{$k} // 0 }

######################################################## the scraper's token

my $res = VT::http($port, 'GET', '/metrics');
is($res->{status}, 401, '/metrics without a token: 401');
$res = VT::http($port, 'GET', '/metrics', headers => { Authorization => "Bearer $SCRAPE" });
is($res->{status}, 200, '... the metrics token: 200');
is($res->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8', '... Prometheus text');
$res = VT::http($port, 'GET', '/v1/campaigns', headers => { Authorization => "Bearer $SCRAPE" });
is($res->{status}, 401, '... and nothing else');
is(VT::http($port, 'GET', '/metrics', headers => { Authorization => "Bearer $TOKEN" })->{status}, 200,
   'an admin token opens /metrics too');
is(VT::http($port, 'POST', '/metrics', headers => { Authorization => "Bearer $SCRAPE" })->{status}, 405,
   'POST: 405');

my $m0 = scrape();
is(metric($m0, 'voucherd_redis_up'), 1, 'redis up');
ok(exists $m0->{'voucherd_jobs{state="queued"}'}, 'jobs by state, zero or not');
like(join(' ', keys %$m0), qr/voucherd_info\{library="[0-9a-f]{16}"\}/, 'the library version');

######################################################## a scheduled run, its lag, deliveries

api('POST', '/v1/campaigns', { id => 'daily', kind => 'percent', value => 1000 });
api('POST', '/v1/members', { id => $_, name => ucfirst $_ }) for qw(amy ben cid);
$res = api('PUT', '/v1/automations/daily', { schedule => 'daily 09:00', segment => 'all', channel => 'hook',
                                             message => 'Hi {{code}}', codes => { length => 6 },
                                             per_member => 'every run' });
is($res->{status}, 200, 'a daily automation at 09:00') or diag $res->{body};
set_clock($t0 + 22);    # 09:00:12
ok($hook->wait_accepted(3), 'the 09:00 run: three deliveries sent');
my $m1;
ok(wait_until(sub { $m1 = scrape(); metric($m1, 'voucherd_deliveries_total{channel="hook",outcome="sent"}') == 3 },
              timeout => 10), 'voucherd_deliveries_total{channel="hook",outcome="sent"} 3');
is(metric($m1, 'voucherd_automation_runs_total{campaign="daily",outcome="planned"}'), 1,
   'voucherd_automation_runs_total{campaign="daily",outcome="planned"} 1');
my $lag = metric($m1, 'voucherd_automation_run_lag_seconds{campaign="daily"}');
ok($lag >= 10 && $lag < 30, "... its lag: $lag s (planned at 09:00:1x)");
is(metric($m1, 'voucherd_queue_deliveries'), 0, 'the queue is empty again');

# the next day the channel fails: a retry, then a dead letter each
$hook->control(fail_all => 1, status => 503);
set_clock($t0 + 86400 + 22);
ok(wait_until(sub { $r->cmd('XLEN', $w->key('dead')) == 3 }, timeout => 20), 'day 2: the channel fails');
my $m2 = scrape();
is(metric($m2, 'voucherd_deliveries_total{channel="hook",outcome="retry"}'), 3, '... three retries counted');
is(metric($m2, 'voucherd_deliveries_total{channel="hook",outcome="dead"}'), 3, '... three dead');
is(metric($m2, 'voucherd_delivery_dead_letters'), 3, 'voucherd_delivery_dead_letters 3');
is(metric($m2, 'voucherd_automation_runs_total{campaign="daily",outcome="planned"}'), 2, 'two runs');
$hook->control();

######################################################## events, the queue

$res = api('PUT', '/v1/automations/daily', { trigger => { event => 'signup', delay => '1d' }, segment => 'all',
                                             channel => 'hook', message => 'Hi {{code}}', codes => { length => 6 },
                                             per_member => 'every run' });
is($res->{status}, 200, 'a signup automation, a day later') or diag $res->{body};
$r->cmd('XADD', $w->key('events'), '*', 'type', 'signup', 'member', "new$_") for 1 .. 2;
my $m3;
ok(wait_until(sub { $m3 = scrape(); metric($m3, 'voucherd_events_consumed_total') == 2 }, timeout => 10),
   'voucherd_events_consumed_total 2');
is(metric($m3, 'voucherd_queue_deliveries'), 2, 'voucherd_queue_deliveries 2 (due tomorrow)');
is(metric($m3, 'voucherd_queue_due_deliveries'), 0, '... none due');
is(metric($m3, 'voucherd_events_lag{group="voucherd"}'), 0, 'the automations\' group has read everything');
is(metric($m3, 'voucherd_events_pending{group="voucherd"}'), 0, '... and acknowledged it');

######################################################## jobs

$res = api('POST', '/v1/jobs/codes/issue', { campaign => 'daily', count => 100 });
ok(wait_until(sub { api('GET', "/v1/jobs/$res->{json}{id}")->{json}{state} eq 'done' }, timeout => 20),
   'a job done');
$res = api('POST', '/v1/jobs/codes/import', \"code\nX1\n", 'text/csv');
is($res->{status}, 202, 'an import without a campaign');
my $m4 = scrape();
is(metric($m4, 'voucherd_jobs{state="done"}') + metric($m4, 'voucherd_jobs{state="failed"}')
   + metric($m4, 'voucherd_jobs{state="running"}') + metric($m4, 'voucherd_jobs{state="queued"}'), 2,
   'voucherd_jobs: the two jobs');
is(metric($m4, 'voucherd_jobs{state="done"}'), 1, '... one done');
ok(wait_until(sub { metric(scrape(), 'voucherd_jobs_ended_total{outcome="failed"}') == 1 }, timeout => 10),
   'the import without a campaign failed: voucherd_jobs_ended_total{outcome="failed"} 1');
is(metric(scrape(), 'voucherd_jobs_ended_total{outcome="done"}'), 1, '... one done');

######################################################## webhooks

$res = api('POST', '/v1/webhooks', { id => 'crm', url => $subs->url('/w'), events => ['code_issued'],
                                     secret => 'crm-secret-0123456789' });
is($res->{status}, 201, 'a webhook subscription');
sleep 0.5;
api('POST', '/v1/codes', { code => "W$_", campaign => 'daily' }) for 1 .. 4;
ok($subs->wait_accepted(4), 'four events sent');
my $m5;
ok(wait_until(sub { $m5 = scrape(); metric($m5, 'voucherd_webhook_deliveries_total{outcome="sent"}') == 4 },
              timeout => 10), 'voucherd_webhook_deliveries_total{outcome="sent"} 4');
ok(metric($m5, 'voucherd_webhook_events_consumed_total{source="admin"}') >= 4,
   'voucherd_webhook_events_consumed_total{source="admin"} counts the admin stream');
is(metric($m5, 'voucherd_webhook_pending{webhook="crm"}'), 0, 'voucherd_webhook_pending{webhook="crm"} 0');
$subs->control(fail_all => 1, status => 503);
api('POST', '/v1/codes', { code => 'W9', campaign => 'daily' });
ok(wait_until(sub { metric(scrape(), 'voucherd_webhook_deliveries_total{outcome="retry"}') >= 1 }, timeout => 10),
   'a receiver failing: retries counted');
ok(metric(scrape(), 'voucherd_webhook_pending{webhook="crm"}') == 1, '... its event pending');
$subs->control();

######################################################## Redis away

$r->stop;
my $m6 = scrape();
is(metric($m6, 'voucherd_redis_up'), 0, 'Redis away: voucherd_redis_up 0');
is(metric($m6, 'voucherd_deliveries_total{channel="hook",outcome="sent"}'), 3, '... the counters still there');

is($d->stop, 0, 'voucherd stops');
done_testing;
