/* tests/main.c - the test runner: every test group, then one line "N passed, N failed".
 * Programming errors in genmod stop through GM_ABORT(); here it jumps back into the test
 * that expected the error (see expect_fatal), so error paths can be tested too. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static jmp_buf *gm_test_jump;
static void gm_test_abort(void)
{
    if (gm_test_jump) longjmp(*gm_test_jump, 1);
    abort();
}
#define GM_ABORT() gm_test_abort()
/* Unfold at most 400 numbers per convolution chunk, so the gradient checks' small batches
 * are split into several chunks too (the default budget never splits them). */
#define GM__COL_FLOATS 400
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "student_ops.h"
#include "test.h"

int gm_test_passed, gm_test_failed, gm_test_current_failed;
const char *gm_test_dir;

/* Run fn(arg) expecting a programming error; returns 1 if it stopped with a message that
 * contains `want` (the message goes to a file instead of the terminal). */
int gm_test_expect_fatal(void (*fn)(void *), void *arg, const char *want)
{
    jmp_buf jb;
    char path[512], msg[1024] = "";
    FILE *f;
    int saved = dup(2);
    volatile int stopped = 0;
    size_t n;
    snprintf(path, sizeof path, "%s/fatal.txt", gm_test_dir);
    fflush(stderr);
    f = freopen(path, "w", stderr);
    (void)f;
    gm_test_jump = &jb;
    if (setjmp(jb) == 0) fn(arg);
    else stopped = 1;
    gm_test_jump = NULL;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    f = fopen(path, "r");
    if (f) { n = fread(msg, 1, sizeof msg - 1, f); msg[n] = 0; fclose(f); }
    if (stopped && !strstr(msg, want)) printf("  error message \"%s\" lacks \"%s\"\n", msg, want);
    if (!stopped) printf("  expected an error containing \"%s\", got none\n", want);
    return stopped && strstr(msg, want) != NULL;
}

double gm_test_grad_h(const char *name, gm_build_fn build, void *ctx, gm_params *P, float h)
{
    gm_tensor **in = (gm_tensor **)malloc(sizeof(gm_tensor *) * (size_t)(P->n + 1));
    double err = INFINITY;
    int i, n = 0;
    if (in) {
        for (i = 0; i < P->n; i++) if (P->t[i]->flags & GM_PARAM) in[n++] = P->t[i];
        err = gm_grad_check(build, ctx, in, n, h, 7);
    }
    free(in);
    printf("  grad %-26s worst relative error %.2e\n", name, err);
    gm_params_free(P);
    return err;
}

double gm_test_grad(const char *name, gm_build_fn build, void *ctx, gm_params *P)
{
    return gm_test_grad_h(name, build, ctx, P, GRAD_H);
}

int main(int argc, char **argv)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "build/test-tmp");
    mkdir("build", 0755);
    mkdir(dir, 0755);
    gm_test_dir = dir;
    setenv("GM_CHECK_FINITE", "1", 1);        /* every op's inputs and grads scanned (genmod.h) */
    tests_ops();
    tests_io();
    tests_probability();
    tests_gan();
    tests_eval();
    tests_diffusion();
    tests_flows();
    tests_made();
    tests_tape();
    tests_data();
    tests_output();
    printf("%d passed, %d failed\n", gm_test_passed, gm_test_failed);
    return gm_test_failed ? 1 : 0;
}
