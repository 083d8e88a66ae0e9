#!/usr/bin/perl
#
# voucherd across a failover at its configured address: two real
# redis-server processes swap roles (REPLICAOF).  While the address is a
# replica, voucherd's writes answer READONLY: it drops the connection and
# makes it anew with a back-off (each new one refused, as ROLE is not
# master, and never given FUNCTION LOAD).  Once the address is the master
# again it is back within a second or two and sweeps as before.

use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;
use WorkerT;

worker_bin('voucherd');

my $w = worker_setup(config => { daemon => { poll_ms => 50 } });
my $ra = $w->redis;
my $rb = VT::Redis->start;
my ($ap, $bp) = ($ra->port, $rb->port);

sub linked {
    my ($r) = @_;
    my $i = eval { $r->info('replication') } or return 0;
    return ($i->{role} // '') eq 'slave'
        && ($i->{master_link_status} // '') eq 'up';
}

sub conns { $ra->info('stats')->{total_connections_received} }

$rb->cmd('REPLICAOF', '127.0.0.1', $ap);
ok(wait_until(sub { linked($rb) }, timeout => 10), 'B replicates A');

my $d = WorkerT::Daemon->start($w);
ok(wait_until(sub { ($ra->commandstats->{fcall} // 0) > 0 }, timeout => 5),
   'voucherd works on A');

$rb->cmd('REPLICAOF', 'NO', 'ONE');
$ra->cmd('REPLICAOF', '127.0.0.1', $bp);
ok(wait_until(sub { linked($ra) }, timeout => 10), 'failover: A is a replica of B');
$ra->reset_stats;
my $c0 = conns();

ok(wait_until(sub { $d->log =~ /READONLY/ }, timeout => 5), 'voucherd met READONLY');
sleep 3;
my $n = conns() - $c0;
note "connections to the replica in 3 s: $n";
cmp_ok($n, '>=', 2, 'voucherd made its connection anew, and again');
cmp_ok($n, '<=', 12, 'with a back-off, not in a loop');
like($d->log, qr/the node is not the master \(ROLE slave\)/,
     'a new connection to the replica is refused');
is($ra->info('commandstats')->{'cmdstat_function|load'}, undef,
   'no FUNCTION LOAD reached the replica');
ok($d->alive, 'voucherd runs on');

# a hold that runs out while A is the master again is swept
$ra->cmd('REPLICAOF', 'NO', 'ONE');
my $t0 = VT::now();
$rb->cmd('REPLICAOF', '127.0.0.1', $ap);
my $mark = length $d->log;
ok(wait_until(sub { substr($d->log, $mark) =~ /redis: connected again/ },
              timeout => 10, interval => 0.02), 'voucherd is back on the master');
my $back = VT::now() - $t0;
note sprintf 'voucherd back %.2f s after A was the master again', $back;
cmp_ok($back, '<', 2.5, 'within a second or two');

campaign($ra, 'sw', kind => 'amount', value => 100);
code($ra, 'HOLDME', campaign => 'sw', max_uses => 1);
my $res = $ra->cmd('FCALL', 'voucher_reserve', 1, '{v}:c:HOLDME', 1000,
                   'c1', 5000, '', 'o1', '', 0);
is(ref $res eq 'ARRAY' ? $res->[0] : "$res", 'ok', 'reserved for 1 s');
is($ra->cmd('HGET', '{v}:c:HOLDME', 'u'), 1, 'the use is taken');
ok(wait_until(sub { ($ra->cmd('HGET', '{v}:c:HOLDME', 'u') // 0) == 0 },
              timeout => 5), 'and voucherd swept it');

$d->stop;
$rb->stop;
done_testing;
