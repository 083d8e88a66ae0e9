#!/usr/bin/perl
#
# voucherd gives back reservations that ran out even when no checkout
# writes: a hold of 1 s made through voucher_reserve, and nothing else
# touches Redis; within about a second of its end the use is back and the
# audit trail says "expire".

use strict;
use warnings;
use Test::More;
use VT;
use VoucherT;
use WorkerT;

worker_bin('voucherd');

my $w = worker_setup(config => { daemon => { poll_ms => 50 } });
my $r = $w->redis;

campaign($r, 'sw', kind => 'amount', value => 100);
code($r, 'HOLDME', campaign => 'sw', max_uses => 1);

my $res = $r->cmd('FCALL', 'voucher_reserve', 1, '{v}:c:HOLDME', 1000,
                  'c1', 5000, '', 'o1', '', 0);
is($res->[0], 'ok', 'reserved for 1 s');
is($r->cmd('HGET', '{v}:c:HOLDME', 'u'), 1, 'the use is taken');

my $d = WorkerT::Daemon->start($w);
ok(wait_until(sub { ($r->cmd('HGET', '{v}:c:HOLDME', 'u') // 0) == 0 }, timeout => 5),
   'voucherd gave the use back after the hold');
is($r->cmd('ZCARD', '{v}:hz'), 0, 'no hold left');
my %e = @{ $r->cmd('XREVRANGE', '{v}:log', '+', '-', 'COUNT', 1)->[0][1] };
is($e{type}, 'expire', 'the audit trail says expire');
ok(wait_until(sub { $d->log =~ /sweep: 1 reservation\(s\) ran out/ }, timeout => 3),
   'and the log says so');

$d->stop;
done_testing;
