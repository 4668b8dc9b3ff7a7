#!/bin/sh
# tests/misuse.sh [DIR] - the demos as users misuse them (issue 10). Run from the top of the
# tree after `make`; scratch files go to DIR (default build/test-tmp/misuse).
#
# A misuse must be refused before any work: a non-zero exit that is no signal (no abort),
# a message on stderr that names the flag or path, and nothing on stdout. Every demo's first
# stdout line comes before its training (the "data:" line), so an empty stdout means no
# training and no "result" line. Then what must work: a seed above 2^32, a long --out path,
# and replacing a user's file with a word. Last, every flag of every demo (from its --help;
# all but --model, a file) with values that no range holds.
# Prints one line per case and "N passed, N failed"; exits non-zero on a failure.
dir=${1:-build/test-tmp/misuse}
top=$(pwd)
rm -rf "$dir"; mkdir -p "$dir/cwd" || exit 1
dir=$(cd "$dir" && pwd)
passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# run DEMO ARG...: in $dir/cwd, so that a default out/<demo>/ lands there too
run()  { (cd "$dir/cwd" && GM_THREADS=1 timeout 60 "$top/build/$@") > "$dir/out" 2> "$dir/err"; }

# refuse WANT DEMO ARG...: `DEMO --quick ARG...` is refused and its stderr holds WANT
refuse() {
    want=$1; demo=$2; shift 2
    run "$demo" --quick "$@"; rc=$?
    shown=$demo; for a in "$@"; do [ ${#a} -gt 80 ] && a="(${#a} characters)"; shown="$shown $a"; done
    if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then fail "$shown: exit $rc (0, a timeout or a signal)"
    elif ! grep -qF -e "$want" "$dir/err"; then fail "$shown: stderr does not say \"$want\": $(head -1 "$dir/err")"
    elif [ -s "$dir/out" ]; then fail "$shown: went on: $(head -1 "$dir/out")"
    else ok "$shown: $(head -1 "$dir/err")"; fi
}

# idx DIR N H W: an MNIST-format folder, N black images H x W and N labels 0 per half. IDX:
# magic 00 00 08 03 (images) or 00 00 08 01 (labels), then each size as 4 bytes big-endian
u32() { printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
idx() {
    mkdir -p "$1"
    for part in train t10k; do
        { printf "\\000\\000\\010\\003$(u32 $2)$(u32 $3)$(u32 $4)"; head -c $(($2 * $3 * $4)) /dev/zero; } \
            > "$1/$part-images-idx3-ubyte"
        { printf "\\000\\000\\010\\001$(u32 $2)"; head -c $2 /dev/zero; } > "$1/$part-labels-idx1-ubyte"
    done
}

echo "== the misuses of issue 10"
refuse --epochs vae --epochs 0
refuse --epochs vae --epochs -5
refuse --latent vae --latent 0
refuse --latent vae --latent -3
refuse --hidden autoencoder --hidden 0
refuse --epochs vae --epochs 99999999999
refuse --seed vae --seed 18446744073709551616
refuse --seed vae --seed -1
idx "$dir/idx10" 200 10 10
refuse "--data $dir/idx10: 200 training images of 10x10" vae --data "$dir/idx10"
idx "$dir/few" 10 28 28
refuse "--data $dir/few: 10 training images of 28x28" vae --data "$dir/few"      # used to overflow the heap
: > "$dir/a-file"
refuse "--out $dir/a-file" vae --out "$dir/a-file"
refuse "--out $dir/a-file/sub" vae --out "$dir/a-file/sub"
[ -d /proc/self ] && refuse "--out /proc/self" vae --out /proc/self          # cannot be written, not even by root
if [ "$(id -u)" != 0 ]; then
    mkdir -p "$dir/read-only" && chmod 555 "$dir/read-only" && refuse "--out $dir/read-only" vae --out "$dir/read-only"
    chmod 755 "$dir/read-only"
fi
long=$dir/long
while [ ${#long} -lt 5000 ]; do long=$long/0123456789012345678901234567890123456789; done
refuse "--out is" kl_divergence --out "$long"

# the seed: any 64-bit number, none cut to 32 bits (99999999999 used to run as 1215752191)
if run kl_divergence --quick --seed 99999999999 --out "$dir/seed" && mv "$dir/out" "$dir/seed.out" &&
   run kl_divergence --quick --seed 1215752191 --out "$dir/seed" && ! cmp -s "$dir/out" "$dir/seed.out"
then ok "kl_divergence --seed 99999999999 is a seed of its own, not 1215752191"
else fail "kl_divergence --seed 99999999999 is 1215752191, or failed"; fi

# an --out of 466 characters (it used to be cut to 399): the files go there
long=$dir/long
while [ ${#long} -lt 466 ]; do long=$long/0123456789; done
long=$(echo "$long" | cut -c1-466)
if run kl_divergence --quick --out "$long" && [ -f "$long/fits.png" ]; then ok "kl_divergence --out (466 characters): files there"
else fail "kl_divergence --out (466 characters): no $long/fits.png"; fi

# a user's file in --out is replaced with a word; the demo's own out/<demo>/ stays quiet
mkdir -p "$dir/mine"
echo mine > "$dir/mine/fits.png"; touch -t 202001010000 "$dir/mine/fits.png"
if run kl_divergence --quick --out "$dir/mine" && grep -q "replacing $dir/mine/fits.png" "$dir/err" &&
   ! grep -q "curves.png" "$dir/err"; then ok "kl_divergence --out $dir/mine: $(grep replacing "$dir/err")"
else fail "kl_divergence --out $dir/mine: no word about fits.png (or about a new file)"; fi
if run kl_divergence --quick && touch -t 202001010000 "$dir"/cwd/out/kl_divergence/* &&
   run kl_divergence --quick && ! grep -q replacing "$dir/err"
then ok "kl_divergence twice into its own out/kl_divergence/: quiet"
else fail "kl_divergence twice into its own out/kl_divergence/: $(grep replacing "$dir/err" | head -1)"; fi

echo "== some ranges"
refuse --lr kl_divergence --lr 0
refuse --mu0 kl_divergence --mu0 inf
refuse --sigma reparameterization --sigma 0
refuse --size transposed_conv --size 100000
refuse --batch denoising_ae --batch 100000
refuse --noise denoising_ae --corruption mask --noise 1.5
refuse --S latent_variable_model --S 3
refuse --latent conditional_generation --latent 33
refuse --samples importance_sampling --samples 30
refuse --samples importance_sampling --samples 60
refuse --optim gan_saturation --optim rmsprop
refuse "unknown flag --epoch" vae --epoch 3
refuse "given twice: --epochs" vae --epochs 1 --epochs 2
refuse "unexpected argument 5" vae 5

echo "== fid's files"
refuse "--samples: $dir/a-file" fid --samples "$dir/a-file"
refuse "--classifier $dir/no.ckpt" fid --classifier "$dir/no.ckpt"

echo "== every numeric flag of every demo, with values that fit no range"
for src in demos/[0-9][0-9]_*.c; do
    demo=$(basename "$src" .c | cut -c4-)
    flags=$(./build/$demo --help 2>&1 | sed -n 's/^  \(--[a-zA-Z0-9-]*\) .*/\1/p' | grep -v -e --model)
    bad=""; n=0
    for flag in --seed $flags; do
        for v in 99999999999999999999 -99999999999 nan 1x; do
            run "$demo" --quick $flag $v; rc=$?
            n=$((n + 1))
            if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ -s "$dir/out" ] || ! grep -qF -e "$flag" "$dir/err"; then
                bad="$bad $flag $v (exit $rc)"
            fi
        done
    done
    if [ -z "$bad" ]; then ok "$demo: $n refused, each naming its flag:" $flags
    else fail "$demo:$bad"; fi
done

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
