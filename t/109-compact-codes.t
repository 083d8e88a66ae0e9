# Compact codes: a bulk-issued code that holds only its campaign (and
# maybe its customer) is one field of a bucket hash, not a hash of its
# own.  Every operation works on it as on any code: validate, redeem,
# rollback, reserve and release through nginx; voucher_code_get,
# voucher_code_set (which moves it into a hash when it needs one),
# voucher_code_del, voucher_codes_page; and it costs far less memory.
use strict;
use warnings;
use Test::More;
use Digest::SHA ();
use VT;
use VoucherT;

my ($redis, $ng) = start_pair(server => api_server() . <<'EOT');
        location = /vouchers/reserve { voucher_api reserve; }
        location = /vouchers/release { voucher_api release; }
EOT
my $r = $redis;
sub fcall { my ($fn, $key, @a) = @_; $r->cmd('FCALL', $fn, 1, $key, @a) }
sub compact { $r->cmd('HGET', '{v}:cb:' . substr(Digest::SHA::sha1_hex($_[0]), 0, 4), $_[0]) }
sub J { VT::json_body($_[0]) }

campaign($r, 'bulk', kind => 'amount', value => 250, code_max_uses => 1);
is_deeply(fcall('voucher_codes_add', '{v}:k:bulk', 'new', 0, 'code,customer',
                'CPT-AAA1', '', 'CPT-BBB2', 'ann', 'CPT-CCC3', 'bob smith'),
          [3, []], 'three codes added');
is(compact('CPTAAA1'), '0 bulk', 'a campaign-only code is compact');
is(compact('CPTBBB2'), '0 bulk ann', 'so is one with a customer');
is(compact('CPTCCC3'), undef, 'a customer id with a space needs a hash');
is($r->cmd('HGET', '{v}:c:CPTCCC3', 'c'), 'bob smith', '... and has one');
is($r->cmd('EXISTS', '{v}:c:CPTAAA1', '{v}:c:CPTBBB2'), 0, 'no hash for the compact ones');

# --- through nginx ------------------------------------------------------------
my $v = post($ng, 'validate', {code => 'cpt-aaa1', order => {amount => 1000}});
is($v->{status}, 200, 'validate a compact code (typed as people do)');
is(J($v)->{discount}, 250, '... priced');
my $red = post($ng, 'redeem', {code => 'CPTAAA1', order => {amount => 1000}});
is($red->{status}, 200, 'redeem it');
is(compact('CPTAAA1'), '1 bulk', 'its uses are counted in place');
my $again = post($ng, 'redeem', {code => 'CPTAAA1', order => {amount => 1000}});
is(J($again)->{reason}, 'code_exhausted', 'single use: code_exhausted');
is(post($ng, 'rollback', {redemption_id => J($red)->{redemption_id}})->{status}, 200,
   'roll it back');
is(compact('CPTAAA1'), '0 bulk', 'the use is back');

is(J(post($ng, 'redeem', {code => 'CPTBBB2', customer => 'zed',
                          order => {amount => 1000}}))->{reason},
   'customer_mismatch', 'an assigned compact code refuses another customer');
my $res = post($ng, 'reserve', {code => 'CPTBBB2', customer => 'ann',
                                order => {amount => 1000}});
is($res->{status}, 200, 'reserve it for its customer');
is(compact('CPTBBB2'), '1 bulk ann', '... taken');
is(post($ng, 'release', {redemption_id => J($res)->{redemption_id}})->{status}, 200,
   'release it');
is(compact('CPTBBB2'), '0 bulk ann', '... given back');

# --- the admin functions ---------------------------------------------------------
is_deeply(fcall('voucher_code_get', '{v}:c:cpt-bbb2'),
          ['code', 'CPTBBB2', 'campaign', 'bulk', 'status', 'active', 'used', 0,
           'customer', 'ann'], 'voucher_code_get reads a compact code');
is(fcall('voucher_code_set', '{v}:c:CPTBBB2', 'customer', 'amy'), 'OK',
   'voucher_code_set: a new customer');
is(compact('CPTBBB2'), '0 bulk amy', '... it stays compact');
post($ng, 'redeem', {code => 'CPTBBB2', customer => 'amy', order => {amount => 1000}});
is(fcall('voucher_code_set', '{v}:c:CPTBBB2', 'status', 'disabled'), 'OK',
   'voucher_code_set: disabled');
is(compact('CPTBBB2'), undef, '... it moved out of the bucket');
is_deeply({ @{ $r->cmd('HGETALL', '{v}:c:CPTBBB2') } }, {k => 'bulk', u => 1, c => 'amy', s => 'd'},
          '... into a hash, with its uses and customer');
is(J(post($ng, 'validate', {code => 'CPTBBB2', customer => 'amy',
                            order => {amount => 1000}}))->{reason},
   'code_inactive', 'and the hash is what counts now');
is(fcall('voucher_code_del', '{v}:c:CPTAAA1'), 1, 'voucher_code_del removes a compact code');
is(J(post($ng, 'validate', {code => 'CPTAAA1', order => {amount => 1000}}))->{reason},
   'not_found', '... it is gone');
like(($r->cmd('FCALL', 'voucher_codes_add', 1, '{v}:k:bulk', 'new', 0, 'code', 'CPTBBB2')
      // '')->message, qr/exists/, 'codes_add sees a code in either form');

# --- a page of codes, both forms ------------------------------------------------------
my (%seen, $cursor) = ();
$cursor = '0';
do {
    my ($next, $rows) = @{ fcall('voucher_codes_page', '{v}:k:bulk', $cursor, 100) };
    $seen{ $_->[0] } = $_ for @$rows;
    $cursor = $next;
} while ($cursor ne '0');
is_deeply([sort keys %seen], ['CPTBBB2', 'CPTCCC3'], 'voucher_codes_page lists both forms');
is_deeply($seen{CPTBBB2}, ['CPTBBB2', 'bulk', 'd', undef, 1, 'amy', undef, undef, undef, undef],
          '... with the fields of voucher_code_get, in store order');

# --- memory --------------------------------------------------------------------------------
# 100,000 codes over the 65,536 buckets: still under a hash each (104
# bytes); at a million, about 15 a bucket, the bench measures about 25.
my $n = 100000;
my $before = $r->info('memory')->{used_memory};
for my $batch (0 .. 99) {
    fcall('voucher_codes_add', '{v}:k:bulk', 'new', 0, 'code',
          map { sprintf 'M%07d', $batch * 1000 + $_ } 1 .. 1000);
}
my $per = ($r->info('memory')->{used_memory} - $before) / $n;
note sprintf '%.1f bytes per compact code', $per;
ok($per < 90, sprintf('a compact code costs %.1f bytes (a hash costs about 104)', $per));
is(fcall('voucher_code_get', '{v}:c:M0099999')->[3], 'bulk', 'the last one is there');

$ng->check_log;
done_testing;
