package VT;

# Integration-test harness for ngx_voucher: starts throw-away redis-server and
# nginx processes on 127.0.0.1, talks RESP2 and HTTP/1.1 over raw sockets.
# Core Perl only.  The API is documented in the POD at the end of this file.

use strict;
use warnings;

use Carp qw(croak);
use Config ();
use Cwd ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS EMFILE ENFILE ECONNRESET EPIPE);
use Exporter qw(import);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use File::Basename ();
use File::Path ();
use File::Spec ();
use File::Temp ();
use IO::Handle ();
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use JSON::PP ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(blessed weaken);
use Socket qw(PF_INET SOCK_STREAM IPPROTO_TCP SOL_SOCKET SO_ERROR TCP_NODELAY
              MSG_PEEK MSG_DONTWAIT SHUT_WR inet_aton sockaddr_in);
use Test::More ();
use Time::HiRes ();

our $VERSION   = '0.01';
our @EXPORT    = qw(http http_parallel http_raw json_body root_dir wait_until);
our @EXPORT_OK = qw(free_port tmp_root ok_pairs);

# statistics of the last http_parallel() call, and whether the last
# http_raw() stopped reading because of its timeout
our $LAST_PARALLEL;
our $RAW_TIMED_OUT;

my $ROOT = Cwd::abs_path(File::Spec->catdir(
    File::Basename::dirname(Cwd::abs_path(__FILE__)), File::Spec->updir,
    File::Spec->updir));

my $JSON_ENC = JSON::PP->new->utf8->canonical->allow_nonref;
my $JSON_DEC = JSON::PP->new->utf8->allow_nonref;

my @INSTANCES;              # weak refs to every VT::Redis / VT::Nginx
my ($TMP_ROOT, $TMP_OWNER);
my %USED_PORT;

# A write to a socket the peer has closed must give EPIPE, not kill the test.
$SIG{PIPE} = 'IGNORE';

# Turn the usual termination signals into exit() so that END runs and the
# servers are stopped.  Handlers installed by the test itself are kept.
for my $sig (qw(INT TERM HUP)) {
    my $cur = $SIG{$sig};
    next if defined $cur && $cur ne '' && $cur ne 'DEFAULT';
    my $num = do { no strict 'refs'; &{"POSIX::SIG$sig"}() };
    $SIG{$sig} = sub {
        $SIG{$sig} = 'IGNORE';
        print STDERR "# VT: caught SIG$sig, stopping servers\n";
        exit(128 + $num);
    };
}

# Become a child subreaper: processes orphaned below us (nginx workers whose
# master was SIGKILLed, the servers of a forked test process that was killed)
# are reparented to us and reaped by us instead of becoming zombies of an
# init that may not reap them.
{
    my $nr = _prctl_nr();
    syscall($nr, 36, 1, 0, 0, 0) if defined $nr;      # PR_SET_CHILD_SUBREAPER
}

END {
    local ($?, $!, $@);
    _cleanup_all();
}


sub root_dir { $ROOT }

sub now { Time::HiRes::time() }

sub tmp_root {
    return $TMP_ROOT if defined $TMP_ROOT && $TMP_OWNER == $$;
    my $base = File::Spec->tmpdir;
    # unix socket paths are limited to 107 bytes
    $base = '/tmp' if length($base) > 60 || !-d $base || !-w _;
    my $dir = File::Temp::tempdir('vt-XXXXXXXX', DIR => $base, CLEANUP => 0);
    $TMP_ROOT  = Cwd::abs_path($dir);
    $TMP_OWNER = $$;
    return $TMP_ROOT;
}

sub free_port {
    for (1 .. 500) {
        my $port = 20000 + int(rand(25001));
        next if $USED_PORT{$port};
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
            Listen => 1, ReuseAddr => 0) or next;
        close $s;
        $USED_PORT{$port} = 1;
        return $port;
    }
    croak 'VT: no free port found in 20000-45000';
}

sub wait_until {
    my ($code, %o) = @_;
    my $timeout  = $o{timeout}  // 10;
    my $interval = $o{interval} // 0.05;
    my $deadline = now() + $timeout;
    while (1) {
        my $v = $code->();
        return $v if $v;
        my $left = $deadline - now();
        return 0 if $left <= 0;
        Time::HiRes::sleep($left < $interval ? $left : $interval);
    }
}

sub json_body {
    my $x = shift;
    my $body = ref $x eq 'HASH' ? $x->{body} : $x;
    return undef unless defined $body && $body =~ /\S/;
    my $v = eval { $JSON_DEC->decode($body) };
    return $v;
}

# The positional "ok" of voucher_validate, _redeem and _reserve
# (redis/voucher.lua, ok_reply()), written back as the pairs the module
# renders it as: {'ok', 'code', c, ..., 'computation', [...], ...,
# ['replayed', 1], trailing pairs}.  Any other reply comes back as it is.
# Dies on a positional reply whose mask and length disagree.
our @OK_FIELDS = (
    # name, its bit (0: always there)
    [code => 0], [campaign => 0], [customer => 1], [discount => 0],
    [kind => 0], [value => 2], [percent_bp => 4], [eligible_amount => 0],
    [cap => 8], [capped_by => 16],
    [order_amount => 0], [amount_after => 0], [uses_left => 32],
    [balance => 64], [expires_at => 128], [redemption_id => 256],
    [hold_expires_at => 512],
);

sub ok_pairs {
    my $x = shift;
    return $x unless ref $x eq 'ARRAY' && @$x >= 2 && defined $x->[0]
        && $x->[0] eq 'ok' && defined $x->[1] && !ref $x->[1]
        && $x->[1] =~ /^\d+\z/;
    my ($m, @v) = @$x[1 .. $#$x];
    die "ok_pairs: mask $m has unknown bits\n" if $m & ~2047;
    die "ok_pairs: both value and percent_bp\n" if ($m & 6) == 6;
    my (@top, @comp);
    for my $f (@OK_FIELDS) {
        my ($name, $bit) = @$f;
        next if $bit && !($m & $bit);
        die "ok_pairs: mask $m wants more values than @{[scalar @$x]}\n"
            unless @v;
        my $v = shift @v;
        if ($name =~ /^(kind|value|percent_bp|eligible_amount|cap|capped_by)\z/) {
            push @comp, $name, $v;
            push @top, 'computation', \@comp if $name eq 'kind';
        } else {
            push @top, 'status', 'reserved' if $name eq 'hold_expires_at';
            push @top, $name, $v;
        }
    }
    die "ok_pairs: odd trailing pairs after mask $m\n" if @v % 2;
    push @top, 'replayed', 1 if $m & 1024;
    return ['ok', @top, @v];
}


# ---------------------------------------------------------------------------
# files, processes

sub _read_file {
    my ($file, $offset) = @_;
    open(my $fh, '<:raw', $file) or return undef;
    if ($offset) {
        my $size = -s $fh // 0;
        seek($fh, $offset, 0) if $offset <= $size;
    }
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s // '';
}

sub _write_file {
    my ($file, $text) = @_;
    open(my $fh, '>:raw', $file) or croak "VT: cannot write $file: $!";
    print {$fh} $text or croak "VT: cannot write $file: $!";
    close $fh or croak "VT: cannot write $file: $!";
}

sub _mkdir {
    my $d = shift;
    File::Path::make_path($d) unless -d $d;
    -d $d or croak "VT: cannot create $d";
    return $d;
}

sub _which {
    my $bin = shift;
    return undef unless defined $bin && length $bin;
    if ($bin =~ m{/}) {
        return (-f $bin && -x _) ? File::Spec->rel2abs($bin) : undef;
    }
    for my $d (split /:/, $ENV{PATH} // '') {
        my $p = File::Spec->catfile(length $d ? $d : '.', $bin);
        return $p if -f $p && -x _;
    }
    return undef;
}

sub _tail {
    my ($text, $lines) = @_;
    return '' unless defined $text;
    my @l = split /\n/, $text;
    return $text if @l <= $lines;
    return "[... " . (@l - $lines) . " earlier lines ...]\n"
        . join("\n", @l[-$lines .. -1]) . "\n";
}

sub _register {
    my $obj = shift;
    # prune in place: copying the array would turn the weak refs into strong ones
    for (my $i = $#INSTANCES; $i >= 0; $i--) {
        splice(@INSTANCES, $i, 1) unless defined $INSTANCES[$i];
    }
    push @INSTANCES, $obj;
    weaken($INSTANCES[-1]);
}

sub _cleanup_all {
    my @objs = grep { defined $_ && $_->{owner} == $$ } @INSTANCES;
    # nginx first: its workers may hold connections to redis
    for my $o ((grep { $_->isa('VT::Nginx') } @objs),
               (grep { !$_->isa('VT::Nginx') } @objs)) {
        next unless $o->{running};
        eval { $o->_terminate; 1 }
            or print STDERR "# VT: cleanup of pid $o->{pid} failed: $@";
    }
    # adopted orphans that have exited (see PR_SET_CHILD_SUBREAPER)
    1 while waitpid(-1, WNOHANG) > 0;
    if (defined $TMP_ROOT && $TMP_OWNER == $$) {
        if ($ENV{VOUCHER_TEST_KEEP}) {
            print STDERR "# VT: VOUCHER_TEST_KEEP set, keeping $TMP_ROOT\n";
        } else {
            File::Path::remove_tree($TMP_ROOT);
        }
        undef $TMP_ROOT;
    }
}

# prctl(PR_SET_PDEATHSIG) syscall number: the children get SIGTERM when the
# test process dies, even by SIGKILL.  Best effort, Linux only.
sub _prctl_nr {
    my $arch = $Config::Config{archname} // '';
    return 157 if $arch =~ /^x86_64/;
    return 167 if $arch =~ /^(?:aarch64|arm64)/;
    return 172 if $arch =~ /^i[3-6]86/;
    return undef;
}

# fork + exec; returns the pid, or croaks with the reason exec failed.
sub _spawn {
    my (%o) = @_;
    my @argv   = @{ $o{argv} };
    my $parent = $$;
    pipe(my $er, my $ew) or croak "VT: pipe: $!";    # close-on-exec
    my $pid = fork;
    croak "VT: fork: $!" unless defined $pid;
    if (!$pid) {
        eval {
            close $er;
            $SIG{$_} = 'DEFAULT' for qw(PIPE INT TERM HUP QUIT CHLD);
            my $nr = _prctl_nr();
            syscall($nr, 1, POSIX::SIGTERM(), 0, 0, 0) if defined $nr;
            POSIX::_exit(1) if getppid() != $parent;
            if (defined $o{dir}) { chdir $o{dir} or die "chdir $o{dir}: $!\n" }
            open(STDIN,  '<',  '/dev/null') or die "stdin: $!\n";
            open(STDOUT, '>>', $o{stdout})  or die "open $o{stdout}: $!\n";
            open(STDERR, '>>', $o{stderr})  or die "open $o{stderr}: $!\n";
            no warnings 'exec';
            exec { $argv[0] } @argv or die "exec $argv[0]: $!\n";
        };
        syswrite($ew, $@ || "exec failed\n");
        POSIX::_exit(127);
    }
    close $ew;
    my $err = '';
    while (1) {
        my $n = sysread($er, $err, 4096, length $err);
        next if !defined $n && $! == EINTR;
        last unless $n;
    }
    close $er;
    if (length $err) {
        _reap($pid, 5);
        croak "VT: cannot start $argv[0]: $err";
    }
    return $pid;
}

# run a command, return its stdout+stderr
sub _capture {
    my @argv = @_;
    pipe(my $r, my $w) or return undef;
    my $pid = fork;
    return undef unless defined $pid;
    if (!$pid) {
        close $r;
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>&', $w);
        open(STDERR, '>&', $w);
        no warnings 'exec';
        exec { $argv[0] } @argv;
        POSIX::_exit(127);
    }
    close $w;
    local $/;
    my $out = <$r>;
    close $r;
    _reap($pid, 30);
    return $out;
}

# waitpid with a timeout.  Returns the wait status when reaped, -1 when the
# pid is not (or no longer) our child, undef on timeout.
sub _reap {
    my ($pid, $timeout) = @_;
    local $?;
    my $deadline = now() + ($timeout // 0);
    my $delay = 0.002;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        return $? if $r == $pid;
        return -1 if $r == -1 && $! != EINTR;
        return undef if now() >= $deadline;
        Time::HiRes::sleep($delay);
        $delay *= 2;
        $delay = 0.05 if $delay > 0.05;
    }
}

sub _status_text {
    my $st = shift;
    return 'unknown status' if !defined $st || $st < 0;
    return 'killed by signal ' . ($st & 127) . (($st & 128) ? ', core dumped' : '')
        if $st & 127;
    return 'exit code ' . ($st >> 8);
}

# (state, ppid) from /proc/PID/stat, or () when there is no such process
sub _proc_stat {
    my $pid = shift;
    open(my $fh, '<', "/proc/$pid/stat") or return;
    my $s = <$fh>;
    close $fh;
    return unless defined $s;
    my $i = rindex($s, ')');
    return if $i < 0;
    my @f = split ' ', substr($s, $i + 1);
    return ($f[0], $f[1]);
}

sub _proc_cmdline {
    my $pid = shift;
    my $s = _read_file("/proc/$pid/cmdline") // '';
    $s =~ tr/\0/ /;
    $s =~ s/\s+\z//;
    return $s;
}

# alive and not a zombie
sub _pid_running {
    my ($state) = _proc_stat(shift);
    return defined $state && $state ne 'Z' && $state ne 'X';
}

sub _children {
    my $ppid = shift;
    opendir(my $dh, '/proc') or return;
    my @kids;
    for my $p (readdir $dh) {
        next unless $p =~ /^\d+\z/;
        my ($state, $pp) = _proc_stat($p);
        push @kids, $p if defined $pp && $pp == $ppid && $state ne 'Z';
    }
    closedir $dh;
    return sort { $a <=> $b } @kids;
}


# ---------------------------------------------------------------------------
# HTTP client

sub _nonblock {
    my $fh = shift;
    my $fl = fcntl($fh, F_GETFL, 0);
    return defined $fl && fcntl($fh, F_SETFL, $fl | O_NONBLOCK);
}

sub _port_of {
    my $p = shift;
    return $p->port if blessed($p) && $p->can('port');
    croak "VT: bad port '" . ($p // 'undef') . "'" unless defined $p && $p =~ /^\d+\z/;
    return $p;
}

sub _request_bytes {
    my ($port, $req) = @_;
    my $method = $req->{method} // 'GET';
    my $path   = $req->{path}   // '/';
    my $hdr    = $req->{headers} // {};
    my @pairs  = ref $hdr eq 'ARRAY' ? @$hdr : map { ($_, $hdr->{$_}) } sort keys %$hdr;
    my %have;
    for (my $i = 0; $i < @pairs; $i += 2) { $have{ lc $pairs[$i] } = 1 }

    my $body = $req->{body};
    if (ref $body eq 'HASH' || ref $body eq 'ARRAY') {
        $body = $JSON_ENC->encode($body);
        push @pairs, 'Content-Type', 'application/json' unless $have{'content-type'};
    } elsif (ref $body eq 'SCALAR') {
        $body = $$body;
    }
    if (defined $body) {
        $body = "$body";
        utf8::encode($body) if utf8::is_utf8($body);
    }

    my $h = "$method $path HTTP/1.1\r\n";
    $h .= "Host: 127.0.0.1:$port\r\n" unless $have{host};
    for (my $i = 0; $i < @pairs; $i += 2) {
        next unless defined $pairs[$i + 1];     # undef value: header left out
        $h .= "$pairs[$i]: $pairs[$i + 1]\r\n";
    }
    if (!$have{'content-length'} && !$have{'transfer-encoding'}) {
        if (defined $body) {
            $h .= 'Content-Length: ' . length($body) . "\r\n";
        } elsif ($method =~ /^(?:POST|PUT|PATCH)\z/) {
            $h .= "Content-Length: 0\r\n";
        }
    }
    $h .= "Connection: close\r\n" unless $req->{keepalive} || $have{connection};
    $h .= "\r\n";
    $h .= $body if defined $body;
    return $h;
}

# Parses one HTTP response from $$buf.  Returns undef when more data is
# needed (only when !$eof); otherwise a response hashref, which has
# status 0 and an error when the response is malformed or truncated.
sub _parse_response {
    my ($buf, $eof, $method) = @_;
    my $off = 0;
    while (1) {
        my $he = index($$buf, "\r\n\r\n", $off);
        if ($he < 0) {
            return undef unless $eof;
            return { status => 0, error => length($$buf) > $off
                         ? 'connection closed inside the response headers'
                         : 'connection closed without a response',
                     raw => $$buf };
        }
        my @lines = split /\r\n/, substr($$buf, $off, $he - $off);
        my $sl = shift(@lines) // '';
        my ($ver, $status, $reason) = $sl =~ m{^HTTP/(\d+\.\d+) +(\d{3})(?: +(.*))?\z}
            or return { status => 0, error => "bad status line '" . substr($sl, 0, 100) . "'",
                        raw => $$buf };
        my (%h, @list);
        for my $l (@lines) {
            if ($l =~ /^[ \t]+(.*)/ && @list) {         # obsolete line folding
                $list[-1][1] .= " $1";
                next;
            }
            my ($n, $v) = $l =~ /^([^:\s]+):[ \t]*(.*?)[ \t]*\z/
                or return { status => 0, error => "bad header line '" . substr($l, 0, 100) . "'",
                            raw => $$buf };
            push @list, [$n, $v];
        }
        for my $p (@list) {
            my $k = lc $p->[0];
            $h{$k} = exists $h{$k} ? "$h{$k}, $p->[1]" : $p->[1];
        }
        my $start = $he + 4;
        if ($status >= 100 && $status < 200 && $status != 101) {  # interim response
            $off = $start;
            next;
        }
        my $res = { status => 0 + $status, reason => $reason // '', version => $ver,
                    headers => \%h, header_list => \@list };
        my ($body, $end);
        if (($method // '') eq 'HEAD' || $status == 204 || $status == 304
            || $status < 200)
        {
            ($body, $end) = ('', $start);
        } elsif (($h{'transfer-encoding'} // '') =~ /(?:^|,)\s*chunked\s*\z/i) {
            my @r = _dechunk($buf, $start);
            if (!@r) {
                return undef unless $eof;
                return { %$res, status => 0, raw => $$buf,
                         error => 'connection closed inside the chunked body' };
            }
            return { %$res, status => 0, error => $r[1], raw => $$buf } unless defined $r[0];
            ($body, $end) = @r[0, 1];
            $res->{trailers} = $r[2] if @{ $r[2] };
        } elsif (defined $h{'content-length'}) {
            my %v = map { $_ => 1 } split /\s*,\s*/, $h{'content-length'};
            my ($cl) = keys %v;
            return { %$res, status => 0, raw => $$buf,
                     error => "bad Content-Length '$h{'content-length'}'" }
                if keys(%v) != 1 || $cl !~ /^\d{1,15}\z/;
            if (length($$buf) - $start < $cl) {
                return undef unless $eof;
                return { %$res, status => 0, raw => $$buf,
                         error => 'connection closed after ' . (length($$buf) - $start)
                                  . " of $cl body bytes" };
            }
            ($body, $end) = (substr($$buf, $start, $cl), $start + $cl);
        } else {
            return undef unless $eof;                   # delimited by close
            ($body, $end) = (substr($$buf, $start), length $$buf);
        }
        $res->{body} = $body;
        $res->{json} = undef;
        if (length $body && (($h{'content-type'} // '') =~ /json/i || $body =~ /^\s*[\[{]/)) {
            $res->{json} = eval { $JSON_DEC->decode($body) };
        }
        $res->{extra} = substr($$buf, $end) if length($$buf) > $end;
        return $res;
    }
}

# returns () when incomplete, (undef, error) when malformed,
# (body, end offset, [trailers]) when complete
sub _dechunk {
    my ($buf, $p) = @_;
    my $body = '';
    while (1) {
        my $le = index($$buf, "\r\n", $p);
        return if $le < 0;
        my $line = substr($$buf, $p, $le - $p);
        my ($hex) = $line =~ /^([0-9a-fA-F]{1,15})[ \t]*(?:;.*)?\z/
            or return (undef, "bad chunk size line '" . substr($line, 0, 50) . "'");
        my $size = hex $hex;
        $p = $le + 2;
        if ($size == 0) {
            my @trailers;
            while (1) {
                my $te = index($$buf, "\r\n", $p);
                return if $te < 0;
                my $tl = substr($$buf, $p, $te - $p);
                $p = $te + 2;
                last if $tl eq '';
                push @trailers, $tl;
            }
            return ($body, $p, \@trailers);
        }
        return if length($$buf) < $p + $size + 2;
        $body .= substr($$buf, $p, $size);
        return (undef, 'chunk data not followed by CRLF')
            if substr($$buf, $p + $size, 2) ne "\r\n";
        $p += $size + 2;
    }
}

# The engine behind http() and http_parallel(): up to $concurrency
# non-blocking sockets at once, one IO::Select loop, one global deadline.
sub _http_engine {
    my ($port, $reqs, %o) = @_;
    my $conc = $o{concurrency} // 500;
    $conc = 1 if $conc < 1;
    my $timeout  = $o{timeout} // 30;
    my $t0       = now();
    my $deadline = $t0 + $timeout;
    my $addr     = sockaddr_in($port, inet_aton('127.0.0.1'));

    my @res;
    my @queue = (0 .. $#$reqs);
    my %conn;                                      # fileno => state
    my $rsel = IO::Select->new;
    my $wsel = IO::Select->new;
    my ($max_open, $fd_limited, $cap) = (0, 0, $conc);

    my $finish = sub {
        my ($c, $r) = @_;
        $r->{error} = "$r->{error} (request was not completely sent: $c->{send_error})"
            if $r->{error} && $c->{send_error};
        $res[ $c->{idx} ] = $r;
        $rsel->remove($c->{fh});
        $wsel->remove($c->{fh});
        delete $conn{ $c->{fd} };
        close $c->{fh};
    };

    while (@queue || %conn) {
        while (@queue && keys(%conn) < $cap) {
            my $i = $queue[0];
            my $fh;
            if (!socket($fh, PF_INET, SOCK_STREAM, IPPROTO_TCP)) {
                if (($! == EMFILE || $! == ENFILE) && %conn) {
                    $cap = keys %conn;             # out of descriptors: go on with fewer
                    $fd_limited++;
                    last;
                }
                shift @queue;
                $res[$i] = { status => 0, error => "socket: $!" };
                next;
            }
            shift @queue;
            _nonblock($fh);
            my $req = $reqs->[$i];
            my $c = { idx => $i, fh => $fh, fd => fileno($fh), off => 0, in => '',
                      method => uc($req->{method} // 'GET'),
                      out => _request_bytes($port, $req) };
            if (connect($fh, $addr)) {
                $c->{phase} = 'send';
                $rsel->add($fh);
            } elsif ($! == EINPROGRESS || $! == EINTR) {
                $c->{phase} = 'connect';
            } else {
                $res[$i] = { status => 0, error => "connect: $!" };
                close $fh;
                next;
            }
            $wsel->add($fh);
            $conn{ $c->{fd} } = $c;
        }
        my $open = keys %conn;
        $max_open = $open if $open > $max_open;
        last unless $open;

        my $left = $deadline - now();
        if ($left <= 0) {
            for my $c (values %conn) {
                $finish->($c, { status => 0, raw => $c->{in},
                                error => "timeout after ${timeout}s ($c->{phase})" });
            }
            $res[$_] = { status => 0, error => "timeout after ${timeout}s (not started)" }
                for @queue;
            @queue = ();
            last;
        }
        my ($r, $w) = IO::Select->select($rsel->count ? $rsel : undef,
                                         $wsel->count ? $wsel : undef, undef, $left);

        for my $fh (@{ $w || [] }) {
            my $c = $conn{ fileno($fh) // -1 } or next;
            next unless $c->{fh} == $fh;
            if ($c->{phase} eq 'connect') {
                my $err = unpack('i', getsockopt($fh, SOL_SOCKET, SO_ERROR) // pack('i', 0));
                if ($err) {
                    local $! = $err;
                    $finish->($c, { status => 0, error => "connect: $!" });
                    next;
                }
                $c->{phase} = 'send';
                $rsel->add($fh);
            }
            next unless $c->{phase} eq 'send';
            my $n = syswrite($fh, $c->{out}, length($c->{out}) - $c->{off}, $c->{off});
            if (defined $n) {
                $c->{off} += $n;
                next if $c->{off} < length $c->{out};
            } elsif ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR) {
                next;
            } else {                       # EPIPE, ECONNRESET: the server may have answered
                $c->{send_error} = "$!";
            }
            $c->{phase} = 'recv';
            delete $c->{out};
            $wsel->remove($fh);
        }

        for my $fh (@{ $r || [] }) {
            my $c = $conn{ fileno($fh) // -1 } or next;
            next unless $c->{fh} == $fh;
            my $n = sysread($fh, $c->{in}, 65536, length $c->{in});
            my $read_error;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                $read_error = "$!";
            }
            my $eof = !$n;
            my $res = _parse_response(\$c->{in}, $eof, $c->{method});
            if ($res) {
                $res->{error} .= " (read: $read_error)" if $read_error && $res->{error};
                $finish->($c, $res);
            }
        }
    }
    $LAST_PARALLEL = { max_open => $max_open, fd_limited => $fd_limited,
                       elapsed => now() - $t0, requests => scalar @$reqs };
    return @res;
}

sub http {
    my ($port, $method, $path, %o) = @_;
    $port = _port_of($port);
    my $req = { %o, method => $method, path => $path };
    my ($res) = _http_engine($port, [$req], concurrency => 1, timeout => $o{timeout} // 10);
    return $res;
}

sub http_parallel {
    my ($port, $reqs, %o) = @_;
    $port = _port_of($port);
    croak 'http_parallel: requests must be an array ref' unless ref $reqs eq 'ARRAY';
    my @res = _http_engine($port, $reqs,
                           concurrency => $o{concurrency} // 500,
                           timeout     => $o{timeout} // 30);
    if ($LAST_PARALLEL->{fd_limited}) {
        Test::More::diag("http_parallel: ran out of file descriptors, reached only "
            . "$LAST_PARALLEL->{max_open} concurrent sockets (ulimit -n is too low)");
    }
    return wantarray ? @res : \@res;
}

# connect with a deadline; returns a non-blocking socket or (undef, error)
sub _connect_nb {
    my ($port, $deadline) = @_;
    my $fh;
    socket($fh, PF_INET, SOCK_STREAM, IPPROTO_TCP) or return (undef, "socket: $!");
    _nonblock($fh);
    return $fh if connect($fh, sockaddr_in($port, inet_aton('127.0.0.1')));
    return (undef, "connect: $!") unless $! == EINPROGRESS || $! == EINTR;
    my $sel = IO::Select->new($fh);
    while (1) {
        my $left = $deadline - now();
        return (undef, 'connect: timeout') if $left <= 0;
        last if $sel->can_write($left);
    }
    my $err = unpack('i', getsockopt($fh, SOL_SOCKET, SO_ERROR) // pack('i', 0));
    if ($err) { local $! = $err; return (undef, "connect: $!") }
    return $fh;
}

sub http_raw {
    my ($port, $bytes, %o) = @_;
    $port = _port_of($port);
    my $timeout  = $o{timeout} // 10;
    my $deadline = now() + $timeout;
    $RAW_TIMED_OUT = 0;
    my ($fh, $err) = _connect_nb($port, $deadline);
    croak "http_raw: $err" unless $fh;
    my $sel = IO::Select->new($fh);
    my @pieces = ref $bytes eq 'ARRAY' ? @$bytes : ($bytes);
    my $delay  = $o{delay} // 0.05;
  PIECE:
    for my $k (0 .. $#pieces) {
        my $data = $pieces[$k];
        utf8::encode($data) if utf8::is_utf8($data);
        my $off = 0;
        while ($off < length $data) {
            my $n = syswrite($fh, $data, length($data) - $off, $off);
            if (defined $n) { $off += $n; next }
            last PIECE unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            my $left = $deadline - now();
            if ($left <= 0) { $RAW_TIMED_OUT = 1; last PIECE }
            $sel->can_write($left);
        }
        Time::HiRes::sleep($delay) if $k < $#pieces && $delay > 0;
    }
    if ($o{close_after_send} || !($o{read} // 1)) {
        close $fh;
        return '';
    }
    shutdown($fh, SHUT_WR) if $o{shutdown_write};
    my $buf = '';
    while (1) {
        last if $o{until} && $buf =~ $o{until};
        my $n = sysread($fh, $buf, 65536, length $buf);
        last if defined $n && $n == 0;
        next if defined $n;
        last unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;   # e.g. ECONNRESET
        my $left = $deadline - now();
        if ($left <= 0) { $RAW_TIMED_OUT = 1; last }
        $sel->can_read($left);
    }
    close $fh;
    return $buf;
}


# ===========================================================================
# --- RESP for fake Redis servers (t/059, t/084) -----------------------------

sub resp_bulk { defined $_[0] ? '$' . length($_[0]) . "\r\n$_[0]\r\n" : "\$-1\r\n" }
sub resp_arr  { '*' . scalar(@_) . "\r\n" . join('', @_) }

# one command off the front of $$b, or undef while it is incomplete
sub resp_parse_cmd {
    my ($b) = @_;
    return undef unless $$b =~ /\A\*(\d+)\r\n/;
    my ($n, $pos, @a) = ($1, length("*$1\r\n"));
    for (1 .. $n) {
        my $e = index($$b, "\r\n", $pos);
        return undef if $e < 0;
        substr($$b, $pos, $e - $pos) =~ /\A\$(\d+)\z/ or die "fake: bad bulk\n";
        my ($len, $start) = ($1, $e + 2);
        return undef if length($$b) < $start + $len + 2;
        push @a, substr($$b, $start, $len);
        $pos = $start + $len + 2;
    }
    substr($$b, 0, $pos, '');
    return \@a;
}


# A forked server for fake Redis tests: accepts on $srv and forks a child
# per connection running $serve->($socket) ($on_conn->() first, if given).
# Its own process group, killed with the test (PDEATHSIG); returns its pid,
# which the caller stops with kill 'TERM', -$pid.
sub fork_server {
    my ($srv, $serve, $on_conn) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        my $nr = _prctl_nr();
        syscall($nr, 1, POSIX::SIGTERM(), 0, 0, 0) if defined $nr;  # PDEATHSIG
        $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP);
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $srv->accept or do { Time::HiRes::sleep(0.01); next };
            $on_conn->() if $on_conn;
            my $child = fork;
            if (defined $child && $child == 0) {
                close $srv;
                $serve->($c);
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    close $srv;
    return $pid;
}

package VT::Redis::Error;

use overload '""' => sub { $_[0]{message} }, fallback => 1;

sub new     { my ($class, $msg) = @_; bless { message => $msg }, $class }
sub message { $_[0]{message} }


# ===========================================================================
package VT::Redis::Conn;

# One blocking RESP connection (TCP or unix socket) with a timeout.

use strict;
use warnings;
use Carp qw(croak);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select ();
use Socket qw(IPPROTO_TCP TCP_NODELAY MSG_PEEK MSG_DONTWAIT SOCK_STREAM);

sub new {
    my ($class, %o) = @_;
    return bless { %o, timeout => $o{timeout} // 10, buf => '', pos => 0 }, $class;
}

# a connection that reads from a list of strings (tests of the parser)
sub _from_chunks {
    my ($class, @chunks) = @_;
    return bless { feed => sub { shift @chunks }, timeout => 5, buf => '', pos => 0 }, $class;
}

sub close {
    my $self = shift;
    CORE::close($self->{sock}) if $self->{sock};
    $self->{sock} = undef;
    $self->{buf}  = '';
    $self->{pos}  = 0;
}

sub cmd {
    my ($self, @args) = @_;
    croak 'VT::Redis: cmd() needs a command' unless @args;
    my ($r) = $self->pipeline(\@args);
    return $r;
}

sub pipeline {
    my ($self, @cmds) = @_;
    my $out = join '', map { _encode(@$_) } @cmds;
    $self->_ensure;
    my @r;
    my $ok = eval { @r = $self->_exchange($out, scalar @cmds); 1 };
    if (!$ok) {
        my $e = $@;
        $self->close;            # the stream state is unknown now
        die $e;
    }
    return @r;
}

sub read_reply {
    my $self = shift;
    local $self->{deadline} = VT::now() + $self->{timeout};
    my $v = $self->_read_value;
    $self->_compact;
    return $v;
}

sub _exchange {
    my ($self, $out, $n) = @_;
    local $self->{deadline} = VT::now() + $self->{timeout};
    $self->_write($out);
    my @r;
    push @r, $self->_read_value for 1 .. $n;
    $self->_compact;
    return @r;
}

sub _encode {
    my $s = '*' . scalar(@_) . "\r\n";
    for my $x (@_) {
        croak 'VT::Redis: undefined command argument' unless defined $x;
        my $b = "$x";
        utf8::encode($b) if utf8::is_utf8($b);
        $s .= '$' . length($b) . "\r\n" . $b . "\r\n";
    }
    return $s;
}

sub _ensure {
    my $self = shift;
    $self->close if $self->{sock} && !$self->_usable;
    $self->_connect unless $self->{sock};
}

# the connection is idle and the server has not closed it
sub _usable {
    my $self = shift;
    return 0 if $self->{pos} < length $self->{buf};      # unread data: desync
    my $peek = '';
    my $r = recv($self->{sock}, $peek, 1, MSG_PEEK | MSG_DONTWAIT);
    return ($! == EAGAIN || $! == EWOULDBLOCK) ? 1 : 0 unless defined $r;
    return 0;                                            # EOF or unexpected data
}

sub _connect {
    my $self = shift;
    $self->close;
    my $t = $self->{timeout} < 5 ? $self->{timeout} : 5;
    my $sock;
    if (defined $self->{path}) {
        $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $self->{path})
            or die "VT::Redis: connect $self->{path}: $!\n";
    } else {
        $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                      Proto => 'tcp', Timeout => $t)
            or die "VT::Redis: connect 127.0.0.1:$self->{port}: " . ($! || $@) . "\n";
        setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    }
    $sock->blocking(0);
    $self->{sock} = $sock;
    if (defined $self->{password}) {
        my ($r) = eval { $self->_exchange(_encode('AUTH', $self->{password}), 1) };
        if (!defined $r || VT::Redis::is_error($r)) {
            my $why = defined $r ? $r->message : $@;
            $self->close;
            die "VT::Redis: AUTH failed: $why\n";
        }
    }
}

sub _wait {
    my ($self, $dir) = @_;
    my $left = $self->{deadline} - VT::now();
    die "VT::Redis: timeout after $self->{timeout}s waiting for "
        . ($dir eq 'r' ? 'a reply' : 'the socket to accept data') . "\n" if $left <= 0;
    my $sel = IO::Select->new($self->{sock});
    $dir eq 'r' ? $sel->can_read($left) : $sel->can_write($left);
}

sub _write {
    my ($self, $data) = @_;
    die "VT::Redis: not connected\n" unless $self->{sock};
    my ($off, $len) = (0, length $data);
    while ($off < $len) {
        my $n = syswrite($self->{sock}, $data, $len - $off, $off);
        if (defined $n) { $off += $n; next }
        die "VT::Redis: write: $!\n" unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        $self->_wait('w');
    }
}

sub _fill {
    my ($self, $want) = @_;
    if ($self->{feed}) {
        my $c = $self->{feed}->();
        die "VT::Redis: incomplete reply\n" unless defined $c;
        $self->{buf} .= $c;
        return;
    }
    die "VT::Redis: not connected\n" unless $self->{sock};
    my $size = 65536;
    $size = ($want > 16 << 20 ? 16 << 20 : $want) if $want && $want > $size;
    while (1) {
        my $n = sysread($self->{sock}, $self->{buf}, $size, length $self->{buf});
        return if $n;
        die "VT::Redis: connection closed by the server\n" if defined $n;
        die "VT::Redis: read: $!\n" unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        $self->_wait('r');
    }
}

sub _compact {
    my $self = shift;
    if ($self->{pos} >= length $self->{buf}) {
        $self->{buf} = '';
        $self->{pos} = 0;
    } elsif ($self->{pos} > (1 << 20)) {
        substr($self->{buf}, 0, $self->{pos}, '');
        $self->{pos} = 0;
    }
}

sub _line {
    my $self = shift;
    my $from = $self->{pos};
    while (1) {
        my $i = index($self->{buf}, "\r\n", $from);
        if ($i >= 0) {
            my $l = substr($self->{buf}, $self->{pos}, $i - $self->{pos});
            $self->{pos} = $i + 2;
            return $l;
        }
        $from = length($self->{buf}) - 1;
        $from = $self->{pos} if $from < $self->{pos};
        $self->_fill;
    }
}

sub _bytes {
    my ($self, $n) = @_;
    while ((my $have = length($self->{buf}) - $self->{pos}) < $n + 2) {
        $self->_fill($n + 2 - $have);
    }
    my $s = substr($self->{buf}, $self->{pos}, $n);
    die "VT::Redis: protocol error: bulk string not terminated by CRLF\n"
        if substr($self->{buf}, $self->{pos} + $n, 2) ne "\r\n";
    $self->{pos} += $n + 2;
    return $s;
}

sub _int {
    my $s = shift;
    die "VT::Redis: protocol error: bad length/integer '" . substr($s, 0, 40) . "'\n"
        unless $s =~ /^-?\d{1,19}\z/;
    return $s;
}

sub _read_value {
    my $self = shift;
    my $line = $self->_line;
    my $t = substr($line, 0, 1, '');
    return $line                            if $t eq '+';
    return VT::Redis::Error->new($line)     if $t eq '-';
    return 0 + _int($line)                  if $t eq ':';
    if ($t eq '$') {
        my $n = _int($line);
        return $n < 0 ? undef : $self->_bytes($n);
    }
    if ($t eq '*' || $t eq '~' || $t eq '>') {           # array (RESP3 set, push)
        my $n = _int($line);
        return undef if $n < 0;
        my @a;
        push @a, $self->_read_value for 1 .. $n;
        return \@a;
    }
    # RESP3, in case a test switches with HELLO 3
    return undef                            if $t eq '_';
    return $line eq 't' ? 1 : 0             if $t eq '#';
    return $line                            if $t eq ',' || $t eq '(';
    if ($t eq '%') {
        my $n = _int($line);
        my %h;
        for (1 .. $n) {
            my $k = $self->_read_value;
            my $v = $self->_read_value;
            $h{ ref $k ? "$k" : $k // '' } = $v;
        }
        return \%h;
    }
    if ($t eq '=') {
        my $s = $self->_bytes(_int($line));
        $s =~ s/^[a-z]{3}://;
        return $s;
    }
    return VT::Redis::Error->new($self->_bytes(_int($line))) if $t eq '!';
    if ($t eq '|') {                                     # attribute: skip it
        my $n = _int($line);
        $self->_read_value for 1 .. 2 * $n;
        return $self->_read_value;
    }
    die "VT::Redis: protocol error: unexpected reply line '"
        . substr($t . $line, 0, 80) . "'\n";
}


# ===========================================================================
package VT::Redis;

use strict;
use warnings;
use Carp qw(croak);
use File::Path ();
use Scalar::Util qw(blessed);

my $REDIS_SEQ = 0;
my %REDIS_MAJOR;

sub is_error { my $v = shift; return blessed($v) && $v->isa('VT::Redis::Error') ? 1 : 0 }

sub _major {
    my $bin = shift;
    return $REDIS_MAJOR{$bin} //= do {
        my $v = VT::_capture($bin, '--version') // '';
        $v =~ /\bv=(\d+)\./ ? $1 : 7;
    };
}

sub start {
    my ($class, %o) = @_;
    my $want = $ENV{VOUCHER_REDIS_SERVER} || 'redis-server';
    my $bin  = VT::_which($want)
        or croak "VT::Redis: redis-server binary '$want' not found "
               . '(install redis-server or set VOUCHER_REDIS_SERVER)';
    my $self = bless {
        bin           => $bin,
        password      => $o{password},
        unixsocket    => $o{unixsocket} ? 1 : 0,
        # VOUCHER_REDIS_MODULE: every Redis of the tests loads the native
        # module (redis/module), so nginx's hot calls run there natively
        args          => [ ($ENV{VOUCHER_REDIS_MODULE} && !$o{no_module}
                            ? ('--loadmodule', $ENV{VOUCHER_REDIS_MODULE})
                            : ()),
                           @{ $o{args} || [] } ],
        timeout       => $o{timeout} // 10,
        start_timeout => $o{start_timeout} // ($ENV{VOUCHER_TEST_SAN} ? 30 : 10),
        owner         => $$,
        running       => 0,
        paused        => 0,
    }, $class;
    my $n = ++$REDIS_SEQ;
    $self->{dir} = VT::_mkdir(VT::tmp_root() . "/redis-$n");
    $self->{socket_path} = $self->{unixsocket} ? "$self->{dir}/redis.sock" : undef;
    VT::_register($self);
    my $attempts = $o{port} ? 1 : 5;
    for my $attempt (1 .. $attempts) {
        $self->{port} = $o{port} // VT::free_port();
        return $self if eval { $self->_launch; 1 };
        my $err = $@;
        die $err unless $self->{bind_conflict} && $attempt < $attempts;
    }
}

sub port        { $_[0]{port} }
sub pid         { $_[0]{pid} }
sub socket_path { $_[0]{socket_path} }
sub dir         { $_[0]{dir} }
sub password    { $_[0]{password} }
sub running     { $_[0]{running} }

sub _q {
    my $s = shift;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/\n/\\n/g;
    return qq{"$s"};
}

sub _conf {
    my $self = shift;
    my $d = $self->{dir};
    my @c = ('bind 127.0.0.1', "port $self->{port}", 'protected-mode yes',
             'daemonize no', 'dir ' . _q($d), 'logfile ' . _q("$d/redis.log"),
             'loglevel notice', 'save ""', 'appendonly no', 'databases 16');
    if (_major($self->{bin}) >= 7) {
        push @c, 'enable-debug-command local',
                 'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"';
    }
    push @c, 'unixsocket ' . _q($self->{socket_path}), 'unixsocketperm 700'
        if $self->{unixsocket};
    push @c, 'requirepass ' . _q($self->{password}) if defined $self->{password};
    return join("\n", @c) . "\n";
}

sub _log_text {
    my ($self, $offset) = @_;
    return (VT::_read_file("$self->{dir}/redis.log", $offset) // '');
}

sub _launch {
    my ($self, %o) = @_;
    my $d = $self->{dir};
    $self->{bind_conflict} = 0;
    unless ($o{keep_data}) {
        unlink "$d/dump.rdb", glob("$d/*.aof"), glob("$d/*.rdb");
        File::Path::remove_tree("$d/appendonlydir") if -d "$d/appendonlydir";
    }
    VT::_write_file("$d/redis.conf", $self->_conf);
    chmod 0600, "$d/redis.conf";
    my $log_off = -s "$d/redis.log" // 0;
    my $err_off = -s "$d/stderr.log" // 0;
    $self->{pid} = VT::_spawn(argv => [ $self->{bin}, "$d/redis.conf", @{ $self->{args} } ],
                              dir => $d, stdout => "$d/stdout.log", stderr => "$d/stderr.log");
    $self->{running} = 1;
    $self->{paused}  = 0;
    my $deadline = VT::now() + $self->{start_timeout};
    my $why;
    while (1) {
        my $st = VT::_reap($self->{pid}, 0);
        if (defined $st) {
            $self->{running} = 0;
            $why = 'redis-server exited during startup (' . VT::_status_text($st) . ')';
            last;
        }
        my $probe = VT::Redis::Conn->new(port => $self->{port}, password => $self->{password},
                                         timeout => 1);
        my $pong = eval { $probe->cmd('PING') };
        if (defined $pong && !ref $pong && $pong eq 'PONG') {
            my $info = eval { $probe->cmd('INFO', 'server') } // '';
            $probe->close;
            if (!ref $info && $info =~ /^process_id:(\d+)/m) {
                my $p = $1;
                return 1 if $p == $self->{pid} || ((VT::_proc_stat($p))[1] // 0) == $self->{pid};
            }
            # somebody else answers on this port: ours will fail to bind
        }
        $probe->close;
        if (VT::now() >= $deadline) {
            $why = "redis-server did not answer on 127.0.0.1:$self->{port} "
                 . "within $self->{start_timeout}s";
            $self->_terminate;
            last;
        }
        Time::HiRes::sleep(0.02);
    }
    my $log = $self->_log_text($log_off);
    $self->{bind_conflict} = 1 if $log =~ /Address already in use/;
    my $stderr = VT::_read_file("$d/stderr.log", $err_off) // '';
    die "VT::Redis: $why\n--- $d/redis.log ---\n" . VT::_tail($log, 100)
        . "--- stderr ---\n" . VT::_tail($stderr, 50) . "---\n";
}

sub conn {
    my ($self, %o) = @_;
    my @where = $o{unix}
        ? (path => ($self->{socket_path} // croak 'VT::Redis: started without unixsocket'))
        : (port => $self->{port});
    return VT::Redis::Conn->new(@where, password => $self->{password},
                                timeout => $o{timeout} // $self->{timeout});
}

sub timeout {
    my $self = shift;
    if (@_) {
        $self->{timeout} = shift;
        $self->{conn}{timeout} = $self->{timeout} if $self->{conn};
    }
    return $self->{timeout};
}

sub cmd {
    my $self = shift;
    return ($self->{conn} //= $self->conn)->cmd(@_);
}

sub pipeline {
    my $self = shift;
    return ($self->{conn} //= $self->conn)->pipeline(@_);
}

sub _close_conn {
    my $self = shift;
    $self->{conn}->close if $self->{conn};
}

sub info {
    my ($self, $section) = @_;
    my $r = $self->cmd('INFO', defined $section ? $section : ());
    croak 'VT::Redis: INFO failed: ' . $r->message if is_error($r);
    my %h;
    for my $l (split /\r?\n/, $r // '') {
        next if $l =~ /^#/ || $l !~ /:/;
        my ($k, $v) = split /:/, $l, 2;
        $h{$k} = $v;
    }
    return \%h;
}

sub commandstats {
    my $self = shift;
    my $i = $self->info('commandstats');
    my %c;
    for my $k (keys %$i) {
        next unless $k =~ /^cmdstat_(.+)\z/;
        my $name = $1;
        $c{$name} = $i->{$k} =~ /(?:^|,)calls=(\d+)/ ? 0 + $1 : 0;
    }
    return \%c;
}

# calls of the library's functions: FCALL, and the native module's
# commands (VOUCHER_REDIS_MODULE) that stand for them
sub hot_calls {
    my $self = shift;
    my $c = $self->commandstats;
    my $n = 0;
    $n += $c->{$_} for grep { $_ eq 'fcall' || (/^voucher\./ && $_ ne 'voucher.version') }
                       keys %$c;
    return $n;
}

sub reset_stats {
    my $self = shift;
    my $r = $self->cmd('CONFIG', 'RESETSTAT');
    croak 'VT::Redis: CONFIG RESETSTAT failed: ' . $r->message if is_error($r);
    return 1;
}

sub load_functions {
    my ($self, %o) = @_;
    my $file = $o{file} // VT::root_dir() . '/redis/voucher.lua';
    my $code = VT::_read_file($file);
    croak "VT::Redis: cannot read $file: $!" unless defined $code;
    $code =~ s/__VOUCHER_LIB_VERSION__/test/g;
    my $r = $self->cmd('FUNCTION', 'LOAD', 'REPLACE', $code);
    croak "VT::Redis: FUNCTION LOAD $file failed: " . $r->message if is_error($r);
    return $r;
}

sub log { my $self = shift; return $self->_log_text(0) }

sub stop {
    my $self = shift;
    $self->_close_conn;
    return 1 unless $self->{running};
    return 0 unless $self->{owner} == $$;
    kill 'TERM', $self->{pid};
    kill 'CONT', $self->{pid};                 # a paused server must see the TERM
    my $st = VT::_reap($self->{pid}, 10);
    if (!defined $st) {
        kill 'KILL', $self->{pid};
        $st = VT::_reap($self->{pid}, 10);
    }
    $self->{running} = 0;
    $self->{paused}  = 0;
    $self->{exit_status} = $st;
    return 1;
}

sub _terminate { $_[0]->stop }

sub start_again {
    my ($self, %o) = @_;
    croak 'VT::Redis: start_again from another process' unless $self->{owner} == $$;
    $self->stop if $self->{running};
    $self->_launch(keep_data => $o{keep_data});
    return $self;
}

sub kill9 {
    my $self = shift;
    $self->_close_conn;
    return 1 unless $self->{running};
    return 0 unless $self->{owner} == $$;
    kill 'KILL', $self->{pid};
    $self->{exit_status} = VT::_reap($self->{pid}, 10);
    $self->{running} = 0;
    $self->{paused}  = 0;
    return 1;
}

sub pause {
    my $self = shift;
    croak 'VT::Redis: not running' unless $self->{running};
    kill 'STOP', $self->{pid} or croak "VT::Redis: SIGSTOP: $!";
    $self->{paused} = 1;
    return 1;
}

sub resume {
    my $self = shift;
    croak 'VT::Redis: not running' unless $self->{running};
    kill 'CONT', $self->{pid} or croak "VT::Redis: SIGCONT: $!";
    $self->{paused} = 0;
    return 1;
}

sub DESTROY {
    my $self = shift;
    return unless $self->{running} && $self->{owner} == $$;
    local ($?, $!, $@);
    eval { $self->stop };
}


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

VT - integration-test harness for ngx_voucher (core Perl only)

=head1 SYNOPSIS

    use Test::More;
    use VT;

    my $redis = VT::Redis->start(unixsocket => 1);
    is($redis->cmd('SET', 'k', 'v'), 'OK');

    my $ng = VT::Nginx->start(
        redis  => $redis,
        server => 'location = /static { return 200 "ok"; }',
        module => 0,
    );
    my $res = http($ng->port, 'GET', '/static');
    is($res->{status}, 200);
    $ng->stop;
    $ng->check_log;
    done_testing;

=head1 ENVIRONMENT

C<VOUCHER_NGINX> (default F</usr/sbin/nginx>), C<VOUCHER_MODULE> (default
F<build/ngx_http_voucher_module.so> under the project root; empty string: built
in, no C<load_module>), C<VOUCHER_REDIS_SERVER> (C<redis-server>),
C<VOUCHER_TEST_KEEP> (keep the temporary directory), C<VOUCHER_TEST_SAN>
(sanitizer build: C<check_log> also looks for sanitizer reports, in the error
log and nginx's stderr; start/reload timeouts are longer).

All servers run below one temporary directory per test process
(C<VT::tmp_root>, F<$TMPDIR/vt-XXXXXXXX>), listen on 127.0.0.1 on random free
ports in 20000-45000 and are stopped by PID: in C<stop>, in C<DESTROY>, in an
C<END> block (so a test that dies leaves nothing running), on SIGINT/SIGTERM/
SIGHUP (unless the test installed its own handlers), and, through
C<PR_SET_PDEATHSIG>, with SIGTERM by the kernel when the test process is
killed outright.  The test process makes itself a child subreaper
(C<PR_SET_CHILD_SUBREAPER>) so orphaned descendants are reaped by it (in
C<stop> and in C<END>), not left as zombies.  Servers belong to the process that started them: a forked
child never stops them.  C<SIGPIPE> is ignored in the test process.

=head1 EXPORTED FUNCTIONS

=over

=item http($port, $method, $path, %o)

One HTTP/1.1 request on a new connection.  C<$port> may also be a
C<VT::Nginx> object.  Options: C<headers> (hashref, or arrayref of
name/value pairs for order and duplicates; a value of undef leaves the header
out, e.g. C<< Host => undef >>), C<body> (string; hashref/arrayref is JSON
encoded canonically and C<Content-Type> defaults to C<application/json>;
a scalar ref is sent as is), C<timeout> (default 10 s), C<keepalive> (do not
send C<Connection: close>; the response is still read by its length).
C<Content-Length> is added for a body, and C<Content-Length: 0> for
POST/PUT/PATCH without one, unless the caller gave C<Content-Length> or
C<Transfer-Encoding>.

Returns C<< {status, reason, version, headers => {lc name => value},
header_list => [[name, value], ...], body, json, trailers?} >>; repeated
headers are joined with ", ".  C<json> is the decoded body when the
Content-Type says json or the body starts with C<{>/C<[>, else undef.
Chunked bodies are decoded, 1xx interim responses skipped.  A failed
connection, a timeout, a malformed or truncated response give
C<< {status => 0, error => '...'} >> (with C<raw> holding what was read).

=item http_parallel($port, \@requests, concurrency => 500, timeout => 30)

Each request is a hashref with the options of C<http> plus C<method> and
C<path>.  Opens up to C<concurrency> non-blocking sockets at once, drives them
with one C<IO::Select> loop (no busy waiting), and returns the responses in
request order (an array ref in scalar context).  C<timeout> is one deadline
for the whole batch.  If the process runs out of file descriptors it goes on
with fewer sockets and says so with C<diag>.  Statistics of the last call are
in C<$VT::LAST_PARALLEL>: C<< {max_open, elapsed, fd_limited, requests} >>.

=item http_raw($port, $bytes, %o)

Sends raw bytes and returns the raw response text read until the server
closes (or C<timeout>, default 10 s; then C<$VT::RAW_TIMED_OUT> is true).
C<$bytes> may be an array ref of pieces, sent C<delay> seconds apart (default
0.05).  C<close_after_send> (or C<< read => 0 >>) closes right after sending
and returns ''.  C<shutdown_write> half-closes after sending.  C<until> (a
regexp) stops reading as soon as the text read matches.  Write errors (the
server closed early) are ignored; what the server sent is still returned.
Dies when it cannot connect (use C<http> to probe a server that may be down).

=item json_body($res_or_text)

Decodes the body of a response (or a string) as JSON; undef when it is not.

=item root_dir()

The project root (two levels above F<t/lib>).

=item wait_until(sub { ... }, timeout => 10, interval => 0.05)

Calls the sub until it returns true (returns that value) or the timeout
passes (returns 0, after a last call).

=back

Not exported but available: C<VT::free_port()>, C<VT::tmp_root()>.

=head1 VT::Redis

=over

=item VT::Redis->start(%o)

Options: C<password>, C<unixsocket> (socket F<redis.sock> in the server's
directory), C<args> (extra redis-server command-line arguments, e.g.
C<['--maxmemory', '10mb']>), C<timeout> (reply timeout of C<cmd>, default
10 s), C<port> (fixed port, no retry).  No persistence; C<enable-debug-command
local> (DEBUG SLEEP works); the process title includes the config file path.
Dies with F<redis.log> when the server does not come up.  The readiness check
also verifies (INFO process_id) that the server answering is ours.

=item port, pid, socket_path, dir, password, running

=item cmd(@args)

Blocking RESP client on its own TCP connection (AUTH done when a password is
set; reconnects when the server closed the connection, e.g. after
C<start_again>).  Returns a string for simple strings, bulk strings and
integers, undef for nil, an array ref (nested) for arrays, a
C<VT::Redis::Error> object (C<< ->message >>; stringifies to the message)
for error replies, also inside arrays.  Never dies on error replies; dies on
connection errors and timeouts (then the connection is dropped and the next
call reconnects).  RESP3 replies (after HELLO 3) are read too: maps become
hash refs, booleans 1/0, doubles/big numbers strings.

=item pipeline([@cmd1], [@cmd2], ...)

Sends all commands at once, returns the list of replies.

=item conn(unix => 0|1, timeout => N)

A new independent C<VT::Redis::Conn> (methods C<cmd>, C<pipeline>,
C<read_reply>, C<close>), e.g. for MULTI, blocking commands or the unix socket.

=item timeout([$seconds])

Get/set the reply timeout of C<cmd>.

=item load_functions(file => ...)

C<FUNCTION LOAD REPLACE> of F<redis/voucher.lua> with
C<__VOUCHER_LIB_VERSION__> replaced by C<test>; dies on error; returns the
library name.

=item commandstats

Hash ref of command name => calls from C<INFO commandstats> (subcommands as
C<function|load>).  C<reset_stats> does C<CONFIG RESETSTAT>; C<info($section)>
returns C<INFO> as a hash ref; C<log> returns F<redis.log>.

=item stop, start_again, kill9, pause, resume

C<stop>: SIGTERM (and SIGCONT), waits up to 10 s, then SIGKILL; reaps the pid.
C<start_again>: same port, same arguments, fresh empty data;
C<< start_again(keep_data => 1) >> keeps the data files instead (useful with
C<< args => ['--appendonly', 'yes'] >>: redis reloads what it persisted).  C<kill9>:
SIGKILL and reap.  C<pause>/C<resume>: SIGSTOP/SIGCONT.

=item VT::Redis::is_error($value)

True for a C<VT::Redis::Error>.

=back

=head1 VT::Nginx

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
