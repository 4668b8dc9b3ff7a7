#!/bin/sh
# tests/valgrind.sh - the unit tests (build/tests) under valgrind's memcheck: no invalid
# read or write, no use of an uninitialised value, and every block freed at exit (leaks of
# any kind count as errors). `make valgrind` runs it, and `make test` when valgrind is
# installed. Prints valgrind's summary; exits non-zero on any error or failed test.
dir=${1:-build/test-tmp/valgrind}
mkdir -p "$dir"
valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    ./build/tests "$dir" > "$dir.log" 2>&1
rc=$?
grep -E '^[0-9]+ passed, [0-9]+ failed$|^==[0-9]+==' "$dir.log" | head -40
case $rc in
    0)  echo "valgrind: no errors, no leaks";;
    99) echo "valgrind: memory errors or leaks (log: $dir.log)";;
    *)  echo "valgrind: the tests failed (exit $rc; log: $dir.log)";;
esac
[ $rc -eq 0 ]
