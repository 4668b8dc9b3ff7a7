#!/bin/sh
# tests/install.sh DIR - make install and make uninstall as a user of the library meets them
# (tests/run.sh calls it; needs pkg-config):
#   1. make install PREFIX=DIR/prefix, whose include/ and lib/pkgconfig/ already hold a file
#      of the user's; tests/installed.c built against the installed header as C and as C++
#      with the flags of `pkg-config --cflags --libs genmod`, and run
#   2. make uninstall: the prefix holds exactly what it held before, the user's files too
#   3. the same with DESTDIR: files under DESTDIR, the .pc naming PREFIX alone
# Prints what failed; exits non-zero on any failure.
MAKE=${MAKE:-make}; CC=${CC:-cc}; CXX=${CXX:-c++}
# the sub-makes take PREFIX and DESTDIR from here alone, not from a `make test DESTDIR=...`
MAKEFLAGS=; MFLAGS=; unset DESTDIR PREFIX; export MAKEFLAGS MFLAGS
rm -rf "$1"; mkdir -p "$1" && dir=$(cd "$1" && pwd) || exit 1
prefix=$dir/prefix; stage=$dir/stage
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" || exit 1
echo '/* a header of the user */' > "$prefix/include/user.h"
echo 'Name: user' > "$prefix/lib/pkgconfig/user.pc"
listing() { (cd "$1" && find . | sort); }
listing "$prefix" > "$dir/before"
failed=0
fail() { echo "FAIL install: $*"; failed=1; }

$MAKE -s install PREFIX="$prefix" > "$dir/make.log" 2>&1 || { cat "$dir/make.log"; fail "make install"; }
cmp -s genmod.h "$prefix/include/genmod.h" || fail "the installed genmod.h differs from genmod.h"
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs genmod) || fail "pkg-config genmod"
echo "pkg-config --cflags --libs genmod: $flags"
# (C++ warns about C's "= {0}" idiom, which the implementation uses; see tests/run.sh)
for lang in c c++; do
    extra=""; case $lang in c) cc="$CC -std=c99";; *) cc="$CXX -x c++ -std=c++11"; extra=-Wno-missing-field-initializers;; esac
    if $cc -Wall -Wextra $extra -pedantic -Werror -O2 tests/installed.c -o "$dir/$lang" $flags &&
       "$dir/$lang" "$dir/$lang.png" && [ -s "$dir/$lang.png" ]; then :
    else fail "tests/installed.c built with pkg-config's flags as $lang"; fi
done

$MAKE -s uninstall PREFIX="$prefix" >> "$dir/make.log" 2>&1 || fail "make uninstall"
listing "$prefix" > "$dir/after"
diff "$dir/before" "$dir/after" || fail "make uninstall left the prefix changed (above: < before, > after)"

$MAKE -s install DESTDIR="$stage" PREFIX=/opt/genmod >> "$dir/make.log" 2>&1 || fail "make install DESTDIR=..."
grep -qx 'prefix=/opt/genmod' "$stage/opt/genmod/lib/pkgconfig/genmod.pc" &&
    cmp -s genmod.h "$stage/opt/genmod/include/genmod.h" || fail "install with DESTDIR put other files"
$MAKE -s uninstall DESTDIR="$stage" PREFIX=/opt/genmod >> "$dir/make.log" 2>&1 || fail "make uninstall DESTDIR=..."
[ -z "$(find "$stage" -type f)" ] || fail "make uninstall DESTDIR=... left files: $(find "$stage" -type f)"
exit $failed
