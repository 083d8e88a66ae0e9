# The positional "ok" of validate, redeem and reserve ({'ok', mask,
# values..., [k, v]*}, redis/lib/evaluate.lua's ok_reply()) is rendered exactly
# as the same answer in pairs, which is how older libraries sent it (and
# how an older idempotency record still replays): for every mask, through
# the API (body, status, Idempotent-Replayed) and through the gate (its
# variables).  A positional reply that does not add up is a 500
# internal_error, logged, and the worker goes on.
#
# A fake Redis in Perl answers FCALL by the code in its key:
#   P<mask>  the positional reply of that mask
#   K<mask>  the same answer as pairs
#   BAD<n>   a malformed positional reply (see @BAD)
# The values of both depend on the mask only, so the two answers of a mask
# must be the same bytes.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);
use VT;
use VoucherT;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 64, Proto => 'tcp', ReuseAddr => 1)
    or die "listen: $!";
my $PORT = $srv->sockport;

# --- the fake Redis --------------------------------------------------------

sub bulk { VT::resp_bulk(@_) }
sub int_ { ":$_[0]\r\n" }
sub arr  { VT::resp_arr(@_) }

# the values of mask $m, in the order of the reply: [name, bit, RESP]
sub values_of {
    my ($m) = @_;
    my $kind = $m & 4 ? 'percent' : $m & 2 ? 'amount' : 'gift_card';
    return (
        [code => 0, bulk("X$m")],
        [campaign => 0, bulk("spring \"sale\" \xc3\xa9\x01")],
        [customer => 1, bulk("cu$m")],
        [discount => 0, int_(100 + $m)],
        [kind => 0, bulk($kind)],
        [value => 2, int_(300)],
        [percent_bp => 4, int_(1000)],
        [eligible_amount => 0, int_(2000)],
        [cap => 8, int_(500)],
        [capped_by => 16, bulk('cap')],
        [order_amount => 0, int_(3000)],
        [amount_after => 0, int_(2900 - 3 * $m)],      # negative from 967
        [uses_left => 32, int_(0)],
        [balance => 64, int_(7)],
        [expires_at => 128, int_(1800000000)],
        [redemption_id => 256, bulk("1700000000000-$m")],
        [hold_expires_at => 512, int_(1700000060)],
    );
}

# pairs after the values, on some masks
sub extra_of {
    my ($m) = @_;
    my @e;
    push @e, bulk('_limit'), bulk('PASSED') if $m % 3 == 0;
    push @e, bulk('note'), bulk("n$m") if $m % 5 == 0;
    return @e;
}

sub positional {
    my ($m) = @_;
    my @v = map { $_->[2] } grep { !$_->[1] || $m & $_->[1] } values_of($m);
    return arr(bulk('ok'), int_($m), @v, extra_of($m));
}

sub pairs {
    my ($m) = @_;
    my (@top, @comp);
    for my $f (grep { !$_->[1] || $m & $_->[1] } values_of($m)) {
        my ($name, undef, $resp) = @$f;
        if ($name =~ /^(kind|value|percent_bp|eligible_amount|cap|capped_by)$/) {
            push @comp, bulk($name), $resp;
            next;
        }
        push @top, bulk('computation'), 'COMP' if $name eq 'order_amount';
        push @top, bulk('status'), bulk('reserved')
            if $name eq 'hold_expires_at';
        push @top, bulk($name), $resp;
    }
    my $comp = arr(@comp);
    @top = map { $_ eq 'COMP' ? $comp : $_ } @top;
    push @top, bulk('replayed'), int_(1) if $m & 1024;
    return arr(bulk('ok'), @top, extra_of($m));
}

my @V4 = map { $_->[2] } grep { !$_->[1] || 4 & $_->[1] } values_of(4);
our @BAD = (
    arr(bulk('ok'), int_(4)),                                  # mask only
    arr(bulk('ok'), int_(4 + 32), @V4),                        # one short
    arr(bulk('ok'), int_(4), @V4, bulk('_limit')),             # odd pair
    arr(bulk('ok'), int_(4 + 2048), @V4),                      # unknown bit
    arr(bulk('ok'), int_(-1), @V4),                            # negative
    arr(bulk('ok'), int_(6), @V4[0 .. 3], int_(1), @V4[4 .. $#V4]),
    arr(bulk('ok'), int_(4), @V4[0 .. 1], bulk('100'), @V4[3 .. $#V4]),
    arr(bulk('ok'), int_(4), int_(7), @V4[1 .. $#V4]),         # code a number
    arr(bulk('ok'), int_(4), @V4[0 .. 1], bulk(undef), @V4[3 .. $#V4]),
    arr(bulk('ok'), int_(4), @V4[0 .. 3], arr(bulk('a'), int_(1)),
        @V4[5 .. $#V4]),                                       # nested
    arr(bulk('ok'), int_(4), @V4[0 .. $#V4 - 1]),              # last missing
);

sub answer {
    my ($cmd) = @_;
    my $name = uc $cmd->[0];
    return "-ERR Function not found\r\n"
        if $name eq 'FCALL' && $cmd->[1] =~ /^voucher_version(?:_\w+)?\z/;
    return bulk('voucher') if $name eq 'FUNCTION';
    if ($name eq 'FCALL' && ($cmd->[3] // '') eq '{v}:log') {
        return arr(bulk('ok'), bulk('status'), bulk('confirmed'));
    }
    if ($name eq 'FCALL' && ($cmd->[3] // '') =~ /^\{v\}:c:(.*)$/) {
        my $code = $1;
        return positional($1) if $code =~ /^P(\d+)$/;
        return pairs($1) if $code =~ /^K(\d+)$/;
        return $BAD[$1] if $code =~ /^BAD(\d+)$/ && $BAD[$1];
        return arr(bulk('not_found'), bulk('code'), bulk($code));
    }
    return "-ERR unknown command '$name'\r\n";
}

sub parse_cmd { VT::resp_parse_cmd(@_) }

sub serve {
    my ($c) = @_;
    my $buf = '';
    while (sysread($c, $buf, 65536, length $buf)) {
        my $out = '';
        while (defined(my $cmd = parse_cmd(\$buf))) {
            $out .= answer($cmd);
        }
        while (length $out) {
            my $w = syswrite($c, $out);
            return unless defined $w;
            substr($out, 0, $w, '');
        }
    }
}

my $fake = VT::fork_server($srv, \&serve);

END { local $?; if ($fake) { kill 'TERM', -$fake; waitpid($fake, 0) } }

# --- nginx in front of it ----------------------------------------------------

my $UP = VT::free_port();

my $gate = <<'EOT';
            voucher_code $arg_coupon;
            voucher_order_amount 3000;
            proxy_set_header X-Seen "st=$voucher_status r=$voucher_reason c=$voucher_campaign d=$voucher_discount a=$voucher_amount_after id=$voucher_redemption_id h=$voucher_hold_expires_at";
EOT

my $ng = VT::Nginx->start(
    vars => {RP => $PORT, UP => $UP},
    http => <<"EOT",
    voucher_redis 127.0.0.1:%%RP%% connections=1 timeout=3s connect_timeout=2s;
    server {
        listen 127.0.0.1:%%UP%%;
        location / { return 200 "\$http_x_seen"; }
    }
EOT
    server => api_server() . <<"EOT");
        location = /vouchers/reserve { voucher_api reserve; }
        location /peek/ {
            voucher_gate validate;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
        location /hold/ {
            voucher_gate redeem;
$gate
            proxy_pass http://127.0.0.1:%%UP%%;
        }
EOT

my @OPS = qw(validate redeem reserve);
sub body { {code => $_[0], order => {amount => 3000}} }

my $r;
ok(wait_until(sub { ($r = post($ng, 'validate', body('P4')))->{status} == 200 },
              timeout => 20), 'ready') or diag explain $r;

# a few answers written out, byte for byte
is($r->{body}, '{"valid":true,"code":"X4","campaign":"spring \"sale\" '
               . "\xc3\xa9" . '\u0001","discount":104,"computation":'
               . '{"kind":"percent","percent_bp":1000,"eligible_amount":2000},'
               . '"order_amount":3000,"amount_after":2888}',
   'mask 4, written out');
$r = post($ng, 'reserve', body('P' . (1 + 2 + 8 + 16 + 32 + 64 + 128 + 256 + 512 + 1024)));
is($r->{body}, '{"reserved":true,"code":"X2043","campaign":"spring \"sale\" '
               . "\xc3\xa9" . '\u0001","customer":"cu2043","discount":2143,'
               . '"computation":{"kind":"amount","value":300,'
               . '"eligible_amount":2000,"cap":500,"capped_by":"cap"},'
               . '"order_amount":3000,"amount_after":-3229,"uses_left":0,'
               . '"balance":7,"expires_at":1800000000,'
               . '"redemption_id":"1700000000000-2043","status":"reserved",'
               . '"hold_expires_at":1700000060}',
   'mask 2043, written out (every bit but 4)');
is($r->{headers}{'idempotent-replayed'}, 'true', '... replayed: the header');
$r = post($ng, 'redeem', body('P' . (4 + 1024)));
is($r->{headers}{'idempotent-replayed'}, 'true', 'bit 1024 alone: the header');
$r = post($ng, 'redeem', body('P4'));
ok(!defined $r->{headers}{'idempotent-replayed'}, 'without it: none');

# every mask the library may send: positional and pairs, the same bytes
# and the same Idempotent-Replayed.  (Not pipelined: nginx 1.22 does
# pointer arithmetic on an unset r->method_end when a pipelined request
# line straddles its header buffer, which UBSan stops the worker for.)
my (@masks, @reqs);
for my $m (0 .. 2047) {
    next if ($m & 6) == 6;
    push @masks, $m;
    my $op = $OPS[$m % 3];
    push @reqs, map { {method => 'POST', path => "/vouchers/$op",
                       body => body("$_$m")} } qw(P K);
}
my @res = VT::http_parallel($ng->port, \@reqs, concurrency => 32,
                            timeout => 120);
my @bad;
for my $i (0 .. $#masks) {
    my ($p, $k) = @res[2 * $i, 2 * $i + 1];
    push @bad, $masks[$i]
        unless $p && $k && $p->{status} == 200 && $k->{status} == 200
               && $p->{body} eq $k->{body}
               && ($p->{headers}{'idempotent-replayed'} // '') eq
                  ($masks[$i] & 1024 ? 'true' : '')
               && ($k->{headers}{'idempotent-replayed'} // '') eq
                  ($masks[$i] & 1024 ? 'true' : '');
}
is_deeply(\@bad, [], scalar(@masks) . ' masks: the same answer as pairs')
    or diag explain [map { [$_, @res[2 * $_, 2 * $_ + 1]] } @bad[0 .. 2]];
ok(!(grep { $_->{body} =~ /"(replayed|_limit)"/ } grep { defined } @res),
   'neither "replayed" nor "_limit" in a body');

# the gate reads its variables from either form alike
my @gbad;
for my $m (grep { $_ % 7 == 0 || $_ > 2030 } @masks) {
    my $loc = $m & 256 ? 'hold' : 'peek';
    my $p = http($ng->port, 'GET', "/$loc/x?coupon=P$m");
    my $k = http($ng->port, 'GET', "/$loc/x?coupon=K$m");
    push @gbad, [$m, $p->{body}, $k->{body}]
        unless $p->{status} == 200 && $k->{status} == 200
               && $p->{body} eq $k->{body} && $p->{body} =~ /d=\d/;
}
is_deeply(\@gbad, [], 'gate: the same variables from both forms')
    or diag explain [@gbad[0 .. 2]];
$r = http($ng->port, 'GET', '/hold/x?coupon=P' . (256 + 512 + 2 + 1));
is($r->{body}, 'st=reserved r=ok c=spring "sale" ' . "\xc3\xa9\x01"
               . ' d=871 a=587 id=1700000000000-771 h=1700000060',
   'gate: a reservation\'s variables, written out');
$r = http($ng->port, 'GET', '/hold/x?coupon=P' . (256 + 512 + 1024 + 2));
like($r->{body}, qr/^st=replayed /, 'gate: bit 1024 is a replay');

# replies that do not add up
for my $i (0 .. $#BAD) {
    for my $op (@OPS) {
        $r = post($ng, $op, body("BAD$i"));
        is($r->{status}, 500, "BAD$i $op: 500");
        is($r->{json}{reason}, 'internal_error', "BAD$i $op: internal_error");
    }
    $r = http($ng->port, 'GET', "/hold/x?coupon=BAD$i");
    ok($r->{status} == 500 && $r->{body} !~ /st=/,
       "BAD$i through the gate: 500, the upstream not called");
}
my $log = $ng->error_log;
my $n = () = $log =~ /unexpected reply from redis/g;
is($n, 4 * @BAD, 'every one logged');
unlike($log, qr/signal|alert/, 'no worker died');
is(post($ng, 'validate', body('P4'))->{status}, 200, 'and the next is fine');

done_testing;
