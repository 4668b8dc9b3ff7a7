#!/bin/sh
# bench/run.sh [BENCH_BINARY] - genmod against PyTorch, side by side, one table.
#
# For each workload it runs build/bench and its twin bench/ref/<workload>.py alternately
# (ROUNDS times each, the order swapped every round), takes the median of the timed
# repetitions of each side and prints one row: time per unit, ratio genmod/PyTorch,
# GFLOP/s of each (analytic FLOP count printed by build/bench, see bench/README.md) and
# each side's final loss, so one can see both computed the same thing.
# PyTorch is never required: without /usr/bin/python3 or torch its columns show "-".
#
#   make bench                    the full run (about 10-15 minutes)
#   BENCH_QUICK=1 make bench      one round of a few steps each: a smoke test (~1 minute)
#   BENCH_PYTHON=/path/python3    another interpreter for the reference
#   BENCH_ONLY="vae sgemm"        only these workloads (vae dcgan diffusion toygan sgemm)
# POSIX sh and awk only, so it runs where python does not.
BIN=${1:-build/bench}
HERE=$(dirname "$0")
REF=$HERE/ref
PY=${BENCH_PYTHON:-/usr/bin/python3}
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-"vae dcgan diffusion toygan sgemm"}
TMP=${TMPDIR:-/tmp}/genmod-bench.$$
mkdir -p "$TMP" || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

[ -x "$BIN" ] || { echo "bench: $BIN not found; run make bench" >&2; exit 1; }

# ------------------------------------------------------------------ the reference?
torch=0
if [ ! -x "$PY" ]; then
    why="$PY not found"
elif ! OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=1 "$PY" -c "import torch" >"$TMP/py.err" 2>&1; then
    why="$PY cannot import torch ($(tail -1 "$TMP/py.err"))"
else
    torch=1
fi

# ------------------------------------------------------------------ helpers
# median FILE KEY: the median of the values on the lines "KEY value" of FILE
median() {
    awk -v k="$2" '$1 == k { v[n++] = $2 + 0 }
        END {
            if (n == 0) { print "-"; exit }
            for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            print (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
        }' "$1"
}
# lowest FILE KEY / last FILE KEY
lowest() { awk -v k="$2" '$1 == k && (n++ == 0 || $2 + 0 < m) { m = $2 + 0 } END { print n ? m : "-" }' "$1"; }
last()   { awk -v k="$2" '$1 == k { v = $2 } END { print v == "" ? "-" : v }' "$1"; }

# run_genmod THREADS ARGS... >> log ; run_ref THREADS SCRIPT ARGS... >> log
run_genmod() {
    t=$1; shift
    if ! GM_THREADS=$t "$BIN" "$@" >>"$TMP/g.log" 2>"$TMP/g.err"; then
        echo "bench: genmod failed: $BIN $*" >&2; tail -3 "$TMP/g.err" >&2
    fi
}
run_ref() {
    t=$1; s=$2; shift 2
    [ $torch = 1 ] || return 0
    if ! OMP_NUM_THREADS=$t "$PY" "$REF/$s" "$@" >>"$TMP/p.log" 2>"$TMP/p.err"; then
        echo "bench: reference failed: $REF/$s $*" >&2; tail -3 "$TMP/p.err" >&2
    fi
}

row_format="%-34s %3s %-10s %9s %9s %6s %8s %8s %10s %10s\n"

# pair LABEL THREADS ROUNDS UNIT UNIT_STEPS SCRIPT ARGS...
#   runs build/bench ARGS (the workload name is ARGS' first word) and SCRIPT ARGS' rest
#   alternately; the time of one repetition covering `steps` steps is scaled to UNIT_STEPS
#   steps (UNIT_STEPS 0: milliseconds per call).
pair() {
    label=$1 thr=$2 rounds=$3 unit=$4 ustep=$5 script=$6; shift 6
    w=$1; shift
    : >"$TMP/g.log"; : >"$TMP/p.log"
    r=1
    while [ $r -le $rounds ]; do
        progress "$label, $thr thread(s): round $r of $rounds"
        if [ $((r % 2)) = 1 ]; then run_genmod $thr $w "$@"; run_ref $thr $script "$@"
        else run_ref $thr $script "$@"; run_genmod $thr $w "$@"; fi
        r=$((r + 1))
    done
    progress ""
    gt=$(median "$TMP/g.log" time); pt=$(median "$TMP/p.log" time)
    flops=$(last "$TMP/g.log" flops); steps=$(last "$TMP/g.log" steps)
    [ "$steps" = - ] && steps=$(last "$TMP/p.log" steps)
    gl=$(last "$TMP/g.log" loss); pl=$(last "$TMP/p.log" loss)
    [ $torch = 1 ] || { pt=-; pl=-; }
    awk -v label="$label" -v thr="$thr" -v unit="$unit" -v ustep="$ustep" -v steps="$steps" \
        -v gt="$gt" -v pt="$pt" -v flops="$flops" -v gl="$gl" -v pl="$pl" -v fmt="$row_format" '
        function digits(v) { return sprintf(v < 0.1 ? "%.4f" : v < 1 ? "%.3f" : "%.2f", v) }   # 3 figures below 1
        function scaled(t) { return t == "-" ? "-" : digits(ustep == 0 ? 1000 * t : t * ustep / steps) }
        function gf(t) { return (t == "-" || flops == "-" || t <= 0) ? "-" : sprintf("%.1f", flops / t / 1e9) }
        BEGIN {
            ratio = (gt == "-" || pt == "-" || pt <= 0) ? "-" : digits(gt / pt)
            printf fmt, label, thr, unit, scaled(gt), scaled(pt), ratio, gf(gt), gf(pt), gl, pl
        }'
    cat "$TMP/g.log" >>"$TMP/all-genmod.log"; cat "$TMP/p.log" >>"$TMP/all-ref.log"
}

# progress TEXT: one line redrawn on stderr when it is a terminal ("" clears it)
progress() { [ -t 2 ] && printf '\r%-78s\r%s' '' "$1" >&2; return 0; }

wants() { case " $ONLY " in *" $1 "*) return 0;; esac; return 1; }

# ------------------------------------------------------------------ settings
if [ "$QUICK" = 1 ]; then
    R=1 RS=1
    VAE="--steps 47"; DC="--steps 10 --warmup 1"; DIF="--steps 10 --warmup 1"; DDIM="--steps 2 --warmup 1"
    TOY="--steps 100"; GEMM="--reps 5"
else
    R=5 RS=3
    VAE=""; DC="--steps 100"; DIF="--steps 100"; DDIM="--steps 20 --warmup 1"; TOY="--steps 1000"; GEMM=""
fi

# ------------------------------------------------------------------ header
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
echo "genmod vs PyTorch  ($(date '+%Y-%m-%d %H:%M'), ${cpu:-unknown CPU}, $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo ?) cores)"
: >"$TMP/g.log"; : >"$TMP/p.log"
progress "measuring the sgemm peak..."
for r in 1 2; do
    run_genmod 1 sgemm --m 1024 --n 1024 --k 1024 --reps 10
    run_ref 1 sgemm.py --m 1024 --n 1024 --k 1024 --reps 10
done
progress ""
peak() { t=$(lowest "$1" time); [ "$t" = - ] && echo "-" || awk -v t="$t" 'BEGIN { printf "%.0f", 2 * 1024^3 / t / 1e9 }'; }
if [ $torch = 1 ]; then
    blas=$(last "$TMP/p.log" blas)
    echo "per-thread sgemm peak (1024^3, 1 thread, best of 20): BLAS $(peak "$TMP/p.log") GFLOP/s, genmod $(peak "$TMP/g.log") GFLOP/s"
    echo "reference: $(grep '^settings ' "$TMP/p.log" | tail -1 | cut -d' ' -f2-)"
    echo "reference BLAS: $blas"
    case "$blas" in *openblas*) ;; *) echo "WARNING: torch is not on OpenBLAS (Debian: apt-get install libopenblas0-pthread); its matmuls run on a slow BLAS";; esac
else
    echo "per-thread sgemm peak (1024^3, 1 thread, best of 20): genmod $(peak "$TMP/g.log") GFLOP/s"
    echo "PyTorch reference skipped: $why. Install Debian's python3-torch (and libopenblas0-pthread) to compare."
fi
echo "genmod: $BIN as built by make bench (the demos' flags); only GM_THREADS set"
[ "$QUICK" = 1 ] && echo "BENCH_QUICK=1: one round of a few steps, times scaled to the unit: a smoke test, not a measurement"
echo "times are medians over $R rounds ($RS for dcgan, diffusion and sgemm); ratio = genmod / PyTorch; GFLOP/s from the analytic count"
echo
printf "$row_format" workload thr unit genmod PyTorch ratio "GF/s gm" "GF/s pt" "loss gm" "loss pt"

# ------------------------------------------------------------------ the workloads
: >"$TMP/all-genmod.log"; : >"$TMP/all-ref.log"
if wants vae; then
    pair "1 VAE epoch (B=128)" 1 $R s/epoch 469 vae.py vae $VAE
    pair "1 VAE epoch (B=128)" 2 $R s/epoch 469 vae.py vae $VAE
fi
if wants dcgan; then
    pair "2 DCGAN iteration (B=64)" 1 $RS s/100it 100 dcgan.py dcgan $DC
    pair "2 DCGAN iteration (B=64)" 2 $RS s/100it 100 dcgan.py dcgan $DC
fi
if wants diffusion; then
    pair "3 diffusion step (B=8)" 1 $RS s/100it 100 diffusion.py diffusion $DIF
    pair "3 diffusion step (B=8)" 2 $RS s/100it 100 diffusion.py diffusion $DIF
    pair "3 DDIM sampling (250 images)" 1 $RS s/20steps 20 ddim.py ddim $DDIM
    pair "3 DDIM sampling (250 images)" 2 $RS s/20steps 20 ddim.py ddim $DDIM
fi
if wants toygan; then
    pair "4 toy GAN (B=256)" 1 $R s/1000it 1000 toygan.py toygan --batch 256 $TOY
    pair "4 toy GAN (B=1)" 1 $R s/1000it 1000 toygan.py toygan --batch 1 $TOY
fi
if wants sgemm; then
    # the VAE's products: enc1 forward x W^T, its weight gradient dY^T x; dec2 forward,
    # its input gradient dY W and weight gradient; then 1024^3; NN also through gm_matmul
    for s in "128 400 784 0 1 enc1.fwd" "400 784 128 1 0 enc1.dW" "128 784 400 0 1 dec2.fwd" \
             "128 400 784 0 0 dec2.dX" "784 400 128 1 0 dec2.dW" "1024 1024 1024 0 0 square"; do
        set -- $s
        tt=$(if [ $4 = 1 ]; then echo T; else echo N; fi)$(if [ $5 = 1 ]; then echo T; else echo N; fi)
        pair "5 sgemm $1x$2x$3 $tt $6" 1 $RS ms/call 0 sgemm.py sgemm --m $1 --n $2 --k $3 --ta $4 --tb $5 $GEMM
    done
    pair "5 gm_matmul 128x400x784 NN" 1 $RS ms/call 0 sgemm.py sgemm --m 128 --n 400 --k 784 --via matmul $GEMM
    pair "5 gm_matmul 1024^3 NN" 1 $RS ms/call 0 sgemm.py sgemm --m 1024 --n 1024 --k 1024 --via matmul $GEMM
fi
echo
echo "sgemm rows: genmod through gm__gemm (its one matrix routine, transposes as flags) unless"
echo "named gm_matmul (the public op on a tape, forward); PyTorch through torch.mm (its BLAS)."
echo "loss columns: the training loss at the end of the run (VAE: nats per example over the"
echo "last tenth of the epoch; GANs: the D loss; diffusion: the weighted v error over the last tenth;"
echo "DDIM: mean |x_0| of the samples, a range check; sgemm: C[0,0], same inputs)."
