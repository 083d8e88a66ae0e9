#!/usr/bin/perl
#
# voucherd's configuration: -t checks it (and the automations in Redis);
# a bad one stops it at start with the field named; a run that needs the
# MAC key while key_file is missing is reported once and waits; fixed and
# SIGHUPed, it goes out.  Redis down at start: it waits and goes on.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use VT;
use WorkerT;
use SinkT;

my $bin = worker_bin('voucherd');

my $hook = SinkT::HTTP->start;
my $tmp = VT::tmp_root();
write_text("$tmp/s", "secret\n");

my $w = worker_setup(config => {
    daemon   => { poll_ms => 50 },
    delivery => { lease_s => 2 },
    channels => { hook => { type => 'webhook', url => $hook->url, secret_file => "$tmp/s" } },
});
my $r = $w->redis;
my $dir = $w->dir;

sub run_t {
    my ($conf) = @_;
    my $out = `$bin -t -c $conf 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = run_t($w->conf);
is($rc, 0, 'voucherd -t: fine');
like($out, qr/configuration .* is fine, 0 automations load/, '... says so');

write_text("$dir/bad.json", '{"delivery": {"attempts": 0}}');
($rc, $out) = run_t("$dir/bad.json");
is($rc, 1, 'a bad configuration: exit 1');
like($out, qr/config "\Q$dir\E\/bad\.json": delivery\.attempts: expected an integer 1\.\.100/,
     '... naming the field');

write_text("$dir/nokey.json", encode_json({ %{ $w->{config} }, key_file => "$dir/none.key" }));
($rc, $out) = run_t("$dir/nokey.json");
is($rc, 1, 'a key_file that is not there: exit 1');
like($out, qr/key file "\Q$dir\E\/none\.key": cannot open: no such file/, '... named');

# an automation whose channel left the configuration: -t says which
ctl($w, qw(campaign set c1 kind amount value 1));
write_text("$dir/a.json", encode_json({ trigger => { event => 'signup' }, channel => 'hook',
                                        message => '{{code}}' }));
is(ctl($w, qw(auto set c1), "$dir/a.json")->{rc}, 0, 'an automation on channel hook');
write_text("$dir/nohook.json", encode_json({ %{ $w->{config} }, channels => {} }));
($rc, $out) = run_t("$dir/nohook.json");
like($out, qr/automation of campaign "c1": channel: "hook" is not in the configuration's channels: skipped/,
     '-t: an automation that no longer checks is named');
like($out, qr/0 automations load/, '... and left out');
ctl($w, qw(auto del c1));

# no key_file: a unique-code run waits, reported once; then fixed
my %cfg = %{ $w->{config} };
delete $cfg{key_file};
write_text("$dir/live.json", encode_json(\%cfg));
ctl($w, qw(campaign set k1 kind amount value 1));
write_text("$dir/m.csv", "id\nann\n");
ctl($w, qw(members import), "$dir/m.csv");
my $clock = "$dir/now";
write_text($clock, "1742040000\n");
my %fake = (env => { VOUCHERD_FAKE_NOW => "\@$clock" });
write_text("$dir/k1.json", encode_json({ schedule => 'daily 12:30', segment => 'all',
                                         channel => 'hook', message => '{{code}}' }));
is(ctl($w, \%fake, qw(auto set k1), "$dir/k1.json")->{rc}, 0, 'a daily campaign with unique codes');

my $d = WorkerT::Daemon->start($w, %fake, conf => "$dir/live.json");
write_text($clock, "1742041801\n");
ok(VT::wait_until(sub { $d->log =~ /unique codes need key_file/ }), 'no key_file: reported');
sleep 1;
is(scalar(() = $d->log =~ /unique codes need key_file/g), 1, '... once, not at every tick');
is(scalar $hook->requests, 0, 'nothing sent');

write_text("$dir/live.json", encode_json($w->{config}));
$d->hup;
ok($hook->wait_accepted(1), 'key_file configured, SIGHUP: the run goes out') or diag $d->log;
$d->stop;

# Redis down at start: voucherd waits, then works
$r->stop;
$d = WorkerT::Daemon->start($w);
ok(VT::wait_until(sub { $d->log =~ /Connection refused; trying again/ }), 'Redis down: said once');
ok($d->alive, 'still running');
$r->start_again;
$r->load_functions;
ok(VT::wait_until(sub { $d->log =~ /redis: connected again/ }, timeout => 15), 'Redis back: connected');
is(scalar(() = $d->log =~ /trying again/g), 1, 'no log line per retry');
is($d->stop, 0, 'stops cleanly');

done_testing;
