# VT::Nginx: a throw-away nginx for the tests.  Part of the VT harness
# (t/lib/VT.pm); the API is documented in the POD at the end.

# ===========================================================================
package VT::Nginx;

use strict;
use warnings;
use Carp qw(croak);

my $NGINX_SEQ = 0;
my %NGINX_V;

sub _nginx_V {
    my $bin = shift;
    return $NGINX_V{$bin} //= (VT::_capture($bin, '-V') // '');
}

sub _module_path {
    my $o = shift;
    if (exists $o->{module}) {
        return undef unless $o->{module};
        return File::Spec->rel2abs($o->{module}) if $o->{module} ne '1';
    }
    if (exists $ENV{VOUCHER_MODULE}) {
        return undef if $ENV{VOUCHER_MODULE} eq '';
        return File::Spec->rel2abs($ENV{VOUCHER_MODULE});
    }
    return VT::root_dir() . '/build/ngx_http_voucher_module.so';
}

sub start {
    my ($class, %o) = @_;
    my $want = $ENV{VOUCHER_NGINX} || '/usr/sbin/nginx';
    my $bin  = VT::_which($want)
        or croak "VT::Nginx: nginx binary '$want' not found (set VOUCHER_NGINX)";
    my $module = _module_path(\%o);
    croak "VT::Nginx: module $module does not exist: build it first, or set "
        . "VOUCHER_MODULE='' for a built-in module (or pass module => 0)"
        if defined $module && !-f $module;
    my $self = bless {
        bin           => $bin,
        module        => $module,
        http          => $o{http}   // '',
        server        => $o{server} // '',
        main          => $o{main}   // '',
        vars          => { %{ $o{vars} || {} } },
        workers       => $o{workers} // 1,
        log_level     => $o{log_level} // 'info',
        listen        => $o{listen},
        redis         => $o{redis},
        expect_fail   => $o{expect_fail} ? 1 : 0,
        user          => exists $o{user} ? $o{user} : ($> == 0 ? 'root root' : undef),
        start_timeout => $o{start_timeout} // ($ENV{VOUCHER_TEST_SAN} ? 30 : 10),
        gen           => 1,
        owner         => $$,
        running       => 0,
        killed        => {},
    }, $class;
    my $n = ++$NGINX_SEQ;
    my $sr = $self->{servroot} = VT::_mkdir(VT::tmp_root() . "/nginx-$n");
    VT::_mkdir("$sr/$_") for qw(conf logs html temp);
    VT::_register($self);

    my $attempts = $o{port} ? 1 : 5;
    for my $attempt (1 .. $attempts) {
        $self->{port} = $o{port} // VT::free_port();
        return $self if $self->_launch;
        if ($self->{bind_conflict} && $attempt < $attempts) {
            for my $f (qw(error.log stderr.log stdout.log)) {
                rename "$sr/logs/$f", "$sr/logs/$f.attempt$attempt";
            }
            next;
        }
        if ($self->{expect_fail}) {
            $self->{start_failed} = 1;
            return $self;
        }
        die $self->_failure_report;
    }
}

sub port        { $_[0]{port} }
sub master_pid  { $_[0]{pid} }
sub pid         { $_[0]{pid} }
sub servroot    { $_[0]{servroot} }
sub running     { $_[0]{running} }
sub generation  { $_[0]{gen} }
sub start_failed { $_[0]{start_failed} ? 1 : 0 }
sub exit_status { $_[0]{exit_status} }
sub conf_file   { "$_[0]{servroot}/conf/nginx.conf" }
sub conf        { VT::_read_file($_[0]->conf_file) // '' }
sub stderr      { VT::_read_file("$_[0]{servroot}/logs/stderr.log") // '' }
sub error_log   { VT::_read_file("$_[0]{servroot}/logs/error.log") // '' }

sub mark_log {
    my $self = shift;
    $self->{mark} = -s "$self->{servroot}/logs/error.log" // 0;
    return $self->{mark};
}

sub error_log_since_mark {
    my $self = shift;
    return VT::_read_file("$self->{servroot}/logs/error.log", $self->{mark} // 0) // '';
}

sub _expand {
    my ($self, $text) = @_;
    my %v = (%{ $self->{vars} },
             PORT => $self->{port}, SERVROOT => $self->{servroot}, ROOT => VT::root_dir());
    if (my $r = $self->{redis}) {
        $v{REDIS_PORT}   = $r->port;
        $v{REDIS_SOCKET} = $r->socket_path;
    }
    $text =~ s{%%([A-Za-z_][A-Za-z0-9_]*)%%}{
        defined $v{$1} ? $v{$1}
        : croak("VT::Nginx: placeholder %%$1%% "
                . ($1 eq 'REDIS_PORT' || $1 eq 'REDIS_SOCKET'
                   ? ($self->{redis} ? 'needs a redis started with unixsocket => 1'
                                     : 'needs redis => $redis')
                   : 'is unknown (pass vars => { ' . $1 . ' => ... })'))
    }ge;
    return $text;
}

sub _temp_paths {
    my $self = shift;
    my $v = _nginx_V($self->{bin});
    my @p = ('client_body_temp_path temp/client_body;');
    for my $m (qw(proxy fastcgi uwsgi scgi)) {
        push @p, "${m}_temp_path temp/$m;" unless $v =~ /--without-http_${m}_module\b/;
    }
    return @p;
}

sub _conf_text {
    my ($self, $gen) = @_;
    my $main   = $self->_expand($self->{main});
    my $http   = $self->_expand($self->{http});
    my $server = $self->_expand($self->{server});
    my @c;
    push @c, "load_module $self->{module};" if defined $self->{module};
    # as root, workers stay root so they can use the 0700 temp directory
    push @c, "user $self->{user};" if defined $self->{user} && $> == 0
                                       && $main !~ /^\s*user\s/m;
    push @c, 'daemon off;', 'master_process on;',
             "worker_processes $self->{workers};",
             'worker_rlimit_nofile 16384;',
             "error_log logs/error.log $self->{log_level};",
             'pid logs/nginx.pid;', '';
    push @c, $main, '' if $main =~ /\S/;
    push @c, 'events {', '    worker_connections 8192;', '}', '',
             'http {', '    access_log off;', map({ "    $_" } $self->_temp_paths), '';
    push @c, $http, '' if $http =~ /\S/;
    push @c, '    server {',
             "        listen 127.0.0.1:$self->{port}"
                 . (defined $self->{listen} ? " $self->{listen}" : '') . ';', '';
    push @c, $server, '' if $server =~ /\S/;
    push @c, '        location = /__vt_ver {',
             qq{            return 200 "$gen";},
             '        }', '    }', '}', '';
    return join "\n", @c;
}

sub _write_conf {
    my ($self, $gen) = @_;
    VT::_write_file($self->conf_file, $self->_conf_text($gen));
}

sub _launch {
    my $self = shift;
    my $sr = $self->{servroot};
    $self->{bind_conflict} = 0;
    $self->{start_failed}  = 0;
    $self->_write_conf($self->{gen});
    $self->{pid} = VT::_spawn(
        argv   => [ $self->{bin}, '-p', "$sr/", '-c', 'conf/nginx.conf', '-e', 'logs/error.log' ],
        dir    => $sr,
        stdout => "$sr/logs/stdout.log",
        stderr => "$sr/logs/stderr.log");
    $self->{running} = 1;
    my $deadline = VT::now() + $self->{start_timeout};
    while (1) {
        my $st = VT::_reap($self->{pid}, 0);
        if (defined $st) {
            $self->{running} = 0;
            $self->{exit_status} = $st;
            $self->{why} = 'nginx exited during startup (' . VT::_status_text($st) . ')';
            last;
        }
        my $r = VT::http($self->{port}, 'GET', '/__vt_ver', timeout => 1);
        if ($r->{status} == 200 && $r->{body} eq $self->{gen}) {
            if ($self->{workers} =~ /^\d+\z/) {
                my $left = $deadline - VT::now();
                VT::wait_until(sub { $self->worker_pids >= $self->{workers} },
                               timeout => $left > 1 ? $left : 1, interval => 0.01);
            }
            return 1;
        }
        if (VT::now() >= $deadline) {
            $self->{why} = "nginx did not answer on 127.0.0.1:$self->{port} "
                         . "within $self->{start_timeout}s";
            $self->stop(fast => 1);
            last;
        }
        Time::HiRes::sleep(0.02);
    }
    $self->{bind_conflict} = 1
        if $self->error_log =~ /bind\(\) to 127\.0\.0\.1:\Q$self->{port}\E failed \(98/;
    return 0;
}

# no secrets in test output: the redis password and the arguments of
# directives named like a password are replaced by ***
sub _mask {
    my ($self, $text) = @_;
    my $pw = $self->{redis} ? $self->{redis}->password : undef;
    $text =~ s/\Q$pw\E/***/g if defined $pw && length $pw;
    $text =~ s/^(\s*[\w.]*(?:password|passwd|secret|token)[\w.]*\s+)[^;\n]+/$1***/gim;
    return $text;
}

sub _failure_report {
    my $self = shift;
    my $n = 0;
    my $conf = join '', map { sprintf "%3d  %s\n", ++$n, $_ }
                        split /\n/, $self->_mask($self->conf);
    return $self->_mask("VT::Nginx: $self->{why}\n"
         . "--- $self->{servroot}/logs/error.log ---\n" . VT::_tail($self->error_log, 100)
         . "--- stderr ---\n" . VT::_tail($self->stderr, 50)
         . "--- conf/nginx.conf ---\n$conf---\n");
}

# our process: alive and a child of our master
sub _is_ours {
    my ($self, $pid) = @_;
    my ($state, $ppid) = VT::_proc_stat($pid);
    return defined $state && $state ne 'Z' && $ppid == $self->{pid};
}

sub worker_pids {
    my $self = shift;
    my @p = $self->{running}
        ? grep { VT::_proc_cmdline($_) =~ /worker process/ } VT::_children($self->{pid})
        : ();
    return wantarray ? @p : scalar @p;
}

sub reload {
    my ($self, %a) = @_;
    croak 'VT::Nginx: reload of a stopped nginx' unless $self->{running};
    my %old = map { $_ => $self->{$_} } qw(http server main vars);
    for my $k (qw(http server main)) { $self->{$k} = $a{$k} // '' if exists $a{$k} }
    $self->{vars} = { %{ $self->{vars} }, %{ $a{vars} } } if $a{vars};
    my $gen = $self->{gen} + 1;
    my $restore = sub {
        @{$self}{ keys %old } = values %old;
        $self->_write_conf($self->{gen});
    };
    eval { $self->_write_conf($gen); 1 } or do { my $e = $@; $restore->(); die $e };

    my @old  = $self->worker_pids;
    my $log  = "$self->{servroot}/logs/error.log";
    my $mark = -s $log // 0;
    kill 'HUP', $self->{pid} or croak "VT::Nginx: SIGHUP to $self->{pid}: $!";
    my $timeout  = $a{timeout} // ($ENV{VOUCHER_TEST_SAN} ? 60 : 20);
    my $deadline = VT::now() + $timeout;
    my $answer = '';
    while (1) {
        my $st = VT::_reap($self->{pid}, 0);
        if (defined $st) {
            $self->{running} = 0;
            $self->{exit_status} = $st;
            croak "VT::Nginx: master exited during reload (" . VT::_status_text($st) . ")\n"
                . VT::_tail(VT::_read_file($log, $mark), 50);
        }
        my $new = VT::_read_file($log, $mark) // '';
        if ($new =~ /\[emerg\]/) {
            $restore->();
            if ($a{expect_fail}) {     # check_log will not count these lines
                $self->{expected}{$_} = 1 for grep { /\[emerg\]/ } split /\n/, $new;
                return 0;
            }
            croak "VT::Nginx: reload rejected by nginx:\n"
                . join("\n", grep { /\[emerg\]/ } split /\n/, $new) . "\n";
        }
        my $r = VT::http($self->{port}, 'GET', '/__vt_ver', timeout => 1);
        $answer = $r->{status} ? $r->{body} : $r->{error};
        my @alive = grep { $self->_is_ours($_) } @old;
        if ($r->{status} == 200 && $r->{body} eq $gen && !@alive) {
            $self->{gen} = $gen;
            if ($self->{workers} =~ /^\d+\z/) {
                VT::wait_until(sub { $self->worker_pids >= $self->{workers} },
                               timeout => 5, interval => 0.01);
            }
            return 1;
        }
        if (VT::now() >= $deadline) {
            croak "VT::Nginx: reload to generation $gen not done after ${timeout}s "
                . "(/__vt_ver answers '$answer', old workers alive: @alive)\n"
                . VT::_tail(VT::_read_file($log, $mark), 50);
        }
        Time::HiRes::sleep(0.05);
    }
}

sub stop {
    my ($self, %o) = @_;
    return 1 unless $self->{running};
    return 0 unless $self->{owner} == $$;
    my $pid  = $self->{pid};
    my @kids = VT::_children($pid);
    my $st;
    if ($o{fast}) {
        kill 'TERM', $pid;
        $st = VT::_reap($pid, 5);
    } else {
        my $t = $o{timeout} // 10;
        kill 'QUIT', $pid;
        $st = VT::_reap($pid, $t);
        if (!defined $st) {
            kill 'TERM', $pid;
            $st = VT::_reap($pid, $t < 5 ? $t : 5);
        }
    }
    if (!defined $st) {
        push @kids, VT::_children($pid);
        kill 'KILL', $pid;
        $st = VT::_reap($pid, 5);
    }
    $self->{running} = 0;
    $self->{exit_status} = $st;
    # children that outlived their master (it was killed): ours, so kill them
    my %seen;
    my @left = grep { !$seen{$_}++ && VT::_pid_running($_)
                      && VT::_proc_cmdline($_) =~ /^nginx: / } @kids;
    if (@left) {
        kill 'KILL', @left;
        VT::wait_until(sub { !grep { VT::_pid_running($_) } @left }, timeout => 5);
        VT::_reap($_, 1) for @left;            # adopted by us as subreaper
    }
    return 1;
}

sub _terminate { $_[0]->stop(fast => 1) }

sub kill9_workers {
    my ($self, %o) = @_;
    my @w = $self->worker_pids;
    return () unless @w;
    $self->{killed}{$_} = 1 for @w;
    kill 'KILL', @w;
    if ($o{wait} // 1) {
        VT::wait_until(sub {
            !(grep { $self->_is_ours($_) } @w)
                && ($self->{workers} !~ /^\d+\z/ || $self->worker_pids >= $self->{workers});
        }, timeout => 10, interval => 0.01);
    }
    return @w;
}

# problem lines in an error log text
sub _log_problems {
    my ($text, %o) = @_;
    my $killed = $o{killed} || {};
    my @bad;
    for my $l (split /\n/, $text // '') {
        next if $l =~ /worker process (\d+) exited on signal 9\b/ && $killed->{$1};
        next if $o{expected} && $o{expected}{$l};
        push @bad, $l
            if $l =~ /\[(?:alert|crit|emerg)\]/
            || $l =~ /open socket .* left in connection/
            || $l =~ /segfault/
            || $l =~ /exited on signal/
            || ($o{san} && $l =~ /AddressSanitizer|LeakSanitizer|runtime error:/);
    }
    return @bad;
}

sub check_log {
    my ($self, $name) = @_;
    my $san  = $ENV{VOUCHER_TEST_SAN} ? 1 : 0;
    my $text = $self->error_log;
    $text .= "\n" . $self->stderr if $san;
    my @bad = _log_problems($text, killed => $self->{killed}, expected => $self->{expected},
                             san => $san);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = Test::More::ok(!@bad, $name // 'nginx error.log has no alerts or crashes');
    if (!$ok) {
        my $more = @bad > 40 ? "\n... and " . (@bad - 40) . ' more' : '';
        Test::More::diag("problems in $self->{servroot}/logs/error.log:\n"
                         . join("\n", @bad[0 .. ($#bad < 39 ? $#bad : 39)]) . $more);
    }
    return $ok;
}

sub DESTROY {
    my $self = shift;
    return unless $self->{running} && $self->{owner} == $$;
    local ($?, $!, $@);
    eval { $self->stop(fast => 1) };
}

1;

__END__

=head1 NAME

VT::Nginx - a throw-away nginx for the tests

=head1 DESCRIPTION

=over

=item VT::Nginx->start(%o)

Options: C<http>, C<server>, C<main> (config text; placeholders C<%%PORT%%>,
C<%%REDIS_PORT%%>, C<%%REDIS_SOCKET%%>, C<%%SERVROOT%%>, C<%%ROOT%%> and the
keys of C<vars> are expanded; an unknown placeholder dies), C<vars>,
C<workers> (default 1), C<redis>, C<log_level> (default info),
C<expect_fail>, C<module> (0: no load_module; a path: that module; default:
C<VOUCHER_MODULE> or F<build/ngx_http_voucher_module.so>, which must exist),
C<listen> (extra parameters of the test server's listen directive, e.g.
C<'backlog=4096'>), C<user> (when running as root, C<user root root;> is
written so workers can use the 0700 temp directory; pass C<< user => undef >>
to leave it out, or give another value; a C<user> directive in C<main> wins),
C<start_timeout> (default 10 s), C<port>.

Waits until the test server answers C</__vt_ver> with the current generation
and all workers exist; dies with error.log, stderr and the numbered
nginx.conf when nginx does not come up (the redis password and the arguments
of directives named *password*/*secret*/*token* are shown as ***).  A port taken between the check and
nginx's bind is retried with another port.  With C<expect_fail>, returns the
object instead: C<start_failed>, C<stderr>, C<error_log>, C<exit_status>.

The server root (C<servroot>) has F<conf/ logs/ html/ temp/>; nginx's
default C<root> is F<html/> there.

=item port, master_pid (also pid), worker_pids, servroot, conf_file, conf,
generation, running, exit_status

C<worker_pids> lists the "worker process" children of the master from /proc
(a count in scalar context).

=item reload(http => ..., server => ..., main => ..., vars => {...}, timeout => 20, expect_fail => 0)

Rewrites the config (changed parts only), sends SIGHUP and waits until
C</__vt_ver> answers the new generation and the old workers are gone.  If
nginx rejects the config (C<[emerg]>), the old config is restored and it
dies, or returns 0 with C<expect_fail> (and then C<check_log> does not count
the C<[emerg]> lines of that reload).  Returns 1.

=item stop(timeout => 10)

SIGQUIT, waits up to C<timeout> s, SIGTERM, waits up to 5 s (at most
C<timeout>), SIGKILL; reaps the master, kills and reaps workers that outlived
it.

=item kill9_workers(wait => 1)

SIGKILL to the workers only; waits until they are gone and the master has
started new ones.  Returns the killed pids.  C<check_log> ignores the
"exited on signal 9" alerts of these pids.

=item error_log, error_log_since_mark, mark_log, stderr

=item check_log($name)

A Test::More test: fails, listing the lines, if error.log has C<[alert]>,
C<[crit]>, C<[emerg]>, "open socket ... left in connection", "segfault",
"exited on signal", or (C<VOUCHER_TEST_SAN>) sanitizer output (error.log and
stderr).

=back

=cut
