#!/usr/bin/perl
#
# voucherd under faults: kill -9 in the middle of a run, then a restart:
# every member gets the message once, nothing is lost; a planner that
# died half-way through a run: the next one completes it without queueing
# anyone twice; two daemons at once: the work is shared, nothing is sent
# twice.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $N = 60;
my $hook = SinkT::HTTP->start(control => { delay_ms => 150, dedupe => 1 });
my $tmp = VT::tmp_root();
write_text("$tmp/s", "secret\n");

my $w = worker_setup(config => {
    daemon   => { poll_ms => 50, batch => 5 },
    delivery => { attempts => 5, backoff_ms => 100, lease_s => 2 },
    channels => { hook => { type => 'webhook', url => $hook->url, secret_file => "$tmp/s",
                            timeout_ms => 1000 } },
});
my $r = $w->redis;
my $dir = $w->dir;

my $clock = "$dir/now";
sub set_clock { write_text($clock, "$_[0]\n") }
my %fake = (env => { VOUCHERD_FAKE_NOW => "\@$clock" });
my $T = 1742040000;
set_clock($T - 3600);

write_text("$dir/m.csv", "id,tier\n" . join('', map { sprintf("m%03d,gold\n", $_) } 1 .. $N));
ctl($w, qw(members import), "$dir/m.csv");

sub campaign {
    my ($name, $hhmm) = @_;
    ctl($w, qw(campaign set), $name, qw(kind amount value 100));
    write_text("$dir/$name.json", encode_json({
        schedule => "daily $hhmm", segment => 'tier:gold', channel => 'hook',
        codes => { length => 8 }, message => '{{code}}' }));
    my $res = ctl($w, \%fake, qw(auto set), $name, "$dir/$name.json");
    is($res->{rc}, 0, "campaign $name") or diag $res->{err};
}

sub per_member {
    my ($camp) = @_;
    my %n;
    for ($hook->accepted) {
        my $b = decode_json($_->{body});
        $n{ $b->{member}{id} }++ if $b->{campaign} eq $camp;
    }
    return \%n;
}

sub sent_in_log {
    my ($camp) = @_;
    my %n;
    for (@{ $r->cmd('XRANGE', "{v}:dl:$camp", '-', '+') }) {
        my %f = @{ $_->[1] };
        $n{ $f{member} }++ if $f{status} eq 'sent';
    }
    return \%n;
}

sub codes_of {
    my ($camp) = @_;
    my $out = ctl($w, qw(codes export), $camp)->{out};
    return scalar(() = $out =~ /\n/g) - 1;
}

############################################################ kill -9

campaign('crash', '12:00');
set_clock($T + 1);
my $d = WorkerT::Daemon->start($w, %fake);
ok($hook->wait_accepted(15), 'the run is under way') or diag $d->log;
$d->kill9;
my $before = scalar $hook->accepted;
ok($before < $N, "killed with SIGKILL after $before of $N");

$d = WorkerT::Daemon->start($w, %fake);
ok(VT::wait_until(sub { keys %{ per_member('crash') } == $N }, timeout => 30),
   'after a restart, everyone got it') or diag $d->log;
sleep 1;
my $pm = per_member('crash');
is(scalar(grep { $_ != 1 } values %$pm), 0, 'each member accepted exactly once');
my @all = grep { decode_json($_->{body})->{campaign} eq 'crash' } $hook->requests;
my $dups = grep { $_->{status} == 409 } @all;
ok($dups <= 1, "repeats: $dups, answered 409 by its idempotency key (at most the one in hand)");
my %keys;
$keys{ $_->{key} }++ for @all;
is(scalar keys %keys, $N, "$N idempotency keys, one per member");
my $sl = sent_in_log('crash');
is(scalar keys %$sl, $N, 'the delivery log has everyone sent');
is(scalar(grep { $_ != 1 } values %$sl), 0, '... once each');
is(codes_of('crash'), $N, "$N codes made, no spare ones");
is($r->cmd('ZCARD', '{v}:queue'), 0, 'the queue is empty');
$d->stop;

############################################################ a planner dies

# a planner took the lease on the 13:00 run, queued 10 members and died
campaign('half', '13:00');
set_clock($T + 3601);
my $run = $T + 3600;
is($r->cmd('FCALL', 'voucher_run_begin', 1, '{v}:a:half', $run, $T + 3601, 'ghost', 2), 1,
   'a ghost planner holds the lease');
my @ten = map { sprintf('m%03d', $_) } 1 .. 10;
my $x = $r->cmd('FCALL', 'voucher_run_add', 1, '{v}:a:half', $run, $run * 1000, 'hook', 'unique',
                '', '', 0, 'once', $T + 3601, 0, @ten);
is_deeply($x, [10, 0, 0], 'and queued 10 members before dying');

$d = WorkerT::Daemon->start($w, %fake);
ok(VT::wait_until(sub { keys %{ per_member('half') } == $N }, timeout => 30),
   'the run is completed once the lease ran out') or diag $d->log;
sleep 1;
$pm = per_member('half');
is(scalar(grep { $_ != 1 } values %$pm), 0, 'each member once');
is(codes_of('half'), $N, 'a code for each of the 60 members, none twice');
like($d->log, qr/campaign half: run $run .*: 50 of $N members queued/, 'the daemon queued the 50 others');
$d->stop;

############################################################ two daemons

$hook->control(delay_ms => 25);
my $M = 100;
write_text("$dir/m2.csv", "id,tier\n" . join('', map { sprintf("n%03d,silver\n", $_) } 1 .. $M));
ctl($w, qw(members import), "$dir/m2.csv");
ctl($w, qw(campaign set pair kind amount value 100));
write_text("$dir/pair.json", encode_json({
    schedule => 'daily 14:00', segment => 'tier:silver', channel => 'hook',
    codes => { length => 8 }, message => '{{code}}' }));
ctl($w, \%fake, qw(auto set pair), "$dir/pair.json");

my $d1 = WorkerT::Daemon->start($w, %fake);
my $d2 = WorkerT::Daemon->start($w, %fake);
set_clock($T + 7201);
ok(VT::wait_until(sub { keys %{ per_member('pair') } == $M }, timeout => 30),
   'two daemons: everyone got it') or diag $d1->log . $d2->log;
sleep 1;
my @pair = grep { decode_json($_->{body})->{campaign} eq 'pair' } $hook->requests;
is(scalar @pair, $M, "exactly $M requests: nobody twice, not even a repeat");
my ($s1) = scalar(() = $d1->log =~ /campaign pair: .*: sent/g);
my ($s2) = scalar(() = $d2->log =~ /campaign pair: .*: sent/g);
is($s1 + $s2, $M, "both logs together: $M sent");
ok($s1 > 0 && $s2 > 0, "the work was shared: $s1 and $s2");
my $planned = () = ($d1->log . $d2->log) =~ /campaign pair: run \d+ .*members queued/g;
is($planned, 1, 'the run was planned by one of them');
is(codes_of('pair'), $M, "$M codes");
$d1->stop;
$d2->stop;

done_testing;
