#!/usr/bin/perl
#
# The admin API's reads on replicas: with "replicas" in voucherd's redis
# configuration, GET routes (code pages and their history, campaigns,
# reports, members, lists) are answered by a replica whose link is up, whose
# library is the worker's and which has applied every write the master had
# when the read came (so a code page just after a change shows it); writes
# always go to the master.  A replica that lags (CLIENT PAUSE WRITE holds
# its replication stream), is cut from its master, has another library
# version or dies is left for the master, and the answers stay 200.
# Commands are counted with MONITOR on each node: lines that name this
# test's campaign, code or member, from a client (not the master's link).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep);
use VT;
use FailoverT qw(linked);
use WorkerT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;
my $SECRET = 'ops-secret-0123456789';

my $m  = VT::Redis->start;                  # the worker loads its library
my $r1 = VT::Redis->start(args => ['--replicaof', '127.0.0.1', $m->port]);
my $m2 = VT::Redis->start;                  # another library version ...
$m2->load_functions;
my $r3 = VT::Redis->start(args => ['--replicaof', '127.0.0.1', $m2->port]);
ok(wait_until(sub { linked($r1) && linked($r3) }, timeout => 20), 'replicas in sync');

sub port_list { [ map { '127.0.0.1:' . $_->port } @_ ] }

my $w = worker_setup(redis => $m, config => { redis => {
    address => '127.0.0.1:' . $m->port, replicas => port_list($r1) } });
my $tokens = $w->dir . '/tokens';
write_text($tokens, "ops $SECRET\n");
chmod 0600, $tokens;
my $port = VT::free_port();
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $tokens,
                           threads => 2 },
                daemon => { poll_ms => 100 });
my $d = WorkerT::Daemon->start($w);
ok(wait_until(sub { !VT::Redis::is_error($m->cmd('FCALL', 'voucher_version', 0)) },
              timeout => 10), 'voucherd loaded its library into the master');
ok(wait_until(sub { linked($r1) }, timeout => 10), 'r1 in sync');

sub api {
    my ($method, $path, $body) = @_;
    my $res = VT::http($port, $method, $path,
                       headers => { Authorization => "Bearer $SECRET" },
                       (defined $body ? (body => $body) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') ne '';
    return $res;
}

# MONITOR on a node: the lines that name this test's objects, sent by a
# client (the master's link, seen on a replica, and scripts are not)
my $MARK = qr/readcamp|READCODE1|readmember1/;
sub monitor {
    my ($node) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $node->port)
        or die "monitor: $!";
    syswrite $s, "MONITOR\r\n";
    my $ok = '';
    sysread($s, $ok, 5) == 5 or die 'monitor: no +OK';
    return { s => $s, node => $node, buf => '' };
}
sub marked {
    my ($mon) = @_;
    my $sel = IO::Select->new($mon->{s});
    sleep 0.2;
    my $until = VT::now() + 1;
    while (VT::now() < $until && $sel->can_read(0.2)) {
        sysread($mon->{s}, $mon->{buf}, 65536, length $mon->{buf}) or last;
    }
    my $n = 0;
    my $mport = $m->port;
    while ($mon->{buf} =~ s/^([^\n]*)\n//) {
        my $l = $1;
        next if $l =~ /\[\d+ (?:lua|127\.0\.0\.1:$mport)\]/;
        $n++ if $l =~ $MARK;
    }
    return $n;
}

# the objects, written through the API: on the master only
my $mm = monitor($m);
my $m1 = monitor($r1);
is(api('POST', '/v1/campaigns', { id => 'readcamp', kind => 'amount', value => 500 })->{status},
   201, 'a campaign');
is(api('POST', '/v1/codes', { code => 'READCODE1', campaign => 'readcamp' })->{status}, 201, 'a code');
is(api('POST', '/v1/members', { id => 'readmember1', name => 'Read' })->{status}, 201, 'a member');
cmp_ok(marked($mm), '>=', 3, 'the writes ran on the master');
is(marked($m1), 0, '... none on r1 from a client');

my @reads = ('/v1/codes/READCODE1', '/v1/campaigns/readcamp', '/v1/campaigns/readcamp/report',
             '/v1/members/readmember1', '/v1/codes?campaign=readcamp', '/v1/campaigns?q=readcamp',
             '/v1/members?q=readmember1');
sub read_all {
    my $ok = 0;
    for my $p (@reads) {
        my $res = api('GET', $p);
        $ok++ if $res->{status} == 200;
        diag "$p: $res->{status} $res->{body}" if $res->{status} != 200;
    }
    return $ok;
}

is(read_all(), scalar @reads, 'code page, campaign, report, member, lists: 200');
my ($on_m, $on_r1) = (marked($mm), marked($m1));
is($on_m, 0, '... none of them read on the master');
cmp_ok($on_r1, '>=', scalar @reads, "... r1 answered them ($on_r1 commands)");

# a change, then its page at once, ten times: each page shows the change
# (the replica is used only once it has every write the master had)
my $seen = 0;
for my $i (1 .. 10) {
    my $op = $i % 2 ? 'disable' : 'enable';
    api('POST', "/v1/codes/READCODE1/$op");
    my $st = api('GET', '/v1/codes/READCODE1')->{json}{status} // '';
    $seen++ if $st eq ($i % 2 ? 'disabled' : 'active');
}
is($seen, 10, 'a code page right after a disable or enable shows it, 10 of 10');
($on_m, $on_r1) = (marked($mm), marked($m1));
cmp_ok($on_r1, '>=', 10, "... the pages read on r1 ($on_r1 commands)");
cmp_ok($on_m, '>=', 10, "... the changes written on the master ($on_m commands)");

# r1 lags: CLIENT PAUSE WRITE holds its replication stream while it still
# answers; after a write on the master it is behind, and left alone
$r1->cmd('CLIENT', 'PAUSE', 5000, 'WRITE');
is(api('POST', '/v1/codes/READCODE1/disable')->{status}, 200, 'a write while r1 lags');
is(api('GET', '/v1/codes/READCODE1')->{json}{status}, 'disabled', '... its page shows it');
is(read_all(), scalar @reads, '... reads 200');
($on_m, $on_r1) = (marked($mm), marked($m1));
cmp_ok($on_m, '>=', scalar @reads, '... answered by the master');
is($on_r1, 0, '... none by r1, which lags');
ok(wait_until(sub { read_all(); marked($m1) > 0 }, timeout => 20),
   'r1 caught up: read from again');
marked($mm);

# r1 cut from its master: left alone; linked again: used again
$r1->cmd('REPLICAOF', '127.0.0.1', VT::free_port());
ok(wait_until(sub { ($r1->info('replication')->{master_link_status} // '') eq 'down' },
              timeout => 10), 'r1 cut off');
marked($m1);
is(read_all(), scalar @reads, '... reads 200');
($on_m, $on_r1) = (marked($mm), marked($m1));
cmp_ok($on_m, '>=', scalar @reads, '... answered by the master');
is($on_r1, 0, '... none by r1');
$r1->cmd('REPLICAOF', '127.0.0.1', $m->port);
ok(wait_until(sub { linked($r1) }, timeout => 20), 'r1 linked again');
ok(wait_until(sub { read_all(); marked($m1) > 0 }, timeout => 10), '... and read from again');
marked($mm);

# a replica of another library version (r3) is never read from
$w->reconfigure(redis => { address => '127.0.0.1:' . $m->port, replicas => port_list($r3) });
sub reloads { scalar(() = $d->log =~ /configuration \S+ reloaded/g) }
sub reload {
    my $n = reloads();
    $d->hup;
    wait_until(sub { reloads() > $n }, timeout => 10);
}
ok(reload(), 'reloaded: r3 only');
my $m3 = monitor($r3);
sleep 0.5;
is(read_all(), scalar @reads, '... reads 200');
cmp_ok(marked($mm), '>=', scalar @reads, '... answered by the master');
is(marked($m3), 0, '... none by r3 (another library)');
my $st = $r3->info('commandstats')->{'cmdstat_function|load'} // '';
is($st, '', '... r3 never sent FUNCTION LOAD');

# r1 killed: the reads that were on it go to the master, all 200
$w->reconfigure(redis => { address => '127.0.0.1:' . $m->port, replicas => port_list($r1) });
ok(reload(), 'reloaded: r1 again');
ok(wait_until(sub { read_all(); marked($m1) > 0 }, timeout => 10), '... read from');
$r1->kill9;
my $ok = 0;
$ok += read_all() for 1 .. 3;
is($ok, 3 * @reads, 'r1 killed: every read 200');
cmp_ok(marked($mm), '>=', 3 * @reads, '... answered by the master');

# writes never on a replica, whatever the route's method
is(api('PATCH', '/v1/codes/READCODE1', { max_uses => 3 })->{status}, 200, 'a PATCH');
is(api('DELETE', '/v1/members/readmember1')->{status}, 200, 'a DELETE');
cmp_ok(marked($mm), '>=', 2, '... on the master');

is($d->stop, 0, 'voucherd stopped cleanly');

done_testing;
