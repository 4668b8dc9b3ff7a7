#!/bin/sh
# tests/fuzz/run.sh - build and run the fuzz targets tests/fuzz/fuzz_*.c (see fuzz.h).
#   run.sh fuzz          make fuzz: each target with clang's libFuzzer (ASan+UBSan) for
#                        FUZZ_SECONDS (default 180), one after the other; a table of
#                        executions, coverage, corpus size and crashes per target
#   run.sh test          make test: replay every file of tests/fuzz/corpus/T and
#                        tests/fuzz/regress/T through build/fuzz/replay/T (gcc, ASan+UBSan,
#                        no libFuzzer; the Makefile builds them), then a short libFuzzer
#                        pass of FUZZ_SECONDS (default 30; 0 skips it) per target, two at a
#                        time, when clang has libFuzzer. Prints "ok T" / "FAIL T" lines.
#   run.sh minimize T FILE   shrink a crashing input of target T and save it as
#                        tests/fuzz/regress/T/NAME (NAME defaults to FILE's name)
#   run.sh seeds         rewrite tests/fuzz/corpus/ (tests/fuzz/seeds.c, and gzip -9n for
#                        the one dynamic-Huffman seed)
# tests/fuzz/known/T holds inputs that trip a known defect of stb_image 2.27 that genmod
# cannot check for (stb.ignorelist says which); only the libFuzzer builds, which ignore
# that one check in stb_image.h, read them.
# FUZZ_TARGETS="npy gzip" runs only those; CLANG names the compiler (default clang).
# Generated: build/fuzz/bin (fuzzers), corpus/T (what libFuzzer adds to the seeds),
# crashes/T (crashing inputs, kept), logs/T.log.
cd "$(dirname "$0")/../.." || exit 2
B=build/fuzz
CLANG=${CLANG:-clang}
STB=${STB:-$(pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)}
CFLAGS="-std=c99 -Wall -Wextra -pedantic -g -O1 -fno-omit-frame-pointer -pthread $STB"
# the one undefined behaviour of stb_image 2.27 the fuzzers do not stop on (read the file)
IGNORE=-fsanitize-ignorelist=tests/fuzz/stb.ignorelist
SAN="address,undefined -fno-sanitize-recover=undefined"
targets=${FUZZ_TARGETS:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
mkdir -p $B/bin $B/logs

# Can $CLANG build a libFuzzer program? (Debian: clang plus libclang-rt-dev or a
# clang version that ships libFuzzer.)
have_libfuzzer() {
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
        > $B/probe.c
    command -v "$CLANG" > /dev/null && "$CLANG" -fsanitize=fuzzer $B/probe.c -o $B/probe 2> /dev/null
}

# The fuzzers, rebuilt when genmod.h or anything in tests/fuzz is newer than the last build.
build() {
    if [ -f $B/bin/built ] && [ -z "$(find genmod.h tests/fuzz -newer $B/bin/built -name '*.[ch]')" ]; then return 0; fi
    echo "== building the fuzzers with $CLANG"
    "$CLANG" $CFLAGS $IGNORE -fsanitize=fuzzer-no-link,$SAN -c tests/fuzz/common.c -o $B/bin/common.o || return 1
    for t in $targets; do
        "$CLANG" $CFLAGS $IGNORE -fsanitize=fuzzer,$SAN tests/fuzz/fuzz_$t.c $B/bin/common.o -o $B/bin/$t -lm || return 1
    done
    [ -n "$FUZZ_TARGETS" ] || touch $B/bin/built
}

# fuzz_one T SECONDS: the seeds and regressions are read, new inputs go to $B/corpus/T.
# Allocations over 256 MB count as crashes: every loader checks sizes against the file
# before allocating, so no input of a few KB has a reason to ask for more.
fuzz_one() {
    mkdir -p $B/corpus/$1 $B/crashes/$1
    dirs="$B/corpus/$1 tests/fuzz/corpus/$1"
    [ -d tests/fuzz/regress/$1 ] && dirs="$dirs tests/fuzz/regress/$1"
    [ -d tests/fuzz/known/$1 ] && dirs="$dirs tests/fuzz/known/$1"      # (stb.ignorelist)
    GM_THREADS=1 $B/bin/$1 -max_total_time=$2 -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=256 -artifact_prefix=$B/crashes/$1/ $dirs > $B/logs/$1.log 2>&1
}

# report T: one line from its log: executions, exec/s, coverage (edges, features),
# corpus (inputs, bytes), and the crash if there was one.
report() {
    log=$B/logs/$1.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' $log)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' $log)
    last=$(grep -E '^#[0-9]+.*cov: ' $log | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    crash=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' $log | head -1)
    printf '%-13s %10s %8s %6s %6s %12s  %s\n' "$1" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "${crash:-no crash}"
}
header() { printf '%-13s %10s %8s %6s %6s %12s  %s\n' target execs exec/s cov ft corpus crash; }

# What to do with a crash: where it is, the lines that say why, how to keep it.
show_crash() {
    grep -E 'check failed|gm_last_error|ERROR: |SUMMARY: |runtime error|#[0-9]+ 0x.* in (gm_|gm__|fz_|stbi__)' \
        $B/logs/$1.log | head -20
    file=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' $B/logs/$1.log | head -1)
    [ -n "$file" ] || return 0
    echo "  the input, $(wc -c < "$file") bytes (first 256 in hex):"
    od -An -tx1 -N256 "$file"
    echo "  keep it: sh tests/fuzz/run.sh minimize $1 $file"
}

case "$1" in
fuzz)
    have_libfuzzer || { echo "fuzz: $CLANG cannot build libFuzzer programs (install clang)"; exit 1; }
    build || exit 1
    secs=${FUZZ_SECONDS:-180}
    status=0
    for t in $targets; do
        echo "== fuzzing $t for $secs s (log: $B/logs/$t.log)"
        fuzz_one $t $secs || { status=1; show_crash $t; }
    done
    header
    for t in $targets; do report $t; done
    exit $status ;;
test)
    for t in $targets; do
        dirs=tests/fuzz/corpus/$t
        [ -d tests/fuzz/regress/$t ] && dirs="$dirs tests/fuzz/regress/$t"
        if ASAN_OPTIONS=detect_leaks=1 $B/replay/$t $dirs > $B/logs/replay-$t.log 2>&1; then
            echo "ok $t: $(tail -1 $B/logs/replay-$t.log) under ASan+UBSan"
        else
            grep -E '^replay |check failed|gm_last_error|ERROR: |SUMMARY: |runtime error' $B/logs/replay-$t.log | tail -5
            echo "FAIL $t: the last input named above (log: $B/logs/replay-$t.log)"
        fi
    done
    secs=${FUZZ_SECONDS:-30}
    if [ "$secs" = 0 ]; then echo "(FUZZ_SECONDS=0: no fuzzing pass)"; exit 0; fi
    if ! have_libfuzzer; then echo "(no clang with libFuzzer here: no fuzzing pass)"; exit 0; fi
    build || { echo "FAIL building the fuzzers"; exit 1; }
    echo "== fuzzing each target for $secs s, two at a time"
    set -- $targets
    while [ $# -gt 0 ]; do
        fuzz_one $1 $secs & pid=$!
        [ $# -gt 1 ] && fuzz_one $2 $secs
        wait $pid
        shift; [ $# -gt 0 ] && shift
    done
    header
    for t in $targets; do
        report $t
        if grep -q '^Done [0-9]* runs' $B/logs/$t.log; then echo "ok fuzz $t"
        else show_crash $t; echo "FAIL fuzz $t"; fi
    done ;;
minimize)
    [ $# -ge 3 ] || { echo "usage: run.sh minimize TARGET FILE [NAME]"; exit 2; }
    build || exit 1
    mkdir -p tests/fuzz/regress/$2
    out=tests/fuzz/regress/$2/${4:-$(basename "$3")}
    $B/bin/$2 -minimize_crash=1 -max_total_time=60 -exact_artifact_path="$out" "$3" > $B/logs/minimize.log 2>&1
    [ -f "$out" ] || { tail -5 $B/logs/minimize.log; exit 1; }
    echo "$out: $(wc -c < "$out") bytes (from $(wc -c < "$3")); replay: $B/bin/$2 $out" ;;
seeds)
    ${CC:-cc} $CFLAGS tests/fuzz/seeds.c tests/fuzz/common.c -o $B/seeds -lm || exit 1
    rm -rf tests/fuzz/corpus
    $B/seeds tests/fuzz/corpus || exit 1
    # one dynamic-Huffman stream (stb_image_write makes only fixed ones), when gzip is here
    if command -v gzip > /dev/null; then
        gzip -9n < tests/fuzz/corpus/idx_images/shape-28x28.idx > tests/fuzz/corpus/idx_images/shape-28x28-dynamic.idx.gz
        cp tests/fuzz/corpus/idx_images/shape-28x28-dynamic.idx.gz tests/fuzz/corpus/gzip/dynamic.gz
    fi
    ls tests/fuzz/corpus/* ;;
*)
    sed -n '2,18p' "$0"; exit 2 ;;
esac
