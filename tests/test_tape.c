/* tests/test_tape.c - the tape made visible: gm_tape_print's table of a tiny step (its ops,
 * the lines that made them, shapes, bytes, inputs) and gm_tape_save_dot's graph, which must
 * parse: by Graphviz's dot when it is installed, and always by a structural check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../genmod.h"
#include "test.h"

enum { MAXL = 64, LINE = 512 };
typedef struct text { int n; char line[MAXL][LINE]; } text;

/* The lines of f from its start, without their newlines. */
static void read_lines(FILE *f, text *t)
{
    t->n = 0;
    rewind(f);
    while (t->n < MAXL && fgets(t->line[t->n], LINE, f)) {
        t->line[t->n][strcspn(t->line[t->n], "\n")] = 0;
        t->n++;
    }
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* L = sum((x W + b)^2), x (2,3) data, W (3,4) and b (4) parameters, one op a line: tensor #k
 * was made at line site[k] of this file. */
typedef struct tiny { gm_params P; gm_tape *T; gm_tensor *y, *L; int site[5]; } tiny;

static void tiny_step(tiny *s)
{
    static const float xs[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.0f, -0.5f};
    gm_tensor *W, *b, *x, *h;
    memset(s, 0, sizeof *s);
    W = gm_param_new(&s->P, "W", gm_shape2(3, 4));
    b = gm_param_new(&s->P, "b", gm_shape1(4));
    s->T = gm_tape_new(1 << 20);
    x = gm_from(s->T, gm_shape2(2, 3), xs);          s->site[0] = __LINE__;
    h = gm_matmul(s->T, x, W);                       s->site[1] = __LINE__;
    s->y = gm_add(s->T, h, b);                       s->site[2] = __LINE__;
    h = gm_square(s->T, s->y);                       s->site[3] = __LINE__;
    s->L = gm_sum(s->T, h);                          s->site[4] = __LINE__;
}

static void tiny_free(tiny *s)
{
    gm_tape_free(s->T);
    gm_params_free(&s->P);
}

/* What f holds after print(T, f). */
static void printed(const gm_tape *T, text *out)
{
    FILE *f = tmpfile();
    out->n = 0;
    EXPECT(f != NULL);
    if (!f) return;
    gm_tape_print(T, f);
    read_lines(f, out);
    fclose(f);
}

/* A header line, a column line, one row per tensor, the totals. */
static void test_tape_print(void)
{
    static const char *op[5] = {"gm_from", "gm_matmul", "gm_add", "gm_square", "gm_sum"};
    static const char *shape[5] = {"(2,3)", "(2,4)", "(2,4)", "(2,4)", "(1)"};
    static const char *inputs[5] = {"-", "  #0, W", "  #1, b", "  #2", "  #3"};
    static text out;
    char site[256];
    tiny s;
    int k;
    tiny_step(&s);
    gm_backward(s.T, s.L);
    printed(s.T, &out);
    EXPECT(out.n == 8);
    EXPECT(out.n > 0 && strstr(out.line[0], ": 5 tensors") && !strstr(out.line[0], "inference"));
    for (k = 0; k < 5 && k + 2 < out.n; k++) {
        const char *row = out.line[k + 2];
        snprintf(site, sizeof site, " %s:%d ", __FILE__, s.site[k]);
        EXPECT(atoi(row) == k);
        EXPECT(strstr(row, op[k]) != NULL);
        EXPECT(strstr(row, site) != NULL);
        EXPECT(strstr(row, shape[k]) != NULL);
        EXPECT(ends_with(row, inputs[k]));            /* the data has no inputs and no gradient */
    }
    /* every tensor holds one 64-byte block of values; all but the data one a gradient */
    EXPECT(out.n == 8 && strcmp(out.line[7], "in all: values and saved numbers 320 bytes, gradients 256 bytes; "
                                             "the arena holds 576 bytes of 1.0 MiB") == 0);
    tiny_free(&s);
}

/* A view holds no bytes of its own; an op that saves for its backward holds those too. */
static void test_tape_print_bytes(void)
{
    static text out;
    gm_params P = {0};
    gm_tape *T = gm_tape_new(1 << 20);
    gm_tensor *w = gm_param_new(&P, "w", gm_shape1(100)), *x, *logits;
    x = gm_zeros(T, gm_shape2(2, 50));                 /* 400 bytes: 7 blocks of 64 */
    logits = gm_reshape(T, w, gm_shape2(2, 50));      /* a view of w: nothing */
    gm_backward(T, gm_mean(T, gm_bernoulli_nll(T, logits, x)));   /* (2), keeps sigmoid(logits) */
    printed(T, &out);
    EXPECT(out.n == 7);
    EXPECT(out.n == 7 && strstr(out.line[2], "gm_zeros") && strstr(out.line[2], " 448 bytes "));
    EXPECT(out.n == 7 && strstr(out.line[3], "gm_reshape") && strstr(out.line[3], " 0 bytes  448 bytes  w"));
    EXPECT(out.n == 7 && strstr(out.line[4], "gm_bernoulli_nll") && strstr(out.line[4], " 512 bytes   64 bytes  #1, #0"));
    EXPECT(out.n == 7 && strstr(out.line[6], "values and saved numbers 1.0 KiB, gradients 576 bytes; "
                                             "the arena holds 1.6 KiB"));
    gm_tape_free(T);
    gm_params_free(&P);
}

/* gm_tape_alloc's bytes: before the first tensor they get a total of their own, after a
 * tensor they count with it; either way the totals add up to the arena's fill. */
static void test_tape_print_alloc(void)
{
    static text out;
    gm_tape *T = gm_tape_new(1 << 20);
    gm_tape_alloc(T, 1000);                           /* 16 blocks of 64 */
    gm_zeros(T, gm_shape1(16));                       /* one block */
    gm_tape_alloc(T, 4000);                           /* 63 blocks, counted with the zeros */
    gm_zeros(T, gm_shape1(16));
    printed(T, &out);
    EXPECT(out.n == 5);
    EXPECT(out.n == 5 && strstr(out.line[2], "gm_zeros") && strstr(out.line[2], " 4.0 KiB "));
    EXPECT(out.n == 5 && strstr(out.line[3], "gm_zeros") && strstr(out.line[3], " 64 bytes "));
    EXPECT(out.n == 5 && strcmp(out.line[4], "in all: values and saved numbers 4.1 KiB, gradients 0 bytes, "
                                             "gm_tape_alloc before #0 1.0 KiB; the arena holds 5.1 KiB of 1.0 MiB") == 0);
    if (out.n == 5) printf("  %s\n", out.line[4]);
    gm_tape_free(T);
}

/* A structural check of what gm_tape_save_dot writes, one statement a line: "digraph NAME {"
 * first, "}" last, quotes closed and brackets balanced on every line, every node declared
 * once, every edge between declared nodes. Returns the number of the step's nodes (t<k>)
 * and in *outside the number of the others, or -1 with the line at fault. */
static int dot_check(const char *path, int *outside)
{
    static text d;
    static char id[MAXL][16];
    int n = 0, tape = 0, k, i, j;
    FILE *f = fopen(path, "r");
    *outside = 0;
    if (!f) { printf("  cannot read %s\n", path); return -1; }
    read_lines(f, &d);
    fclose(f);
    if (d.n < 2 || strncmp(d.line[0], "digraph ", 8) != 0 || !ends_with(d.line[0], " {") ||
        strcmp(d.line[d.n - 1], "}") != 0) { printf("  %s: not \"digraph NAME { ... }\"\n", path); return -1; }
    for (k = 1; k < d.n - 1; k++) {                   /* quotes, brackets; the declarations */
        const char *l = d.line[k];
        char name[16];
        int quoted = 0, depth = 0;
        for (i = 0; l[i]; i++) {
            if (quoted && l[i] == '\\' && l[i + 1]) i++;
            else if (l[i] == '"') quoted = !quoted;
            else if (!quoted && strchr("[{", l[i])) depth++;
            else if (!quoted && strchr("]}", l[i]) && --depth < 0) break;
        }
        if (quoted || depth != 0 || !ends_with(l, ";")) { printf("  %s:%d: unbalanced: %s\n", path, k + 1, l); return -1; }
        if (strstr(l, " -> ") || sscanf(l, " %15[a-z0-9] [", name) != 1) continue;
        if (strcmp(name, "node") == 0 || strcmp(name, "edge") == 0) continue;
        for (j = 0; j < n; j++) if (strcmp(id[j], name) == 0) { printf("  %s:%d: %s declared again\n", path, k + 1, name); return -1; }
        if (n == MAXL) return -1;
        strcpy(id[n++], name);
        if (name[0] == 't') tape++;
        else (*outside)++;
    }
    for (k = 1; k < d.n - 1; k++) {                   /* every other line an edge between nodes */
        char a[16], b[16];
        int found = 0;
        if (!strstr(d.line[k], " -> ")) continue;
        if (sscanf(d.line[k], " %15[a-z0-9] -> %15[a-z0-9];", a, b) != 2) { printf("  %s:%d: not an edge\n", path, k + 1); return -1; }
        for (j = 0; j < n; j++) found += strcmp(id[j], a) == 0 || strcmp(id[j], b) == 0;
        if (found != 2) { printf("  %s:%d: an edge to an undeclared node: %s\n", path, k + 1, d.line[k]); return -1; }
    }
    return tape;
}

/* Graphviz's own parser, when it is installed (Debian: graphviz): 1 if it reads path, also
 * 1 without dot. */
static int dot_parses(const char *path)
{
    char cmd[600];
    if (system("dot -V > /dev/null 2>&1") != 0) return 1;
    snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o /dev/null", path);
    if (system(cmd) == 0) return 1;
    printf("  dot cannot read %s\n", path);
    return 0;
}

/* The line that declares node `name` in the DOT file path ("" if none). */
static const char *dot_node(const char *path, const char *name)
{
    static text d;
    char head[32];
    FILE *f = fopen(path, "r");
    int k;
    if (!f) return "";
    read_lines(f, &d);
    fclose(f);
    snprintf(head, sizeof head, "  %s [", name);
    for (k = 0; k < d.n; k++) if (strncmp(d.line[k], head, strlen(head)) == 0) return d.line[k];
    return "";
}

static void test_tape_dot(void)
{
    char path[512];
    tiny s;
    int outside = 0;
    snprintf(path, sizeof path, "%s/tape.dot", gm_test_dir);
    tiny_step(&s);
    gm_backward(s.T, s.L);
    EXPECT(gm_tape_save_dot(s.T, NULL, path));
    EXPECT(dot_check(path, &outside) == 5);            /* one node per tensor of the step */
    EXPECT(outside == 2);                              /* and one per parameter, W and b */
    EXPECT(dot_parses(path));
    EXPECT(strstr(dot_node(path, "t4"), "label=\"sum\\n(1)\\ntest_tape.c:") && strstr(dot_node(path, "t4"), "#f4cccc"));
    EXPECT(strstr(dot_node(path, "t0"), "shape=box") && strstr(dot_node(path, "t0"), "#e0e0e0"));
    EXPECT(strstr(dot_node(path, "o0"), "label=\"W\\n(3,4)\"") && strstr(dot_node(path, "o0"), "#cfe2f3"));
    EXPECT(!strstr(dot_node(path, "t1"), "dashed") && strstr(dot_node(path, "t1"), "\"white\""));
    /* a loss named by the caller is the one drawn as the loss */
    EXPECT(gm_tape_save_dot(s.T, s.y, path));
    EXPECT(strstr(dot_node(path, "t2"), "#f4cccc") && !strstr(dot_node(path, "t4"), "#f4cccc"));
    tiny_free(&s);
}

/* Names that need escaping, a buffer (a tensor from outside the step that is no parameter),
 * a detach (no backward, so dashed), and inference mode, where every op is dashed. */
static void test_tape_dot_odd(void)
{
    static text out;
    char path[512];
    gm_params P = {0};
    gm_tape *T = gm_tape_new(1 << 20);
    gm_tensor *w = gm_param_new(&P, "say \"w\" \\ here", gm_shape1(3)), *m = gm_buffer_new(&P, "mask", gm_shape1(3));
    gm_tensor *y;
    int outside, was;
    snprintf(path, sizeof path, "%s/tape-odd.dot", gm_test_dir);
    y = gm_mul(T, gm_detach(T, gm_mul(T, w, m)), w);
    EXPECT(gm_tape_save_dot(T, y, path));
    EXPECT(dot_check(path, &outside) == 3 && outside == 2);
    EXPECT(dot_parses(path));
    EXPECT(strstr(dot_node(path, "o0"), "label=\"say \\\"w\\\" \\\\ here\\n(3)\""));
    EXPECT(strstr(dot_node(path, "o1"), "#e0e0e0"));                 /* the buffer: grey */
    EXPECT(strstr(dot_node(path, "t1"), "dashed") && !strstr(dot_node(path, "t0"), "dashed"));
    gm_tape_reset(T);
    was = gm_tape_inference(T, 1);
    y = gm_mul(T, gm_mul(T, w, m), w);
    printed(T, &out);
    EXPECT(out.n == 5 && strstr(out.line[0], "inference mode") && strstr(out.line[3], "gm_mul"));
    EXPECT(gm_tape_save_dot(T, NULL, path));
    EXPECT(dot_check(path, &outside) == 2 && dot_parses(path));
    EXPECT(strstr(dot_node(path, "t0"), "dashed") && strstr(dot_node(path, "t1"), "dashed"));
    gm_tape_inference(T, was);
    gm_tape_free(T);
    gm_params_free(&P);
}

/* A loss that is not a tensor of this step is refused, naming the caller. */
static void dot_stale_loss(void *arg)
{
    tiny *s = (tiny *)arg;
    gm_tape_reset(s->T);
    gm_tape_save_dot(s->T, s->L, "never-written.dot");
}

static void test_tape_dot_misuse(void)
{
    tiny s;
    tiny_step(&s);
    EXPECT(gm_test_expect_fatal(dot_stale_loss, &s, "test_tape.c"));
    EXPECT(gm_test_expect_fatal(dot_stale_loss, &s, "gm_tape_save_dot: the loss (gm_sum) is not a tensor of this step"));
    EXPECT(!gm_tape_save_dot(s.T, NULL, "/nonexistent-dir/tape.dot") && strstr(gm_last_error(), "cannot write"));
    tiny_free(&s);
}

void tests_tape(void)
{
    TEST(test_tape_print);
    TEST(test_tape_print_bytes);
    TEST(test_tape_print_alloc);
    TEST(test_tape_dot);
    TEST(test_tape_dot_odd);
    TEST(test_tape_dot_misuse);
}
