# A rolling upgrade: two nginx whose libraries differ (the second built in
# a copy of the project with a harmless change to the library's text) serve
# one Redis under load.  The first to come loads its library as the
# primary ("voucher"); the other loads its own beside it
# ("voucher_<version>") and neither replaces the other's, so FUNCTION LOAD
# runs a handful of times, not in a loop, and every answer is 200.  Then
# the old nginx goes, `voucherctl library promote` makes the new version
# the primary in one transaction while the new nginx serves on, a straggler
# of the old version loads its own again beside it, and `voucherctl
# library prune` removes it once it is gone.
use strict;
use warnings;
use Test::More;
use File::Path qw(make_path);
use POSIX ();
use Time::HiRes qw(sleep);
use VT;
use VoucherT;
use WorkerT;

plan skip_all => 'the module is built in (VOUCHER_MODULE is empty): the '
    . 'dynamic module is built in the pass against Debian\'s nginx'
    if defined $ENV{VOUCHER_MODULE} && $ENV{VOUCHER_MODULE} eq '';
plan skip_all => 'no build/nginx-dev: run scripts/build first'
    unless -f VT::root_dir() . '/build/nginx-dev/objs/Makefile';

my $root = VT::root_dir();
sub slurp { open my $f, '<:raw', $_[0] or return ''; local $/; <$f> }

# --- the other version: the same module, its library text changed --------
my $copy = VT::tmp_root() . '/project';
make_path("$copy/t", "$copy/build");
system('cp', '-a', map({ "$root/$_" } qw(config ngx_voucher_module redis
       scripts worker common)), $copy) == 0 or die "cp: $?";
system('cp', '-a', "$root/t/tools", "$copy/t/") == 0 or die "cp: $?";
system('cp', '-a', "$root/build/nginx-dev", "$copy/build/") == 0 or die "cp: $?";
{
    # the configured tree names the sources by their path: the copy's
    my $mk = "$copy/build/nginx-dev/objs/Makefile";
    my $t = slurp($mk);
    $t =~ s/\Q$root\E\//$copy\//g;
    open my $f, '>', $mk or die; print $f $t; close $f;
    open $f, '>>', "$copy/redis/lib/ops.lua" or die;
    print $f "\n-- another build of the library (t/145-upgrade.t)\n";
    close $f;
}
my $t0 = VT::now();
my $st = VT::_reap(VT::_spawn(argv => ["$copy/scripts/build"],
                              stdout => "$copy/build.log",
                              stderr => "$copy/build.log"), 300);
is($st, 0, 'the other version is built') or diag(slurp("$copy/build.log")), exit 1;
note sprintf 'built in %.1f s', VT::now() - $t0;
my ($old_v) = slurp("$copy/common/voucher_lua.h") =~ /VOUCHER_LUA_VERSION\s+"(\w+)"/;
my ($new_v) = slurp("$root/common/voucher_lua.h") =~ /VOUCHER_LUA_VERSION\s+"(\w+)"/;
isnt($old_v, $new_v, "two library versions: old $old_v, new $new_v");

# --- one Redis, the old nginx first --------------------------------------
my $redis = VT::Redis->start;
my %conf = (redis => $redis, workers => 2,
            http => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;', server => api_server());
my $old = VT::Nginx->start(%conf, module => "$copy/build/ngx_http_voucher_module.so");
ok(wait_until(sub { ($redis->cmd('FCALL', 'voucher_version', 0) // '') eq $old_v },
              timeout => 10), 'the old nginx loaded its library as the primary');
campaign($redis, 'c', kind => 'amount', value => 100);
code($redis, 'UP', campaign => 'c');

sub libs { join ' ', sort map { $_->[1] } @{ $redis->cmd('FUNCTION', 'LIST') } }
sub loads { ($redis->info('commandstats')->{'cmdstat_function|load'} // '') =~ /calls=(\d+)/ ? $1 : 0 }

# load: a child per nginx, a redeem (own idempotency key) and a validate
# in turn, one at a time, each answer's status written down
my $dir = VT::tmp_root();
sub load {
    my ($ng, $name) = @_;
    my $pid = fork // die;
    return $pid if $pid;
    open my $out, '>', "$dir/$name.log" or die;
    $out->autoflush(1);
    my $i = 0;
    until (-e "$dir/$name.stop") {
        $i++;
        my $r = post($ng, 'redeem', {code => 'UP', order => {amount => 1000},
                                     idempotency_key => "$name-$i"}, timeout => 5);
        print $out "redeem $r->{status} " . ($r->{json}{reason} // '') . "\n";
        $r = post($ng, 'validate', {code => 'UP', order => {amount => 1000}}, timeout => 5);
        print $out "validate $r->{status} " . ($r->{json}{reason} // '') . "\n";
    }
    POSIX::_exit(0);
}
sub stop_load {
    my ($pid, $name) = @_;
    open my $f, '>', "$dir/$name.stop" or die; close $f;
    waitpid $pid, 0;
    unlink "$dir/$name.stop";
}

my $la = load($old, 'old1');
sleep 0.5;

# the new nginx comes while the old one serves
my $loads0 = loads();
my $new = VT::Nginx->start(%conf);
my $lb = load($new, 'new');
ok(wait_until(sub { libs() eq "voucher voucher_$new_v" }, timeout => 10),
   "the new nginx loaded its own library beside the primary: " . libs());
sleep 2;
is($redis->cmd('FCALL', 'voucher_version', 0), $old_v, 'both serve; the primary is still the old one');

# the old nginx goes; the new version becomes the primary
stop_load($la, 'old1');
$old->stop;
my $w = worker_setup(redis => $redis);
my $res = ctl($w, 'library', 'promote');
is($res->{rc}, 0, 'voucherctl library promote') or diag $res->{err};
is($redis->cmd('FCALL', 'voucher_version', 0), $new_v, 'the primary is the new version');
is(libs(), 'voucher', "... and the new version's own library went with it");
sleep 1;

# a straggler of the old version loads its own again, beside the primary
my $old2 = VT::Nginx->start(%conf, module => "$copy/build/ngx_http_voucher_module.so");
my $la2 = load($old2, 'old2');
ok(wait_until(sub { libs() eq "voucher voucher_$old_v" }, timeout => 10),
   'an old nginx loads its own library beside the new primary: ' . libs());
sleep 1.5;
stop_load($la2, 'old2');
$old2->stop;
$res = ctl($w, 'library', 'prune');
is($res->{rc}, 0, 'voucherctl library prune') or diag $res->{err};
like($res->{out}, qr/removed voucher_$old_v\n1 removed/, "... removed voucher_$old_v");
is(libs(), 'voucher', 'only the primary is left');
sleep 0.5;
stop_load($lb, 'new');

my $nloads = loads() - $loads0;
note "FUNCTION LOAD calls after the new nginx came: $nloads";
# at most once a connection (2 nginx, 2 workers, 2 each), and again for a
# connection made anew after a timeout on a loaded machine; a loop between
# the two versions would load hundreds of times in this window
cmp_ok($nloads, '<=', 16, 'FUNCTION LOAD a few times, not in a loop');

my (%by, $redeemed);
for my $name (qw(old1 new old2)) {
    for (split /\n/, slurp("$dir/$name.log")) {
        my ($op, $status, $reason) = split / /;
        $by{"$name $op $status" . ($reason ? " $reason" : '')}++;
        $redeemed++ if $op eq 'redeem' && $status == 200;
    }
}
note join ', ', map { "$_: $by{$_}" } sort keys %by;
is(scalar(grep { !/ 200$/ } keys %by), 0, 'every answer of both versions, all along: 200');
cmp_ok($by{'new redeem 200'} // 0, '>', 20, 'the new nginx served throughout');
cmp_ok($by{'old1 redeem 200'} // 0, '>', 10, 'and the old one while it ran');
is($redis->cmd('HGET', '{v}:c:UP', 'u'), $redeemed, 'the code counts every redemption, once');
is($redis->cmd('XLEN', '{v}:log'), $redeemed, 'the trail holds each');

$new->check_log;
done_testing;
