#!/usr/bin/perl
#
# Campaigns a marketer can trust (issue 17), with Thai data on the fake
# clock (VOUCHERD_FAKE_NOW) and the fake receivers of SinkT:
#   - birthdays on the day, in the campaign's zone (+07:00), with the
#     catch-up of the month when the automation is made mid-month, once a
#     year per member; the next run in "auto get";
#   - no repeat spam: once per member by default, "once per 30 days",
#     and "enters" (reaching a loyalty tier) firing once on the change;
#   - preview and run now (voucherctl; the admin API in t/130);
#   - codes made when sent: skipped, cancelled and dead deliveries leave
#     no live code, and the report counts only what was delivered;
#   - phone numbers in E.164 (phone.country TH): list:+66... finds
#     081-999-0000, SMS go to +66...;
#   - templates in th-TH: ฿ money, Buddhist-era dates, the campaign's
#     min_amount, the member's birthday, tier and custom attributes.
# The strings are UTF-8 bytes (no "use utf8"), as the receivers get them.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use VT;
use WorkerT;
use SinkT;

worker_bin('voucherd');

my $sms  = SinkT::HTTP->start;
my $line = SinkT::HTTP->start(control => { dedupe => 1 });
my $hook = SinkT::HTTP->start;
my $bad  = SinkT::HTTP->start(control => { fail_all => 1, status => 400 });
my $tmp  = VT::tmp_root();
write_text("$tmp/t140.token", "sms-token-0123456789\n");
write_text("$tmp/t140.secret", "whsec-0123456789\n");

my $w = worker_setup(config => {
    log      => { level => 'debug' },
    daemon   => { poll_ms => 50 },
    delivery => { attempts => 2, backoff_ms => 100, lease_s => 5 },
    phone    => { country => 'TH' },
    channels => {
        sms  => { type => 'sms', url => $sms->url('/send'), token_file => "$tmp/t140.token",
                  from => 'SHOP', body => 'to={{to}}&text={{text}}&ref={{id}}' },
        line => { type => 'line', url => $line->url('/push'), token_file => "$tmp/t140.token" },
        hook => { type => 'webhook', url => $hook->url('/hook'), secret_file => "$tmp/t140.secret" },
        bad  => { type => 'webhook', url => $bad->url('/hook'), secret_file => "$tmp/t140.secret" },
    },
});
my $r = $w->redis;
my $dir = $w->dir;

$ENV{TZ} = 'UTC';
POSIX::tzset();
# Bangkok wall time -> unix seconds
sub bkk { my ($y, $m, $d, $H, $M, $S) = @_; POSIX::mktime($S // 0, $M // 0, $H // 0, $d, $m - 1, $y - 1900) - 7 * 3600 }

my $J = JSON::PP->new->canonical;      # bytes in, bytes out
my $clock = "$dir/now";
my %fake = (env => { VOUCHERD_FAKE_NOW => "\@$clock" });
sub set_clock { write_text($clock, "$_[0]\n") }

sub form {
    my ($body) = @_;
    return { map { my ($k, $v) = split /=/, $_, 2; $v =~ tr/+/ /; $v =~ s/%([0-9A-F]{2})/chr hex $1/gie; ($k, $v) }
             split /&/, $body };
}
sub sms_of { my ($ref) = @_; grep { form($_->{body})->{ref} =~ /^\Q$ref\E:/ } $sms->requests }
sub codes_of {
    my ($camp) = @_;
    my $n = 0;
    for my $k (@{ $r->cmd('KEYS', '{v}:c:*') }) { $n++ if ($r->cmd('HGET', $k, 'k') // '') eq $camp }
    for my $k (@{ $r->cmd('KEYS', '{v}:cb:*') }) {
        my %h = @{ $r->cmd('HGETALL', $k) };
        $n += grep { /^\d+ \Q$camp\E( |$)/ } values %h;
    }
    return $n;
}
sub auto_set {
    my ($camp, $def) = @_;
    write_text("$dir/$camp.json", $J->encode($def));
    my $res = ctl($w, \%fake, qw(auto set), $camp, "$dir/$camp.json");
    is($res->{rc}, 0, "auto set $camp") or diag $res->{err};
}
sub json_of { my $res = ctl($w, \%fake, @_); is($res->{rc}, 0, "@_") or diag $res->{err}; $J->decode($res->{out}) }

write_text("$dir/m.csv", <<'CSV');
id,name,phone,line,birthday,last_purchase,purchases,spend,attrs
somchai,สมชาย,081-999-0000,,1990-12-02,2026-06-01,3,150000,"{""branch"":""สยาม""}"
malee,มาลี,0822222222,,1992-12-25,2026-06-10,2,90000,
niran,นิรันดร์,+66 83 333 3333,,1985-12-31,,,,
ploy,พลอย,,Uploy,1995-12-10,,,,
anan,อนันต์,084.444.4444,Uanan,1980-01-15,,,,
CSV
my $res = ctl($w, qw(members import), "$dir/m.csv");
is($res->{rc}, 0, 'Thai members imported') or diag $res->{err};

########################################################### birthdays

set_clock(bkk(2026, 12, 7, 12, 0));
is(ctl($w, qw(campaign set hbd kind amount value 20000 currency THB tz_offset +07:00 min_amount 50000 name),
       'สุขสันต์วันเกิด')->{rc}, 0, 'campaign hbd');
auto_set(hbd => {
    schedule => 'birthdays day 09:00', segment => 'all', channel => 'sms', locale => 'th-TH',
    codes => { prefix => 'HBD', length => 6, pattern => 'HBD-######-####', valid_days => 7 },
    message => 'สุขสันต์วันเกิด {{name}} ({{birthday}}) รับส่วนลด {{discount}} เมื่อซื้อครบ '
             . '{{min_amount}} ใช้โค้ด {{code}} ถึง {{expires_at}}',
});
my $g = json_of(qw(auto get hbd));
is($g->{next_run}, bkk(2026, 12, 8, 9, 0), 'auto get: the next run, 8 Dec 09:00 Bangkok');
is($g->{next_run_local}, '2026-12-08 09:00', '... in the campaign\'s zone');
is($g->{catch_up_pending}, bkk(2026, 12, 7, 12, 0), '... a catch-up waits (made on the 7th)');
is($g->{per_member}, 'once a year', '... once a year per member: the birthdays\' default');

my $d = WorkerT::Daemon->start($w, %fake);
ok($sms->wait_accepted(1), 'the catch-up: somchai (2 Dec) at once') or diag $d->log;
sleep 1;
my @s = $sms->requests;
is(scalar @s, 1, 'only somchai: malee (25th) and niran (31st) later, ploy has no phone');
my $f = form($s[0]{body});
is($f->{to}, '+66819990000', 'the SMS goes to E.164 (stored as 081-999-0000)');
like($f->{ref}, qr/^hbd:c\d+:somchai$/, 'a catch-up run');
like($f->{text}, qr/^สุขสันต์วันเกิด สมชาย \(2 ธ\.ค\.\) รับส่วนลด ฿200\.00 เมื่อซื้อครบ ฿500\.00 ใช้โค้ด HBD-[0-9A-Z]{6}-[0-9A-Z]{4} ถึง 14 ธ\.ค\. 2569$/,
     'th-TH: ฿ money, the min_amount, the birthday, a Buddhist-era date') or diag $f->{text};
my ($code) = $f->{text} =~ /(HBD-\S+)/;
(my $stored = $code) =~ s/-//g;
is($r->cmd('HGET', "{v}:c:$stored", 'c'), 'somchai', 'the code was made for somchai when sent');
like($d->log, qr/campaign hbd: run c\d+ .*: 1 of 1 members queued, 0 held back by per_member, 0 without an address/,
     'the catch-up: one birthday so far this month');
ok(!exists json_of(qw(auto get hbd))->{catch_up_pending}, 'the catch-up is done');

for my $day ([8, 0], [10, 0], [25, 1], [31, 1]) {
    my ($dd, $more) = @$day;
    my $before = scalar $sms->requests;
    set_clock(bkk(2026, 12, $dd, 9, 0, 1));
    my $run = bkk(2026, 12, $dd, 9, 0);
    ok(VT::wait_until(sub { $d->log =~ /campaign hbd: run $run / }), "$dd Dec: the daily run") or diag $d->log;
    $sms->wait_accepted($before + $more, timeout => 5) if $more;
    sleep 1 unless $more;
    is(scalar($sms->requests), $before + $more, "$dd Dec: $more more SMS");
}
like($d->log, qr/run ${\ bkk(2026, 12, 8, 9, 0)} .*: 0 of 1 members queued, 1 held back/,
     '8 Dec: somchai is not sent again');
is_deeply([map { form($_->{body})->{to} } $sms->requests], ['+66819990000', '+66822222222', '+66833333333'],
          'somchai, then malee on the 25th, niran on the 31st');

set_clock(bkk(2027, 1, 15, 9, 0, 1));
ok($sms->wait_accepted(4), '15 Jan: anan (084.444.4444)');
is(form(($sms->requests)[3]{body})->{to}, '+66844444444', '... in E.164');
set_clock(bkk(2027, 12, 2, 9, 0, 1));
ok($sms->wait_accepted(5), 'a year later, somchai\'s birthday again: once a year, not once ever');
like(form(($sms->requests)[4]{body})->{text}, qr/^สุขสันต์วันเกิด สมชาย .* ถึง 9 ธ\.ค\. 2570$/, '... with its code');
my $j = json_of(qw(report hbd --format json));
is($j->{issued}, 5, 'report: 5 codes, one per SMS sent');

########################################################### no repeat spam

set_clock(bkk(2028, 1, 2, 8, 0));
ctl($w, qw(campaign set back kind percent value 1000 tz_offset +07:00));
ctl($w, qw(campaign set back30 kind percent value 1500 tz_offset +07:00));
for my $c (['back', undef], ['back30', 'once per 30 days']) {
    auto_set($c->[0] => { schedule => 'daily 10:00', segment => 'dormant:60', channel => 'hook',
                          message => '{{name}}: {{code}}', ($c->[1] ? (per_member => $c->[1]) : ()) });
}
sub hook_of { my ($c) = @_; grep { decode_json($_->{body})->{campaign} eq $c } $hook->requests }
for my $day ([2028, 1, 2, 2, 2], [2028, 1, 3, 2, 2], [2028, 2, 2, 2, 4]) {
    my ($y, $m, $dd, $nb, $n30) = @$day;
    set_clock(bkk($y, $m, $dd, 10, 0, 1));
    ok(VT::wait_until(sub { hook_of('back') == $nb && hook_of('back30') == $n30 }, timeout => 10),
       "$y-$m-$dd: back $nb, back30 $n30") or diag $d->log;
    sleep 1;
    is(scalar(hook_of('back')), $nb, "$y-$m-$dd: once per member: $nb in all");
    is(scalar(hook_of('back30')), $n30, "$y-$m-$dd: once per 30 days: $n30 in all");
}
is_deeply([sort map { decode_json($_->{body})->{member}{id} } hook_of('back')], [qw(malee somchai)],
          'the dormant ones, each once');

########################################################### enters: reaching a tier

my @prog = ('every', 100, 'points', 1, 'tiers', 'base:0:100,gold:1000:100', 'tz_offset', '+07:00');
is($r->cmd('FCALL', 'voucher_loyalty_set', 1, '{v}:lp', @prog), 'OK', 'a loyalty programme with a gold tier');
my $t0 = bkk(2028, 3, 1, 10, 0);
set_clock($t0);
my $e = $r->cmd('FCALL', 'voucher_loyalty_earn', 1, '{v}:lm:anan', 'o-anan', 100000, 0, $t0);
is($r->cmd('HGET', '{v}:lm:anan', 'tier'), 'gold', 'anan is gold before the automation');
ctl($w, qw(campaign set gold kind amount value 10000 currency THB tz_offset +07:00));
auto_set(gold => { enters => 'tier:gold', channel => 'line', locale => 'th-TH',
                   message => 'ยินดีด้วย {{name}} คุณเป็นสมาชิก {{tier}} แล้ว รับ {{discount}}: {{code}}' });
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:a:gold', 'looked') // 0) == $t0 }), 'the first look');
sleep 1;
is(scalar($line->requests), 0, 'the first look sends nothing: anan was gold already');
$r->cmd('FCALL', 'voucher_loyalty_earn', 1, '{v}:lm:ploy', 'o-ploy', 120000, 0, $t0 + 5);
is($r->cmd('HGET', '{v}:lm:ploy', 'tier'), 'gold', 'ploy reaches gold');
set_clock($t0 + 61);
ok($line->wait_accepted(1), 'the next look: ploy entered the segment') or diag $d->log;
my $lb = $J->decode(($line->requests)[0]{body});
is($lb->{to}, 'Uploy', 'to ploy on LINE');
like($lb->{messages}[0]{text}, qr/^ยินดีด้วย พลอย คุณเป็นสมาชิก gold แล้ว รับ ฿100\.00: \S+$/, 'the tier in the message');
set_clock($t0 + 122);
ok(VT::wait_until(sub { ($r->cmd('HGET', '{v}:a:gold', 'looked') // 0) == $t0 + 122 }), 'another look');
sleep 1;
is(scalar($line->requests), 1, '... sends nothing more: once on the change');

########################################################### preview and run now

set_clock(bkk(2028, 4, 1, 12, 0));
ctl($w, qw(campaign set flash kind amount value 5000 currency THB tz_offset +07:00));
auto_set(flash => { schedule => 'once 2030-01-01 09:00', segment => 'list:+66819990000,0822222222',
                    channel => 'sms', locale => 'th-TH',
                    message => '{{name}} สาขา{{attr.branch}}: {{code}} ลด {{discount}}' });
my $p = json_of(qw(auto preview flash --sample 2));
is_deeply([@$p{qw(members recipients held)}], [2, 2, 0], 'preview: two members, both to be sent');
is_deeply([sort @{ $p->{members_list} }], [qw(malee somchai)], 'list:+66819990000 finds 081-999-0000');
my ($ps) = grep { $_->{member} eq 'somchai' } @{ $p->{sample} };
is($ps->{to}, '+66819990000', 'preview: where it goes');
is($ps->{message}, 'สมชาย สาขาสยาม: (a new code) ลด ฿50.00', 'preview: the message, a custom attribute');
is(scalar($sms->requests), 5, 'a preview sends nothing');
my $run = json_of(qw(auto run flash --now));
is_deeply([@$run{qw(members queued held)}], [2, 2, 0], 'run now: 2 queued');
ok($sms->wait_accepted(7), 'voucherd sends them') or diag $d->log;
$p = json_of(qw(auto preview flash));
is_deeply([@$p{qw(members recipients held)}], [2, 0, 2], 'preview again: both held (once per member)');
is(ctl($w, qw(auto run flash))->{rc}, 2, 'auto run without --now: a usage error');

########################################################### codes made when sent

ctl($w, qw(campaign set cart kind percent value 500));
auto_set(cart => { trigger => { event => 'cart_abandoned', delay => '1h', unless => 'purchase' },
                   channel => 'line', per_member => 'every run', message => '{{code}}' });
ctl($w, qw(campaign set deadc kind percent value 500));
auto_set(deadc => { trigger => { event => 'signup' }, channel => 'bad', message => '{{code}}' });
my $t1 = bkk(2028, 5, 1, 12, 0);
set_clock($t1);
sub event { my ($type, $m, %o) = @_; $r->cmd('XADD', '{v}:events', '*', type => $type, member => $m, ts => $t1, %o) }
event('cart_abandoned', 'somchai');               # no LINE id: skipped
event('cart_abandoned', 'anan');                  # buys: cancelled
event('purchase', 'anan', amount => 50000, ts => $t1 + 600);
event('cart_abandoned', 'ploy');                  # sent
event('signup', 'niran');                         # the gateway refuses: dead
ok(VT::wait_until(sub { $r->cmd('XLEN', '{v}:dead') >= 1 }, timeout => 10), 'the refused one is dead')
    or diag $d->log;
is(codes_of('deadc'), 0, 'a dead delivery\'s code is taken back');
set_clock($t1 + 3601);
ok($line->wait_accepted(2), 'an hour later: ploy\'s reminder') or diag $d->log;
sleep 1;
my %st;
for (@{ $r->cmd('XRANGE', '{v}:dl:cart', '-', '+') }) { my %x = @{ $_->[1] }; push @{ $st{ $x{member} } }, $x{status} }
is_deeply(\%st, { somchai => [qw(queued skipped)], anan => [qw(queued cancelled)], ploy => [qw(queued sent)] },
          'skipped, cancelled, sent');
is(codes_of('cart'), 1, 'one code: the one sent; skipped and cancelled made none');
$j = json_of(qw(report cart --format json));
is_deeply([@$j{qw(issued delivered)}], [1, 1], 'report: issued = delivered');

$d->stop;
unlike($d->log, qr/\[error\]/, 'no error in the log') or diag $d->log;
done_testing;
