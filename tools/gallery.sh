#!/bin/sh
# tools/gallery.sh - run every demo once and put what each one made on one page, out/index.html.
#
#   make gallery              builds the demos, then runs this script: every run below, then the page
#   tools/gallery.sh vae fid  those demos' runs only, then the page
#   tools/gallery.sh --page   the page only, from the out/<demo>/ folders the last runs left
#   make gallery-check        opens the page in headless Chromium (tools/gallery-check.sh)
#
# Each demo runs from the top folder into its default folder out/<demo>/ (emptied first), so
# the command on the page is the one to type. Its stdout is kept there as stdout.txt, its
# stderr (the progress bars) as stderr.txt, its exit status and wall time as run.txt. The
# page has a section per lecture, in course order: the note's title, links to the note and
# to each demo's source, the data the demo used (its "data:" line), the command, the
# pictures in the order the demo wrote them, and its result lines.
#
# Most demos run with their defaults; the whole gallery takes about 20 minutes on two cores.
# Where the default takes minutes, a flag shortens it to a run that still makes the lecture's
# point (the lectures' own runs are in lectures/figures/runs.txt):
#   classifier --epochs 1        one of its three epochs (test accuracy 0.89 against 0.91)
#   dcgan --epochs 1             one of three: rough garments (FID about 115 against 60)
#   diffusion_forward --chains 200   the closed form checked on 200 chains instead of 1000
#   diffusion_2d --steps 10000   half the training: ancestral samples still on the data
#   ddpm --steps 3000 --samples 500  an eighth of the training: rough garments from all
#                                three samplers; FID of 500 samples
#   made --epochs 2              two of five epochs (test NLL about 249 against 244)
# and conditional_generation and importance_sampling load vae's model instead of training
# one. The classifier runs first: dcgan, mode_collapse, fid and ddpm load its checkpoint
# out/classifier/classifier.ckpt. Without Fashion-MNIST every demo runs on the built-in
# shapes (each demo's data line says so), and the classifier trains on them.
cd "$(dirname "$0")/.." || exit 1

# lecture note (lectures/NAME.md), then the command of each of its demos; a note with no demo
# stands alone
RUNS='
00-design
01-generative-models-and-kl    ./build/kl_divergence
02-autoencoders                ./build/autoencoder
02-transposed-convolution      ./build/transposed_conv
03-denoising-autoencoders      ./build/denoising_ae
04-latent-variable-models      ./build/latent_variable_model
05-variational-autoencoders    ./build/vae
05-reparameterization          ./build/reparameterization
06-latent-space-regularization ./build/vae_regularization
06-latent-space-regularization ./build/latent_perturbation
06-using-the-latent-space      ./build/conditional_generation --model out/vae/vae_mlp.ckpt
06-using-the-latent-space      ./build/aggregate_posterior
07-posterior-collapse          ./build/posterior_collapse
08-likelihood                  ./build/importance_sampling --model out/vae/vae_mlp.ckpt
08-likelihood                  ./build/outlier_detection
09-gans                        ./build/gan_1d
09-gans                        ./build/optimal_discriminator
09-gans                        ./build/gan_saturation
09-dcgan                       ./build/dcgan --epochs 1
10-mode-collapse               ./build/mode_collapse
10-evaluating-samples          ./build/classifier --epochs 1
10-evaluating-samples          ./build/fid --samples out/vae/samples.npy
11-flows                       ./build/flow
12-diffusion                   ./build/diffusion_forward --chains 200
12-ddpm                        ./build/diffusion_2d --steps 10000
12-ddpm                        ./build/ddpm --steps 3000 --samples 500
13-autoregressive              ./build/made --epochs 2
'

esc() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }     # text -> HTML

run() {    # run COMMAND...: the demo into out/<demo>/, its output and run.txt beside it
    dir=out/${1#./build/}
    rm -rf "$dir"; mkdir -p "$dir"
    echo "== $*"
    t0=$(date +%s.%N)
    "$@" < /dev/null > "$dir/stdout.txt" 2> "$dir/stderr.txt"; status=$?
    t1=$(date +%s.%N)
    echo "$status $t0 $t1" | awk '{printf "%d %.1f\n", $1, $3 - $2}' > "$dir/run.txt"
    [ $status = 0 ] || { echo "gallery: $* failed (exit $status):"; tail -5 "$dir/stderr.txt"; }
    return $status
}

failed=0
if [ "$1" != --page ]; then
    # the classifier first, then the page's order
    order=$(echo "$RUNS" | grep ' ./build/classifier'; echo "$RUNS" | grep -v ' ./build/classifier')
    while read -r _ cmd; do
        [ -n "$cmd" ] || continue
        demo=${cmd%% *}; demo=${demo#./build/}
        case " $* " in "  " | *" $demo "*) ;; *) continue;; esac      # all, or the ones named
        # shellcheck disable=SC2086  # the flags are words
        run $cmd || failed=1
    done <<ORDER
$order
ORDER
fi

# ---- the page
mkdir -p out
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%d %d", $3 * 256 + $4, $7 * 256 + $8}'; }  # IHDR

demo_html() {    # demo_html COMMAND...: one demo's part of the page
    name=${1#./build/}; dir=out/$name
    src=$(ls demos/[0-9][0-9]_"$name".c)
    echo "<h3 id=\"$name\">$name</h3>"
    echo "<p class=\"meta\"><a href=\"../$src\">$src</a> · <a href=\"$name/stdout.txt\">full output</a>"
    if [ ! -f "$dir/run.txt" ]; then echo " · <span class=\"failed\">not run yet</span></p>"; return; fi
    read -r status seconds < "$dir/run.txt"
    echo " · $seconds s</p>"
    echo "<pre class=\"cmd\">\$ $(echo "$*" | esc)</pre>"
    echo "<p class=\"data\">$(grep -m1 '^data:' "$dir/stdout.txt" | esc)</p>"
    if [ "$status" != 0 ]; then
        echo "<p class=\"failed\">failed with exit status $status; the end of its stderr:</p>"
        echo "<pre>$(tail -5 "$dir/stderr.txt" | esc)</pre>"
    fi
    echo "<div class=\"figures\">"
    for png in $(ls -tr "$dir" | grep '\.png$'); do
        set -- $(png_size "$dir/$png")
        # at most the page's width; the others keep their pixels sharp (sample grids)
        class=scaled; [ "$1" -le 1320 ] && class=natural
        echo "<figure><a href=\"$name/$png\"><img class=\"$class\" src=\"$name/$png\" width=\"$1\" height=\"$2\" alt=\"$name/$png\"></a><figcaption>out/$name/$png</figcaption></figure>"
    done
    echo "</div>"
    echo "<pre class=\"results\">"
    grep '^result ' "$dir/stdout.txt" | esc |
        awk '{k[NR] = $2; v[NR] = $3; if (length($2) > w) w = length($2)}
             END {for (i = 1; i <= NR; i++) printf "%-" w "s  %s\n", k[i], v[i]}'
    echo "</pre>"
}

{
cat <<'HEAD'
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>genmod: the gallery</title>
<style>
body { max-width: 1320px; margin: 2em auto; padding: 0 1em; font: 16px/1.5 sans-serif; color: #222; }
p, nav { max-width: 60em; }
h2 { margin-top: 2.5em; padding-top: 0.5em; border-top: 2px solid #ccc; }
h3 { margin: 1.5em 0 0.2em; font-family: monospace; font-size: 1.15em; }
.meta, .data { margin: 0.2em 0; color: #555; }
pre { background: #f3f3f3; padding: 0.4em 0.6em; overflow-x: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 0.8em 1em; align-items: flex-start; margin: 0.6em 0; }
figure { max-width: 100%; margin: 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; }
img.natural { image-rendering: pixelated; }
figcaption { font: 0.8em monospace; color: #666; }
pre.results { columns: 26em; font-size: 0.85em; }
.failed { color: #b00; font-weight: bold; }
nav ul { columns: 2; list-style: none; padding: 0; }
</style>
</head>
<body>
<h1>genmod: the gallery</h1>
HEAD
echo "<p>Every demo, run by <code>make gallery</code> (tools/gallery.sh) on $(date '+%Y-%m-%d'), each from the"
echo "top folder into its own <code>out/&lt;demo&gt;/</code>. Under each demo: the data it used, the exact"
echo "command, its pictures (click one for full size) and its <code>result</code> lines. Long demos run"
echo "with shorter settings than the lectures' runs (lectures/figures/runs.txt), so their numbers differ."
echo "The runs took $(cat out/*/run.txt 2>/dev/null | awk '{s += $2} END {printf "%.0f", s / 60}') minutes in all.</p>"
echo "<nav><ul>"
echo "$RUNS" | awk 'NF && !seen[$1]++ {print $1}' | while read -r lecture; do
    echo "<li><a href=\"#$lecture\">$(sed -n '1s/^# //p' "lectures/$lecture.md" | esc)</a></li>"
done
echo "</ul></nav>"
last=
echo "$RUNS" | while read -r lecture cmd; do
    [ -n "$lecture" ] || continue
    if [ "$lecture" != "$last" ]; then
        echo "<h2 id=\"$lecture\">$(sed -n '1s/^# //p' "lectures/$lecture.md" | esc)</h2>"
        echo "<p>Lecture note: <a href=\"../lectures/$lecture.md\">lectures/$lecture.md</a></p>"
        last=$lecture
    fi
    if [ -z "$cmd" ]; then      # no demo: the pictures the note shows, from lectures/img/
        echo "<p>No demo: <code>make test</code> runs this note's gradient checks; its pictures come from <code>make figures</code>.</p>"
        echo "<div class=\"figures\">"
        grep -o '](img/[^)]*\.png)' "lectures/$lecture.md" | sed 's/^](//; s/)$//' | while read -r png; do
            echo "<figure><a href=\"../lectures/$png\"><img class=\"scaled\" src=\"../lectures/$png\" alt=\"lectures/$png\"></a><figcaption>lectures/$png</figcaption></figure>"
        done
        echo "</div>"
    fi
    # shellcheck disable=SC2086
    [ -n "$cmd" ] && demo_html $cmd
done
echo "</body>"
echo "</html>"
} > out/index.html.tmp && mv out/index.html.tmp out/index.html
echo "gallery: out/index.html"
exit $failed
