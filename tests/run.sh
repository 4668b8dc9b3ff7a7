#!/bin/sh
# tests/run.sh DEMO... - everything `make test` checks, in one tally:
#   the unit tests (each TEST counts), the same under ASan+UBSan (leaks included) and
#   under valgrind, the fuzz corpora replayed and a short fuzzing pass, the header compiled
#   as C++ / with GM_STATIC / by clang, a demo compiled in one line with the implementation
#   in it (as C, the same numbers as the Makefile's build, and as C++), make install and
#   uninstall with pkg-config (tests/install.sh), the checkpoint crash test, the lectures
#   against their logs, the demos misused, and every demo's --quick run (twice with one
#   seed: the result lines must be identical).
# Ends with the line "N passed, N failed"; exits non-zero on any failure.
passed=0; failed=0
export GM_CHECK_FINITE=1        # every op's inputs and grads scanned for NaN (genmod.h: ERRORS)
tmp=build/test-tmp; mkdir -p $tmp
ok()   { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# unit tests: add their own counts
for bin in tests tests-san; do
    echo "== build/$bin"
    ASAN_OPTIONS=detect_leaks=1 ./build/$bin $tmp/$bin > $tmp/$bin.log 2>&1; rc=$?
    cat $tmp/$bin.log
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' $tmp/$bin.log | tail -1)
    if [ -z "$line" ]; then fail "build/$bin crashed (exit $rc)"; continue; fi
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    passed=$((passed + p)); failed=$((failed + f))
    [ $rc -eq 0 ] || [ "$f" -gt 0 ] || fail "build/$bin exited $rc"
done

# the unit tests again under valgrind (memcheck: invalid accesses, uninitialised values,
# leaks), when it is installed (Debian: valgrind; .ci/run installs it)
if command -v valgrind >/dev/null; then
    echo "== build/tests under valgrind"
    if sh tests/valgrind.sh $tmp/valgrind; then ok; else fail "valgrind found errors in the unit tests"; fi
else
    echo "== (valgrind not installed: the unit tests were not run under it)"
fi

# the fuzz targets (tests/fuzz): their seed and regression corpora replayed under
# ASan+UBSan, then a short libFuzzer pass each (FUZZ_SECONDS, default 30; 0 skips it)
echo "== fuzz targets"
sh tests/fuzz/run.sh test > $tmp/fuzz.log 2>&1; cat $tmp/fuzz.log
p=$(grep -c '^ok ' $tmp/fuzz.log); f=$(grep -c '^FAIL ' $tmp/fuzz.log)
passed=$((passed + p)); failed=$((failed + f))
[ "$p" -gt 0 ] || [ "$f" -gt 0 ] || fail "tests/fuzz/run.sh test printed no result"

# the header in other languages and modes
echo "== header builds"
# (C++ warns about C's "= {0}" idiom, which the quick start uses; in C++ one writes "= {}")
# The Makefile links the demos with build/genmod.o; compiled in one line as the README
# shows, with the implementation in the demo's own file, the autoencoder must still build
# warning-free, and as C print exactly the numbers of build/autoencoder. (As C++ it only
# has to run: g++ fuses a * b + c in the demo's own code, gcc -std=c99 does not.)
./build/autoencoder --quick --seed 7 --out $tmp/ae-make > $tmp/ae-make.out 2> $tmp/ae-make.err
for lang in "$CC -std=c99" "$CXX -x c++ -std=c++11"; do
    extra=""; cxx=""; case "$lang" in *c++*) extra=-Wno-missing-field-initializers; cxx=1;; esac
    if $lang -Wall -Wextra $extra -pedantic -Werror -O2 -pthread $STB tests/quickstart.c -o $tmp/quickstart -lm && $tmp/quickstart; then ok
    else fail "quick start as $lang"; fi
    if $lang -Wall -Wextra $extra -pedantic -Werror $CFLAGS -pthread $STB demos/02_autoencoder.c -o $tmp/ae-1line -lm &&
       $tmp/ae-1line --quick --seed 7 --out $tmp/ae-1line-out > $tmp/ae-1line.out 2> $tmp/ae-1line.err &&
       grep -q '^result ' $tmp/ae-1line.out && { [ -n "$cxx" ] || cmp $tmp/ae-1line.out $tmp/ae-make.out; }; then ok
    else tail -3 $tmp/ae-1line.err; fail "demos/02_autoencoder.c compiled in one line as $lang"; fi
done
if $CC -std=c99 -Wall -Wextra -pedantic -Werror -O2 -DGM_NO_THREADS $STB tests/quickstart.c -o $tmp/quickstart-nothreads -lm &&
   $tmp/quickstart-nothreads; then ok; else fail "quick start with GM_NO_THREADS"; fi
printf '#define GM_STATIC\n#define GENMOD_IMPLEMENTATION\n#include "genmod.h"\nint main(void){return 0;}\n' > $tmp/static.c
if $CC -std=c99 -Wall -Wextra -pedantic -Werror -I. -pthread $STB $tmp/static.c -o $tmp/static -lm; then ok; else fail "GM_STATIC build"; fi
if command -v clang >/dev/null; then
    if clang -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -I. $STB demos/[0-9]*.c lectures/figures/tape.c; then ok
    else fail "clang build of the demos"; fi
fi
if $CC -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -I. $STB demos/[0-9]*.c lectures/figures/tape.c; then ok
else fail "warning-free gcc build of the demos"; fi

# the unit tests again with GENMOD_CBLAS (products through the system's cblas_sgemm), when
# a BLAS with its header is installed (Debian: libblas-dev or libopenblas-dev)
if printf '#include <cblas.h>\nint main(void){return 0;}\n' | $CC -x c - -o $tmp/has-cblas -lblas 2>/dev/null; then
    echo "== the unit tests with GENMOD_CBLAS"
    if $CC -std=c99 -Wall -Wextra -pedantic -Werror -O2 -DGENMOD_CBLAS -pthread $STB \
           tests/main.c tests/test_*.c tests/stb_impl.c -o $tmp/tests-cblas -lblas -lm &&
       $tmp/tests-cblas $tmp/cblas > $tmp/cblas.log 2>&1; then ok
    else tail -5 $tmp/cblas.log; fail "unit tests with GENMOD_CBLAS"; fi
else
    echo "== (no cblas.h and -lblas here: the GENMOD_CBLAS build is not tested)"
fi

# make install and make uninstall, and a program built with pkg-config's flags
if command -v pkg-config >/dev/null; then
    echo "== make install, pkg-config, make uninstall"
    if sh tests/install.sh $tmp/install; then ok; else fail "install (tests/install.sh)"; fi
else
    echo "== (pkg-config not installed: make install and genmod.pc were not tested)"
fi

# checkpoints: saves killed at many points and concurrent savers never leave a broken file
echo "== build/crash_ckpt"
if ./build/crash_ckpt $tmp/crash; then ok; else fail "checkpoint crash test (tests/crash_ckpt.c)"; fi

# the gallery's browser check (tools/gallery-check.sh, make gallery-check), when Chromium is
# installed: a page whose picture loads passes; a page with a missing and a corrupt picture fails
# and names both
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    echo "== the gallery's browser check"
    g=$tmp/gallery; mkdir -p $g
    cp lectures/img/05-vae-samples.png $g/ok.png; echo "not a PNG" > $g/corrupt.png
    echo '<!doctype html><html><body><img src="ok.png"></body></html>' > $g/good.html
    echo '<!doctype html><html><body><img src="ok.png"><img src="missing.png"><img src="corrupt.png"></body></html>' > $g/bad.html
    if sh tools/gallery-check.sh $g/good.html > $g/good.log 2>&1; then ok; else cat $g/good.log; fail "gallery-check on a good page"; fi
    if sh tools/gallery-check.sh $g/bad.html > $g/bad.log 2>&1; then fail "gallery-check passed a page with broken pictures"
    elif grep -q 'broken missing.png' $g/bad.log && grep -q 'broken corrupt.png' $g/bad.log; then ok
    else cat $g/bad.log; fail "gallery-check did not name the broken pictures"; fi
else
    echo "== (chromium not installed: the gallery's browser check was not tested)"
fi

# every number and picture a lecture quotes is marked with the run it comes from: the
# lectures must say exactly what their logs in lectures/figures/logs/ say (make figures
# remakes both from the code as it is)
echo "== lectures against their logs"
if sh lectures/figures/run.sh --check; then ok; else fail "a lecture differs from its logs (make figures)"; fi

# every demos/NN_topic.c must be here as "topic" (the Makefile passes them all)
for src in demos/[0-9][0-9]_*.c; do
    topic=$(basename "$src" .c | cut -c4-)
    case " $* " in *" $topic "*) ok;; *) fail "demo $topic has no --quick run";; esac
done

# the demos as users misuse them (tests/misuse.sh): each case counts
echo "== demos misused"
sh tests/misuse.sh $tmp/misuse > $tmp/misuse.log 2>&1; cat $tmp/misuse.log
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' $tmp/misuse.log | tail -1)
if [ -z "$line" ]; then fail "tests/misuse.sh stopped early"
else p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}; passed=$((passed + p)); failed=$((failed + f)); fi

# every demo, quick, twice with the same seed; then once on the built-in data, which must
# say so on its first line (the embedded default, used when no data set is installed)
for d in "$@"; do
    echo "== $d --quick"
    if ./build/$d --quick --seed 7 --out $tmp/$d > $tmp/$d.1 2>$tmp/$d.err &&
       ./build/$d --quick --seed 7 --out $tmp/$d > $tmp/$d.2 2>>$tmp/$d.err; then
        grep '^result ' $tmp/$d.1
        if ! grep -q '^result ' $tmp/$d.1; then fail "$d printed no result line"
        elif ! cmp -s $tmp/$d.1 $tmp/$d.2; then fail "$d: same seed, different output"
        elif [ -z "$(ls $tmp/$d/*.png 2>/dev/null)" ]; then fail "$d wrote no picture"
        else ok; fi
    else
        tail -5 $tmp/$d.err; fail "$d --quick"
    fi
    if ./build/$d --quick --data builtin --out $tmp/$d-builtin > $tmp/$d.3 2>>$tmp/$d.err &&
       head -1 $tmp/$d.3 | grep -q 'built-in' && grep -q '^result ' $tmp/$d.3; then ok
    else tail -5 $tmp/$d.err; fail "$d --quick --data builtin"; fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
