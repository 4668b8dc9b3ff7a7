#!/bin/sh
# lectures/figures/run.sh - every number and picture in the lectures, made by the code as it is.
#
#   make figures                      (this script: every run of runs.txt, then the lectures)
#   make figures RUNS="vae vae_conv"  only those runs; the other logs stay as they are
#   lectures/figures/run.sh --check   render only: fail if a lecture differs from its logs
#                                     (make test runs this)
#
# runs.txt lists, in order:
#   run NAME COMMAND...      run COMMAND (with $OUT = out/figures/NAME); its stdout is kept
#                            as logs/NAME.txt, under a first line "# COMMAND" and a last line
#                            "# seconds S" (wall time; GM_THREADS as in the environment)
#   ref NAME COMMAND...      the same for a PyTorch reference: run only when /usr/bin/python3
#                            imports torch, else the log already there is kept
#   img NAME FILE TARGET     copy out/figures/NAME/FILE to lectures/img/TARGET
# Then every lectures/*.md is rendered with render.awk: blocks and numbers marked
# <!-- log ... --> or NUMBER<!-- NAME:KEY --> are rewritten from the logs. A lecture that
# changes shows in git diff, with the logs that moved it.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 1
logs=lectures/figures/logs
mkdir -p "$logs" out/figures

render() {    # render every lecture; with "check", only compare
    status=0
    for md in lectures/*.md; do
        new="$md.new$$"       # one name per process: two make figures may render at once
        if ! awk -v logs="$logs" -f "$here/render.awk" "$md" > "$new"; then rm -f "$new"; status=1; continue; fi
        if cmp -s "$md" "$new"; then rm -f "$new"
        elif [ "$1" = check ]; then
            echo "$md does not match its logs (lectures/figures/run.sh renders it):"; diff "$md" "$new" | head -20
            rm -f "$new"; status=1
        else mv "$new" "$md"; echo "rendered $md"; fi
    done
    return $status
}

if [ "$1" = --check ]; then render check; exit $?; fi

want=" $* "
wanted() { [ "$want" = "  " ] || case "$want" in *" $1 "*) return 0;; *) return 1;; esac; }
torch=0
/usr/bin/python3 -c "import torch" >/dev/null 2>&1 && torch=1
make -s all || exit 1
failed=0
list=$(cat "$here/runs.txt") || exit 1      # read once: runs.txt may be edited while runs go on
while read -r kind name rest; do
    case "$kind" in
    run|ref)
        wanted "$name" || continue
        if [ "$kind" = ref ] && [ $torch = 0 ]; then echo "== $name: no torch for /usr/bin/python3, keeping $logs/$name.txt"; continue; fi
        OUT=out/figures/$name; export OUT
        rm -rf "$OUT"; mkdir -p "$OUT"
        echo "== $name: $rest"
        t0=$(date +%s.%N)
        if sh -c "$rest" < /dev/null > "$OUT/stdout.txt" 2> "$OUT/stderr.txt"; then
            t1=$(date +%s.%N)
            { echo "# $rest"; cat "$OUT/stdout.txt"; echo "# seconds $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')"; } > "$logs/$name.txt"
        else
            echo "figures: $name failed:"; tail -5 "$OUT/stderr.txt"; failed=1
        fi;;
    img)
        wanted "$name" || continue
        set -- $rest
        if [ -f "out/figures/$name/$1" ]; then cp "out/figures/$name/$1" "lectures/img/$2"
        else echo "figures: $name made no $1"; failed=1; fi;;
    ""|\#*) ;;
    *) echo "figures: runs.txt: unknown line \"$kind $name $rest\""; failed=1;;
    esac
done <<RUNS
$list
RUNS
render || failed=1
exit $failed
