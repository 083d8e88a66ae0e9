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

# The function library's text as scripts/gen-lua builds it from
# redis/lib/*.lua (with its __VOUCHER_LIB_VERSION__ placeholder).
my $LIBRARY_TEXT;
sub library_text {
    return $LIBRARY_TEXT if defined $LIBRARY_TEXT;
    my $gen = "$ROOT/scripts/gen-lua";
    my $text = `perl $gen`;
    croak "VT: $gen failed" if $? != 0 || !length $text;
    return $LIBRARY_TEXT = $text;
}

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

# below Linux's ephemeral range (32768-60999): a port the test chose is
# never taken meanwhile as the local end of an outgoing connection, nor
# by a client connecting to it while nothing listens (a self-connect)
sub free_port {
    for (1 .. 500) {
        my $port = 12000 + int(rand(20768));
        next if $USED_PORT{$port};
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
            Listen => 1, ReuseAddr => 0) or next;
        close $s;
        $USED_PORT{$port} = 1;
        return $port;
    }
    croak 'VT: no free port found in 12000-32767';
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
# (redis/lib/evaluate.lua, ok_reply(); redis/PROTOCOL.md), written back as the pairs the module
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

# The server classes, one file each.
require VT::Redis;
require VT::Nginx;

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
ports in 12000-32767 (below the ephemeral range) and are stopped by PID: in C<stop>, in C<DESTROY>, in an
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

=item VT::library_text()

The function library's text, as F<scripts/gen-lua> joins it from
F<redis/lib/*.lua> (the version placeholder left in); built once per test.

=item wait_until(sub { ... }, timeout => 10, interval => 0.05)

Calls the sub until it returns true (returns that value) or the timeout
passes (returns 0, after a last call).

=back

Not exported but available: C<VT::free_port()>, C<VT::tmp_root()>.

=head1 SEE ALSO

L<VT::Redis> (t/lib/VT/Redis.pm), L<VT::Nginx> (t/lib/VT/Nginx.pm).

=cut
