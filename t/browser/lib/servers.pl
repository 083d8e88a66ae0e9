#!/usr/bin/env perl
# servers.pl: Redis and nginx for the browser tests, started by the VT
# harness on free 127.0.0.1 ports.  nginx serves dashboard/ at /dashboard/
# the edge API at /vouchers/ and the admin API at /v1/, as docs/dashboard.md
# shows.  Argument (optional): JSON {"admin_port": PORT}, or
# {"voucherd": 1, "token": SECRET}: voucherd (build/worker, or
# VOUCHER_WORKER_BIN) serving its admin API there with that bearer token
# (named "marketer"); "voucherd_error" in the first line says why not.
# With voucherd, "webhook": URL adds a webhook channel named "hook" that
# posts there (its secret "hook-secret-0123456789"), "phone_country" sets
# phone.country.
#
# Prints one JSON line: {"nginx": PORT, "redis": PORT, "servroot": DIR}.
# Then reads JSON lines on stdin, answering each with one line:
#   {"id": N, "redis": ["FCALL", ...]}  -> {"id": N, "reply": ...}
#                                          (a Redis error: {"id": N, "error": "..."})
#   {"id": N, "error_log": 1}           -> {"id": N, "reply": "<nginx error log>"}
#   {"id": N, "redis_stop": 1}, {"id": N, "redis_start": 1}
#                                       -> Redis stopped; started again, empty
# At end of input (the test ended, or died) it stops what it started.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../../lib";
use JSON::PP;
use VT;
use VoucherT;
use WorkerT;

$| = 1;
my $json = JSON::PP->new->canonical->allow_nonref;

# the admin API's address (voucherd), or a free port nobody listens on:
# nginx then answers 502, as when voucherd is down
my $opt = @ARGV ? JSON::PP->new->decode($ARGV[0]) : {};
my $admin = $opt->{admin_port} // VT::free_port();

my $redis = VT::Redis->start;
$redis->load_functions;
my $root = VT::root_dir();
my $ng = VT::Nginx->start(
    redis  => $redis,
    http   => 'voucher_redis 127.0.0.1:%%REDIS_PORT%%;',
    server => <<"EOT");
        location /dashboard/ {
            alias $root/dashboard/;
            types {
                text/html html;
                text/css css;
                text/javascript js mjs;
                application/json json;
                image/svg+xml svg;
                image/png png;
            }
            charset utf-8;
            charset_types text/css text/javascript application/json;
            add_header Content-Security-Policy "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'" always;
            add_header Permissions-Policy "camera=(self)" always;
            add_header X-Content-Type-Options nosniff always;
        }
        location /v1/ {
            proxy_pass http://127.0.0.1:$admin;
            proxy_set_header Host localhost;
            client_max_body_size 1m;
        }
        location = /vouchers/validate {
            voucher_api validate;
            voucher_lockout \$binary_remote_addr failures=5 window=10m ban=1m name=guess;
        }
        location = /vouchers/redeem {
            voucher_api redeem;
            voucher_lockout \$binary_remote_addr failures=5 window=10m ban=1m name=guess;
        }
EOT

my ($daemon, $derr);
if ($opt->{voucherd}) {
    my $bin = WorkerT::bin_dir() . '/voucherd';
    if (!-x $bin) {
        $derr = "$bin is not built (make -C worker)";
    } else {
        my $w = worker_setup(redis => $redis);
        my $tokens = $w->dir . '/tokens';
        write_text($tokens, "marketer $opt->{token}\n");
        chmod 0600, $tokens;
        my %more;
        if ($opt->{webhook}) {
            my $secret = $w->dir . '/hook.secret';
            write_text($secret, "hook-secret-0123456789\n");
            $more{channels} = { hook => { type => 'webhook',
                                          url => $opt->{webhook},
                                          secret_file => $secret } };
        }
        $more{phone} = { country => $opt->{phone_country} }
            if $opt->{phone_country};
        $w->reconfigure(admin => { listen => "127.0.0.1:$admin",
                                   tokens_file => $tokens },
                        daemon => { poll_ms => 100 }, %more);
        $daemon = eval { WorkerT::Daemon->start($w) };
        if (!$daemon) {
            my @l = grep { /\S/ } split /\n/, $@;
            $derr = 'voucherd did not start: ' . ($l[-1] // '');
        } elsif ($daemon->log !~ /admin API on/) {
            $derr = 'this voucherd has no admin API';
        }
    }
}

print $json->encode({ nginx => $ng->port, redis => $redis->port,
                      admin => $admin, servroot => $ng->servroot,
                      ($derr ? (voucherd_error => $derr) : ()) }), "\n";

sub plain {
    my $v = shift;
    return { error => "$v" } if VT::Redis::is_error($v);
    return [ map { plain($_) } @$v ] if ref $v eq 'ARRAY';
    return $v;
}

while (my $line = <STDIN>) {
    next unless $line =~ /\S/;
    my $q = eval { $json->decode($line) };
    if (!$q) {
        print $json->encode({ error => "bad request line: $@" }), "\n";
        next;
    }
    my %a = (id => $q->{id});
    if ($q->{redis}) {
        my $r = plain($redis->cmd(@{ $q->{redis} }));
        if (ref $r eq 'HASH') { $a{error} = $r->{error} } else { $a{reply} = $r }
    } elsif ($q->{redis_stop}) {
        $redis->stop;
        $a{reply} = 'stopped';
    } elsif ($q->{redis_start}) {
        $redis->start_again;
        $redis->load_functions;
        $a{reply} = 'started';
    } elsif ($q->{error_log}) {
        $a{reply} = $ng->error_log;
    } else {
        $a{error} = 'unknown request';
    }
    print $json->encode(\%a), "\n";
}
$daemon->stop if $daemon;
$ng->stop;
$redis->stop;
