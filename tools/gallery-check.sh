#!/bin/sh
# tools/gallery-check.sh [PAGE [SCREENSHOT]] - look at the gallery in a real browser.
#
#   make gallery-check        this script on out/index.html, screenshot out/gallery.png
#
# Opens PAGE (default out/index.html) in headless Chromium (Debian: apt-get install chromium;
# make gallery itself does not need it), saves a screenshot of the whole page, and fails if
# any picture is missing or broken (the browser could not decode it: naturalWidth 0) or the
# page marks a demo as failed or not run. How it sees: a copy of the page beside it, with a
# script added at the end that counts the broken images once everything has loaded and
# writes the count into the page, which Chromium's --dump-dom prints.
page=${1:-out/index.html}
shot=${2:-$(dirname "$page")/gallery.png}
width=1400                      # the page is at most 1320 pixels wide

browser=$(command -v chromium || command -v chromium-browser)
if [ -z "$browser" ]; then
    echo "gallery-check: no Chromium found; install it (Debian: apt-get install chromium) to check the page"
    exit 2
fi
[ -f "$page" ] || { echo "gallery-check: no $page (make gallery writes it)"; exit 2; }

dir=$(cd "$(dirname "$page")" && pwd)
probe=$dir/.gallery-check.html
profile=$(mktemp -d)
trap 'rm -rf "$profile" "$probe"' EXIT
chrome() {
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$profile" "$@" 2> "$profile/stderr.txt"
}

{ cat "$page"; cat <<'PROBE'; } > "$probe"      # (a script after </html> still runs in the body)
<script>
addEventListener("load", function () {
    var lines = [], broken = 0, i, img, out = document.createElement("pre");
    for (i = 0; i < document.images.length; i++) {
        img = document.images[i];
        if (!img.complete || img.naturalWidth === 0) { broken++; lines.push("gallery-check: broken " + img.getAttribute("src")); }
    }
    lines.push("gallery-check: images " + document.images.length + " broken " + broken +
               " failed " + document.querySelectorAll(".failed").length +
               " height " + document.documentElement.scrollHeight);
    out.textContent = "\n" + lines.join("\n") + "\n";     /* a report line each */
    document.body.appendChild(out);
});
</script>
PROBE
report=$(chrome --window-size=$width,800 --virtual-time-budget=60000 --dump-dom "file://$probe" | grep '^gallery-check: ')
if [ -z "$report" ]; then
    echo "gallery-check: Chromium gave no report on $page:"; tail -5 "$profile/stderr.txt"; exit 1
fi
set -- $(echo "$report" | tail -1)   # gallery-check: images N broken N failed N height N
images=$3 broken=$5 failed=$7 height=$9

chrome --window-size=$width,"$height" --virtual-time-budget=60000 --screenshot="$(cd "$(dirname "$shot")" && pwd)/${shot##*/}" "file://$dir/$(basename "$page")" > /dev/null
[ -s "$shot" ] || { echo "gallery-check: Chromium saved no screenshot"; tail -5 "$profile/stderr.txt"; exit 1; }

echo "$report" | grep '^gallery-check: broken '
echo "gallery-check: $page: $images pictures, $broken missing or broken, $failed demos failed or not run; screenshot $shot (${width}x$height)"
[ "$broken" = 0 ] && [ "$failed" = 0 ]
