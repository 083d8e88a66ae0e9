package WorkerT;

# Helpers for the tests of voucherd and voucherctl (worker/): a Redis with
# the library loaded, a MAC key, a configuration file, and running the
# binaries from build/worker/.  Core Perl only, on top of VT.pm.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP ();
use POSIX ();
use Test::More ();
use Time::HiRes ();
use VT;

our @EXPORT = qw(worker_bin worker_setup ctl write_text read_text);

my $JSON = JSON::PP->new->utf8->canonical;

# the binaries: build/worker/, or VOUCHER_WORKER_BIN (a sanitizer build)
sub bin_dir {
    my $d = $ENV{VOUCHER_WORKER_BIN} // 'build/worker';
    return $d =~ m{^/} ? $d : VT::root_dir() . "/$d";
}

sub worker_bin {
    my ($name) = @_;
    my $bin = bin_dir() . "/$name";
    Test::More::plan(skip_all => "$bin not built (make -C worker)") unless -x $bin;
    return $bin;
}

# written whole, then renamed into place: a daemon that reads the file
# (the fake clock, a configuration) never sees it empty or half written
sub write_text {
    my ($path, $text) = @_;
    my $tmp = "$path.tmp$$";
    open my $fh, '>:raw', $tmp or die "$tmp: $!";
    print {$fh} $text;
    close $fh or die "$tmp: $!";
    rename $tmp, $path or die "$path: $!";
    return $path;
}

sub read_text {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $s = <$fh>;
    return $s;
}

my $SEQ = 0;

# worker_setup(ns => 'v', config => {extra top-level fields}, redis => $r)
# -> {redis, dir, conf, key_file, ns, config}
sub worker_setup {
    my (%o) = @_;
    my $r = $o{redis} // do {
        my $x = VT::Redis->start(%{ $o{redis_opts} // {} });
        $x->load_functions;
        $x;
    };
    my $dir = VT::tmp_root() . '/worker-' . (++$SEQ);
    mkdir $dir or die "$dir: $!";
    my $ns = $o{ns} // 'v';
    my $w = { redis => $r, dir => $dir, ns => $ns,
              key_file => "$dir/mac.key", conf => "$dir/voucher.json" };
    my $cfg = { redis => { address => '127.0.0.1:' . $r->port },
                namespace => $ns, key_file => $w->{key_file},
                %{ $o{config} // {} } };
    $w->{config} = $cfg;
    write_text($w->{conf}, $JSON->encode($cfg));
    my $res = ctl($w, 'key', 'generate');
    die "key generate: $res->{err}" if $res->{rc} != 0;
    return bless $w, 'WorkerT::Setup';
}

# ctl($w, @args) or ctl($w, {stdin => ..., env => {...}}, @args)
# -> {rc, out, err}
sub ctl {
    my ($w, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $bin = WorkerT::bin_dir() . '/voucherctl';
    my $n = ++$SEQ;
    my ($in, $out, $err) = map { "$w->{dir}/ctl-$n.$_" } qw(in out err);
    write_text($in, $o->{stdin} // '');
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $ENV{$_} = $o->{env}{$_} for keys %{ $o->{env} // {} };
        open STDIN, '<', $in or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        my @c = $o->{no_config} ? () : ('-c', $o->{conf} // $w->{conf});
        { no warnings 'exec'; exec $bin, @c, @args; }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $st = $?;
    my $res = { rc => ($st & 127) ? 128 + ($st & 127) : $st >> 8,
                out => read_text($out) // '', err => read_text($err) // '' };
    unlink $in, $out, $err;
    return $res;
}

package WorkerT::Setup;

sub redis { $_[0]{redis} }
sub dir   { $_[0]{dir} }
sub conf  { $_[0]{conf} }
sub ns    { $_[0]{ns} }
sub key   { my ($self, $rest) = @_; "{$self->{ns}}:$rest" }

# rewrite the configuration with more (or changed) top-level fields
sub reconfigure {
    my ($self, %f) = @_;
    $self->{config}{$_} = $f{$_} for keys %f;
    WorkerT::write_text($self->{conf}, $JSON->encode($self->{config}));
}


package WorkerT::Daemon;

# a voucherd process: WorkerT::Daemon->start($w, env => {...}) runs
# build/worker/voucherd -c $w->conf, its stderr in a file; registered with
# VT so that it is stopped by PID whatever happens.

use strict;
use warnings;
use POSIX ();
use VT;

my $DSEQ = 0;

sub start {
    my ($class, $w, %o) = @_;
    my $n = ++$DSEQ;
    my $self = bless { owner => $$, running => 0, w => $w,
                       log => "$w->{dir}/voucherd-$n.log" }, $class;
    my $bin = WorkerT::bin_dir() . '/voucherd';
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} // {} };
        $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP PIPE);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->{log};
        open STDERR, '>>', $self->{log};
        { no warnings 'exec'; exec $bin, '-c', $o{conf} // $w->{conf}; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{running} = 1;
    VT::_register($self);
    # where it logs: the configuration's log file, else stderr
    my $file = $w->{config}{log} && $w->{config}{log}{file};
    VT::wait_until(sub {
        my $text = $self->log . ($file ? WorkerT::read_text($file) // '' : '');
        $text =~ /voucherd\[$pid\]: started:/ || !VT::_pid_running($pid);
    }, timeout => 10);
    die "voucherd did not start:\n" . $self->log . ($file ? WorkerT::read_text($file) // '' : '')
        unless VT::_pid_running($pid);
    return $self;
}

sub pid { $_[0]{pid} }
sub log { WorkerT::read_text($_[0]{log}) // '' }

sub alive { my $self = shift; $self->{running} && VT::_pid_running($self->{pid}) }

# SIGTERM; returns the exit status (undef if it had to be killed)
sub stop {
    my ($self, %o) = @_;
    return $self->{status} unless $self->{running};
    return undef unless $self->{owner} == $$;
    kill 'TERM', $self->{pid};
    my $st = VT::_reap($self->{pid}, $o{timeout} // 10);
    if (!defined $st) {
        kill 'KILL', $self->{pid};
        VT::_reap($self->{pid}, 5);
    }
    $self->{running} = 0;
    $self->{status} = $st;
    $self->_check_san;
    return $st;
}

# a sanitizer build (VOUCHER_WORKER_BIN) reports on stderr: that fails
sub _check_san {
    my ($self) = @_;
    my $log = $self->log;
    return unless $log =~ /AddressSanitizer|LeakSanitizer|runtime error:/;
    Test::More::fail("voucherd $self->{pid}: a sanitizer report");
    Test::More::diag($log);
}

sub kill9 {
    my ($self) = @_;
    kill 'KILL', $self->{pid};
    VT::_reap($self->{pid}, 5);
    $self->{running} = 0;
}

sub hup { kill 'HUP', $_[0]{pid} }

sub _terminate { $_[0]->stop(timeout => 5) }

sub DESTROY {
    my $self = shift;
    local ($?, $!, $@);
    $self->stop(timeout => 5) if $self->{running} && $self->{owner} == $$;
}

1;
