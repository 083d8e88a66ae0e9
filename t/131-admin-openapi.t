#!/usr/bin/perl
#
# docs/admin-api.yaml against the server: every documented path and
# method answers (not unknown_path, not 405); every reason of its Error
# schema is produced by a test case (here, or a refused() of
# t/130-admin-api.t, t/125-loyalty-admin.t, t/132-admin-jobs.t,
# t/133-webhooks.t, t/096-cart-admin.t or t/149-stores.t), and every reason
# those tests see is documented.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;

worker_bin('voucherd');

my $JSON = JSON::PP->new->utf8->canonical;
my $root = VT::root_dir();
my $yaml = WorkerT::read_text("$root/docs/admin-api.yaml") // die "docs/admin-api.yaml: $!";

# the document's paths and methods, in order
my (@ops, $path);
for (split /\n/, $yaml) {
    last if /^components:/;
    $path = $1 if /^  (\/\S+):$/;
    push @ops, [uc $1, $path] if /^    (get|post|put|patch|delete):$/;
}
ok(@ops >= 30, scalar(@ops) . ' operations documented');

# the reasons of the Error schema's enum
my ($err) = $yaml =~ /^  schemas:\n    Error:\n(.*?)^    \w+:\n/ms;
my ($enum) = $err =~ /^          enum:\n((?:            - \w+\n)+)/m;
my @reasons = $enum =~ /- (\w+)/g;
ok(@reasons >= 15, scalar(@reasons) . ' reasons documented');

my $SECRET = 'doc-secret-0123456789';
my $w = worker_setup();
write_text($w->dir . '/tokens', "doc $SECRET\n");
write_text($w->dir . '/hook.secret', "s\n");
my $port = VT::free_port();
my %channels = (hook => { type => 'webhook', url => 'http://127.0.0.1:9/',
                          secret_file => $w->dir . '/hook.secret' });
write_text($w->dir . '/qr.key', ('q' x 32) . "\n");
$w->reconfigure(admin => { listen => "127.0.0.1:$port", tokens_file => $w->dir . '/tokens',
                           qr_link => 'https://shop.example/qr', qr_link_key_file => $w->dir . '/qr.key' },
                channels => \%channels);
my $d = WorkerT::Daemon->start($w);

my %seen;
sub api {
    my ($method, $p, $body, $type) = @_;
    my $res = VT::http($port, $method, $p, headers => { Authorization => "Bearer $SECRET",
                                                       ($type ? ('Content-Type' => $type) : ()) },
                       (defined $body ? (body => $body) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') ne '';
    $seen{ $res->{json}{reason} }++ if $res->{status} >= 400 && $res->{json};
    return $res;
}

# fixtures the paths name
api('POST', '/v1/campaigns', { id => 'spring', kind => 'gift_card', value => 5000 });
api('POST', '/v1/campaigns', { id => 'treat', kind => 'amount', value => 100 });
api('PATCH', '/v1/loyalty/programme', { every => 100, points => 1 });
api('PUT', '/v1/loyalty/rewards/cake', { cost => 1, kind => 'coupon', campaign => 'treat' });
api('POST', '/v1/loyalty/members/alice/adjust', { points => 10, reason => 'welcome' });
api('POST', '/v1/loyalty/rewards/cake/pool', { count => 1 });
my $refcode = api('POST', '/v1/loyalty/members/alice/referral-code')->{json}{code};
api('POST', '/v1/codes', { code => 'GIFT0001', campaign => 'spring' });
api('POST', '/v1/members', { id => 'alice', name => 'Alice' });
api('PUT', '/v1/automations/spring', { schedule => 'daily 09:00', segment => 'all',
                                       channel => 'hook', message => 'Hi {{code}}' });

my %fill = (campaign => 'spring', code => 'GIFT0001', id => 'alice', reward => 'cake', webhook => 'crm',
            series => 'cards');
api('POST', '/v1/webhooks', { id => 'crm', url => 'http://127.0.0.1:9/hook', secret => 'crm-secret-0123456789',
                              events => ['redeemed'] });
# spring is archived on the way (its /archive comes first): a run now
# needs an active campaign
api('POST', '/v1/campaigns', { id => 'runner', kind => 'amount', value => 100 });
api('PUT', '/v1/automations/runner', { schedule => 'daily 09:00', segment => 'all',
                                       channel => 'hook', message => 'Hi {{code}}' });

# a finished job (its output), and a running one to cancel
my $res0 = api('POST', '/v1/jobs/codes/issue', { campaign => 'spring', count => 10 });
$fill{job} = $res0->{json}{id};
wait_until(sub { api('GET', "/v1/jobs/$fill{job}")->{json}{state} eq 'done' }, timeout => 20);
api('POST', '/v1/campaigns', { id => 'long', kind => 'amount', value => 1 });
my $running = api('POST', '/v1/jobs/codes/issue', { campaign => 'long', count => 5000000 })->{json}{id};
my %fill_for = ('DELETE /v1/jobs/{job}' => { job => $running },
                'POST /v1/automations/{campaign}/run' => { campaign => 'runner' });
# the required query of a GET; /qr's, a signed link of a message
api('POST', '/v1/campaigns', { id => 'linked', kind => 'amount', value => 100 });
api('PUT', '/v1/automations/linked', { schedule => 'daily 09:00', segment => 'all', channel => 'hook',
                                       issue => 'shared', code => 'DOC1', message => '{{qr_url}}' });
my ($link) = (api('GET', '/v1/automations/linked/preview?sample=1')->{json}{sample}[0]{message} // '')
    =~ m{^https://shop\.example/qr(\?\S+)$};
my %queries = ('GET /v1/qr' => '?text=DOC-1', 'GET /v1/barcode' => '?text=DOC-1', 'GET /qr' => $link // '');
my %types = ('POST /v1/jobs/codes/import' => 'text/csv', 'POST /v1/jobs/members/import' => 'text/csv');
my %bodies = (
    'POST /v1/campaigns' => { id => 'doc', kind => 'amount', value => 1 },
    'PATCH /v1/campaigns/{campaign}' => { cap => 1 },
    'POST /v1/codes' => { code => 'DOC1', campaign => 'spring' },
    'PATCH /v1/codes/{code}' => { customer => 'alice' },
    'POST /v1/codes/{code}/credit' => { amount => 1 },
    'POST /v1/codes/{code}/debit' => { amount => 1 },
    'PUT /v1/series/{series}' => { campaign => 'treat', size => 1000, prefix => 'CD',
                                   length => 8 },
    'POST /v1/members' => { id => 'bob' },
    'PATCH /v1/members/{id}' => { tier => 'gold' },
    'POST /v1/segments/preview' => { segment => 'all' },
    'PUT /v1/automations/{campaign}' => { schedule => 'daily 10:00', segment => 'all',
                                          channel => 'hook', message => 'x' },
    'POST /v1/automations/{campaign}/run' => {},
    'PATCH /v1/settings' => { idem_ttl => 60 },
    'POST /v1/jobs/codes/issue' => { campaign => 'spring', count => 3 },
    'POST /v1/webhooks' => { url => 'http://127.0.0.1:9/other', events => '*' },
    'PATCH /v1/webhooks/{webhook}' => { status => 'paused' },
    'POST /v1/jobs/codes/export' => { campaign => 'spring' },
    'POST /v1/jobs/automations/send' => { campaign => 'runner' },
    'POST /v1/jobs/codes/import' => \"code,campaign\nDOCIMPORT1,spring\n",
    'POST /v1/jobs/members/import' => \"id,tier\ndoc-member,gold\n",
    'PATCH /v1/loyalty/programme' => { point_value => 10 },
    'POST /v1/loyalty/members/{id}/adjust' => { points => 5, reason => 'doc' },
    'POST /v1/loyalty/members/{id}/claims' => { reward => 'cake', key => 'doc-1' },
    'PUT /v1/loyalty/rewards/{reward}' => { cost => 2 },
    'POST /v1/loyalty/rewards/{reward}/pool' => { count => 2 },
    'POST /v1/loyalty/referrals' => { code => $refcode, member => 'newbie' },
    'POST /v1/members/{id}/wallet' => { code => 'GIFT0001' },
    'POST /v1/members/{id}/wallet/remove' => { code => 'GIFT0001' },
    'POST /v1/qualify' => { customer => 'alice', order => { amount => 1000 }, best => JSON::PP::true },
);

# deletes last, so the others find their objects
for my $op ((grep { $_->[0] ne 'DELETE' } @ops), (grep { $_->[0] eq 'DELETE' } @ops)) {
    my ($m, $p) = @$op;
    my %f = (%fill, %{ $fill_for{"$m $p"} // {} });
    (my $url = $p) =~ s/\{(\w+)\}/$f{$1}/g;
    $url .= $queries{"$m $p"} // '';
    my $res = api($m, $url, $bodies{"$m $p"}, $types{"$m $p"});
    ok($res->{status} != 405 && ($res->{json}{reason} // '') ne 'unknown_path'
       && $res->{status} < 500, "$m $p answers ($res->{status})") or diag $res->{body};
    ok($res->{status} < 400, "... and works with the documented input") or diag $res->{body};
}

# the reasons t/120 does not reach
api('POST', '/v1/codes', { code => 'GIFT0002', campaign => 'spring' });
my $res = api('POST', '/v1/codes/GIFT0002/credit', { amount => 9007199254740991 });
is($res->{json}{reason}, 'balance_overflow', 'a credit past 2^53-1: balance_overflow');
is($res->{status}, 409, '... 409');
api('PUT', '/v1/automations/spring', { trigger => { event => 'signup' }, channel => 'hook',
                                       message => 'Hi' });
$res = api('POST', '/v1/automations/spring/run');
is_deeply([$res->{status}, $res->{json}{reason}], [409, 'not_scheduled'], 'run now of a triggered automation');
api('PUT', '/v1/automations/spring', { schedule => 'daily 09:00', segment => 'all',
                                       channel => 'hook', message => 'Hi' });
api('POST', '/v1/campaigns/runner/pause');
$res = api('POST', '/v1/automations/runner/run');
is_deeply([$res->{status}, $res->{json}{reason}], [409, 'campaign_not_active'], 'run now of a paused campaign');
delete $channels{hook};
$channels{other} = { type => 'webhook', url => 'http://127.0.0.1:9/', secret_file => $w->dir . '/hook.secret' };
$w->reconfigure(channels => \%channels);
$d->hup;
ok(wait_until(sub { $d->log =~ /reloaded/ }, timeout => 10), 'the channel is gone from the configuration');
$res = api('GET', '/v1/automations/spring/next');
is($res->{json}{reason}, 'automation_invalid', 'next runs of an automation that no longer checks');
is($res->{status}, 409, '... 409');

# the reasons t/130-admin-api.t, t/125-loyalty-admin.t, t/132-admin-jobs.t,
# t/133-webhooks.t, t/096-cart-admin.t and t/149-stores.t check with refused()
for my $t ('130-admin-api.t', '125-loyalty-admin.t', '132-admin-jobs.t', '133-webhooks.t',
           '096-cart-admin.t', '149-stores.t') {
    my $text = WorkerT::read_text("$root/t/$t");
    $seen{$1}++ while $text =~ /refused\((?:[^;]|\n)*?,\s*\d{3},\s*'(\w+)'/g;
}
# and 401 there is checked the same way
for my $r (@reasons) {
    ok($seen{$r}, "documented reason $r is produced by a test");
}
my %doc = map { ($_ => 1) } @reasons;
for my $r (sort keys %seen) {
    ok($doc{$r}, "reason $r seen in the tests is documented");
}

ok(wait_until(sub { api('GET', "/v1/jobs/$running")->{json}{state} eq 'cancelled' }, timeout => 10),
   'the long job was cancelled by its DELETE');

$d->stop;
done_testing;
