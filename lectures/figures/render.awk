# lectures/figures/render.awk - put the demos' logged output into a lecture.
#
#   awk -v logs=lectures/figures/logs -f render.awk lecture.md > new.md
#
# A lecture quotes a run (a line of runs.txt, whose stdout is logs/NAME.txt) in two ways:
#
#   <!-- log NAME /ERE/ code -->        the lines of logs/NAME.txt that match the extended
#   ...                                 regular expression, in a ``` block ("code"), or as
#   <!-- end -->                        they are without it (a demo that prints table rows)
#   <!-- log NAME /FROM/,/TO/ code -->  a range, as in awk: every run of lines from one that
#                                       matches FROM through the next that matches TO (a
#                                       matrix the demo prints between a title and a caption)
#
#   244.34<!-- vae:test_neg_elbo -->    a number, followed by an expression that computes it
#
# An expression is numbers, + - * / and parentheses over references:
#   NAME:KEY       the value of the line "result KEY value" of logs/NAME.txt
#   NAME:/ERE/N    the N-th whitespace-separated field of the first line matching ERE
#                  (write a slash inside the ERE as \/)
# The number before the marker is rewritten with as many decimals as it had (written as
# 2.6e-05 it stays in that form), a minus sign in the same style (− or -). Everything else
# is copied. Any problem (no such log, key or line) stops with the lecture's file and line.

function fail(msg) {
    printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
    failed = 1
    exit 1
}

# Read logs/NAME.txt once: its lines, and its "result KEY value" lines by key.
function load(name,    path, line, n, f) {
    if (name in loaded) return
    path = logs "/" name ".txt"
    n = 0
    while ((getline line < path) > 0) {
        logline[name, ++n] = line
        split(line, f, /[ \t]+/)
        if (f[1] == "result") result[name, f[2]] = f[3]
    }
    close(path)
    if (n == 0) fail("no log " path " (run lectures/figures/run.sh " name ")")
    nlog[name] = n
    loaded[name] = 1
}

# ---- the expression evaluator: a recursive descent over the string ex, position pos
function skip() { while (substr(ex, pos, 1) == " ") pos++ }

function primary(    c, start, name, re, n, f, i, v) {
    skip()
    c = substr(ex, pos, 1)
    if (c == "(") { pos++; v = sum(); skip(); if (substr(ex, pos, 1) != ")") fail("missing ) in " ex); pos++; return v }
    if (c == "-") { pos++; return -primary() }
    if (c ~ /[0-9.]/) {
        start = pos
        while (substr(ex, pos, 1) ~ /[0-9.eE]/) pos++
        return substr(ex, start, pos - start) + 0
    }
    start = pos
    while (substr(ex, pos, 1) ~ /[A-Za-z0-9_]/) pos++
    name = substr(ex, start, pos - start)
    if (name == "" || substr(ex, pos, 1) != ":") fail("expected NAME:KEY or NAME:/ERE/N at \"" substr(ex, start) "\" in " ex)
    pos++
    load(name)
    if (substr(ex, pos, 1) == "/") {
        start = ++pos                                   # to the closing /; \/ is a slash
        while (pos <= length(ex) && substr(ex, pos, 1) != "/") pos += substr(ex, pos, 1) == "\\" ? 2 : 1
        re = substr(ex, start, pos - start)
        start = ++pos
        while (substr(ex, pos, 1) ~ /[0-9]/) pos++
        n = substr(ex, start, pos - start) + 0
        for (i = 1; i <= nlog[name]; i++)
            if (logline[name, i] ~ re) {
                v = logline[name, i]
                sub(/^[ \t]+/, "", v)
                if (n < 1 || n > split(v, f, /[ \t]+/)) fail("line \"" logline[name, i] "\" has no field " n)
                return num(f[n])
            }
        fail("no line matches /" re "/ in log " name)
    }
    start = pos
    while (substr(ex, pos, 1) ~ /[A-Za-z0-9_]/) pos++
    c = substr(ex, start, pos - start)
    if (!((name, c) in result)) fail("log " name " has no line \"result " c "\"")
    return num(result[name, c])
}

# a field as a number: "−3.2" (typographic minus), "(2.56)", "96.6%" and "3.1e-08" all read
function num(s) {
    gsub(/[(),%]/, "", s)
    if (substr(s, 1, 3) == "−") s = "-" substr(s, 4)
    if (s !~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/) fail("\"" s "\" is not a number")
    return s + 0
}

function product(    v, c) {
    v = primary()
    for (;;) {
        skip(); c = substr(ex, pos, 1)
        if (c == "*") { pos++; v *= primary() }
        else if (c == "/") { pos++; v /= primary() }
        else return v
    }
}

function sum(    v, c) {
    v = product()
    for (;;) {
        skip(); c = substr(ex, pos, 1)
        if (c == "+") { pos++; v += product() }
        else if (c == "-") { pos++; v -= product() }
        else return v
    }
}

function evaluate(s,    v) {
    ex = s; pos = 1
    v = sum(); skip()
    if (pos <= length(ex)) fail("cannot read \"" substr(ex, pos) "\" in " ex)
    return v
}

# ---- the number in front of a marker, rewritten in its own style
function restyle(old, v,    minus, body, dec, out) {
    minus = "−"
    if (substr(old, 1, 1) == "-") { minus = "-"; body = substr(old, 2) }
    else if (substr(old, 1, 3) == "−") body = substr(old, 4)
    else body = old
    dec = 0
    if (match(body, /\.[0-9]*/)) dec = RLENGTH - 1
    if (body ~ /[eE]/) out = sprintf("%." dec "e", v < 0 ? -v : v)
    else out = sprintf("%." dec "f", v < 0 ? -v : v)
    if (out ~ /^0\.?0*(e.*)?$/) v = 0                    # no "−0.00"
    return (v < 0 ? minus : "") out
}

function inline(line,    out, m, numre, head, num0, expr, rest, close_at) {
    out = ""
    numre = "(-|−)?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?<!-- "
    while (match(line, numre)) {
        if (substr(line, RSTART + RLENGTH - 5) ~ /^<!-- (log |end -->)/) break
        head = substr(line, 1, RSTART - 1)
        if (infence || gsub(/`/, "`", head) % 2) fail("a marker inside code is shown as text, not rendered: move the number out of the code")
        num0 = substr(line, RSTART, RLENGTH - 5)
        rest = substr(line, RSTART + RLENGTH)
        close_at = index(rest, " -->")
        if (!close_at) fail("a marker without its closing \" -->\"")
        expr = substr(rest, 1, close_at - 1)
        out = out head restyle(num0, evaluate(expr)) "<!-- " expr " -->"
        line = substr(rest, close_at + 4)
    }
    return out line
}

BEGIN { if (logs == "") logs = "lectures/figures/logs" }

skipping {
    if ($0 == "<!-- end -->") { skipping = 0; print }
    next
}

/^<!-- log [A-Za-z0-9_]+ \/.*\/( code)? -->$/ {
    print
    name = $3
    load(name)
    re = $0
    sub(/^<!-- log [A-Za-z0-9_]+ \//, "", re)
    code = re ~ /\/ code -->$/
    sub(/\/( code)? -->$/, "", re)
    to = ""                                     # /FROM/,/TO/: re is FROM, to is TO
    if ((k = index(re, "/,/")) > 0) { to = substr(re, k + 3); re = substr(re, 1, k - 1) }
    if (code) print "```"
    shown = inside = 0
    for (i = 1; i <= nlog[name]; i++) {
        if (!inside && logline[name, i] ~ re) inside = 1
        if (!inside) continue
        print logline[name, i]; shown++
        if (to == "" || logline[name, i] ~ to) inside = 0
    }
    if (!shown) fail("no line of log " name " matches /" re "/")
    if (inside && to != "") fail("in log " name ", no line after /" re "/ matches /" to "/")
    if (code) print "```"
    skipping = 1
    next
}

{ print inline($0) }
/^```/ { infence = !infence }

END {
    if (failed) exit 1
    if (skipping) { printf "%s: a <!-- log ... --> block has no <!-- end -->\n", FILENAME > "/dev/stderr"; exit 1 }
}
