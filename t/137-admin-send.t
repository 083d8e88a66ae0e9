#!/usr/bin/perl
#
# A segment send as a job (automations.send) through voucherd's admin API
# and voucherctl: 202 at once with a job, done/total of the segment, the
# messages arriving at a webhook receiver, a second send held back by
# per_member, refusals (unknown fields, no automation, a triggered one, a
# paused campaign), a cancel, a campaign deleted meanwhile, voucherd killed (-9)
# and stopped (TERM) mid-send: resumed from the checkpoint, every member
# queued exactly once; voucherctl auto send in-process and --detach.

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
my $SECRET = 'send-secret-0123456789';

my $hook = SinkT::HTTP->start;
my $tmp = VT::tmp_root();
write_text("$tmp/hook.secret", "hook-secret-137\n");
my $closed = VT::free_port();

my $w = worker_setup();
my $dir = $w->dir;
my $tokens = "$dir/tokens";
write_text($tokens, "ops $SECRET\n");
chmod 0600, $tokens;
my $port = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $tokens },
                daemon => { poll_ms => 50 }, delivery => { lease_s => 2, attempts => 1 },
                channels => {
                    hook => { type => 'webhook', url => $hook->url('/hook'),
                              secret_file => "$tmp/hook.secret" },
                    # nobody listens: each delivery dead at once
                    void => { type => 'webhook', url => "http://127.0.0.1:$closed/x",
                              secret_file => "$tmp/hook.secret", connect_timeout_ms => 200 },
                });
my $r = $w->redis;
my $d = WorkerT::Daemon->start($w);

sub api {
    my ($method, $path, %o) = @_;
    my $res = VT::http($port, $method, $path, headers => { Authorization => "Bearer $SECRET" },
                       (exists $o{body} ? (body => $o{body}) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') =~ /^\s*[\{\[]/;
    return $res;
}
sub refused {
    my ($res, $status, $reason, $name) = @_;
    is($res->{status}, $status, "$name: $status") or diag $res->{body};
    is($res->{json}{reason}, $reason, "$name: $reason");
}
sub job { api('GET', "/v1/jobs/$_[0]")->{json} }
sub job_direct { +{ @{ $r->cmd('HGETALL', $w->key("j:$_[0]")) } } }
sub wait_job {
    my ($id) = @_;
    my $j;
    wait_until(sub { $j = job($id); $j && $j->{state} =~ /^(done|failed|cancelled)$/ }, timeout => 60);
    return $j;
}
sub auto {
    my ($camp, $def) = @_;
    is(api('POST', '/v1/campaigns', body => { id => $camp, kind => 'amount', value => 500 })->{status},
       201, "campaign $camp");
    my $res = api('PUT', "/v1/automations/$camp", body => $def);
    ok($res->{status} == 200 || $res->{status} == 201, "automation of $camp") or diag $res->{body};
}
# members queued in a run: each once, as its delivery record
sub run_members { $r->cmd('HLEN', $w->key("d:$_[0]:$_[1]")) }
sub queued_in_log {
    my ($camp, $run) = @_;
    my %n;
    for (@{ $r->cmd('XRANGE', $w->key("dl:$camp"), '-', '+') }) {
        my %f = @{ $_->[1] };
        $n{ $f{member} }++ if $f{run} eq $run && $f{status} eq 'queued';
    }
    return \%n;
}
sub members_csv {
    my ($file, $from, $to) = @_;
    write_text($file, "id,name\n" . join('', map { sprintf "m%05d,Member %d\n", $_, $_ } $from .. $to));
}

# --- a small segment: the messages arrive --------------------------------
members_csv("$dir/few.csv", 1, 3);
is(ctl($w, qw(members import), "$dir/few.csv")->{rc}, 0, 'three members');
auto(news => { schedule => 'once 2099-01-01 09:00', segment => 'all', codes => { length => 6 },
               channel => 'hook', message => 'Hello {{name}}: {{code}}' });

my $res = api('POST', '/v1/jobs/automations/send', body => { campaign => 'news' });
is($res->{status}, 202, 'a send: 202 at once with a job') or diag $res->{body};
my $id = $res->{json}{id};
is_deeply([@{ $res->{json} }{qw(kind state)}], ['automations.send', 'queued'], "... $id, automations.send, queued");
my $j = wait_job($id);
is_deeply([@{$j}{qw(state done total)}], ['done', 3, 3], 'done: 3 of 3 members');
is_deeply([@{ $j->{result} }{qw(campaign run members queued held)}], ['news', $id, 3, 3, 0],
          '... its result: the run is the job, 3 queued');
ok($hook->wait_accepted(3, timeout => 20), 'three messages arrived') or diag $d->log;
my @msgs = sort map { decode_json($_->{body})->{message} } $hook->requests;
like($msgs[0], qr/^Hello Member 1: [0-9A-Z]{6,}$/, '... each with its name and code');

$res = api('POST', '/v1/jobs/automations/send', body => { campaign => 'news' });
$j = wait_job($res->{json}{id});
is_deeply([@{ $j->{result} }{qw(queued held)}], [0, 3], 'sent again: per_member (once) holds all 3 back');
sleep 1;
is(scalar($hook->requests), 3, '... nothing more sent');

# --- refusals ------------------------------------------------------------
refused(api('POST', '/v1/jobs/automations/send', body => { campaign => 'news', now => 1 }),
        400, 'unknown_field', 'an unknown field');
refused(api('POST', '/v1/jobs/automations/send', body => {}), 400, 'missing_field', 'no campaign');
refused(api('POST', '/v1/jobs/automations/send', body => { campaign => 'nope' }),
        404, 'not_found', 'a campaign without an automation');
auto(welcome => { trigger => { event => 'signup' }, codes => { length => 6 }, channel => 'hook',
                  message => 'Hi' });
refused(api('POST', '/v1/jobs/automations/send', body => { campaign => 'welcome' }),
        409, 'not_scheduled', 'a triggered automation');
api('PATCH', '/v1/campaigns/news', body => { status => 'paused' });
refused(api('POST', '/v1/jobs/automations/send', body => { campaign => 'news' }),
        409, 'campaign_not_active', 'a paused campaign');

# --- a big segment: killed and stopped mid-send, resumed ------------------
members_csv("$dir/many.csv", 4, 20003);
my $imp = ctl($w, qw(members import), "$dir/many.csv");
is($imp->{rc}, 0, '20,000 more members') or diag $imp->{err};
my $N = 20003;

for my $how ('kill', 'term') {
    auto("big$how" => { schedule => 'once 2099-01-01 09:00', segment => 'all', codes => { length => 6 },
                        channel => 'void', message => 'x', per_member => 'every run' });
    $res = api('POST', '/v1/jobs/automations/send', body => { campaign => "big$how" });
    $id = $res->{json}{id};
    wait_until(sub { $j = job($id); $j->{done} >= 1000 || $j->{state} !~ /^(queued|running)$/ },
               timeout => 60, interval => 0.02);
    if ($how eq 'kill') {
        $d->kill9;
        wait_until(sub { my @c = split /\n/, $r->cmd('CLIENT', 'LIST'); @c == 1 }, timeout => 10);
        $j = job_direct($id);
        is($j->{state}, 'running', "kill -9 at $j->{done}: the job stays running");
    } else {
        is($d->stop, 0, 'TERM mid-send: voucherd stops cleanly');
        $j = job_direct($id);
        is($j->{state}, 'queued', "... the job is given back at $j->{done}");
    }
    my $at = $j->{done};
    ok($at > 0 && $at < $N, "... part done: $at of $j->{total}");
    is($j->{total}, $N, '... of the whole segment');
    is(run_members("big$how", $id), $at, '... exactly that many members queued (the checkpoint moves with them)');
    $d = WorkerT::Daemon->start($w);
    $j = wait_job($id);
    is_deeply([@{$j}{qw(state done total)}], ['done', $N, $N], '... resumed by the next voucherd, done');
    like($d->log, qr/job $id \(automations.send\) resumed at \d+/, '... from its checkpoint');
    is(run_members("big$how", $id), $N, '... every member queued');
    my $q = queued_in_log("big$how", $id);
    is(scalar(keys %$q), $N, '... each in the delivery log');
    is(scalar(grep { $_ != 1 } values %$q), 0, '... exactly once: nobody twice');
}

# --- cancelled mid-send --------------------------------------------------
auto(halt => { schedule => 'once 2099-01-01 09:00', segment => 'all', codes => { length => 6 },
               channel => 'void', message => 'x' });
$res = api('POST', '/v1/jobs/automations/send', body => { campaign => 'halt' });
$id = $res->{json}{id};
wait_until(sub { $j = job($id); $j->{done} >= 400 || $j->{state} !~ /^(queued|running)$/ },
           timeout => 60, interval => 0.02);
is(api('DELETE', "/v1/jobs/$id")->{status}, 200, 'a send cancelled on request');
$j = wait_job($id);
is($j->{state}, 'cancelled', '... ends cancelled');
ok($j->{done} < $N, "... at $j->{done} of $N");
is(run_members('halt', $id), $j->{done}, '... what it queued stays, and done says how much');

# --- a campaign deleted meanwhile ----------------------------------------
auto(gone => { schedule => 'once 2099-01-01 09:00', segment => 'all', codes => { length => 6 },
               channel => 'void', message => 'x' });
$res = api('POST', '/v1/jobs/automations/send', body => { campaign => 'gone' });
$id = $res->{json}{id};
wait_until(sub { $j = job($id); $j->{done} >= 400 || $j->{state} !~ /^(queued|running)$/ },
           timeout => 60, interval => 0.02);
$r->cmd('DEL', $w->key('k:gone'));
$j = wait_job($id);
is_deeply([@{$j}{qw(state reason)}], ['failed', 'campaign_not_found'], 'the campaign deleted meanwhile: failed');
is(run_members('gone', $id), $j->{done}, '... what was queued before is what it says');

# --- voucherctl --------------------------------------------------------------
api('PATCH', '/v1/campaigns/news', body => { status => 'active' });
auto(cli => { schedule => 'once 2099-01-01 09:00', segment => 'all', codes => { length => 6 },
              channel => 'void', message => 'x' });
$res = ctl($w, qw(auto send cli));
is($res->{rc}, 0, 'voucherctl auto send: in-process') or diag $res->{err};
my $out = decode_json($res->{out});
is_deeply([@{$out}{qw(campaign members queued)}], ['cli', $N, $N], '... its result');
unlike($res->{err}, qr/\r/, '... no progress bar without a terminal');
$res = ctl($w, qw(auto send news --detach));
is($res->{rc}, 0, 'voucherctl auto send --detach: queued for voucherd') or diag $res->{err};
$out = decode_json($res->{out});
is($out->{kind}, 'automations.send', '... a job');
$j = wait_job($out->{id});
is($j->{state}, 'done', '... voucherd runs it');
$res = ctl($w, qw(auto send welcome));
is($res->{rc}, 1, 'voucherctl auto send of a triggered automation: refused');
like($res->{err}, qr/only a scheduled automation/, '... saying why');

$d->stop;
done_testing;
