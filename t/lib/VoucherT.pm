package VoucherT;

# Voucher-specific helpers on top of VT.pm: the standard API locations,
# seeding campaigns and codes through the admin functions, snapshots of
# what Redis holds (to prove that a refused request changed nothing).

use strict;
use warnings;
use Exporter 'import';
use VT;
use IO::Select;
use IO::Socket::INET;

our @EXPORT = qw(api_server campaign code post snapshot start_pair
                 redis_now http_pipeline);

# the three API locations, in a server{} block
sub api_server {
    my (%o) = @_;
    my $extra = $o{extra} // '';
    return <<"EOT";
        location = /vouchers/validate { voucher_api validate; $extra }
        location = /vouchers/redeem   { voucher_api redeem; $extra }
        location = /vouchers/rollback { voucher_api rollback; $extra }
EOT
}

sub _admin {
    my ($redis, $fn, $key, %f) = @_;
    my $r = $redis->cmd('FCALL', $fn, 1, $key, map { ($_, $f{$_}) } sort keys %f);
    die "$fn $key: " . $r->message . "\n" if ref $r && ref $r ne 'ARRAY'
        && $r->isa('VT::Redis::Error');
    return $r;
}

# campaign($redis, 'id', kind => 'percent', value => 1000, ns => 'v')
sub campaign {
    my ($redis, $id, %f) = @_;
    my $ns = delete $f{ns} // 'v';
    return _admin($redis, 'voucher_campaign_set', "{$ns}:k:$id", %f);
}

sub code {
    my ($redis, $code, %f) = @_;
    my $ns = delete $f{ns} // 'v';
    return _admin($redis, 'voucher_code_set', "{$ns}:c:$code", %f);
}

# post($ng, 'redeem', {code => ...}, headers => {...})
sub post {
    my ($ng, $op, $body, %o) = @_;
    return http($ng->port, 'POST', "/vouchers/$op", body => $body, %o);
}

# what a refused request must leave untouched
sub snapshot {
    my ($redis, $ns) = @_;
    $ns //= 'v';
    my $keys = $redis->cmd('KEYS', "{$ns}:*");
    my %s = (dbsize => $redis->cmd('DBSIZE'),
             xlen => $redis->cmd('XLEN', "{$ns}:log") // 0);
    for my $k (sort @$keys) {
        my $t = $redis->cmd('TYPE', $k);
        $s{$k} = $t eq 'hash' ? join(',', @{ $redis->cmd('HGETALL', $k) })
               : $t eq 'string' ? $redis->cmd('GET', $k)
               : $t;
    }
    return \%s;
}

sub redis_now {
    my ($redis) = @_;
    return $redis->cmd('TIME')->[0];
}

# a Redis with the functions loaded and an nginx with the API in front
sub start_pair {
    my (%o) = @_;
    my $redis = VT::Redis->start(%{ $o{redis_opts} // {} });
    $redis->load_functions;
    my $ng = VT::Nginx->start(
        redis => $redis,
        http => ($o{http} // 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;'),
        server => ($o{server} // api_server()),
        workers => ($o{workers} // 1),
    );
    return ($redis, $ng);
}

# Many requests pipelined on a few keep-alive connections (no port churn):
# http_pipeline($port, [ [method, path, body], ... ], conns => 20)
# returns [status, body] pairs in request order.  Responses must carry a
# Content-Length, as every answer of the module does.
sub http_pipeline {
    my ($port, $reqs, %o) = @_;
    my $conns = $o{conns} // 16;
    my @res;
    my @slices = map { [] } 1 .. $conns;
    push @{ $slices[$_ % $conns] }, $_ for 0 .. $#$reqs;

    my (%out, %in, %want, %idx, %sock);
    my $sel = IO::Select->new;
    for my $c (0 .. $conns - 1) {
        next unless @{ $slices[$c] };
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp') or die "connect: $!";
        $s->blocking(0);
        my $buf = '';
        for my $i (@{ $slices[$c] }) {
            my ($m, $path, $body) = @{ $reqs->[$i] };
            $body //= '';
            $buf .= "$m $path HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  . "Content-Length: " . length($body) . "\r\n\r\n$body";
        }
        $out{$s} = $buf; $in{$s} = ''; $idx{$s} = [@{ $slices[$c] }];
        $sock{$s} = $s;
        $sel->add($s);
    }
    my $deadline = time + ($o{timeout} // 120);
    while ($sel->count && time < $deadline) {
        my ($r, $w) = IO::Select->select($sel,
            IO::Select->new(grep { length $out{$_} } $sel->handles), undef, 1);
        for my $s (@{ $w // [] }) {
            my $n = syswrite($s, $out{$s}, 65536);
            substr($out{$s}, 0, $n, '') if $n;
        }
        for my $s (@{ $r // [] }) {
            my $n = sysread($s, my $chunk, 262144);
            if (!$n) { $sel->remove($s); close $s; next }
            $in{$s} .= $chunk;
            while ($in{$s} =~ /\A(HTTP\/1\.1 (\d+)[^\r]*\r\n(.*?)\r\n\r\n)/s) {
                my ($head, $st, $hdrs) = ($1, $2, $3);
                my ($len) = $hdrs =~ /^Content-Length:\s*(\d+)/mi;
                $len //= 0;
                last if length($in{$s}) < length($head) + $len;
                my $body = substr($in{$s}, length $head, $len);
                substr($in{$s}, 0, length($head) + $len, '');
                $res[shift @{ $idx{$s} }] = [$st, $body];
            }
            if (!@{ $idx{$s} }) { $sel->remove($s); close $s }
        }
    }
    return \@res;
}

1;
