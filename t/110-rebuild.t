# A rebuild never touches what a running nginx has mapped: scripts/build
# installs the new module by rename, so an nginx that loaded the module from
# the build location keeps serving while the module is rebuilt under it, and
# scripts/install-file puts a new binary over a running one.
#
# The build runs in a copy of the project in a temporary directory, so the
# module the other test files use is not rebuilt.
use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha1_hex);
use File::Path qw(make_path);
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $root = VT::root_dir();

sub slurp { open my $f, '<:raw', $_[0] or return ''; local $/; <$f> }
sub sha { sha1_hex(slurp($_[0])) }

# --- a binary replaced while it runs (scripts/build-asan, worker/Makefile) ---
{
    my $bin = VT::tmp_root() . '/bin';
    make_path($bin);
    system('cp', '/bin/sleep', "$bin/prog") == 0 or die;
    my $p = VT::_spawn(argv => ["$bin/prog", '30'], stdout => '/dev/null',
                       stderr => '/dev/null');
    is(system("$root/scripts/install-file /bin/true $bin/prog 2>$bin/err"), 0,
       'install-file puts a binary over a running one')
        or diag(slurp("$bin/err"));
    is(sha("$bin/prog"), sha('/bin/true'), 'the new binary is in place');
    ok(-x "$bin/prog", 'and executable');
    is(VT::_reap($p, 0), undef, 'the running one still runs');
    is_deeply([glob "$bin/.*prog*"], [], 'no temporary file is left');
    kill 'TERM', $p;
    VT::_reap($p, 5);
}

SKIP: {
    skip 'the module is built in (VOUCHER_MODULE is empty): the dynamic '
        . 'module is rebuilt in the pass against Debian\'s nginx', 9
        if defined $ENV{VOUCHER_MODULE} && $ENV{VOUCHER_MODULE} eq '';
    skip '/usr/share/nginx/src missing (nginx-dev): scripts/build cannot '
        . 'run', 9
        unless -f '/usr/share/nginx/src/conf_flags';
    rebuild_under_nginx() or skip 'the first build failed', 8;
}

done_testing;

sub rebuild_under_nginx {
    # a copy of what scripts/build reads
    my $copy = VT::tmp_root() . '/project';
    make_path("$copy/t");
    system('cp', '-a', map({ "$root/$_" } qw(config ngx_voucher_module redis
           scripts worker common)), $copy) == 0 or die "cp: $?";
    system('cp', '-a', "$root/t/tools", "$copy/t/") == 0 or die "cp: $?";

    my $log = "$copy/build.log";
    my $build = sub {
        VT::_spawn(argv => ["$copy/scripts/build"], stdout => $log,
                   stderr => $log);
    };

    my $st = VT::_reap($build->(), 600);
    is($st, 0, 'the first build in the copy')
        or diag(slurp($log)), return 0;

    my $so = "$copy/build/ngx_http_voucher_module.so";
    my $old_sha = sha($so);

    # an nginx that loads the module from the build location
    my $redis = VT::Redis->start;
    $redis->load_functions;
    my $ng = VT::Nginx->start(
        redis   => $redis,
        module  => $so,
        http    => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;',
        server  => api_server(),
        workers => 2,
    );
    campaign($redis, 'c', kind => 'amount', value => 100);
    code($redis, 'REBUILD', campaign => 'c');
    my @workers = sort $ng->worker_pids;

    # a source change moves the code in every object, so the new module
    # differs from the mapped one at nearly every offset
    for my $c (glob "$copy/ngx_voucher_module/*.c") {
        (my $name = $c) =~ s{.*/|\.c\z}{}g;
        open my $f, '>>', $c or die "$c: $!";
        print $f "\nint ${name}_rebuilt(volatile int *p);\n"
               . "int\n${name}_rebuilt(volatile int *p)\n{\n"
               . join('', map { "    p[$_] = p[$_ + 1] * $_;\n" } 0 .. 31)
               . "    return p[0];\n}\n";
    }

    # the rebuild, while requests keep coming
    my $body = {code => 'REBUILD', order => {amount => 1000}};
    my (%by, $n, $after);
    undef $st;
    my $pid = $build->();
    while (1) {
        my $r = post($ng, 'validate', $body, timeout => 5);
        $n++;
        $by{$r->{status}}++;
        if (!defined $st) {
            $st = VT::_reap($pid, 0) if defined $pid;
            if (defined $st) { $after = VT::now() + 1; undef $pid }
        }
        last if defined $after && VT::now() > $after;
        sleep 0.002;                    # leave the build the CPU
    }

    is($st, 0, 'the rebuild') or diag(slurp($log));
    isnt(sha($so), $old_sha, 'the rebuild installed a new module where nginx '
         . 'loaded it from');
    cmp_ok($n, '>=', 20, "requests were served during the rebuild ($n)");
    is_deeply(\%by, {200 => $n}, 'every request was answered 200');
    is_deeply([sort $ng->worker_pids], \@workers, 'the same workers serve');
    $ng->check_log('no worker crashed');
    $ng->stop;

    # the new module loads and serves
    my $ng2 = VT::Nginx->start(
        redis  => $redis,
        module => $so,
        http   => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;',
        server => api_server(),
    );
    is(post($ng2, 'validate', $body)->{status}, 200,
       'the rebuilt module serves');
    $ng2->check_log;
    $ng2->stop;
    return 1;
}
