#!/usr/bin/perl
#
# Jobs against a real voucherd and Redis: issuing codes, importing codes
# and members, exporting codes through the admin API (answered at once
# with a job, done/total, an ETA, the output), cancel, a campaign deleted
# meanwhile, voucherd killed (-9) and stopped (TERM) in the middle of a
# job (resumed from its checkpoint: exactly the count asked, never more),
# a batch refused at write time (the lines named, what was written said),
# the API and the daemon's loop not blocked by a big job; voucherctl
# running the same jobs in-process (a progress bar on a terminal only,
# --detach, job list|get|output|wait|cancel).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use VT;
use WorkerT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;
my $SECRET = 'jobs-secret-0123456789';

my $w = worker_setup();
my $tokens = $w->dir . '/tokens';
write_text($tokens, "ops $SECRET\n");
chmod 0600, $tokens;
my $port = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $tokens,
                           max_import => 65536 },
                daemon => { poll_ms => 100 }, delivery => { lease_s => 2 });
my $d = WorkerT::Daemon->start($w);
my $r = $w->redis;

sub api {
    my ($method, $path, %o) = @_;
    my %h = (Authorization => "Bearer $SECRET", %{ $o{headers} // {} });
    my $res = VT::http($port, $method, $path, headers => \%h,
                       (exists $o{body} ? (body => $o{body}) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') =~ /^\s*\{/;
    return $res;
}

sub refused {
    my ($res, $status, $reason, $name, $field) = @_;
    is($res->{status}, $status, "$name: $status") or diag $res->{body};
    is($res->{json}{reason}, $reason, "$name: $reason");
    is($res->{json}{field}, $field, "$name: field $field") if defined $field;
}

sub job { api('GET', "/v1/jobs/$_[0]")->{json} }

sub wait_job {
    my ($id, %o) = @_;
    my $j;
    wait_until(sub { $j = job($id); $j && $j->{state} =~ /^(done|failed|cancelled)$/ },
               timeout => $o{timeout} // 60);
    return $j;
}

sub wait_done_over {
    my ($id, $n) = @_;
    my $j;
    wait_until(sub { $j = job($id); $j->{done} > $n || $j->{state} ne 'running' && $j->{state} ne 'queued' },
               timeout => 30, interval => 0.02);
    return $j;
}

# the codes of a campaign, both forms, as Redis holds them
sub codes_of {
    my ($camp) = @_;
    my ($cursor, %seen) = ('0');
    do {
        my $x = $r->cmd('FCALL', 'voucher_codes_page', 1, $w->key("k:$camp"), $cursor, 5000);
        $seen{ $_->[0] } = 1 for @{ $x->[1] };
        $cursor = $x->[0];
    } while ($cursor ne '0');
    return scalar keys %seen;
}

# the campaign of a code, or undef
sub lookup {
    my $x = $r->cmd('FCALL', 'voucher_code_get', 1, $w->key("c:$_[0]"));
    return ref $x eq 'ARRAY' ? { @$x }->{campaign} : undef;
}

sub campaign { api('POST', '/v1/campaigns', body => { id => $_[0], kind => 'amount', value => 100 }) }

######################################################## issue

campaign('spring');
# a pattern too short for the check characters names the fields as the
# API knows them
my $short = api('POST', '/v1/jobs/codes/issue',
                body => { campaign => 'spring', count => 5, pattern => 'SP-##' });
is($short->{status}, 400, 'issue: a pattern with fewer # than mac_length: 400');
is($short->{json}{message}, "pattern has 2 '#', not more than mac_length 4",
   '... its message names pattern and mac_length');
my $t0 = time;
my $res = api('POST', '/v1/jobs/codes/issue',
              body => { campaign => 'spring', count => 5000, pattern => 'SP-####-####-####' });
is($res->{status}, 202, 'issue: answered at once with a job: 202');
ok(time - $t0 < 2, '... at once');
my $id = $res->{json}{id};
like($id, qr/^j\d+$/, "... the job $id");
is_deeply([@{ $res->{json} }{qw(kind state done total)}], ['codes.issue', 'queued', 0, 5000],
          '... queued, done 0 of 5000');
my $j = wait_job($id);
is_deeply([@{$j}{qw(state done total)}], ['done', 5000, 5000], 'the job is done: 5000 of 5000');
is($j->{result}{issued}, 5000, '... its result');
ok($j->{started_at} >= $j->{created_at} && $j->{finished_at} >= $j->{started_at}, '... and its times');
is(codes_of('spring'), 5000, '5000 codes in Redis');
$res = api('GET', "/v1/jobs/$id/output");
is($res->{status}, 200, 'its output');
like($res->{headers}{'content-type'}, qr{^text/plain}, '... text');
my @codes = split /\n/, $res->{body};
is(scalar @codes, 5000, '... the 5000 codes');
is(scalar(grep { /^SP-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/ } @codes), 5000, '... in the pattern');
(my $c = $codes[17]) =~ s/-//g;
is(lookup($c), 'spring', "... $codes[17] is there");

my @audit = map { { @{ $_->[1] } } } @{ $r->cmd('XREVRANGE', $w->key('admin'), '+', '-', 'COUNT', 10) };
my ($end) = grep { $_->{op} eq 'job.end' && $_->{target} eq $id } @audit;
my ($create) = grep { $_->{op} eq 'job.create' && $_->{target} eq $id } @audit;
is($create->{who}, 'token:ops', 'audit: job.create by the token');
is(decode_json($end->{after})->{done}, 5000, 'audit: job.end with what it did');

refused(api('POST', '/v1/jobs/codes/issue', body => { campaign => 'spring', count => 0 }), 400,
        'invalid_field', 'count 0', 'count');
refused(api('POST', '/v1/jobs/codes/issue', body => { campaign => 'spring' }), 400,
        'missing_field', 'no count', 'count');
refused(api('POST', '/v1/jobs/codes/issue', body => { campaign => 'spring', count => 5, colour => 1 }), 400,
        'unknown_field', 'an unknown field', 'colour');
refused(api('POST', '/v1/jobs/codes/issue', body => { campaign => 'spring', count => 5, length => 3 }), 400,
        'invalid_field', 'too few random bodies', 'length');
refused(api('POST', '/v1/jobs/codes/issue', body => { campaign => 'nosuch', count => 5 }), 404,
        'not_found', 'an unknown campaign', 'campaign');
refused(api('GET', '/v1/jobs/j999999'), 404, 'not_found', 'an unknown job');
refused(api('GET', '/v1/jobs/nonsense'), 404, 'not_found', 'not a job id');
refused(api('DELETE', "/v1/jobs/$id"), 409, 'job_finished', 'cancel of a finished job');
refused(api('GET', '/v1/jobs/codes/issue'), 405, 'method_not_allowed', 'GET of a job kind');

######################################################## big: not blocking

campaign('big');
$res = api('POST', '/v1/jobs/codes/issue', body => { campaign => 'big', count => 200000 });
my $big = $res->{json}{id};
$j = wait_done_over($big, 0);
is($j->{state}, 'running', 'a 200,000 code job runs');
my ($slow, $n) = (0, 0);
while (($j = job($big))->{state} eq 'running' && $n < 200) {
    my $s = time;
    my $x = api('GET', '/v1/campaigns/big');
    $slow = time - $s if time - $s > $slow;
    $n++;
    if ($n == 3) {
        ok(defined $j->{eta_s} && defined $j->{rate} && $j->{rate} > 0,
           "... with a rate ($j->{rate}/s) and an ETA ($j->{eta_s} s)");
        # the daemon's loop goes on: an event is consumed meanwhile
        $r->cmd('XADD', $w->key('events'), '*', 'type', 'signup', 'member', 'amy', 'name', 'Amy');
    }
    sleep 0.05;
}
ok($n >= 3, "the API answered $n requests while it ran");
ok($slow < 1, sprintf('... the slowest in %.3f s', $slow));
ok(wait_until(sub { $r->cmd('EXISTS', $w->key('m:amy')) }, timeout => 10),
   '... and the loop consumed an event meanwhile');
$j = wait_job($big);
is_deeply([@{$j}{qw(state done)}], ['done', 200000], 'the big job is done');
note sprintf 'issued 200,000 codes in %.2f s', ($j->{finished_at} - $j->{started_at}) / 1000;

######################################################## export

$res = api('POST', '/v1/jobs/codes/export', body => { campaign => 'spring', format => 'csv' });
is($res->{status}, 202, 'export: a job');
$j = wait_job($res->{json}{id});
is_deeply([@{$j}{qw(state done total)}], ['done', 5000, undef], '... 5000 codes, no total known before');
$res = api('GET', "/v1/jobs/$j->{id}/output");
like($res->{headers}{'content-type'}, qr{^text/csv}, '... CSV');
my @rows = split /\n/, $res->{body};
is($rows[0], 'code,campaign,status,max_uses,used,customer,balance,initial_balance,starts_at,ends_at',
   '... the header');
is(scalar @rows, 5001, '... and a line a code');
my %exp = map { ((split /,/)[0] => 1) } @rows[1 .. $#rows];
is(scalar(grep { (my $x = $_) =~ s/-//g; $exp{$x} } @codes), 5000, '... the codes issued');
$res = api('POST', '/v1/jobs/codes/export', body => { campaign => 'spring', format => 'jsonl',
                                                       pattern => 'SP-####-####-####' });
$j = wait_job($res->{json}{id});
my @jl = map { decode_json($_) } split /\n/, api('GET', "/v1/jobs/$j->{id}/output")->{body};
is(scalar @jl, 5000, 'export jsonl');
like($jl[0]{display}, qr/^SP-/, '... with the display form');
refused(api('POST', '/v1/jobs/codes/export', body => { campaign => 'spring', format => 'xml' }), 400,
        'invalid_field', 'export format xml', 'format');

######################################################## import

sub post_file {
    my ($path, $text, $type) = @_;
    return api('POST', $path, body => \$text, headers => { 'Content-Type' => $type // 'text/csv' });
}

$res = post_file('/v1/jobs/codes/import?campaign=spring', "code,max_uses,customer\nVAN-1,5,\nVAN-2,1,alice\n");
is($res->{status}, 202, 'import codes: a job');
$j = wait_job($res->{json}{id});
is_deeply([@{$j}{qw(state phase done total)}, $j->{result}{written}], ['done', 'write', 2, 2, 2],
          '... checked, then written: 2 of 2');
is($r->cmd('HGET', $w->key('c:VAN2'), 'c'), 'alice', '... stored');

my $before = $r->cmd('DBSIZE');
$res = post_file('/v1/jobs/codes/import', "code,campaign,max_uses\nOK-1,spring,1\nOK-2,spring,lots\nOK-3,nope,1\nVAN-1,spring,1\n");
$j = wait_job($res->{json}{id});
is_deeply([@{$j}{qw(state reason)}], ['failed', 'import_rejected'], 'a bad file: failed, import_rejected');
is_deeply([sort map { $_->{line} // 0 } @{ $j->{errors} }], [0, 3, 5], '... the lines named');
my ($l3) = grep { ($_->{line} // 0) == 3 } @{ $j->{errors} };
like($l3->{message}, qr/code "OK2": invalid_field max_uses/, '... and why');
ok(!defined lookup('OK1'), '... nothing imported');
is($r->cmd('HGET', $w->key('c:VAN1'), 'm'), 5, '... VAN-1 as it was');

$res = post_file('/v1/jobs/codes/import?match=VIP%5Cd%2B&dry_run=true', "code,campaign\nVIP1,spring\nVIP22,spring\n");
$j = wait_job($res->{json}{id});
is_deeply([@{$j}{qw(state)}, $j->{result}{written}, $j->{result}{dry_run}], ['done', 0, JSON::PP::true],
          'dry_run: checked, nothing written');
ok(!$r->cmd('EXISTS', $w->key('c:VIP1')), '... VIP1 not there');
refused(post_file('/v1/jobs/codes/import?match=(', "code,campaign\nX,spring\n"), 400, 'invalid_field',
        'a bad match', 'match');
refused(post_file('/v1/jobs/codes/import', "code\nX\n", 'application/json'), 415, 'unsupported_media_type',
        'JSON is not a file to import');
refused(post_file('/v1/jobs/codes/import', ''), 400, 'invalid_request', 'an empty file');
refused(post_file('/v1/jobs/codes/import', "code,campaign\n" . ("X,spring\n" x 8000)), 413, 'body_too_large',
        'a file over admin.max_import');
refused(post_file('/v1/jobs/codes/import?colour=red', "code,campaign\nX,spring\n"), 400, 'unknown_field',
        'an unknown parameter', 'colour');

$res = post_file('/v1/jobs/members/import', qq({"id":"zoe","tags":["vip"],"spend":500}\n{"id":"yan","tier":"gold"}\n),
                 'application/x-ndjson');
$j = wait_job($res->{json}{id});
is_deeply([@{$j}{qw(state done)}, $j->{params}{format}], ['done', 2, 'jsonl'], 'members as JSON lines');
is($r->cmd('HGET', $w->key('m:zoe'), 'spend'), 500, '... stored');
$res = post_file('/v1/jobs/members/import', "id,phone\nx1,123\n");
$j = wait_job($res->{json}{id});
is($j->{reason}, 'import_rejected', 'a bad member: rejected');
like($j->{errors}[0]{message}, qr/id "x1": invalid_field phone/, '... why');
is($j->{errors}[0]{line}, 2, '... on line 2');

######################################################## cancel

campaign('cut');
$res = api('POST', '/v1/jobs/codes/issue', body => { campaign => 'cut', count => 300000 });
$id = $res->{json}{id};
$j = wait_done_over($id, 10000);
$res = api('DELETE', "/v1/jobs/$id");
is($res->{status}, 200, 'cancel of a running job');
$j = wait_job($id);
is_deeply([@{$j}{qw(state reason)}], ['cancelled', 'cancelled'], '... it ends cancelled');
ok($j->{done} < 300000, "... at $j->{done} of 300000");
is(codes_of('cut'), $j->{done}, '... and exactly what it says it made is there');
refused(api('GET', "/v1/jobs/$id/output"), 409, 'job_not_finished', 'output of a running job')
    if 0;    # see below: a queued job

######################################################## a campaign deleted meanwhile

campaign('gone');
$res = api('POST', '/v1/jobs/codes/issue', body => { campaign => 'gone', count => 300000 });
$id = $res->{json}{id};
refused(api('GET', "/v1/jobs/$id/output"), 409, 'job_not_finished', 'the output of a job not finished');
$j = wait_done_over($id, 10000);
$r->cmd('DEL', $w->key('k:gone'));
$j = wait_job($id);
is_deeply([@{$j}{qw(state reason)}], ['failed', 'campaign_not_found'],
          'the campaign deleted meanwhile: failed, campaign_not_found');
like($j->{message}, qr/deleted while the job ran\); \d+ done before/, '... said so');
ok($j->{done} < 300000, "... at $j->{done}");
is(codes_of('gone'), $j->{done}, '... exactly that many codes written');

######################################################## kill -9, TERM

for my $how ('kill', 'term') {
    campaign("r$how");
    $res = api('POST', '/v1/jobs/codes/issue', body => { campaign => "r$how", count => 150000 });
    $id = $res->{json}{id};
    $j = wait_done_over($id, 5000);
    if ($how eq 'kill') {
        $d->_check_san;    # its log so far: a sanitizer build reports there
        $d->kill9;
        # a call the killed process had sent may still be applied: Redis
        # reads what its socket holds before it drops the client
        ok(wait_until(sub { my @c = split /\n/, $r->cmd('CLIENT', 'LIST'); @c == 1 }, timeout => 10),
           '... its connections are gone from Redis');
        $j = job_direct($id);
        is($j->{state}, 'running', "kill -9 at $j->{done}: the job stays running (its lease runs out)");
    } else {
        is($d->stop, 0, 'TERM while a job runs: voucherd stops cleanly');
        $j = job_direct($id);
        is($j->{state}, 'queued', "... the job is given back at $j->{done}, queued");
        like($d->log, qr/job $id \(codes.issue\) given back at \d+/, '... and says so');
    }
    my $at = $j->{done};
    ok($at > 0 && $at < 150000, "... part done: $at");
    is(codes_of("r$how"), $at, '... its count is what Redis holds');
    $d = WorkerT::Daemon->start($w);
    $j = wait_job($id);
    is_deeply([@{$j}{qw(state done)}], ['done', 150000], '... resumed by the next voucherd, done');
    like($d->log, qr/job $id \(codes.issue\) resumed at \d+ of 150000/, '... from its checkpoint');
    is(codes_of("r$how"), 150000, '... exactly 150,000 codes: none lost, none more');
}

sub job_direct {
    my $h = { @{ $r->cmd('HGETALL', $w->key("j:$_[0]")) } };
    return $h;
}

######################################################## a batch refused at write time

# a file checked, then a code made by somebody else before its batch is
# written: simulated with a job queued in the write phase (voucherd off)
$d->stop;
my $csv = "code,campaign\n" . join('', map { sprintf "RACE-%05d,spring\n", $_ } 1 .. 2500);
write_text($w->dir . '/race.csv', $csv);
$res = ctl($w, qw(codes import), $w->dir . '/race.csv', '--detach');
is($res->{rc}, 0, 'voucherctl codes import --detach: queued') or diag $res->{err};
$id = decode_json($res->{out})->{id};
$r->cmd('HSET', $w->key("j:$id"), 'phase', 'write', 'total', 2500);
$r->cmd('FCALL', 'voucher_code_set', 1, $w->key('c:RACE01700'), 'campaign', 'spring');
$d = WorkerT::Daemon->start($w);
$j = wait_job($id);
is_deeply([@{$j}{qw(state reason)}], ['failed', 'import_conflict'], 'a batch refused at write time: import_conflict');
is($j->{result}{written}, 1000, '... the batch before it written (1000 rows)');
like($j->{message}, qr/lines 1002\.\.2001 was refused \(nothing of it written.*\); 1000 rows were written before it/, '... said so');
is($j->{errors}[0]{line}, 1701, '... the line named');
like($j->{errors}[0]{message}, qr/code "RACE01700": invalid_field code: exists/, '... and why');
ok(!$r->cmd('EXISTS', $w->key('c:RACE01701')) && !defined lookup('RACE01701'), '... nothing of that batch written');
ok(defined lookup('RACE01000'), '... the first batch is there');
ok(!defined lookup('RACE02400'), '... the last one not');



######################################################## voucherctl

campaign('cli');
$res = ctl($w, qw(codes issue cli --count 3000 --quiet));
is($res->{rc}, 0, 'voucherctl codes issue: a job in-process') or diag $res->{err};
unlike($res->{err}, qr/\r/, '... no bar when stderr is not a terminal');
like($res->{err}, qr/issued 3000 codes into campaign "cli"/, '... the summary');
$res = ctl($w, qw(job list --kind codes.issue --limit 2));
my @list = map { decode_json($_) } split /\n/, $res->{out};
is($list[0]{params}{campaign}, 'cli', 'voucherctl job list: newest first');
like($list[0]{who}, qr/^cli:/, '... run by the CLI');
is($list[0]{state}, 'done', '... done');

# a terminal: script(1) gives voucherctl a pty
SKIP: {
    skip 'script(1) not installed', 3 unless -x '/usr/bin/script';
    my $cmd = join ' ', map { "'$_'" } WorkerT::bin_dir() . '/voucherctl', '-c', $w->conf,
        qw(codes issue cli --count 40000 --quiet);
    my $out = `/usr/bin/script -qec "$cmd" /dev/null 2>&1`;
    like($out, qr/\r(?:j\d+ )?\[[#.]+\]\s+\d+%/, 'on a terminal: a progress bar, drawn in place');
    like($out, qr/\] 100%  40000\/40000  \d+\/s  in \d+:\d\d/, '... up to 100%');
    like($out, qr/issued 40000 codes/, '... then the summary');
}

$res = ctl($w, qw(codes issue cli --count 2000 --detach));
is($res->{rc}, 0, 'voucherctl codes issue --detach: queued for voucherd');
$id = decode_json($res->{out})->{id};
$res = ctl($w, 'job', 'wait', $id);
is($res->{rc}, 0, 'voucherctl job wait: until it is done');
is(decode_json($res->{out})->{done}, 2000, '... 2000 codes');
$res = ctl($w, 'job', 'output', $id);
is(scalar(split /\n/, $res->{out}), 2000, 'voucherctl job output');
$res = ctl($w, 'job', 'get', $id);
is(decode_json($res->{out})->{state}, 'done', 'voucherctl job get');
$res = ctl($w, 'job', 'cancel', $id);
is($res->{rc}, 1, 'voucherctl job cancel of a finished job: refused');
like($res->{err}, qr/job_finished/, '... job_finished');

$res = ctl($w, qw(codes export cli --output), $w->dir . '/cli.csv');
is($res->{rc}, 0, 'voucherctl codes export: a local job');
is(scalar(split /\n/, read_text($w->dir . '/cli.csv')), 45001, '... every code of the campaign');

# without a MAC key nothing can be issued
my %cf = %{ $w->{config} };
delete $cf{key_file};
write_text($w->conf, JSON::PP->new->encode(\%cf));
my $reloads = () = $d->log =~ /configuration \S+ reloaded/g;
$d->hup;
ok(wait_until(sub { my $n = () = $d->log =~ /configuration \S+ reloaded/g; $n > $reloads }, timeout => 10),
   'reloaded without key_file');
refused(api('POST', '/v1/jobs/codes/issue', body => { campaign => 'cli', count => 5 }), 409, 'key_missing',
        'no key_file: codes cannot be issued');

is($d->stop, 0, 'voucherd stops');
done_testing;
