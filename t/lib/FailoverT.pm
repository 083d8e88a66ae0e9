package FailoverT;

# A Redis replication group watched by Sentinels, real processes on
# loopback, and what the failover tests do with it: redeems under load,
# each with its own idempotency key, written down as they are answered;
# every one not answered 200 sent again with its key until it is; then
# what Redis holds, counted every way it can be.

use strict;
use warnings;
use Exporter 'import';
use POSIX ();
use Time::HiRes ();
use VT;
use VoucherT;

our @EXPORT = qw(start_group sentinel_addrs master_of wait_master linked
                 load_start load_stop settle census acked_lost);

sub linked {
    my ($r) = @_;
    my $i = eval { $r->info('replication') } or return 0;
    return ($i->{role} // '') eq 'slave'
        && ($i->{master_link_status} // '') eq 'up';
}

# start_group(replicas => 2, sentinels => 3, args => [...]): {master,
# replicas => [...], nodes => [...], sentinels => [...]}, every replica
# in sync and every Sentinel aware of the others and of the replicas
sub start_group {
    my (%o) = @_;
    my $nrep = $o{replicas} // 2;
    my $nsen = $o{sentinels} // 3;
    my @args = @{ $o{args} // [] };
    my $m = VT::Redis->start(args => [@args]);
    my @r = map {
        VT::Redis->start(args => [@args, '--replicaof', '127.0.0.1', $m->port])
    } 1 .. $nrep;
    VT::wait_until(sub { !grep { !linked($_) } @r }, timeout => 20)
        or die "FailoverT: the replicas did not sync\n";
    my @s = map {
        VT::Redis->start(sentinel => {master_port => $m->port,
                                      quorum => $o{quorum} // 2,
                                      down_after => $o{down_after} // 500,
                                      failover_timeout => $o{failover_timeout}
                                                          // 6000})
    } 1 .. $nsen;
    VT::wait_until(sub {
        for my $s (@s) {
            my $rep = $s->cmd('SENTINEL', 'replicas', 'm');
            my $sen = $s->cmd('SENTINEL', 'sentinels', 'm');
            return 0 unless ref $rep eq 'ARRAY' && @$rep == $nrep
                         && ref $sen eq 'ARRAY' && @$sen == $nsen - 1;
        }
        return 1;
    }, timeout => 30, interval => 0.2)
        or die "FailoverT: the Sentinels did not find each other\n";
    return {master => $m, replicas => \@r, nodes => [$m, @r], sentinels => \@s};
}

sub sentinel_addrs {
    my ($g) = @_;
    return join ',', map { '127.0.0.1:' . $_->port } @{ $g->{sentinels} };
}

# the node the first Sentinel names, as one of ours
sub master_of {
    my ($g) = @_;
    for my $s (@{ $g->{sentinels} }) {
        my $a = eval { $s->cmd('SENTINEL', 'get-master-addr-by-name', 'm') };
        next unless ref $a eq 'ARRAY';
        my ($n) = grep { $_->running && $_->port == $a->[1] } @{ $g->{nodes} };
        return $n if $n;
    }
    return undef;
}

# waits until every Sentinel names a master other than $old, and it is
# the master by its own ROLE
sub wait_master {
    my ($g, $old, %o) = @_;
    my $new;
    VT::wait_until(sub {
        my %p;
        for my $s (@{ $g->{sentinels} }) {
            next unless $s->running;
            my $a = eval { $s->cmd('SENTINEL', 'get-master-addr-by-name', 'm') };
            return 0 unless ref $a eq 'ARRAY';
            $p{ $a->[1] } = 1;
        }
        return 0 unless keys %p == 1;
        my ($port) = keys %p;
        return 0 if $port == $old->port;
        ($new) = grep { $_->running && $_->port == $port } @{ $g->{nodes} };
        return 0 unless $new;
        my $role = eval { $new->cmd('ROLE') };
        return ref $role eq 'ARRAY' && $role->[0] eq 'master';
    }, timeout => $o{timeout} // 30, interval => 0.05);
    return $new;
}

# A child sends rounds of 10 redeems (5 at a time), each with its own key
# (prefix, then round and number) and customer, and writes "key status reason" for each answer to $file
# until the file "$file.stop" exists.
sub load_start {
    my ($ng, $file, %o) = @_;
    my $code = $o{code} // 'FAIL';
    my $prefix = $o{prefix} // 'k';
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $out, '>', $file or die "$file: $!";
        $out->autoflush(1);
        my $round = 0;
        until (-e "$file.stop") {
            $round++;
            my @keys = map { "$prefix$round-$_" } 1 .. 10;
            my @req = map {
                {method => 'POST', path => '/vouchers/redeem',
                 headers => {'Idempotency-Key' => $_},
                 body => {code => $code, customer => "c-$_",
                          order => {amount => 1000}}}
            } @keys;
            my @res = http_parallel($ng->port, \@req, concurrency => 5,
                                    timeout => 20);
            for my $i (0 .. $#keys) {
                my $r = $res[$i];
                printf $out "%s %s %s\n", $keys[$i], $r->{status},
                    ($r->{json} && $r->{json}{reason}) // '-';
            }
            Time::HiRes::sleep($o{pause} // 0.02);
        }
        close $out;
        POSIX::_exit(0);
    }
    return $pid;
}

# stops the load; returns {key => [status, reason, when]} (the first answer)
sub load_stop {
    my ($pid, $file) = @_;
    open my $fh, '>', "$file.stop" or die;
    close $fh;
    waitpid $pid, 0;
    my %seen;
    open my $in, '<', $file or die "$file: $!";
    while (<$in>) {
        chomp;
        my ($k, $st, $why) = split / /;
        $seen{$k} //= [$st, $why];
    }
    close $in;
    return \%seen;
}

# every key not answered 200 is sent again with the same key until it is;
# returns how many were retried
sub settle {
    my ($ng, $seen, %o) = @_;
    my $code = $o{code} // 'FAIL';
    my $n = 0;
    for my $k (sort keys %$seen) {
        next if $seen->{$k}[0] == 200;
        $n++;
        my $ok = VT::wait_until(sub {
            my $r = http($ng->port, 'POST', '/vouchers/redeem',
                         headers => {'Idempotency-Key' => $k},
                         body => {code => $code, customer => "c-$k",
                                  order => {amount => 1000}});
            return $r->{status} == 200;
        }, timeout => 20, interval => 0.1);
        die "FailoverT: $k never settled\n" unless $ok;
    }
    return $n;
}

# what the master holds, counted every way
sub census {
    my ($r, $code) = @_;
    $code //= 'FAIL';
    my $count = sub {
        my ($pattern) = @_;
        my ($cursor, $n) = (0, 0);
        do {
            my $res = $r->cmd('SCAN', $cursor, 'MATCH', $pattern, 'COUNT', 1000);
            $cursor = $res->[0];
            $n += @{ $res->[1] };
        } while ($cursor ne '0');
        return $n;
    };
    return {uses => $r->cmd('HGET', "{v}:c:$code", 'u') // 0,
            redeemed => $r->cmd('HGET', '{v}:k:c', 'redeemed') // 0,
            trail => $r->cmd('XLEN', '{v}:log') // 0,
            customers => $count->('{v}:u:*'),
            idempotency => $count->('{v}:i:r:*')};
}

# keys answered 200 whose redemption the master does not hold
sub acked_lost {
    my ($r, $seen) = @_;
    my @acked = grep { $seen->{$_}[0] == 200 } sort keys %$seen;
    my @exists = $r->pipeline(map { ['EXISTS', "{v}:i:r:$_"] } @acked);
    return scalar grep { !$exists[$_] } 0 .. $#acked;
}

1;
