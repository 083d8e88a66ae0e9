# Replies that arrive a few bytes at a time, and connections that drop in
# the middle of one.  nginx builds each reply in an arena of its Redis
# connection, kept across reads until the reply is whole and emptied when
# hiredis frees it; these must hold for any split of the byte stream.
#
# A fake Redis in Perl stands in: it answers the handshake (ROLE says
# master, the version check "not found", so FUNCTION LOAD goes out too),
# and answers FCALL by the code in its key:
#   S*      a reply echoing the request, sent 1-3 bytes at a time, pipelined
#           replies chunked together (a chunk ends one and begins the next)
#   BIG*    about 100 KB, 6,001 elements and a nested array, in chunks of up
#           to 2 KB: more than the arena holds, so overflow chunks are used
#   CUT*    half of the reply, then the connection is closed
#   STALL*  half of the reply, then nothing: the command times out
# Under AddressSanitizer the arena is poisoned when it is emptied, so a
# pointer kept into a freed reply is reported, and LeakSanitizer sees an
# overflow chunk that a half-read reply left behind.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $NBIG = 3000;        # pairs in the BIG reply

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 16, Proto => 'tcp', ReuseAddr => 1)
    or die "listen: $!";
my $PORT = $srv->sockport;
my $events = VT::tmp_root() . "/fake-redis-$$.log";

# --- the fake Redis --------------------------------------------------------

sub bulk { VT::resp_bulk(@_) }
sub int_ { ":$_[0]\r\n" }
sub arr  { VT::resp_arr(@_) }

sub note_event {
    open(my $fh, '>>', $events) or return;
    print $fh "$_[0]\n";
    close $fh;
}

sub parse_cmd { VT::resp_parse_cmd(@_) }

sub big_reply {
    my ($code) = @_;
    my @e = (bulk('ok'), bulk('code'), bulk($code));
    for my $i (1 .. $NBIG) {
        push @e, bulk("k$i"),
            $i % 3 == 0 ? int_($i * 7) : bulk("v$i" . ('x' x ($i % 41)));
    }
    push @e, bulk('nested'), arr(bulk('a'), int_(1), bulk('b'), bulk('two'));
    return arr(@e);
}

# the reply to one command, and how it goes out
sub answer {
    my ($cmd) = @_;
    my $name = uc $cmd->[0];
    if ($name eq 'ROLE') {
        note_event('role');
        return (arr(bulk('master'), int_(0), arr()), 'split');
    }
    if ($name eq 'FCALL' && $cmd->[1] =~ /^voucher_version(?:_\w+)?\z/) {
        note_event('version');
        return ("-ERR Function not found\r\n", 'split');
    }
    if ($name eq 'FUNCTION') {
        note_event('load');
        return (bulk('voucher'), 'split');
    }
    if ($name eq 'FCALL' && ($cmd->[3] // '') =~ /^\{v\}:c:(.*)$/) {
        my ($code, $customer) = ($1, $cmd->[4]);
        note_event("fcall $code");
        return (big_reply($code), 'big') if $code =~ /^BIG/;
        my $r = arr(bulk('ok'), bulk('code'), bulk($code),
                    bulk('customer'), bulk($customer),
                    bulk('discount'), int_(100), bulk('amount_after'), int_(900),
                    bulk('computation'), arr(bulk('kind'), bulk('amount'),
                                             bulk('value'), int_(-100),
                                             bulk('note'), bulk('')),
                    bulk('nothing'), bulk(undef));
        return ($r, 'cut') if $code =~ /^CUT/;
        return ($r, 'stall') if $code =~ /^STALL/;
        return ($r, 'split');
    }
    return ("-ERR unknown command '$name'\r\n", 'split');
}

sub send_all {
    my ($c, $bytes, $min, $max, $pause) = @_;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = $min + int(rand($max - $min + 1));
        $n = length($bytes) - $off if $off + $n > length $bytes;
        my $w = syswrite($c, $bytes, $n, $off);
        return 0 unless defined $w;
        $off += $w;
        sleep($pause) if $pause;
    }
    return 1;
}

sub serve {
    my ($c) = @_;
    setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
    my $buf = '';
    while (1) {
        my $n = sysread($c, $buf, 65536, length $buf);
        return unless $n;
        my $pending = '';       # split replies, chunked together
        while (defined(my $cmd = parse_cmd(\$buf))) {
            my ($r, $how) = answer($cmd);
            if ($how eq 'split') {
                $pending .= $r;
                next;
            }
            send_all($c, $pending, 1, 3, 0.0002) or return;
            $pending = '';
            if ($how eq 'big') {
                send_all($c, $r, 1, 2048, 0.001) or return;
            } elsif ($how eq 'cut') {
                send_all($c, substr($r, 0, length($r) / 2), 1, 3, 0.0002);
                note_event('cut');
                return;
            } else {                            # stall until nginx gives up
                send_all($c, substr($r, 0, length($r) / 2), 1, 3, 0.0002);
                note_event('stall');
                1 while sysread($c, my $junk, 65536);
                return;
            }
        }
        send_all($c, $pending, 1, 3, 0.0002) or return;
    }
}

my $fake = VT::fork_server($srv, \&serve, sub { note_event('connection') });

END { local $?; if ($fake) { kill 'TERM', -$fake; waitpid($fake, 0) } }

sub events { my $t = VT::_read_file($events) // ''; return () = $t =~ /^$_[0]$/mg }

# --- nginx in front of it ----------------------------------------------------

my $ng = VT::Nginx->start(
    vars => {RP => $PORT},
    http => 'voucher_redis 127.0.0.1:%%RP%% connections=1 timeout=3s '
          . 'connect_timeout=2s;',
    server => api_server());

sub body { {code => $_[0], customer => $_[1], order => {amount => 1000}} }

my $r;
ok(wait_until(sub { ($r = post($ng, 'validate', body('S0', 'first')))->{status} == 200 },
              timeout => 20),
   'ready: the handshake replies came a few bytes at a time')
    or diag explain $r;
ok(events('role') >= 1 && events('version') >= 1 && events('load') >= 1,
   'ROLE, version check, then FUNCTION LOAD');

my $want = {valid => JSON::PP::true(), code => 'S0', customer => 'first',
            discount => 100, amount_after => 900,
            computation => {kind => 'amount', value => -100, note => ''},
            nothing => undef};
is_deeply($r->{json}, $want, 'a reply split into 1-3 byte pieces, whole');

# pipelined on the one connection: the pieces straddle the replies
my @req = map { {method => 'POST', path => '/vouchers/' . ($_ % 2 ? 'validate' : 'redeem'),
                 body => body("S$_", "cust-$_-" . ('x' x ($_ % 5)))} } 1 .. 40;
my @res = http_parallel($ng->port, \@req, concurrency => 10, timeout => 30);
my $good = 0;
for my $i (1 .. 40) {
    my $j = $res[$i - 1]{json} // {};
    my $verb = $i % 2 ? 'valid' : 'redeemed';
    $good++ if $res[$i - 1]{status} == 200 && ($j->{code} // '') eq "S$i"
        && ($j->{customer} // '') eq "cust-$i-" . ('x' x ($i % 5))
        && ($j->{computation}{value} // 0) == -100
        && exists $j->{nothing} && !defined $j->{nothing};
}
is($good, 40, '40 pipelined replies, chunked across each other, each to its request');

# larger than the arena: overflow chunks, then the arena again
@req = ({method => 'POST', path => '/vouchers/validate', body => body('S41', 'before')},
        {method => 'POST', path => '/vouchers/validate', body => body('BIG1', 'big')},
        {method => 'POST', path => '/vouchers/validate', body => body('S42', 'after')});
@res = http_parallel($ng->port, \@req, concurrency => 3, timeout => 30);
is($res[1]{status}, 200, 'BIG: 200');
my $bj = $res[1]{json} // {};
my $bad = 0;
for my $i (1 .. $NBIG) {
    my $v = $i % 3 == 0 ? $i * 7 : "v$i" . ('x' x ($i % 41));
    $bad++ unless defined $bj->{"k$i"} && $bj->{"k$i"} eq $v;
}
is($bad, 0, "BIG: all $NBIG pairs intact");
is_deeply($bj->{nested}, {a => 1, b => 'two'}, 'BIG: the nested array intact');
is(($res[0]{json}{customer} // '') . ',' . ($res[2]{json}{customer} // ''), 'before,after',
   'the replies around it intact');
is(post($ng, 'validate', body('S43', 'again'))->{json}{customer}, 'again',
   'the arena is used again after an overflow');

# the connection drops in the middle of a reply
my $conns = events('connection');
@req = ({method => 'POST', path => '/vouchers/redeem', body => body('CUT1', 'cut')});
@res = http_parallel($ng->port, \@req, concurrency => 1, timeout => 15);
is($res[0]{status}, 503, 'dropped mid-reply: 503');
is($res[0]{json}{reason}, 'store_unavailable', 'reason store_unavailable');
ok(events('cut') == 1, 'the fake cut one reply');
ok(wait_until(sub { post($ng, 'validate', body('S44', 'back'))->{status} == 200 },
              timeout => 15), 'back after the drop');
ok(events('connection') > $conns, 'on a new connection');

# a reply that stops half way: the command times out, the context goes
@res = http_parallel($ng->port, [
    {method => 'POST', path => '/vouchers/validate', body => body('STALL1', 'stall')}],
    concurrency => 1, timeout => 15);
is($res[0]{status}, 503, 'stalled mid-reply: 503');
is($res[0]{json}{reason}, 'store_timeout', 'reason store_timeout');
ok(wait_until(sub { post($ng, 'validate', body('S45', 'back2'))->{status} == 200 },
              timeout => 15), 'back after the timeout');

# a client that leaves while its reply is still coming in pieces: the
# reply is read to its end and freed with no request to give it to
my $raw = "POST /vouchers/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . "Content-Length: %d\r\nConnection: close\r\n\r\n%s";
my $b = JSON::PP->new->encode(body('BIG2', 'gone'));
http_raw($ng->port, sprintf($raw, length $b, $b), timeout => 0.05);
sleep 0.5;
$r = post($ng, 'validate', body('S46', 'last'));
is($r->{json}{customer}, 'last', 'a detached reply read and freed, the next one whole');

$ng->stop;
$ng->check_log('no alert, and no sanitizer report');

done_testing;
