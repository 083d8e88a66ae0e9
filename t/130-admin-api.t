#!/usr/bin/perl
#
# voucherd's admin API against a real voucherd and Redis: bearer tokens
# (401 with nothing more said), the error shape and its reasons, body
# limits, unknown fields, 405 with Allow, cursor-paged lists; campaigns,
# codes (history, disable, gift-card credit and debit with their ledger
# entry), members, segments, automations, settings; the admin audit stream
# (the token's name, or cli:<user> for voucherctl, before and after); the
# same operations through voucherctl; Redis away (503, then back); a unix
# socket with nginx in front (allow/deny the nginx way); bad admin
# configurations.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use VT;
use WorkerT;

worker_bin('voucherd');
worker_bin('voucherctl');

my $JSON = JSON::PP->new->utf8->canonical;
my $SECRET = 'ops-secret-0123456789';

sub setup_admin {
    my (%o) = @_;
    my $w = worker_setup(%o);
    my $tokens = $w->dir . '/tokens';
    write_text($tokens, "# name secret\nops $SECRET\n\nbot   bot-secret-abcdefghijkl  \n");
    chmod 0600, $tokens;
    my $port = VT::free_port();
    $w->reconfigure(admin => { listen => $o{listen} // "127.0.0.1:$port",
                               tokens_file => $tokens, max_body => 4096,
                               %{ $o{admin} // {} } },
                    daemon => { poll_ms => 100 });
    $w->{admin_port} = $port;
    return $w;
}

my $w = setup_admin();
my $d = WorkerT::Daemon->start($w);
my $port = $w->{admin_port};
like($d->log, qr/admin API on 127\.0\.0\.1:$port, 2 token\(s\)/, 'the API is served');

sub api {
    my ($method, $path, %o) = @_;
    my %h = (exists $o{token} ? (defined $o{token} ? (Authorization => "Bearer $o{token}") : ())
                              : (Authorization => "Bearer $SECRET"));
    %h = (%h, %{ $o{headers} // {} });
    my $res = VT::http($port, $method, $path, headers => \%h,
                       (exists $o{body} ? (body => $o{body}) : ()));
    $res->{json} = eval { $JSON->decode($res->{body}) } if ($res->{body} // '') ne '';
    return $res;
}

sub refused {
    my ($res, $status, $reason, $name, $field) = @_;
    is($res->{status}, $status, "$name: $status") or diag $res->{body};
    is($res->{json}{reason}, $reason, "$name: $reason");
    ok(defined $res->{json}{message} && length $res->{json}{message}, "$name: a message");
    is($res->{json}{field}, $field, "$name: field $field") if defined $field;
    is($res->{headers}{'content-type'}, 'application/json', "$name: JSON");
}

# every item of a list, following its cursors
sub all_pages {
    my ($path) = @_;
    my (@items, $cursor, $n);
    do {
        my $res = api('GET', $path . (defined $cursor ? "&cursor=$cursor" : ''));
        push @items, @{ $res->{json}{items} // [] };
        $cursor = $res->{json}{next_cursor};
    } while (defined $cursor && ++$n < 10000);
    return @items;
}

sub audit_count { $w->redis->cmd('XLEN', $w->key('admin')) }

########################################################### tokens

my $res = api('GET', '/v1/campaigns', token => undef);
refused($res, 401, 'unauthorized', 'no token');
is_deeply([sort keys %{ $res->{json} }], ['message', 'reason'], '... and nothing more said');
is($res->{headers}{'www-authenticate'}, 'Bearer', '... WWW-Authenticate: Bearer');
refused(api('GET', '/v1/campaigns', token => 'ops-secret-012345678'), 401, 'unauthorized', 'a wrong token');
refused(api('GET', '/v1/campaigns', token => "${SECRET}x"), 401, 'unauthorized', 'a longer token');
refused(api('GET', '/v1/nothing-here', token => 'nope'), 401, 'unauthorized',
        'an unknown path without a token: 401 first');
refused(api('GET', '/v1/campaigns', headers => { Authorization => "Basic $SECRET" }),
        401, 'unauthorized', 'another scheme');
is(api('GET', '/v1/campaigns', token => 'bot-secret-abcdefghijkl')->{status}, 200,
   'the second token (spaces around it in the file)');

########################################################### protocol

refused(api('GET', '/v1/nothing-here'), 404, 'unknown_path', 'an unknown path');
refused(api('GET', '/v1/campaigns/'), 404, 'unknown_path', 'an empty id');
$res = api('DELETE', '/v1/campaigns/x');
refused($res, 405, 'method_not_allowed', 'DELETE of a campaign');
is($res->{headers}{allow}, 'GET, PATCH', '... Allow names the methods');
$res = api('PUT', '/v1/campaigns', body => {});
is($res->{headers}{allow}, 'GET, POST', 'PUT of the list: Allow GET, POST');
refused(api('GET', '/v1/codes/A%ZZ'), 400, 'invalid_request', 'a malformed escape');
refused(api('GET', '/v1/codes/A%00B'), 400, 'invalid_request', 'an escaped NUL');

refused(api('POST', '/v1/campaigns', body => \ ('{"id":"x","name":"' . ('a' x 5000) . '"}'),
            headers => { 'Content-Type' => 'application/json' }),
        413, 'body_too_large', 'a body over admin.max_body');
refused(api('POST', '/v1/campaigns', body => \'{"id":"x"}',
            headers => { 'Content-Type' => 'text/plain' }),
        415, 'unsupported_media_type', 'text/plain');
is(api('POST', '/v1/campaigns', body => \'{"id":"ctype","kind":"percent","value":5}',
       headers => { 'Content-Type' => 'application/merge-patch+json; charset=utf-8' })->{status},
   201, 'application/x+json with a parameter is JSON');
refused(api('POST', '/v1/campaigns', body => \'{"id":"x",', headers => { 'Content-Type' => 'application/json' }),
        400, 'invalid_json', 'truncated JSON');
refused(api('POST', '/v1/campaigns', body => \'{"id":"x","id":"y"}', headers => { 'Content-Type' => 'application/json' }),
        400, 'duplicate_field', 'a key twice');
refused(api('POST', '/v1/campaigns', body => [1]), 400, 'invalid_request', 'an array body');
refused(api('POST', '/v1/campaigns', body => \'{"id":"a\u0000b"}', headers => { 'Content-Type' => 'application/json' }),
        400, 'invalid_json', '\u0000');

########################################################### campaigns

my $before = audit_count();
$res = api('POST', '/v1/campaigns', body => { id => 'spring', kind => 'percent', value => 1000,
                                               name => 'Spring', include_skus => ['TEA', 'CAKE'] });
is($res->{status}, 201, 'create: 201');
is_deeply([@{ $res->{json} }{qw(id name kind value status include_skus)}],
          ['spring', 'Spring', 'percent', 1000, 'active', 'TEA,CAKE'], '... answers the campaign');
refused(api('POST', '/v1/campaigns', body => { id => 'spring', kind => 'amount' }), 409,
        'already_exists', 'create again');
is(api('GET', '/v1/campaigns/spring')->{json}{kind}, 'percent', '... and changed nothing');
refused(api('POST', '/v1/campaigns', body => { id => 'x', kind => 'percent', colour => 'red' }),
        400, 'unknown_field', 'an unknown field', 'colour');
refused(api('POST', '/v1/campaigns', body => { id => 'x', kind => 'percent', value => '1000' }),
        400, 'invalid_field', 'a string for an integer', 'value');
refused(api('POST', '/v1/campaigns', body => { id => 'x', kind => 'percent', value => 20000 }),
        400, 'invalid_field', 'a percent over 100%', 'value');
refused(api('POST', '/v1/campaigns', body => { kind => 'percent' }), 400, 'missing_field',
        'no id', 'id');
refused(api('POST', '/v1/campaigns', body => { id => 'x', kind => 'percent', cap => -1 }),
        400, 'invalid_field', 'a negative cap', 'cap');
refused(api('POST', '/v1/campaigns', body => { id => 'x', kind => 'percent', name => { a => 1 } }),
        400, 'invalid_field', 'an object for a string', 'name');
refused(api('POST', '/v1/campaigns', body => { id => 'x', kind => 'percent', value => 1.5 }),
        400, 'invalid_field', 'a fraction', 'value');
ok(!$w->redis->cmd('EXISTS', $w->key('k:x')), 'refused creates wrote nothing');
is(audit_count(), $before + 1, 'the audit stream has the one create');

$res = api('PATCH', '/v1/campaigns/spring', body => { cap => 20000, starts_at => 1000, name => undef });
is($res->{status}, 200, 'update');
is_deeply([@{ $res->{json} }{qw(cap starts_at)}, exists $res->{json}{name} ? 1 : 0],
          [20000, 1000, 0], '... set, and null cleared the name');
refused(api('PATCH', '/v1/campaigns/nosuch', body => { cap => 1 }), 404, 'not_found',
        'update of an unknown campaign');
ok(!$w->redis->cmd('EXISTS', $w->key('k:nosuch')), '... made nothing');
refused(api('PATCH', '/v1/campaigns/spring', body => {}), 400, 'invalid_request', 'an empty update');
refused(api('PATCH', '/v1/campaigns/spring', body => { ends_at => 10 }), 400, 'invalid_field',
        'ends before it starts', 'ends_at');

is(api('POST', '/v1/campaigns/spring/pause')->{json}{status}, 'paused', 'pause');
refused(api('POST', '/v1/campaigns/spring/pause', body => { now => 1 }), 400, 'unknown_field',
        'pause takes no fields', 'now');
is(api('POST', '/v1/campaigns/spring/resume')->{json}{status}, 'active', 'resume');
refused(api('POST', '/v1/campaigns/nosuch/archive'), 404, 'not_found', 'archive of an unknown one');

# 25 more, listed 7 at a time: each once
for my $i (1 .. 25) {
    api('POST', '/v1/campaigns', body => { id => sprintf('bulk%02d', $i), kind => 'amount', value => $i,
                                          ($i % 5 == 0 ? (status => 'paused') : ()) });
}
api('POST', '/v1/campaigns/bulk03/archive');
my (%seen, $pages, $cursor);
do {
    $res = api('GET', '/v1/campaigns?kind=amount&limit=7' . ($cursor ? "&cursor=$cursor" : ''));
    is($res->{status}, 200, 'a page') unless $pages;
    $seen{ $_->{id} }++ for @{ $res->{json}{items} };
    $cursor = $res->{json}{next_cursor};
    $pages++;
} while (defined $cursor && $pages < 100);
is(scalar(keys %seen), 25, 'paged with a cursor: the 25 amount campaigns');
ok(!grep({ $_ != 1 } values %seen), '... each once');
ok($pages >= 2, "... in $pages pages");
$res = api('GET', '/v1/campaigns?status=paused&limit=1000');
is_deeply([sort map { $_->{id} } @{ $res->{json}{items} }], [map { sprintf 'bulk%02d', $_ } 5, 10, 15, 20, 25],
          'status=paused');
is(api('GET', '/v1/campaigns?status=archived&kind=amount')->{json}{items}[0]{id}, 'bulk03', 'status=archived');
is(api('GET', '/v1/campaigns?q=SPRI')->{json}{items}[0]{id}, 'spring', 'q: a part of the id, any case');
refused(api('GET', '/v1/campaigns?limit=0'), 400, 'invalid_field', 'limit 0', 'limit');
refused(api('GET', '/v1/campaigns?limit=abc'), 400, 'invalid_field', 'limit abc', 'limit');
refused(api('GET', '/v1/campaigns?cursor=zz'), 400, 'invalid_field', 'a cursor not given', 'cursor');
refused(api('GET', '/v1/campaigns?colour=red'), 400, 'unknown_field', 'an unknown query argument', 'colour');
refused(api('GET', '/v1/campaigns?q=a&q=b'), 400, 'invalid_request', 'a query argument twice');

########################################################### codes

api('POST', '/v1/campaigns', body => { id => 'gift', kind => 'gift_card', value => 5000 });
$res = api('POST', '/v1/codes', body => { code => 'gift-0001', campaign => 'gift' });
is($res->{status}, 201, 'a code made');
is_deeply([@{ $res->{json} }{qw(code balance initial_balance status)}], ['GIFT0001', 5000, 5000, 'active'],
          '... normalized, with the campaign\'s balance');
refused(api('POST', '/v1/codes', body => { code => 'GIFT0001', campaign => 'gift' }), 409,
        'already_exists', 'the same code again');
refused(api('POST', '/v1/codes', body => { code => 'X1', campaign => 'nosuch' }), 400,
        'invalid_field', 'a code of an unknown campaign', 'campaign');
refused(api('POST', '/v1/codes', body => { code => 'X1' }), 400, 'missing_field', 'no campaign', 'campaign');

$res = api('POST', '/v1/codes/gift-0001/debit', body => { amount => 1200, ref => 'order-1', note => 'till 3' });
is($res->{status}, 200, 'debit');
is($res->{json}{balance}, 3800, '... the balance');
my $entry = $res->{json}{entry};
my $e = $w->redis->cmd('XRANGE', $w->key('log'), $entry, $entry)->[0][1];
my %e = @$e;
is_deeply([@e{qw(type code amount balance idem ref)}], ['debit', 'GIFT0001', 1200, 3800, 'order-1', 'till 3'],
          '... and its ledger entry in the audit trail');
$res = api('POST', '/v1/codes/GIFT0001/debit', body => { amount => 1200, ref => 'order-1' });
is_deeply([@{ $res->{json} }{qw(balance replayed entry)}], [3800, JSON::PP::true, $entry],
          'the same ref again: the first answer, replayed');
refused(api('POST', '/v1/codes/GIFT0001/debit', body => { amount => 1300, ref => 'order-1' }), 422,
        'idempotency_conflict', 'the ref for another amount');
refused(api('POST', '/v1/codes/GIFT0001/debit', body => { amount => 3801 }), 409,
        'balance_insufficient', 'more than the balance');
is(api('POST', '/v1/codes/GIFT0001/credit', body => { amount => 200 })->{json}{balance}, 4000,
   'a top-up');
refused(api('POST', '/v1/codes/GIFT0001/credit', body => { amount => 0 }), 400, 'invalid_field',
        'an amount of 0', 'amount');
refused(api('POST', '/v1/codes/GIFT0001/credit', body => { amount => '5' }), 400, 'invalid_field',
        'an amount as a string', 'amount');
refused(api('POST', '/v1/codes/GIFT0001/credit', body => {}), 400, 'missing_field', 'no amount', 'amount');
refused(api('POST', '/v1/codes/NOSUCH/credit', body => { amount => 5 }), 404, 'not_found', 'an unknown code');
api('POST', '/v1/codes', body => { code => 'TEA10', campaign => 'spring' });
refused(api('POST', '/v1/codes/TEA10/debit', body => { amount => 5 }), 409, 'not_a_gift_card',
        'a code with no balance');

$res = api('GET', '/v1/codes/gift-0001');
is($res->{json}{balance}, 4000, 'get');
is_deeply([map { $_->{type} } @{ $res->{json}{history} }], ['credit', 'debit'],
          '... with its history, newest first (the replay wrote nothing)');
ok($res->{json}{history_complete}, '... the whole trail read');
refused(api('GET', '/v1/codes/NOPE'), 404, 'not_found', 'an unknown code');

is(api('POST', '/v1/codes/TEA10/disable')->{json}{status}, 'disabled', 'disable');
my $v = $w->redis->cmd('FCALL', 'voucher_validate', 1, $w->key('c:TEA10'), '', 1000, '', '', '', 0);
is($v->[0], 'code_inactive', '... and the module\'s validate refuses it');
is(api('POST', '/v1/codes/TEA10/enable')->{json}{status}, 'active', 'enable');
is(api('PATCH', '/v1/codes/TEA10', body => { max_uses => 3, customer => 'alice' })->{json}{max_uses}, 3,
   'update');
refused(api('PATCH', '/v1/codes/TEA10', body => { balance => 3 }), 400, 'invalid_field',
        'a balance on a percent code', 'balance');

# codes bulk-issued are stored compact: the search finds both forms
my $issue = ctl($w, qw(codes issue spring --count 30 --prefix SP --quiet));
is($issue->{rc}, 0, 'voucherctl issued 30 compact codes') or diag $issue->{err};
my @all;
$cursor = undef;
do {
    $res = api('GET', '/v1/codes?campaign=spring&limit=10' . ($cursor ? "&cursor=$cursor" : ''));
    push @all, @{ $res->{json}{items} };
    $cursor = $res->{json}{next_cursor};
} while (defined $cursor);
is(scalar @all, 31, 'search by campaign, paged: the 30 compact codes and TEA10');
is(scalar(grep { $_->{code} =~ /^SP/ } @all), 30, '... the compact ones');
my @tea = all_pages('/v1/codes?prefix=tea&limit=5');
is_deeply([map { $_->{code} } grep { $_->{code} eq 'TEA10' } @tea], ['TEA10'], 'search by prefix');

is(api('DELETE', '/v1/codes/TEA10')->{json}{deleted}, JSON::PP::true, 'delete');
refused(api('DELETE', '/v1/codes/TEA10'), 404, 'not_found', 'delete again');

########################################################### members

$res = api('POST', '/v1/members', body => { id => 'alice', name => 'Alice', tags => ['vip', 'tea'],
                                             phone => '+66 81 234 5678', spend => 9000, purchases => 3 });
is($res->{status}, 201, 'a member made');
is_deeply([@{ $res->{json} }{qw(id phone tags spend purchases)}], ['alice', '+66812345678', 'vip,tea', 9000, 3],
          '... as stored');
refused(api('POST', '/v1/members', body => { id => 'alice' }), 409, 'already_exists', 'again');
refused(api('POST', '/v1/members', body => { id => 'bob', phone => 'x' }), 400, 'invalid_field',
        'a bad phone', 'phone');
ok(!$w->redis->cmd('EXISTS', $w->key('m:bob')), '... nothing written');
api('POST', '/v1/members', body => { id => 'bob', name => 'Bob', tier => 'gold' });
is(api('PATCH', '/v1/members/bob', body => { tier => 'silver' })->{json}{tier}, 'silver', 'update');
refused(api('PATCH', '/v1/members/nobody', body => { tier => 'x' }), 404, 'not_found', 'update of nobody');
is(api('GET', '/v1/members/alice')->{json}{name}, 'Alice', 'get');
is_deeply([map { $_->{id} } @{ api('GET', '/v1/members?q=ALI')->{json}{items} }], ['alice'], 'search q');
is_deeply([map { $_->{id} } @{ api('GET', '/v1/members?tier=silver')->{json}{items} }], ['bob'], 'search tier');
is_deeply([map { $_->{id} } @{ api('GET', '/v1/members?tag=tea')->{json}{items} }], ['alice'], 'search tag');
api('PATCH', '/v1/codes/GIFT0001', body => { customer => 'alice' });
is_deeply([map { $_->{code} } @{ api('GET', '/v1/members/alice/codes?limit=1000')->{json}{items} }],
          ['GIFT0001'], 'the member\'s codes');

$res = api('POST', '/v1/segments/preview', body => { segment => 'tags:vip,coffee', sample => 5 });
is_deeply([@{ $res->{json} }{qw(count members)}, $res->{json}{sample}[0]{id}], [1, 2, 'alice'],
          'segment preview: count, of members, and a sample');
refused(api('POST', '/v1/segments/preview', body => { segment => 'colour:red' }), 400, 'invalid_field',
        'a bad segment', 'segment');

is(api('DELETE', '/v1/members/bob')->{json}{deleted}, JSON::PP::true, 'delete on request');
ok(!$w->redis->cmd('EXISTS', $w->key('m:bob')), '... the record is gone');
ok(!$w->redis->cmd('SISMEMBER', $w->key('members'), 'bob'), '... and from the members');

########################################################### automations, settings

my $def = { schedule => 'daily 09:00', segment => 'all', channel => 'hook', message => 'Hi {{code}}' };
refused(api('PUT', '/v1/automations/spring', body => $def), 400, 'invalid_field',
        'an automation on an unknown channel', 'definition');
write_text($w->dir . '/hook.secret', "hook-secret\n");
$w->reconfigure(channels => { hook => { type => 'webhook', url => 'http://127.0.0.1:9/',
                                        secret_file => $w->dir . '/hook.secret' } });
$d->hup;
ok(wait_until(sub { $d->log =~ /configuration .* reloaded/ && $d->log =~ /admin API on .*\n.*reloaded/s },
              timeout => 10), 'SIGHUP: the API reads the new configuration');
$res = api('PUT', '/v1/automations/spring', body => $def);
is($res->{status}, 200, 'an automation set') or diag $res->{body};
is_deeply($res->{json}{definition}, $def, '... as given');
is_deeply([map { $_->{campaign} } @{ api('GET', '/v1/automations')->{json}{items} }], ['spring'], 'list');
api('PATCH', '/v1/campaigns/spring', body => { tz_offset => '+07:00' });
$res = api('GET', '/v1/automations/spring/next?count=3&now=1767225600');   # 2026-01-01 00:00 UTC
is_deeply($res->{json}{next_runs}, [1767232800, 1767319200, 1767405600],
          'next runs: 09:00 at +07:00 on the next three days');
refused(api('PUT', '/v1/automations/nosuch', body => $def), 404, 'not_found', 'an automation of no campaign');
is(api('DELETE', '/v1/automations/spring')->{status}, 200, 'delete');
refused(api('GET', '/v1/automations/spring'), 404, 'not_found', 'gone');

is_deeply(api('PATCH', '/v1/settings', body => { idem_ttl => 600 })->{json},
          { idem_ttl => 600, stream_maxlen => 0, trail_retention => 0,
            stack_max_codes => 5 },
          'settings');
is(api('PATCH', '/v1/settings', body => { stack_max_codes => 3 })->{json}{stack_max_codes},
   3, 'settings: stack_max_codes');
refused(api('PATCH', '/v1/settings', body => { stack_max_codes => 31 }), 400, 'invalid_field',
        'stack_max_codes 31', 'stack_max_codes');
refused(api('PATCH', '/v1/settings', body => { idem_ttl => 0 }), 400, 'invalid_field', 'idem_ttl 0', 'idem_ttl');

########################################################### audit, voucherctl

$res = api('GET', '/v1/audit?limit=500');
my @audit = @{ $res->{json}{items} };
my ($deb) = grep { $_->{op} eq 'code.debit' } @audit;
is($deb->{who}, 'token:ops', 'audit: who is the token\'s name');
is_deeply([$deb->{before}{balance}, $deb->{after}{balance}, $deb->{target}], [5000, 3800, 'GIFT0001'],
          '... before and after');
ok($deb->{at} > 1_600_000_000_000, '... when (ms)');
ok(!grep({ $_->{op} eq 'code.debit' && $_->{after}{balance} == 3800 } @audit[0 .. $#audit]) == 0,
   '... the replayed debit is not there twice');
is(scalar(grep { $_->{op} eq 'code.debit' } @audit), 1, '... one debit entry (replay changed nothing)');
my @ops = map { $_->{op} } grep { ($_->{target} // '') eq 'bob' } @audit;
is_deeply(\@ops, ['member.delete', 'member.update', 'member.create'], 'the member\'s entries, newest first');
my ($del) = grep { $_->{op} eq 'member.delete' } @audit;
is($del->{after}, undef, '... deleted: after is null');
ok(!grep({ $_->{op} eq 'campaign.create' && $_->{target} eq 'x' } @audit), 'a refused change has no entry');

my $user = getpwuid($<);
$res = ctl($w, qw(campaign create autumn kind amount value 300 name), 'Autumn sale');
is($res->{rc}, 0, 'voucherctl campaign create') or diag $res->{err};
is(decode_json($res->{out})->{value}, 300, '... integers as integers');
$res = ctl($w, qw(campaign create autumn kind amount));
is($res->{rc}, 1, 'voucherctl: the same error');
like($res->{err}, qr/campaign create: already_exists/, '... with the API\'s reason');
is(ctl($w, qw(campaign pause autumn))->{rc}, 0, 'voucherctl campaign pause');
is(api('GET', '/v1/campaigns/autumn')->{json}{status}, 'paused', '... seen by the API');
$res = ctl($w, qw(campaign list --status paused --limit 2));
is_deeply([sort map { decode_json($_)->{id} } split /\n/, $res->{out}],
          ['autumn', map { sprintf 'bulk%02d', $_ } 5, 10, 15, 20, 25], 'voucherctl campaign list: every page');
$res = ctl($w, qw(codes debit GIFT0001 500 --ref till-9));
is(decode_json($res->{out})->{balance}, 3500, 'voucherctl codes debit');
is(ctl($w, qw(codes get gift0001 --history 1))->{out} =~ /"history"/ ? 1 : 0, 1, 'voucherctl codes get');
is(ctl($w, qw(members delete alice))->{rc}, 0, 'voucherctl members delete');
$res = ctl($w, qw(settings get));
is(decode_json($res->{out})->{idem_ttl}, 600, 'voucherctl settings get');
$res = ctl($w, qw(segment preview all --sample 0));
is(decode_json($res->{out})->{count}, 0, 'voucherctl segment preview');
$res = ctl($w, qw(audit list --limit 3));
my @cli = map { decode_json($_) } split /\n/, $res->{out};
ok(scalar(@cli) >= 3, 'voucherctl audit list');
is($cli[0]{who}, "cli:$user", '... a CLI change is cli:<user>');
is($cli[0]{op}, 'member.delete', '... the last change first');
$res = ctl($w, qw(codes frob));
is($res->{rc}, 2, 'an unknown codes command: usage');
like($res->{err}, qr/codes credit ID AMOUNT/, '... which lists the operations');

########################################################### Redis away

$w->redis->stop;
refused(api('GET', '/v1/campaigns/spring'), 503, 'store_unavailable', 'Redis away');
refused(api('POST', '/v1/campaigns', body => { id => 'late', kind => 'amount', value => 1 }), 503,
        'store_unavailable', 'a write with Redis away');
$w->redis->start_again;
# the test's Redis keeps nothing across a restart: an answer is a 404
ok(wait_until(sub { api('GET', '/v1/campaigns/spring')->{status} == 404 }, timeout => 10),
   'Redis back (empty): the API answers again');
# the API's threads each have a connection: one may still be on its way
# back (503, nothing written) when another answered
my $st;
ok(wait_until(sub {
       $st = api('POST', '/v1/campaigns', body => { id => 'spring', kind => 'amount', value => 1 })->{status};
       $st != 503 }, timeout => 10), '... a write is taken again');
is($st, 201, '... and writes (the library loaded anew)');
ok(!$w->redis->cmd('EXISTS', $w->key('k:late')), 'the write refused wrote nothing');

########################################################### QR and barcode pictures

# drawn from the text alone, as voucherctl qr draws it: a code that exists
# and one that does not give pictures made the same way
my $qr = api('GET', '/v1/qr?text=GIFT-7Q2M-94KD');
is($qr->{status}, 200, 'GET /v1/qr');
is($qr->{headers}{'content-type'}, 'image/svg+xml', '... an SVG');
is($qr->{headers}{'cache-control'}, 'private, no-store', '... kept by no cache');
is($qr->{body}, ctl($w, qw(qr GIFT-7Q2M-94KD))->{out}, '... the picture voucherctl qr draws');
# (another of the API's connections may still be coming back from the
# restart above: 503, nothing written, and a retry takes it)
my $made;
wait_until(sub {
    $made = api('POST', '/v1/codes', body => { code => 'GIFT-7Q2M-94KD', campaign => 'spring' });
    $made->{status} != 503 }, timeout => 10);
is($made->{status}, 201, 'the code made') or diag $made->{body};
my $got;
wait_until(sub { $got = api('GET', '/v1/codes/GIFT-7Q2M-94KD')->{status}; $got != 503 }, timeout => 10);
is($got, 200, '... it exists');
is(api('GET', '/v1/qr?text=GIFT-7Q2M-94KD')->{body}, $qr->{body}, '... its picture is the same as before');
my $nq = api('GET', '/v1/qr?text=NOPE-0000-0000');
is_deeply([$nq->{status}, length($nq->{body}) > 500], [200, 1], 'a code that does not exist: drawn too');
my $png = api('GET', '/v1/qr?text=GIFT-7Q2M-94KD&format=png&scale=4&margin=2&level=H');
is($png->{headers}{'content-type'}, 'image/png', 'format=png');
ctl($w, qw(qr GIFT-7Q2M-94KD --format png --scale 4 --margin 2 --level H --output), $w->dir . '/qr.png');
is($png->{body}, read_text($w->dir . '/qr.png'), '... the PNG voucherctl qr writes');
my $bar = api('GET', '/v1/barcode?text=GIFT-7Q2M-94KD&scale=3&height=60');
is($bar->{status}, 200, 'GET /v1/barcode');
is($bar->{headers}{'content-type'}, 'image/svg+xml', '... an SVG');
is($bar->{body}, ctl($w, qw(qr GIFT-7Q2M-94KD --barcode --scale 3 --height 60))->{out},
   '... the Code 128 voucherctl qr --barcode draws');
like($bar->{body}, qr/viewBox="0 0 209 1" width="627" height="60"/, "... 14 characters: 16 values of 11 modules, the stop's 13, quiet zones of 10");
$res = api('GET', '/v1/barcode?text=GIFT&format=png');
is_deeply([$res->{status}, $res->{headers}{'content-type'}, substr($res->{body}, 1, 3)], [200, 'image/png', 'PNG'],
          '... and a PNG');
refused(api('GET', '/v1/qr?text=GIFT', token => undef), 401, 'unauthorized', 'a QR without the token');
refused(api('GET', '/v1/qr'), 400, 'missing_field', 'a QR without text', 'text');
refused(api('GET', '/v1/qr?text='), 400, 'missing_field', 'a QR of an empty text', 'text');
refused(api('GET', '/v1/qr?text=A&format=gif'), 400, 'invalid_field', 'a QR as a GIF', 'format');
refused(api('GET', '/v1/qr?text=A&scale=65'), 400, 'invalid_field', 'a QR at scale 65', 'scale');
refused(api('GET', '/v1/qr?text=A&level=X'), 400, 'invalid_field', 'a QR at level X', 'level');
refused(api('GET', '/v1/qr?text=A&colour=red'), 400, 'unknown_field', 'a QR in red');
refused(api('GET', '/v1/qr?text=' . ('A' x 513)), 400, 'invalid_field', 'a QR of 513 characters', 'text');
refused(api('GET', '/v1/barcode?text=%E0%B8%81'), 400, 'invalid_field', 'a barcode of Thai text', 'text');
refused(api('GET', '/v1/barcode?text=' . ('A' x 81)), 400, 'invalid_field', 'a barcode of 81 characters', 'text');
refused(api('GET', '/v1/barcode?text=A&margin=2'), 400, 'unknown_field', 'a barcode with a margin');
refused(api('GET', '/v1/barcode?text=' . ('A' x 80) . '&scale=16'), 400, 'invalid_field',
        'a barcode over 4096 pixels', 'scale');
refused(api('POST', '/v1/qr?text=A'), 405, 'method_not_allowed', 'POST of a QR');
unlike($d->log, qr/GIFT-7Q2M|NOPE-0000/, 'the texts drawn are not logged');
refused(api('GET', '/qr?c=A&e=1&s=00', token => undef), 401, 'unauthorized',
        '/qr without admin.qr_link: a token is needed, nothing more said');

is($d->stop, 0, 'voucherd stops cleanly with the API');

########################################################### unix socket, nginx

my $sock = VT::tmp_root() . '/admin.sock';
my $wu = setup_admin(listen => "unix:$sock");
my $du = WorkerT::Daemon->start($wu);
ok(-S $sock, 'a unix socket');
my $ng = VT::Nginx->start(module => 0, http => <<"NGX", server => <<"NGX");
upstream voucher_admin { server unix:$sock; }
NGX
location /v1/ {
    proxy_pass http://voucher_admin;
    proxy_set_header Host localhost;
}
location /v1/settings {
    deny all;
}
NGX
$res = VT::http($ng->port, 'POST', '/v1/campaigns', headers => { Authorization => "Bearer $SECRET" },
                body => { id => 'via', kind => 'amount', value => 5 });
is($res->{status}, 201, 'through nginx: a campaign made');
$res = VT::http($ng->port, 'GET', '/v1/settings', headers => { Authorization => "Bearer $SECRET" });
is($res->{status}, 403, '... a location nginx denies');
$res = VT::http($ng->port, 'GET', '/v1/campaigns/via');
is($res->{status}, 401, '... and the token is still needed behind nginx');
$ng->stop;
$du->stop;
ok(!-e $sock, 'the socket is removed on stop');

########################################################### signed QR links

# {{qr_url}}: a link to /qr, signed with admin.qr_link_key_file's secret,
# that a message's reader opens without a token
my $lk = VT::tmp_root() . '/qr-link.key';
write_text($lk, ('k' x 40) . "\n");
my $wl = setup_admin(admin => { qr_link => 'https://shop.example/qr', qr_link_key_file => $lk });
write_text($wl->dir . '/hook.secret', "hook-secret\n");
$wl->reconfigure(channels => { hook => { type => 'webhook', url => 'http://127.0.0.1:9/',
                                         secret_file => $wl->dir . '/hook.secret' } });
my $dl = WorkerT::Daemon->start($wl);
$port = $wl->{admin_port};
my $soon = time + 30 * 86400;
api('POST', '/v1/campaigns', body => { id => 'links', kind => 'amount', value => 5000, ends_at => $soon });
api('POST', '/v1/members', body => { id => 'alice', phone => '0812345678' });
$res = api('PUT', '/v1/automations/links', body => { schedule => 'daily 09:00', segment => 'all', channel => 'hook',
                                                     issue => 'shared', code => 'GIFT-7Q2M', message => 'Scan {{qr_url}}' });
is($res->{status}, 200, 'an automation with {{qr_url}}') or diag $res->{body};
$res = api('GET', '/v1/automations/links/preview?sample=1');
my ($link) = ($res->{json}{sample}[0]{message} // '') =~ m{^Scan (https://shop\.example/qr\?\S+)$};
like($link, qr{^https://shop\.example/qr\?c=GIFT7Q2M&e=$soon&s=[0-9a-f]{32}$},
     '{{qr_url}}: the public link, the code as sent (no pattern: as stored), its end, a tag') or diag $res->{body};
(my $q = $link // '') =~ s{^https://shop\.example}{};
my $pic = api('GET', $q, token => undef);
is_deeply([$pic->{status}, $pic->{headers}{'content-type'}, $pic->{headers}{'cache-control'}],
          [200, 'image/png', 'public, max-age=86400'], '/qr opens without a token');
ctl($wl, qw(qr GIFT7Q2M --format png --output), $wl->dir . '/link.png');
is($pic->{body}, read_text($wl->dir . '/link.png'), '... the QR picture of the code');
(my $bad = $q) =~ s/(.)$/$1 eq '0' ? '1' : '0'/e;
refused(api('GET', $bad, token => undef), 403, 'link_invalid', 'a link with a changed tag');
(my $other = $q) =~ s/GIFT7Q2M/GIFT7Q2N/;
refused(api('GET', $other, token => undef), 403, 'link_invalid', 'a link to another code');
(my $later = $q) =~ s/e=$soon/'e=' . ($soon + 1)/e;
refused(api('GET', $later, token => undef), 403, 'link_invalid', 'a link made to last longer');
refused(api('GET', '/qr?c=GIFT-7Q2M', token => undef), 403, 'link_invalid', 'a link without its tag');
# a link made while the code was good, opened after its end
api('POST', '/v1/campaigns', body => { id => 'old', kind => 'amount', value => 5000, ends_at => time - 86400 });
ctl($wl, qw(auto set old), do { write_text($wl->dir . '/old.json', $JSON->encode(
    { schedule => 'daily 09:00', segment => 'all', channel => 'hook', issue => 'shared', code => 'OLD-1', message => '{{qr_url}}' }));
    $wl->dir . '/old.json' });
my $pv = ctl($wl, { env => { VOUCHERD_FAKE_NOW => time - 10 * 86400 } }, qw(auto preview old --sample 1));
my ($old) = $pv->{out} =~ m{https://shop\.example(/qr\?[^"\s]+)};
ok(defined $old, 'a link made ten days ago') or diag "$pv->{out}$pv->{err}";
refused(api('GET', $old // '/qr', token => undef), 410, 'link_expired', 'opened after the code\'s end');
unlike($dl->log, qr/GIFT-?7Q2M|OLD-?1/, 'the codes are not logged');
$dl->stop;
$port = $w->{admin_port};

########################################################### configurations

sub bad_admin {
    my ($admin, $re, $name) = @_;
    my $wb = worker_setup(redis => $w->redis);
    $wb->reconfigure(admin => $admin);
    my $out = `timeout 5 '${\ WorkerT::bin_dir()}/voucherd' -c '${\ $wb->conf}' 2>&1`;
    is($? >> 8, 1, "$name: voucherd does not start");
    like($out, $re, "... $name");
}

my $tok = $w->dir . '/tokens';
bad_admin({ listen => '0.0.0.0:1', tokens_file => $tok }, qr/not a loopback address/, 'a public address');
bad_admin({ listen => '127.0.0.1:1', tokens_file => $tok, qr_link => 'https://x/qr' },
          qr/admin\.qr_link_key_file: qr_link needs a key file of 32 or more characters/, 'qr_link without its key');
bad_admin({ listen => '127.0.0.1:1', tokens_file => '/nonexistent' }, qr/tokens_file.*No such file/,
          'no tokens file');
write_text($w->dir . '/short', "ops short\n");
bad_admin({ listen => '127.0.0.1:1', tokens_file => $w->dir . '/short' }, qr/line 1: expected NAME SECRET/,
          'a short secret');
bad_admin({ listen => '127.0.0.1:1' }, qr/admin.*tokens_file/, 'no tokens_file');
bad_admin({ listen => '127.0.0.1:1', tokens_file => $tok, colour => 1 }, qr/admin: unknown field "colour"/,
          'an unknown field');

done_testing;
