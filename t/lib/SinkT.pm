package SinkT;

# Local sinks for the worker tests: an HTTP sink that records the webhook,
# LINE and SMS calls and fails on demand, and an SMTP sink that records
# mail.  Each runs as a forked process on 127.0.0.1 and a free port, is
# registered with VT (stopped by PID in stop, DESTROY and END) and writes
# what it received as JSON lines.  Core Perl only.
#
#   my $h = SinkT::HTTP->start;
#   $h->control(fail_each => 2, status => 503, delay_ms => 0, dedupe => 1);
#   my @req = $h->requests;   # {method, path, headers, body, status, key}
#
# HTTP behaviour, per request (control is read again for each):
#   - the key is the Idempotency-Key or X-Line-Retry-Key header;
#   - delay_ms: wait that long before answering;
#   - dedupe: a key answered 2xx before gets 409 (as LINE does);
#   - fail_each N: each key is refused N times with "status" first;
#   - fail_all: every request is refused with "status".
#
# SMTP: 220, EHLO/HELO, MAIL, RCPT, DATA, QUIT; control fail_each N with
# "code" (e.g. 451, 550) refuses MAIL FROM N times per recipient list.

use strict;
use warnings;
use Carp qw(croak);
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Time::HiRes ();
use Fcntl qw(:flock);
use VT;

my $JSON = JSON::PP->new->utf8->canonical;
my $SEQ = 0;

sub _new {
    my ($class, %o) = @_;
    my $n = ++$SEQ;
    my $self = bless { owner => $$, running => 0, dir => VT::tmp_root() . "/sink-$n" }, $class;
    mkdir $self->{dir} or croak "$self->{dir}: $!";
    $self->control(%{ $o{control} // {} });
    for (1 .. 20) {
        my $port = VT::free_port();
        my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                         Listen => 128, ReuseAddr => 1, Proto => 'tcp') or next;
        $self->{port} = $port;
        my $pid = fork // croak "fork: $!";
        if (!$pid) {
            $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP PIPE);
            $SIG{PIPE} = 'IGNORE';
            eval { $self->_serve($sock) };
            POSIX::_exit(0);
        }
        close $sock;
        $self->{pid} = $pid;
        $self->{running} = 1;
        VT::_register($self);
        return $self;
    }
    croak 'SinkT: no free port';
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub dir  { $_[0]{dir} }
sub url  { my ($self, $path) = @_; 'http://127.0.0.1:' . $self->{port} . ($path // '/') }

sub control {
    my ($self, %c) = @_;
    my $f = "$self->{dir}/control.json";
    open my $fh, '>', "$f.tmp" or croak "$f: $!";
    print {$fh} $JSON->encode(\%c);
    close $fh;
    rename "$f.tmp", $f or croak "$f: $!";
}

sub _control {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/control.json" or return {};
    local $/;
    my $c = eval { $JSON->decode(<$fh>) } // {};
    return $c;
}

sub _record {
    my ($self, $rec) = @_;
    open my $fh, '>>', "$self->{dir}/requests.jsonl" or return;
    flock $fh, LOCK_EX;
    print {$fh} $JSON->encode($rec), "\n";
    close $fh;
}

# what was received; in scalar context, how many
sub requests {
    my ($self) = @_;
    my @r;
    if (open my $fh, '<', "$self->{dir}/requests.jsonl") {
        while (my $l = <$fh>) {
            push @r, $JSON->decode($l) if $l =~ /\S/;
        }
    }
    return wantarray ? @r : scalar @r;
}

# the accepted (2xx) requests
sub accepted {
    my @r = grep { $_->{status} >= 200 && $_->{status} < 300 } $_[0]->requests;
    return wantarray ? @r : scalar @r;
}

sub wait_accepted {
    my ($self, $n, %o) = @_;
    return VT::wait_until(sub { scalar($self->accepted) >= $n }, timeout => $o{timeout} // 20);
}

sub stop {
    my ($self) = @_;
    return 1 unless $self->{running};
    return 0 unless $self->{owner} == $$;
    kill 'TERM', $self->{pid};
    if (!defined VT::_reap($self->{pid}, 5)) {
        kill 'KILL', $self->{pid};
        VT::_reap($self->{pid}, 5);
    }
    $self->{running} = 0;
    return 1;
}

sub _terminate { $_[0]->stop }

sub DESTROY {
    my $self = shift;
    local ($?, $!, $@);
    $self->stop if $self->{running} && $self->{owner} == $$;
}


package SinkT::HTTP;
our @ISA = ('SinkT');

sub start { my ($class, %o) = @_; $class->_new(%o) }

sub _read_request {
    my ($c) = @_;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($c, $buf, 65536, length $buf);
        return unless $n;
    }
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($line, @h) = split /\r\n/, $head;
    my ($method, $path) = split / /, $line;
    my %h;
    for (@h) { my ($k, $v) = /^([^:]+):\s*(.*)$/ or next; $h{lc $k} = $v }
    my $len = $h{'content-length'} // 0;
    while (length($body) < $len) {
        my $n = sysread($c, $body, $len - length($body), length $body);
        last unless $n;
    }
    return { method => $method, path => $path, headers => \%h, body => $body };
}

sub _serve {
    my ($self, $sock) = @_;
    my (%ok, %fails);
    while (my $c = $sock->accept) {
        my $req = _read_request($c) or next;
        my $ctl = $self->_control;
        Time::HiRes::sleep(($ctl->{delay_ms} // 0) / 1000) if $ctl->{delay_ms};
        my $key = $req->{headers}{'idempotency-key'} // $req->{headers}{'x-line-retry-key'} // '';
        my $status = 200;
        if ($ctl->{fail_all}) {
            $status = $ctl->{status} // 503;
        } elsif ($ctl->{dedupe} && $ok{$key}) {
            $status = 409;
        } elsif (($fails{$key} // 0) < ($ctl->{fail_each} // 0)) {
            $fails{$key}++;
            $status = $ctl->{status} // 503;
        } else {
            $ok{$key} = 1;
        }
        $req->{status} = $status;
        $req->{key} = $key;
        $req->{t} = Time::HiRes::time();
        $self->_record($req);
        my $body = $status == 200 ? '{"ok":true}' : qq({"error":"sink says $status"});
        syswrite($c, "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                     . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body");
        close $c;
    }
}


package SinkT::SMTP;
our @ISA = ('SinkT');

sub start { my ($class, %o) = @_; $class->_new(%o) }

sub url { 'smtp://127.0.0.1:' . $_[0]{port} }

sub _serve {
    my ($self, $sock) = @_;
    my %fails;
    while (my $c = $sock->accept) {
        $c->autoflush(1);
        my ($from, @rcpt, $data);
        print $c "220 sink ESMTP\r\n";
        while (my $l = <$c>) {
            $l =~ s/\r?\n\z//;
            if ($l =~ /^(EHLO|HELO)/i) {
                print $c "250-sink\r\n250 8BITMIME\r\n";
            } elsif ($l =~ /^MAIL FROM:\s*(.*)/i) {
                $from = $1;
                @rcpt = ();
                print $c "250 OK\r\n";
            } elsif ($l =~ /^RCPT TO:\s*(.*)/i) {
                push @rcpt, $1;
                print $c "250 OK\r\n";
            } elsif ($l =~ /^DATA/i) {
                my $ctl = $self->_control;
                my $k = join ',', @rcpt;
                if (($fails{$k} // 0) < ($ctl->{fail_each} // 0)) {
                    $fails{$k}++;
                    my $code = $ctl->{code} // 451;
                    print $c "$code sink refuses\r\n";
                    $self->_record({ from => $from, rcpt => [@rcpt], status => $code });
                    next;
                }
                print $c "354 go ahead\r\n";
                $data = '';
                while (my $d = <$c>) {
                    last if $d =~ /^\.\r?\n\z/;
                    $d =~ s/^\.\././;
                    $data .= $d;
                }
                $self->_record({ from => $from, rcpt => [@rcpt], data => $data, status => 250 });
                print $c "250 OK queued\r\n";
            } elsif ($l =~ /^QUIT/i) {
                print $c "221 bye\r\n";
                last;
            } elsif ($l =~ /^(RSET|NOOP)/i) {
                print $c "250 OK\r\n";
            } else {
                print $c "502 unknown\r\n";
            }
        }
        close $c;
    }
}

1;
