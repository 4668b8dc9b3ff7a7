/* tests/test_probability.c - sections 7, 8 and 12: reparameterization, logsumexp, KL,
 * free bits, the IWAE bound, annealing schedules, active units and AUROC. Every op gets a
 * finite-difference gradient check; the rest is checked against values worked by hand. */
#include "../genmod.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

#define GRAD_TOL 1e-2
#define GRAD_H 1e-2f

typedef struct pcheck {
    gm_params P;
    gm_tensor *a, *b, *c, *d;
    int k;
} pcheck;

static gm_tensor *param(pcheck *c, const char *name, gm_shape s, float lo, float hi, gm_rng *rng)
{
    gm_tensor *t = gm_param_new(&c->P, name, s);
    gm_init_uniform(t, lo, hi, rng);
    return t;
}

static void grad_ok(const char *name, gm_build_fn build, pcheck *c)
{
    double err = gm_grad_check(build, c, c->P.t, c->P.n, GRAD_H, 7);
    printf("  grad %-26s worst relative error %.2e\n", name, err);
    EXPECT(err < GRAD_TOL);
    gm_params_free(&c->P);
}

/* eps must be the same in every evaluation of the check: a fresh rng with one seed each time */
static gm_tensor *b_reparam(gm_tape *T, void *p)
{
    pcheck *c = (pcheck *)p;
    gm_rng r = gm_rng_new(5);
    return gm_reparameterize(T, c->a, c->b, &r);
}
static gm_tensor *b_lse(gm_tape *T, void *p) { pcheck *c = (pcheck *)p; return gm_logsumexp(T, c->a); }
static gm_tensor *b_repeat(gm_tape *T, void *p)
{
    pcheck *c = (pcheck *)p;
    return gm_square(T, gm_repeat(T, c->a, 3));      /* square: each copy's gradient differs */
}
static gm_tensor *b_kl_std(gm_tape *T, void *p) { pcheck *c = (pcheck *)p; return gm_kl_normal_std(T, c->a, c->b); }
static gm_tensor *b_kl(gm_tape *T, void *p) { pcheck *c = (pcheck *)p; return gm_kl_normal(T, c->a, c->b, c->c, c->d); }
static gm_tensor *b_free_bits(gm_tape *T, void *p)
{
    pcheck *c = (pcheck *)p;
    return gm_free_bits(T, gm_kl_normal_std(T, c->a, c->b), 0.3f, c->k);
}
static gm_tensor *b_iwae(gm_tape *T, void *p) { pcheck *c = (pcheck *)p; return gm_iwae(T, c->a, 4); }

static void grad_probability(void)
{
    gm_rng rng = gm_rng_new(3);
    pcheck c;
    memset(&c, 0, sizeof c);
    c.a = param(&c, "mu", gm_shape2(3, 4), -1, 1, &rng); c.b = param(&c, "logvar", gm_shape2(3, 4), -2, 1, &rng);
    grad_ok("reparameterize (fixed eps)", b_reparam, &c);
    memset(&c, 0, sizeof c);
    c.a = param(&c, "x", gm_shape2(3, 5), -3, 3, &rng);
    grad_ok("logsumexp", b_lse, &c);
    memset(&c, 0, sizeof c);
    c.a = param(&c, "x", gm_shape4(2, 1, 2, 3), -1, 1, &rng);
    grad_ok("repeat", b_repeat, &c);
    memset(&c, 0, sizeof c);
    c.a = param(&c, "mu", gm_shape2(3, 4), -1, 1, &rng); c.b = param(&c, "logvar", gm_shape2(3, 4), -2, 1, &rng);
    grad_ok("kl_normal_std", b_kl_std, &c);
    memset(&c, 0, sizeof c);
    c.a = param(&c, "m1", gm_shape2(2, 3), -1, 1, &rng); c.b = param(&c, "v1", gm_shape2(2, 3), -1, 1, &rng);
    c.c = param(&c, "m2", gm_shape2(2, 3), -1, 1, &rng); c.d = param(&c, "v2", gm_shape2(2, 3), -1, 1, &rng);
    grad_ok("kl_normal", b_kl, &c);
    memset(&c, 0, sizeof c);
    c.a = param(&c, "x", gm_shape1(12), -4, 2, &rng);
    grad_ok("iwae (k = 4)", b_iwae, &c);
}

/* Free bits has a kink where a group's mean KL crosses lambda = 0.3: the inputs are chosen
 * so that some groups sit clearly above it and some clearly below (|logvar| <= 0.5 adds at
 * most 0.07 to a dimension's KL). */
static void grad_free_bits(void)
{
    float mu[8] = {1.5f, 0.05f, 1.2f, 0.02f, -1.4f, 0.04f, 1.1f, -0.03f};
    gm_rng rng = gm_rng_new(9);
    pcheck c;
    int g;
    for (g = 1; g <= 2; g++) {
        memset(&c, 0, sizeof c);
        c.a = gm_param_new(&c.P, "mu", gm_shape2(2, 4));
        c.b = param(&c, "logvar", gm_shape2(2, 4), -0.5f, 0.5f, &rng);
        memcpy(c.a->val, mu, sizeof mu);
        c.k = g;
        grad_ok(g == 1 ? "free_bits (per dim)" : "free_bits (groups of 2)", b_free_bits, &c);
    }
}

static void kl_known_values(void)
{
    gm_tape *T = gm_tape_new(1 << 20);
    float m1[2] = {0.5f, -1}, v1[2] = {0.2f, -0.7f}, m2[2] = {0.1f, 0.3f}, v2[2] = {-0.4f, 0.9f};
    gm_tensor *M1 = gm_from(T, gm_shape2(1, 2), m1), *V1 = gm_from(T, gm_shape2(1, 2), v1);
    gm_tensor *M2 = gm_from(T, gm_shape2(1, 2), m2), *V2 = gm_from(T, gm_shape2(1, 2), v2);
    gm_tensor *Z = gm_zeros(T, gm_shape2(1, 2));
    gm_tensor *std = gm_kl_normal_std(T, M1, V1), *gen = gm_kl_normal(T, M1, V1, Z, Z);
    gm_tensor *kl = gm_kl_normal(T, M1, V1, M2, V2), *self = gm_kl_normal(T, M1, V1, M1, V1);
    int j;
    for (j = 0; j < 2; j++) {
        double s1 = exp(0.5 * v1[j]), s2 = exp(0.5 * v2[j]);   /* log(s2/s1) + (s1^2 + dm^2)/(2 s2^2) - 1/2 */
        double want = log(s2 / s1) + (s1 * s1 + (m1[j] - m2[j]) * (m1[j] - m2[j])) / (2 * s2 * s2) - 0.5;
        EXPECT_NEAR(kl->val[j], want, 1e-5);
        EXPECT_NEAR(std->val[j], gen->val[j], 1e-6);             /* N(0, I) is the special case */
        EXPECT_NEAR(self->val[j], 0, 1e-6);                      /* KL(q || q) = 0 */
        EXPECT(kl->val[j] > 0);
    }
    EXPECT_NEAR(std->val[0], 0.5 * (0.25 + exp(0.2) - 0.2 - 1), 1e-6);
    gm_tape_free(T);
}

static void logsumexp_is_stable(void)
{
    gm_tape *T = gm_tape_new(1 << 20);
    float x[6] = {1000, 1000, -1000, -1000, 0, 0};
    gm_tensor *y = gm_logsumexp(T, gm_from(T, gm_shape2(3, 2), x));
    float ninf[2] = {-INFINITY, -INFINITY};
    EXPECT_NEAR(y->val[0], 1000 + log(2.0), 1e-3);       /* e^1000 overflows float and double */
    EXPECT_NEAR(y->val[1], -1000 + log(2.0), 1e-3);      /* e^-1000 underflows to 0 */
    EXPECT_NEAR(y->val[2], log(2.0), 1e-6);
    y = gm_logsumexp(T, gm_from(T, gm_shape2(1, 2), ninf));
    EXPECT(isinf(y->val[0]) && y->val[0] < 0);           /* log 0, not NaN */
    gm_tape_free(T);
}

/* With k = 1 the IWAE bound is the log weight itself (the ELBO's estimate); with equal
 * weights it is that weight for any k; it never exceeds the largest weight and never falls
 * below their mean (Jensen). */
static void iwae_known_values(void)
{
    gm_tape *T = gm_tape_new(1 << 20);
    float w[6] = {-3, -1, -2, -2, -2, -2};
    gm_tensor *W = gm_from(T, gm_shape1(6), w);
    gm_tensor *k1 = gm_iwae(T, W, 1), *k3 = gm_iwae(T, W, 3);
    int i;
    for (i = 0; i < 6; i++) EXPECT_NEAR(k1->val[i], w[i], 1e-6);
    EXPECT_NEAR(k3->val[0], log((exp(-3.0) + exp(-1.0) + exp(-2.0)) / 3), 1e-6);
    EXPECT_NEAR(k3->val[1], -2, 1e-6);
    EXPECT(k3->val[0] > -2 && k3->val[0] < -1);
    gm_tape_free(T);
}

/* The reparameterized samples have the mean and variance they claim. */
static void reparameterize_samples(void)
{
    gm_tape *T = gm_tape_new(8 << 20);
    gm_rng rng = gm_rng_new(11);
    int n = 100000, i;
    gm_tensor *mu = gm_zeros(T, gm_shape2(n, 1)), *lv = gm_zeros(T, gm_shape2(n, 1)), *z;
    double s = 0, ss = 0;
    for (i = 0; i < n; i++) { mu->val[i] = 2.0f; lv->val[i] = logf(0.25f); }   /* N(2, 0.5^2) */
    z = gm_reparameterize(T, mu, lv, &rng);
    for (i = 0; i < n; i++) { s += z->val[i]; ss += (double)z->val[i] * z->val[i]; }
    s /= n;
    EXPECT_NEAR(s, 2.0, 0.01);
    EXPECT_NEAR(ss / n - s * s, 0.25, 0.01);
    gm_tape_free(T);
}

static void free_bits_known_values(void)
{
    gm_tape *T = gm_tape_new(1 << 20);
    float kl[4] = {1.0f, 0.1f, 0.6f, 0.1f};                  /* B = 2, Z = 2: column means 0.8, 0.1 */
    gm_tensor *K = gm_from(T, gm_shape2(2, 2), kl);
    EXPECT_NEAR(gm_free_bits(T, K, 0.5f, 1)->val[0], 0.8 + 0.5, 1e-6);   /* dim 2 lifted to lambda */
    EXPECT_NEAR(gm_free_bits(T, K, 0.5f, 2)->val[0], 0.9, 1e-6);         /* one group of 2: 0.9 > 0.5 */
    EXPECT_NEAR(gm_free_bits(T, K, 0.0f, 1)->val[0], 0.9, 1e-6);         /* lambda 0: the plain mean KL */
    gm_tape_free(T);
}

static void anneal_schedules(void)
{
    EXPECT_NEAR(gm_anneal_linear(0, 100), 0, 0);
    EXPECT_NEAR(gm_anneal_linear(25, 100), 0.25, 1e-7);
    EXPECT_NEAR(gm_anneal_linear(500, 100), 1, 0);
    EXPECT_NEAR(gm_anneal_linear(3, 0), 1, 0);
    EXPECT_NEAR(gm_anneal_sigmoid(50, 50, 5), 0.5, 1e-7);
    EXPECT(gm_anneal_sigmoid(0, 50, 5) < 1e-4);
    EXPECT(gm_anneal_sigmoid(100, 50, 5) > 1 - 1e-4);
}

static void active_units_known_values(void)
{
    /* 4 examples, Z = 3: column 0 varies (var 5/3), column 1 is constant, column 2 barely moves */
    float mu[12] = {0, 1, 0.00f,  1, 1, 0.01f,  2, 1, 0.02f,  3, 1, 0.03f};
    float A[3];
    EXPECT(gm_active_units(mu, 4, 3, 0.01f, A) == 1);
    EXPECT_NEAR(A[0], 5.0 / 3.0, 1e-6);
    EXPECT_NEAR(A[1], 0, 0);
    EXPECT(gm_active_units(mu, 4, 3, 1e-5f, NULL) == 2);
}

static void auroc_known_values(void)
{
    float in[3] = {0.1f, 0.2f, 0.3f}, out[2] = {0.4f, 0.5f}, mixed[2] = {0.15f, 0.2f};
    EXPECT_NEAR(gm_auroc(in, 3, out, 2), 1.0, 1e-12);        /* every outlier above every inlier */
    EXPECT_NEAR(gm_auroc(out, 2, in, 3), 0.0, 1e-12);        /* reversed */
    EXPECT_NEAR(gm_auroc(in, 3, in, 3), 0.5, 1e-12);         /* identical lists: chance */
    /* 0.15 beats 0.1 only (1 of 3); 0.2 beats 0.1 and ties 0.2 (1.5 of 3): (1 + 1.5) / 6 */
    EXPECT_NEAR(gm_auroc(in, 3, mixed, 2), 2.5 / 6.0, 1e-12);
    EXPECT(isnan(gm_auroc(in, 0, out, 2)));
}

void tests_probability(void)
{
    printf("probability, objectives, metrics\n");
    TEST(grad_probability);
    TEST(grad_free_bits);
    TEST(kl_known_values);
    TEST(logsumexp_is_stable);
    TEST(iwae_known_values);
    TEST(reparameterize_samples);
    TEST(free_bits_known_values);
    TEST(anneal_schedules);
    TEST(active_units_known_values);
    TEST(auroc_known_values);
}
