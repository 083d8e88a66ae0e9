# VT::Redis: a throw-away redis-server for the tests, and its RESP
# connection (VT::Redis::Conn, errors as VT::Redis::Error).  Part of the VT
# harness (t/lib/VT.pm); the API is documented in the POD at the end.

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
        sentinel      => $o{sentinel},
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
    return $self->_sentinel_conf if $self->{sentinel};
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

# redis-server --sentinel: it rewrites this file, so it is written once
sub _sentinel_conf {
    my $self = shift;
    my $d = $self->{dir};
    my $s = $self->{sentinel};
    my $name = $s->{name} // 'm';
    my @c = ('bind 127.0.0.1', "port $self->{port}", 'daemonize no',
             'dir ' . _q($d), 'logfile ' . _q("$d/redis.log"),
             "sentinel monitor $name 127.0.0.1 $s->{master_port} "
                 . ($s->{quorum} // 2),
             "sentinel down-after-milliseconds $name " . ($s->{down_after} // 500),
             "sentinel failover-timeout $name " . ($s->{failover_timeout} // 10000),
             "sentinel parallel-syncs $name 1");
    push @c, 'requirepass ' . _q($self->{password}) if defined $self->{password};
    push @c, "sentinel auth-pass $name " . _q($s->{auth_pass})
        if defined $s->{auth_pass};
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
    VT::_write_file("$d/redis.conf", $self->_conf)
        unless $self->{sentinel} && $o{keep_data};
    chmod 0600, "$d/redis.conf";
    my $log_off = -s "$d/redis.log" // 0;
    my $err_off = -s "$d/stderr.log" // 0;
    $self->{pid} = VT::_spawn(argv => [ $self->{bin}, "$d/redis.conf",
                                        ($self->{sentinel} ? '--sentinel' : ()),
                                        @{ $self->{args} } ],
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
    my ($file, $code);
    if (defined $o{file}) {
        $file = $o{file};
        $code = VT::_read_file($file);
        croak "VT::Redis: cannot read $file: $!" unless defined $code;
    } else {
        $file = 'the library';
        $code = VT::library_text();
    }
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

1;

__END__

=head1 NAME

VT::Redis - a throw-away redis-server for the tests

=head1 DESCRIPTION

=over

=item VT::Redis->start(%o)

Options: C<password>, C<sentinel> (a hash ref: this is a C<redis-server
--sentinel> monitoring C<name> (default C<m>) at 127.0.0.1:C<master_port>,
with C<quorum> (2), C<down_after> (500 ms), C<failover_timeout> (10 s) and
C<auth_pass>; C<start_again(keep_data =E<gt> 1)> keeps the file it
rewrote), C<unixsocket> (socket F<redis.sock> in the server's
directory), C<args> (extra redis-server command-line arguments, e.g.
C<['--maxmemory', '10mb']>), C<timeout> (reply timeout of C<cmd>, default
10 s), C<port> (fixed port, no retry).  No persistence; C<enable-debug-command
local> (DEBUG SLEEP works); the process title includes the config file path.
Dies with F<redis.log> when the server does not come up.  The readiness check
also verifies (INFO process_id) that the server answering is ours.  With
C<VOUCHER_REDIS_MODULE> set (a path to F<voucher.so>), the server loads the
native module (F<docs/native.md>) unless C<< no_module => 1 >>.

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

C<FUNCTION LOAD REPLACE> of the library (C<VT::library_text>, what
F<scripts/gen-lua> builds from F<redis/lib/*.lua>), or of C<file>, with
C<__VOUCHER_LIB_VERSION__> replaced by C<test>; dies on error; returns the
library name.

=item commandstats

Hash ref of command name => calls from C<INFO commandstats> (subcommands as
C<function|load>).  C<reset_stats> does C<CONFIG RESETSTAT>; C<info($section)>
returns C<INFO> as a hash ref; C<log> returns F<redis.log>.  C<hot_calls>
counts the calls of the library's functions: C<FCALL> and the native
module's C<VOUCHER.*> commands but C<VOUCHER.VERSION>.

=item stop, start_again, kill9, pause, resume

C<stop>: SIGTERM (and SIGCONT), waits up to 10 s, then SIGKILL; reaps the pid.
C<start_again>: same port, same arguments, fresh empty data;
C<< start_again(keep_data => 1) >> keeps the data files instead (useful with
C<< args => ['--appendonly', 'yes'] >>: redis reloads what it persisted).  C<kill9>:
SIGKILL and reap.  C<pause>/C<resume>: SIGSTOP/SIGCONT.

=item VT::Redis::is_error($value)

True for a C<VT::Redis::Error>.

=back

=cut
