package VoucherT;

# Voucher-specific helpers on top of VT.pm: the standard API locations,
# seeding campaigns and codes through the admin functions, snapshots of
# what Redis holds (to prove that a refused request changed nothing).

use strict;
use warnings;
use Exporter 'import';
use VT;

our @EXPORT = qw(api_server campaign code post snapshot start_pair
                 redis_now);

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

1;
