# nginx and the native module (redis/module, voucher.so).  With the module
# in Redis, built from the same library, nginx sends validate and redeem as
# its commands, says so in the error log, and the answers are those of the
# FCALL path (and an event, which has no native command, goes as FCALL) (a second Redis without the module gets the same requests).
# MODULE UNLOAD while nginx runs, with requests in flight: each native
# command answered "unknown command" goes again as FCALL, none is lost or
# done twice.  A Redis restarted with the module is used natively again,
# one restarted without it through FCALL.
use strict;
use warnings;
use Test::More;
use POSIX ();
use VT;
use VoucherT;

my $root = VT::root_dir();
my $so = "$root/build/redis-module/voucher.so";
system('make', '-s', '-C', "$root/redis/module") unless -f $so;
plan skip_all => "the native module is not built ($so): make -C redis/module"
    unless -f $so;

my @with = ('--loadmodule', $so, '--enable-module-command', 'local');
my $redis = VT::Redis->start(args => [@with], no_module => 1);
my $plain = VT::Redis->start(no_module => 1);

my $http = 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;';
my $ng = VT::Nginx->start(redis => $redis, http => $http,
                          server => api_server()
                          . "        location = /events { voucher_api event; }\n");
my $ngp = VT::Nginx->start(redis => $plain, http => $http,
                           server => api_server());

ok(wait_until(sub { $ng->error_log =~ /native module for voucher_validate .*voucher_redeem.*, FCALL for the rest/ },
              timeout => 10),
   'nginx found the module and says so at info');
ok(wait_until(sub { $ngp->error_log =~ /no native module, using FCALL/ },
              timeout => 10),
   '... and its absence');

for my $r ($redis, $plain) {
    campaign($r, 'pct', kind => 'percent', value => 1000, cap => 500,
             per_customer => 2);
    campaign($r, 'gift', kind => 'gift_card');
    campaign($r, 'flow', kind => 'amount', value => 100);
    code($r, 'TEN', campaign => 'pct', max_uses => 3);
    code($r, 'CARD', campaign => 'gift', balance => 700);
    code($r, 'FLOW', campaign => 'flow');
}

$redis->reset_stats;

# the same requests to both; every answer alike but the redemption's id
my @reqs = (
    [validate => {code => 'TEN', order => {amount => 12000}}],
    [validate => {code => 'NOPE', order => {amount => 1000}}],
    [validate => {code => 'TEN', customer => 'al', order => {amount => 10}}],
    [redeem => {code => 'TEN', customer => 'al', order => {amount => 12000}},
     'k1'],
    [redeem => {code => 'TEN', customer => 'al', order => {amount => 12000}},
     'k1'],
    [redeem => {code => 'TEN', customer => 'al', order => {amount => 999}},
     'k1'],
    [redeem => {code => 'TEN', customer => 'al', order => {amount => 5000}}],
    [redeem => {code => 'TEN', customer => 'al', order => {amount => 5000}}],
    [redeem => {code => 'TEN', customer => 'bo', order => {amount => 5000}}],
    [redeem => {code => 'TEN', customer => 'bo', order => {amount => 5000}}],
    [redeem => {code => 'CARD', order => {amount => 500}}, 'g1'],
    [redeem => {code => 'CARD', order => {amount => 500}}],
    [redeem => {code => 'CARD', order => {amount => 500}}],
    [validate => {code => 'CARD', order => {amount => 500}}],
);
my $i = 0;
for my $q (@reqs) {
    my ($op, $body, $key) = @$q;
    my %h = $key ? (headers => {'Idempotency-Key' => $key}) : ();
    my $a = post($ng, $op, $body, %h);
    my $b = post($ngp, $op, $body, %h);
    for ($a, $b) {
        $_->{json}{redemption_id} = 'ID' if $_->{json}
            && defined $_->{json}{redemption_id};
    }
    is($a->{status}, $b->{status}, "request $i: same status ($a->{status})");
    is_deeply($a->{json}, $b->{json}, "request $i: same answer"
              . ($a->{json}{reason} ? " ($a->{json}{reason})" : ''));
    is($a->{headers}{'idempotent-replayed'} // '',
       $b->{headers}{'idempotent-replayed'} // '', "request $i: same replay");
    $i++;
}

my $cs = $redis->commandstats;
ok(($cs->{'voucher.validate'} // 0) >= 4, 'validate went native')
    or diag explain $cs;
ok(($cs->{'voucher.redeem'} // 0) >= 9, 'redeem went native');
# a gift card's calls are the library's (its lots and its ledger): the
# module hands its 3 redeems and 1 validate over, and nothing else
is($cs->{fcall} // 0, 4, 'no FCALL on the request path but the gift card\'s')
    or diag explain $cs;

# a storefront event has no native command: FCALL, with the module there
my $ev = http($ng->port, 'POST', '/events',
              body => {id => 'ev-1', type => 'signup', customer => 'al'});
is($ev->{status}, 200, 'an event through the nginx that uses the module');
is(($redis->commandstats->{fcall} // 0) - ($cs->{fcall} // 0), 1, '... sent as FCALL voucher_event');
is($redis->cmd('XLEN', '{v}:events'), 1, '... and appended');

# MODULE UNLOAD under load: every request answered once, through FCALL
my $n = 180;
my $xlen = $redis->cmd('XLEN', '{v}:log');
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    my @res = http_parallel($ng->port, [ map {
        { method => 'POST', path => '/vouchers/redeem',
          body => {code => 'FLOW', order => {amount => 1000}} }
    } 1 .. $n ], concurrency => 8, timeout => 30);
    my $bad = grep { $_->{status} != 200 } @res;
    POSIX::_exit($bad > 250 ? 250 : $bad);
}
ok(wait_until(sub { ($redis->cmd('HGET', '{v}:k:flow', 'redeemed') // 0)
                    >= $n / 4 }, timeout => 20, interval => 0.005),
   'redeems under way');
is($redis->cmd('MODULE', 'UNLOAD', 'voucher'), 'OK', 'MODULE UNLOAD');
waitpid($pid, 0);
is($? >> 8, 0, "each of the $n redeems around MODULE UNLOAD answered 200");
my $mods = $redis->cmd('MODULE', 'LIST');
is(scalar(@$mods), 0, 'the module is gone');
is($redis->cmd('HGET', '{v}:k:flow', 'redeemed'), $n,
   'each counted once: none lost, none twice');
is($redis->cmd('XLEN', '{v}:log') - $xlen, $n, '... one entry each');
like($ng->error_log, qr/the native module is gone, using FCALL/,
     'nginx says it went back to FCALL');
my $r = post($ng, 'redeem', {code => 'FLOW', order => {amount => 1000}});
is($r->{status}, 200, 'later requests go through FCALL');
ok(($redis->commandstats->{fcall} // 0) > 0, '... as FCALL');

# a restart with the module: native again; without it: FCALL
$redis->start_again;
ok(wait_until(sub {
        post($ng, 'validate', {code => 'FLOW', order => {amount => 1000}})
            ->{status} != 503
        && (() = $ng->error_log =~ /native module for voucher_validate/g) >= 2
    }, timeout => 15),
   'after a restart with the module, nginx uses it again');
campaign($redis, 'flow', kind => 'amount', value => 100);
code($redis, 'FLOW', campaign => 'flow');
$r = post($ng, 'redeem', {code => 'FLOW', order => {amount => 1000}});
is($r->{status}, 200, 'redeem after the restart');
is($redis->commandstats->{'voucher.redeem'} // 0, 1, '... native');

$redis->{args} = [];
$redis->start_again;
ok(wait_until(sub { $ng->error_log =~ /no native module, using FCALL/ },
              timeout => 15),
   'after a restart without the module, nginx uses FCALL');
campaign($redis, 'flow', kind => 'amount', value => 100);
code($redis, 'FLOW', campaign => 'flow');
is(post($ng, 'redeem', {code => 'FLOW', order => {amount => 1000}})
       ->{status}, 200, '... and requests are answered');
is($redis->cmd('HGET', '{v}:k:flow', 'redeemed'), 1, '... once');

$ng->check_log;
$ngp->check_log;
done_testing;
