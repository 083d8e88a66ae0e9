#!/usr/bin/perl
# docs/ against the code: every directive of the module's command table has
# its own heading in docs/directives.md (alphabetical, with Syntax, Default,
# Context and an example), every variable is in its variables table, and
# every reason of the reply table is in docs/api.md's reasons table.  No
# server is started.

use strict;
use warnings;

use FindBin ();
use Test::More;

my $root = "$FindBin::Bin/..";

sub slurp {
    my ($f) = @_;
    open my $fh, '<', "$root/$f" or die "$f: $!\n";
    local $/;
    return scalar <$fh>;
}

my $src = join '', map { slurp("ngx_voucher_module/$_") }
    grep { /\.c\z/ } do {
        opendir my $d, "$root/ngx_voucher_module" or die "$!\n";
        readdir $d;
    };

# the command table
my ($table) = $src =~ /ngx_command_t\s+ngx_http_voucher_commands\[\]\s*=\s*\{
                      (.*?) ngx_null_command/sx;
ok($table, 'the command table is found');
my %cmd = map { $_ => 1 } $table =~ /ngx_string\("(voucher_\w+)"\)/g;
cmp_ok(scalar keys %cmd, '>=', 29, 'the command table has the directives')
    or diag join ' ', sort keys %cmd;

my $dir = slurp('docs/directives.md');
my @heads = $dir =~ /^## (voucher_\w+)\s*$/mg;
my %head = map { $_ => 1 } @heads;

for my $c (sort keys %cmd) {
    ok($head{$c}, "docs/directives.md has a heading for $c");
}
for my $h (@heads) {
    ok($cmd{$h}, "docs/directives.md's $h is a directive of the module");
}
is_deeply(\@heads, [ sort @heads ], 'the directives are in alphabetical order');

# each directive's section: Syntax / Default / Context, and an example
my @sections = split /^## /m, $dir;
for my $s (@sections) {
    my ($name) = $s =~ /\A(voucher_\w+)\s*\n/ or next;
    like($s, qr/^\| Syntax \| `\Q$name\E[ ;]/m, "$name: Syntax");
    like($s, qr/^\| Default \| /m, "$name: Default");
    like($s, qr/^\| Context \| /m, "$name: Context");
    like($s, qr/^```nginx\n.*\Q$name\E/ms, "$name: an example");
}

# the variables
my @vars = $src =~ /ngx_string\("(voucher_\w+)"\),\s*\n\s*offsetof/g;
push @vars, $src =~ /ngx_str_t\s+\w+\s*=\s*\n?\s*ngx_string\("(voucher_\w+)"\)/g;
push @vars, 'voucher_body_NAME' if $src =~ /ngx_string\("voucher_body_"\)/;
cmp_ok(scalar @vars, '>=', 9, 'the variables are found') or diag "@vars";
my ($vtab) = $dir =~ /^## Variables\n(.*?)^## /ms;
for my $v (@vars) {
    like($vtab // '', qr/^\| `\$\Q$v\E`/m, "docs/directives.md's variables: \$$v");
}

# the reasons
my $reply = slurp('ngx_voucher_module/ngx_http_voucher_reply.c');
my @reasons = $reply =~ /ngx_http_voucher_reason\("(\w+)", \d{3},/g;
cmp_ok(scalar @reasons, '>=', 40, 'the reason table is found');
my $api = slurp('docs/api.md');
my ($rtab) = $api =~ /^## Reasons and HTTP statuses\n(.*?)(?:^## |\z)/ms;
my %doc;
for my $row (split /\n/, $rtab // '') {
    my ($first, $status) = $row =~ /^\| (.*?) \| (\d{3}) \|/ or next;
    $doc{$_} //= $status for $first =~ /`(\w+)`/g;
}
my %status = $reply =~ /ngx_http_voucher_reason\("(\w+)", (\d{3}),/g;
for my $r (@reasons) {
    is($doc{$r}, $status{$r}, "docs/api.md: $r with its status $status{$r}");
}

# every relative link between the documents reaches a file, and a heading
# when it names one (GitHub's anchors: lower case, punctuation dropped,
# spaces to dashes)
sub anchors {
    my ($text) = @_;
    my %a;
    my $in = 0;
    for my $l (split /\n/, $text) {
        $in = !$in if $l =~ /^```/;
        next if $in || $l !~ /^#+ (.*)$/;
        my $h = lc $1;
        $h =~ s/[^\w\- ]//g;
        $h =~ tr/ /-/;
        $a{$h} = 1;
    }
    return \%a;
}
my @docs = ('README.md', 'CONTRIBUTING.md', 'bench/README.md',
            'bench/FINDINGS.md', map { "docs/$_" } grep { /\.md\z/ } do {
                opendir my $d, "$root/docs" or die "$!\n"; readdir $d });
for my $f (@docs) {
    my $text = slurp($f);
    (my $dir = $f) =~ s{[^/]*\z}{};
    my $bad = 0;
    while ($text =~ /\]\(([^)\s]+)\)/g) {
        my $l = $1;
        next if $l =~ m{^[a-z]+:};
        my ($path, $frag) = split /#/, $l, 2;
        my $target = $path eq '' ? $f : "$dir$path";
        1 while $target =~ s{[^/]+/\.\./}{};
        if (!-e "$root/$target") {
            diag "$f: $l: no such file"; $bad++; next;
        }
        next unless defined $frag && $target =~ /\.md\z/;
        if (!anchors(slurp($target))->{$frag}) {
            diag "$f: $l: no such heading"; $bad++;
        }
    }
    is($bad, 0, "$f: every relative link reaches its file and heading");
}

done_testing;
