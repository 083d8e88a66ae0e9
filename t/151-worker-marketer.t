#!/usr/bin/perl
#
# The marketer's path of issue 17, from the checkout's example (worker/
# example/: the configuration, a Thai birthday automation, members), with
# only the Redis port and the receivers' URLs changed: a campaign, the
# members, the automation set on 7 April (mid-month), its preview, voucherd
# on the fake clock (the catch-up sends at once), what the SMS receiver got
# (E.164, Thai text, ฿ money, a Buddhist-era date, the code in its
# pattern), a redemption, and what the report says (money, local time,
# codes as sent, the runs, a date range).  UTF-8 stays bytes here.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $root = VT::root_dir();
my $J = JSON::PP->new->canonical;
my $sms = SinkT::HTTP->start;
my $hook = SinkT::HTTP->start;

# the example, as shipped, pointed at this test's Redis and receivers
my $ex = $J->decode(read_text("$root/worker/example/voucher.json"));
my $w = worker_setup(config => { phone => $ex->{phone}, daemon => { poll_ms => 50 },
                                 log => { level => 'info' } });
my $r = $w->redis;
my $dir = $w->dir;
my %ch = %{ $ex->{channels} };
$ch{sms} = { %{ $ch{sms} }, url => $sms->url('/sms'), token_file => "$root/worker/example/sms.token" };
$ch{hook} = { %{ $ch{hook} }, url => $hook->url('/hook'), secret_file => "$root/worker/example/hook.secret" };
$w->reconfigure(channels => \%ch);

$ENV{TZ} = 'UTC';
POSIX::tzset();
sub bkk { my ($y, $m, $d, $H, $M) = @_; POSIX::mktime(0, $M // 0, $H // 0, $d, $m - 1, $y - 1900) - 7 * 3600 }
my $clock = "$dir/now";
my %fake = (env => { VOUCHERD_FAKE_NOW => "\@$clock" });
write_text($clock, bkk(2027, 4, 7, 14, 0) . "\n");
sub run_ok { my $res = ctl($w, \%fake, @_); is($res->{rc}, 0, "voucherctl @_[0..1]") or diag $res->{err}; $res }

# 1. the campaign: 100 baht off an order of 500 baht or more, in Bangkok
run_ok(qw(campaign create hbd kind amount value 10000 currency THB tz_offset +07:00 min_amount 50000
          name), 'วันเกิด');
# 2. the members, Thai names, phones as people write them
run_ok(qw(members import), "$root/worker/example/members.csv");
# 3. the birthday automation, on 7 April
run_ok(qw(auto set hbd), "$root/worker/example/birthday.json");
my $g = $J->decode(run_ok(qw(auto get hbd))->{out});
is($g->{next_run_local}, '2027-04-08 09:00', 'auto get: the next run, in Bangkok');
ok($g->{catch_up_pending}, 'a catch-up waits: the month so far');

# 4. the preview: who gets what
my $p = $J->decode(run_ok(qw(auto preview hbd))->{out});
is_deeply($p->{members_list}, ['somchai'], 'preview: somchai (2 April); malee on the 25th');
is($p->{sample}[0]{to}, '+66819990000', 'preview: to his number in E.164');
is($p->{sample}[0]{message}, 'สุขสันต์วันเกิดคุณสมชาย รับส่วนลด ฿100.00 เมื่อซื้อครบ ฿500.00 '
   . 'ใช้โค้ด HBD-######-#### ภายใน 21 เม.ย. 2570', 'preview: the message, the code still to be made');
is(scalar($sms->requests), 0, 'nothing sent by a preview');

# 5. voucherd: the catch-up at once, malee on her day
my $d = WorkerT::Daemon->start($w, %fake);
ok($sms->wait_accepted(1), 'the catch-up is sent') or diag $d->log;
my %f = map { my ($k, $v) = split /=/, $_, 2; $v =~ tr/+/ /; $v =~ s/%([0-9A-F]{2})/chr hex $1/gie; ($k, $v) }
        split /&/, ($sms->requests)[0]{body};
is($f{to}, '+66819990000', 'the receiver: E.164');
like($f{text}, qr/^สุขสันต์วันเกิดคุณสมชาย รับส่วนลด ฿100\.00 เมื่อซื้อครบ ฿500\.00 ใช้โค้ด (HBD-[0-9A-Z]{6}-[0-9A-Z]{4}) ภายใน 21 เม\.ย\. 2570$/,
     'the receiver: the Thai message with its code') or diag $f{text};
my ($code) = $f{text} =~ /(HBD-\S+)/;
write_text($clock, bkk(2027, 4, 25, 9, 0) + 1 . "\n");
ok($sms->wait_accepted(2), 'malee on the 25th') or diag $d->log;

# 6. somchai buys for 600 baht with his code
(my $stored = $code) =~ s/-//g;
my $x = $r->cmd('FCALL', 'voucher_redeem', 1, "{v}:c:$stored", 'somchai', 60000, 'THB', 'o-1', '', 0);
is($x->[0], 'ok', 'the code redeems') or diag explain $x;

# 7. the report
my $rep = $J->decode(run_ok(qw(report hbd --format json))->{out});
is_deeply([@$rep{qw(issued delivered redemptions codes_used)}], [2, 2, 1, 1], 'report: 2 sent, 1 redeemed');
is_deeply([@$rep{qw(discount_given_text revenue_text)}], ['฿100.00', '฿600.00'], 'report: money in baht');
my %who = map { $_->{member} => $_ } @{ $rep->{recipients} };
is_deeply($who{somchai}{codes}, [$code], 'report: the code as it was sent, with its dashes');
like($who{somchai}{last_sent_at}, qr/^2027-04-07T14:00:\d\d\+07:00$/, 'report: local time');
is_deeply([map { [$_->{run} =~ /^(c|\d)/, $_->{sent}] } @{ $rep->{runs} }], [['c', 1], ['1', 1]],
          'report: the runs, the catch-up and the 25th');
my $apr = $J->decode(run_ok(qw(report hbd --format json --from 2027-04-20 --to 2027-04-30))->{out});
is_deeply([map { $_->{member} } grep { $_->{deliveries} } @{ $apr->{recipients} }], ['malee'],
          'report --from --to: a date range in the campaign\'s zone');
like(run_ok(qw(report hbd))->{out}, qr/^discount given  ฿100\.00$/m, 'the table: money');

$d->stop;
done_testing;
