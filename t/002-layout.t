#!/usr/bin/perl
# The module's files use each other without a circle: the graph of which
# .c file uses a function defined in another (a call, or a handler taken
# by name) has no cycle.  No server is started.  VOUCHER_LAYOUT_SHOW=1
# prints the graph.

use strict;
use warnings;

use FindBin ();
use Test::More;

my $dir = "$FindBin::Bin/../ngx_voucher_module";

opendir my $dh, $dir or die "$dir: $!\n";
my @files = sort grep { /\.c\z/ } readdir $dh;
closedir $dh;

my (%text, %owner);

for my $f (@files) {
    open my $fh, '<', "$dir/$f" or die "$f: $!\n";
    local $/;
    my $s = <$fh>;

    # comments and strings name functions without using them
    $s =~ s{/\*.*?\*/}{ }gs;
    $s =~ s{"(?:[^"\\\n]|\\.)*"}{""}g;

    $text{$f} = $s;

    # a definition that other files may use: a name at the start of a
    # line, after a return type on the line before that is not "static"
    while ($s =~ /^(?!static\b)[a-z][\w \*]*\n(\w+)\(/mg) {
        $owner{$1} = $f;
    }
}

cmp_ok(scalar keys %owner, '>=', 40, 'the shared functions are found')
    or diag join ' ', sort keys %owner;

my %uses;    # file -> file -> [names]

for my $f (@files) {
    for my $name (sort keys %owner) {
        my $o = $owner{$name};
        next if $o eq $f;
        push @{ $uses{$f}{$o} }, $name if $text{$f} =~ /\b\Q$name\E\b/;
    }
}

if ($ENV{VOUCHER_LAYOUT_SHOW}) {
    for my $f (@files) {
        for my $o (sort keys %{ $uses{$f} || {} }) {
            diag "$f -> $o: @{ $uses{$f}{$o} }";
        }
    }
}

# a depth-first walk; a file met again on the path closes a cycle

my (%state, @path, @cycles);

sub walk {
    my ($f) = @_;
    $state{$f} = 1;
    push @path, $f;

    for my $o (sort keys %{ $uses{$f} || {} }) {
        if (($state{$o} // 0) == 1) {
            my ($i) = grep { $path[$_] eq $o } 0 .. $#path;
            push @cycles, join(' -> ', @path[$i .. $#path], $o);

        } elsif (!$state{$o}) {
            walk($o);
        }
    }

    pop @path;
    $state{$f} = 2;
}

walk($_) for grep { !$state{$_} } @files;

is(scalar @cycles, 0, 'no circle among the module\'s files')
    or diag join "\n", map {
        my @p = split / -> /;
        join "\n  ", $_, map { "$p[$_] uses $p[$_ + 1]: "
                                . "@{ $uses{$p[$_]}{$p[$_ + 1]} }" } 0 .. $#p - 1
    } @cycles;

# the test can fail: a use that closes a circle is seen as one

my %saved = %uses;
%uses = (%uses, 'x.c' => { 'y.c' => ['f'] }, 'y.c' => { 'x.c' => ['g'] });
(%state, @path, @cycles) = ();
walk($_) for grep { !$state{$_} } sort keys %uses;
ok(scalar(grep { /x\.c -> y\.c -> x\.c|y\.c -> x\.c -> y\.c/ } @cycles),
   'a circle made on purpose is found');
%uses = %saved;

done_testing();
