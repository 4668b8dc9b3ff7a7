/* tests/test.h - the tiny test harness: TEST, EXPECT, EXPECT_NEAR, and one summary line. */
#ifndef GM_TEST_H
#define GM_TEST_H
#include <math.h>
#include <stdio.h>

extern int gm_test_passed, gm_test_failed, gm_test_current_failed;

/* Run one test function: it passes when none of its EXPECTs failed. */
#define TEST(fn) do { gm_test_current_failed = 0; fn(); \
        if (gm_test_current_failed) { gm_test_failed++; printf("FAIL %s\n", #fn); } \
        else { gm_test_passed++; } } while (0)

#define EXPECT(cond) do { if (!(cond)) { gm_test_current_failed = 1; \
        printf("  %s:%d: expected %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define EXPECT_NEAR(a, b, tol) do { double a_ = (double)(a), b_ = (double)(b); \
        if (!(fabs(a_ - b_) <= (tol))) { gm_test_current_failed = 1; \
        printf("  %s:%d: expected %s ~ %s within %g, got %.9g vs %.9g\n", \
               __FILE__, __LINE__, #a, #b, (double)(tol), a_, b_); } } while (0)

/* Each test file exports one function that runs its tests with TEST(...). */
void tests_ops(void);
void tests_data(void);
void tests_output(void);
void tests_io(void);
void tests_probability(void);
void tests_gan(void);
void tests_eval(void);
void tests_diffusion(void);
void tests_flows(void);
void tests_made(void);
void tests_tape(void);

/* A scratch directory for files the tests write (created by main). */
extern const char *gm_test_dir;

int gm_test_expect_fatal(void (*fn)(void *), void *arg, const char *want);

/* The gradient check's tolerance on the worst relative error (see gm_grad_check). Central
 * differences in float32 with h = 1e-2 on inputs of order 1 are good to about 1e-3. */
#define GRAD_TOL 1e-2
#define GRAD_H 1e-2f
/* gm_grad_check of build(ctx) against every trainable tensor of P, with step GRAD_H (or h);
 * prints "grad <name> worst relative error ...", frees P and returns the error. Include
 * genmod.h first. */
double gm_test_grad(const char *name, gm_build_fn build, void *ctx, gm_params *P);
double gm_test_grad_h(const char *name, gm_build_fn build, void *ctx, gm_params *P, float h);
#endif
