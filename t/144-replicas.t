# Validate on replicas (replicas= of voucher_redis): a validate without
# limits is answered by a replica whose link to the master is up and whose
# library is ours; a replica in its first sync (still serving its old data),
# a replica of another library version and a node that is no replica are
# never read from and never sent FUNCTION LOAD; redeems and limited
# validates go to the master; a replica that dies or loses its link is left
# for the master, with no 503.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use FailoverT qw(linked);
use WorkerT;

# a master that never sends its data: a replica of it stays in its first sync
my $fsrv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 8, ReuseAddr => 1) or die "listen: $!";
my $fport = $fsrv->sockport;
my $fake = VT::fork_server($fsrv, sub {
    my ($c) = @_;
    my $buf = '';
    while (sysread($c, $buf, 4096, length $buf)) {
        while (my $cmd = VT::resp_parse_cmd(\$buf)) {
            my $w = uc $cmd->[0];
            if ($w eq 'PING') { syswrite $c, "+PONG\r\n" }
            elsif ($w eq 'PSYNC' || $w eq 'SYNC') {
                syswrite $c, '+FULLRESYNC ' . ('f' x 40) . " 0\r\n";
                sleep 3600;
            }
            else { syswrite $c, "+OK\r\n" }
        }
    }
});

my $m  = VT::Redis->start;
my $r1 = VT::Redis->start(args => ['--replicaof', '127.0.0.1', $m->port]);
my $r2 = VT::Redis->start;                  # to be stuck in its first sync
my $m2 = VT::Redis->start;                  # another library version ...
$m2->load_functions;
my $r3 = VT::Redis->start(args => ['--replicaof', '127.0.0.1', $m2->port]);
ok(wait_until(sub { linked($r1) && linked($r3) }, timeout => 20), 'replicas in sync');

my $reps = join ',', map { '127.0.0.1:' . $_->port } $r1, $r2, $r3;
my $ng = VT::Nginx->start(redis => $m, workers => 2,
    http => "voucher_redis 127.0.0.1:%%REDIS_PORT%% replicas=$reps;",
    server => api_server() . <<'EOT');
        location = /limited/validate {
            voucher_api validate;
            voucher_limit $remote_addr rate=1000r/s burst=1000 name=ip;
        }
EOT
ok(wait_until(sub { !VT::Redis::is_error($m->cmd('FCALL', 'voucher_version', 0)) },
              timeout => 10), 'nginx loaded the library into the master');

# r2: our library and its own data, then stuck in a sync that never ends
$r2->cmd('FUNCTION', 'RESTORE', $m->cmd('FUNCTION', 'DUMP'), 'REPLACE');
campaign($r2, 'k', kind => 'amount', value => 999);
code($r2, 'CODE1', campaign => 'k');
$r2->cmd('REPLICAOF', '127.0.0.1', $fport);
ok(wait_until(sub { ($r2->info('replication')->{master_sync_in_progress} // '') eq '1' },
              timeout => 10), 'r2 is in its first sync');
is($r2->cmd('FCALL', 'voucher_validate', 1, '{v}:c:CODE1', '', 1000, '', '', '', 0)->[0],
   'ok', '... and still answers from its old data');

campaign($m, 'k', kind => 'amount', value => 100);
code($m, 'CODE1', campaign => 'k');

sub fcalls { $_[0]->hot_calls }    # FCALL or the native module's commands
sub validate { post($ng, 'validate', {code => 'CODE1', order => {amount => 1000}}) }

# r1 gets the library by replication, and passes its check within a second
# (in both workers: 10 validates in a row all on r1)
sub all_on_r1 { my $b = fcalls($r1); validate() for 1 .. 10; fcalls($r1) - $b == 10 }
ok(wait_until(\&all_on_r1, timeout => 10), 'r1 answers validates');

my %b = map { $_ => fcalls($_) } $m, $r1;
my @res = map { validate() } 1 .. 60;
is(scalar(grep { $_->{status} == 200 && $_->{json}{discount} == 100 } @res), 60,
   "60 validates: all 200 with the master's data (r2's old data never shows)");
is(fcalls($m) - $b{$m}, 0, '... none reached the master');
cmp_ok(fcalls($r1) - $b{$r1}, '>=', 60, '... r1 answered them');
# a FUNCTION LOAD sent to a replica is rejected (READONLY); one that came
# by replication from the master is not
for ([$r1, 'r1'], [$r2, 'r2 (first sync)'], [$r3, 'r3 (another library)']) {
    my $st = $_->[0]->info('commandstats')->{'cmdstat_function|load'} // '';
    unlike($st, qr/(rejected|failed)_calls=[1-9]/, "$_->[1]: never sent FUNCTION LOAD");
}
like($ng->error_log, qr/replica 127\.0\.0\.1:\d+: not read from: its sync with the master is in progress/,
     'r2 skipped: sync in progress (logged)');
like($ng->error_log, qr/replica 127\.0\.0\.1:\d+: not read from: its library is another version/,
     'r3 skipped: another library version (logged)');

# voucherctl's report on a replica in sync (codes export, a job, on the
# master), with the
# same skips; the master when none qualifies
sub xranges { ($_[0]->info('commandstats')->{cmdstat_xrange} // '') =~ /calls=(\d+)/ ? $1 : 0 }
sub port_list { [ map { '127.0.0.1:' . $_->port } @_ ] }
my $wr = worker_setup(redis => $m, config => { redis => {
    address => '127.0.0.1:' . $m->port, replicas => port_list($r2, $r3, $r1) } });
my %x = map { $_ => xranges($_) } $m, $r1;
my $rep = ctl($wr, 'report', 'k', '--format', 'json');
is($rep->{rc}, 0, 'voucherctl report with replicas') or diag $rep->{err};
cmp_ok(xranges($r1) - $x{$r1}, '>=', 1, '... read from r1, the replica in sync');
is(xranges($m) - $x{$m}, 0, '... not from the master');
my $ex = ctl($wr, 'codes', 'export', 'k');
like($ex->{out}, qr/CODE1/, 'voucherctl codes export with replicas configured');
my $wm = worker_setup(redis => $m, config => { redis => {
    address => '127.0.0.1:' . $m->port, replicas => port_list($r2, $r3) } });
%x = map { $_ => xranges($_) } $m, $r1;
$rep = ctl($wm, 'report', 'k', '--format', 'json');
is($rep->{rc}, 0, 'with only replicas that do not qualify ...');
cmp_ok(xranges($m) - $x{$m}, '>=', 1, '... the master answers the report');

# a reload: the old workers leave at once (no replica link holds them)
my $t0 = VT::now();
ok($ng->reload, 'nginx -s reload');
cmp_ok(VT::now() - $t0, '<', 5, sprintf('... done in %.1f s', VT::now() - $t0));
ok(wait_until(\&all_on_r1, timeout => 10), 'the new workers read from r1');

# writes and limited validates go to the master
%b = map { $_ => fcalls($_) } $m, $r1;
is(post($ng, 'redeem', {code => 'CODE1', order => {amount => 1000}})->{status}, 200, 'a redeem');
is(http($ng->port, 'POST', '/limited/validate',
        body => {code => 'CODE1', order => {amount => 1000}})->{status}, 200, 'a limited validate');
is(fcalls($m) - $b{$m}, 2, '... both on the master');
is(fcalls($r1) - $b{$r1}, 0, '... none on r1');

# r1 loses its link: within about a second it is left for the master
$r1->cmd('REPLICAOF', '127.0.0.1', $fport);
my $cut = VT::now();
ok(wait_until(sub { my $b = fcalls($r1); validate() for 1 .. 10; fcalls($r1) == $b },
              timeout => 5), 'r1 cut off from its master: left alone');
note sprintf 'r1 left %.1f s after its link went down', VT::now() - $cut;
%b = map { $_ => fcalls($_) } $m, $r1;
@res = map { validate() } 1 .. 20;
is(scalar(grep { $_->{status} == 200 } @res), 20, 'r1 cut off: validates still 200');
is(fcalls($r1) - $b{$r1}, 0, '... none on r1');
is(fcalls($m) - $b{$m}, 20, '... the master answers them');

# r1 back in sync: used again
$r1->cmd('REPLICAOF', '127.0.0.1', $m->port);
ok(wait_until(sub { my $b = fcalls($r1); validate(); fcalls($r1) > $b }, timeout => 10),
   'r1 in sync again: read from again');

# r1 dies under load: every validate answered 200 (the master takes over)
my @req = map { { method => 'POST', path => '/vouchers/validate',
                  headers => { 'Content-Type' => 'application/json' },
                  body => '{"code":"CODE1","order":{"amount":1000}}' } } 1 .. 600;
my $pid = fork // die;
if (!$pid) { sleep 0.1; kill 'KILL', $r1->pid; POSIX::_exit(0) }
@res = http_parallel($ng->port, \@req, concurrency => 10, timeout => 30);
waitpid $pid, 0;
$r1->kill9;
my %by; $by{$_->{status}}++ for @res;
note join ' ', map { "$_=$by{$_}" } sort keys %by;
is($by{200} // 0, 600, 'r1 killed under load: all 600 validates 200, none 503');

$ng->check_log;
kill 'TERM', -$fake;

# bad configurations
for my $bad (['replicas=', qr/has no address in "replicas="/],
             ['replicas=127.0.0.1:1,,127.0.0.1:2', qr/empty address in "replicas="/],
             ['replicas=127.0.0.1:1 replicas=127.0.0.1:2', qr/invalid parameter #3/]) {
    my $ng2 = VT::Nginx->start(redis => $m, expect_fail => 1,
        http => "voucher_redis 127.0.0.1:%%REDIS_PORT%% $bad->[0];");
    like($ng2->stderr . $ng2->error_log, $bad->[1], "refused: $bad->[0]");
}

done_testing;
