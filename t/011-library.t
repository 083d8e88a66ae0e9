# The function library as scripts/gen-lua builds it from redis/lib/*.lua:
# how many locals its main chunk holds.  Lua 5.1 (Redis' Lua) refuses a
# chunk with more than 200 ("main function has more than 200 local
# variables"), and the library would no longer load; shared helpers go in
# tables (api, V) so the count stays below BUDGET.  The counter is checked
# against Redis itself: the library with 200 - count more locals loads, one
# more does not.
use strict;
use warnings;
use Test::More;
use VT;

my $BUDGET = 120;           # of Lua's 200

# the names of the locals of a chunk's main function, in order
sub top_locals {
    my $src = shift;
    # comments and strings hold no code
    $src =~ s{--\[(=*)\[.*?\]\1\]|--[^\n]*|\[(=*)\[.*?\]\2\]
              |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'}{ ' ' }gsex;
    my ($depth, @names) = (0);
    # blocks open with function, do (while, for), if, repeat and close
    # with end or until
    while ($src =~ /\b(?:local\s+(function\s+)?(\w+(?:\s*,\s*\w+)*)
                       |(function|do|if|repeat)|(end|until))\b/gx) {
        if (defined $2) {
            push @names, split /\s*,\s*/, $2 unless $depth;
            $depth++ if $1;
        } elsif (defined $3) {
            $depth++;
        } else {
            $depth--;
        }
    }
    return @names;
}

is_deeply([top_locals(<<'LUA')], [qw(a b f c)], 'the counter on a small chunk');
local a, b = 1, 'local x'   -- local y
local function f(n)
    local z
    for i = 1, n do local w = i end
    if n then local v = [[local u]] elseif a then local t else end
    repeat local s until true
    return function() local r end
end
local c = f
LUA

my $root = VT::root_dir();
my $lib = VT::library_text();
my @names = top_locals($lib);
my $n = @names;
cmp_ok($n, '<=', $BUDGET, "the library's main chunk has $n locals, at most "
       . "$BUDGET of Lua's 200");
my %seen;
is_deeply([grep { $seen{$_}++ } @names], [], 'no top-level local is declared twice');

# Redis agrees: 200 locals in all load, 201 do not
my $redis = VT::Redis->start;
sub load_with_extra {
    my $extra = shift;
    my $src = $lib . join('', map { "local extra_$_ = $_\n" } 1 .. $extra);
    $src =~ s/__VOUCHER_LIB_VERSION__/test/g;
    return $redis->cmd('FUNCTION', 'LOAD', 'REPLACE', $src);
}
my $r = load_with_extra(200 - $n);
ok(!VT::Redis::is_error($r), "with " . (200 - $n) . " more locals (200) it loads")
    or diag(explain($r));
$r = load_with_extra(201 - $n);
ok(VT::Redis::is_error($r) && $r->message =~ /more than 200 local variables/,
   'with one more it does not') or diag(explain($r));
$redis->stop;

done_testing;
