/* tests/test_ops.c - a finite-difference gradient check for every op, known values for the
 * losses and optimizers, and the tape's lifetime rules. */
#define _POSIX_C_SOURCE 200809L      /* setenv, for the thread-count test */
#include "../genmod.h"
#include "student_ops.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

/* Everything one check needs: parameters as inputs, and the layers under test. */
typedef struct check {
    gm_params P;
    gm_tensor *a, *b, *c;
    gm_dense dense;
    gm_conv2d conv;
    gm_conv_transpose2d convt;
    gm_batchnorm bn;
    int mode;
    gm_rng rng;
} check;

/* An input of the given shape, uniform in [lo,hi]; with `kink` > 0 values within kink of
 * zero are pushed out so ReLU-like ops are differentiable where they are checked. */
static gm_tensor *input(check *c, const char *name, gm_shape s, float lo, float hi, float kink)
{
    gm_tensor *t = gm_param_new(&c->P, name, s);
    int i;
    gm_init_uniform(t, lo, hi, &c->rng);
    for (i = 0; i < t->size; i++)
        if (fabsf(t->val[i]) < kink) t->val[i] = t->val[i] < 0 ? -kink - 0.1f : kink + 0.1f;
    return t;
}

/* Check build(ctx) against every trainable parameter of c; frees c. */
static void grad_ok(const char *name, gm_build_fn build, check *c)
{
    EXPECT(gm_test_grad(name, build, c, &c->P) < GRAD_TOL);
}

static check new_check(void)
{
    check c;
    memset(&c, 0, sizeof c);
    c.rng = gm_rng_new(42);
    return c;
}

/* ---- builders: one per op ---- */
static gm_tensor *b_add(gm_tape *T, void *p) { check *c = (check *)p; return gm_add(T, c->a, c->b); }
static gm_tensor *b_sub(gm_tape *T, void *p) { check *c = (check *)p; return gm_sub(T, c->a, c->b); }
static gm_tensor *b_mul(gm_tape *T, void *p) { check *c = (check *)p; return gm_mul(T, c->a, c->b); }
static gm_tensor *b_mul_self(gm_tape *T, void *p) { check *c = (check *)p; return gm_mul(T, c->a, c->a); }
static gm_tensor *b_scale(gm_tape *T, void *p) { check *c = (check *)p; return gm_scale(T, c->a, -1.7f); }
static gm_tensor *b_matmul(gm_tape *T, void *p) { check *c = (check *)p; return gm_matmul(T, c->a, c->b); }
static gm_tensor *b_dense(gm_tape *T, void *p) { check *c = (check *)p; return gm_dense(T, &c->dense, c->a); }
static gm_tensor *b_relu(gm_tape *T, void *p) { check *c = (check *)p; return gm_relu(T, c->a); }
static gm_tensor *b_leaky(gm_tape *T, void *p) { check *c = (check *)p; return gm_leaky_relu(T, c->a, 0.2f); }
static gm_tensor *b_sigmoid(gm_tape *T, void *p) { check *c = (check *)p; return gm_sigmoid(T, c->a); }
static gm_tensor *b_tanh(gm_tape *T, void *p) { check *c = (check *)p; return gm_tanh(T, c->a); }
static gm_tensor *b_softplus(gm_tape *T, void *p) { check *c = (check *)p; return gm_softplus(T, c->a); }
static gm_tensor *b_silu(gm_tape *T, void *p) { check *c = (check *)p; return gm_silu(T, c->a); }
static gm_tensor *b_exp(gm_tape *T, void *p) { check *c = (check *)p; return gm_exp(T, c->a); }
static gm_tensor *b_log(gm_tape *T, void *p) { check *c = (check *)p; return gm_log(T, c->a); }
static gm_tensor *b_square(gm_tape *T, void *p) { check *c = (check *)p; return gm_square(T, c->a); }
static gm_tensor *b_student_abs(gm_tape *T, void *p) { check *c = (check *)p; return student_abs(T, c->a); }
/* the student's dense inside a chain, so its input gradient flows on (tanh before it) */
static gm_tensor *b_student_dense(gm_tape *T, void *p)
{
    check *c = (check *)p;
    return student_dense(T, &c->dense, gm_tanh(T, c->a));
}
static gm_tensor *b_sum(gm_tape *T, void *p) { check *c = (check *)p; return gm_sum(T, c->a); }
static gm_tensor *b_mean(gm_tape *T, void *p) { check *c = (check *)p; return gm_mean(T, c->a); }
static gm_tensor *b_sum_ex(gm_tape *T, void *p) { check *c = (check *)p; return gm_sum_per_example(T, c->a); }
static gm_tensor *b_mean_ex(gm_tape *T, void *p) { check *c = (check *)p; return gm_mean_per_example(T, c->a); }
/* reshape is a view, so check it feeding an op that weighs positions differently */
static gm_tensor *b_reshape(gm_tape *T, void *p)
{
    check *c = (check *)p;
    return gm_mul(T, gm_reshape(T, c->a, gm_shape2(5, 6)), c->b);
}
static gm_tensor *b_flatten(gm_tape *T, void *p) { check *c = (check *)p; return gm_square(T, gm_flatten(T, c->a)); }
static gm_tensor *b_concat(gm_tape *T, void *p) { check *c = (check *)p; return gm_concat(T, c->a, c->b); }
static gm_tensor *b_conv(gm_tape *T, void *p) { check *c = (check *)p; return gm_conv2d(T, &c->conv, c->a); }
static gm_tensor *b_convt(gm_tape *T, void *p) { check *c = (check *)p; return gm_conv_transpose2d(T, &c->convt, c->a); }
static gm_tensor *b_up(gm_tape *T, void *p) { check *c = (check *)p; return gm_upsample2x(T, c->a); }
static gm_tensor *b_pool(gm_tape *T, void *p) { check *c = (check *)p; return gm_avgpool2x2(T, c->a); }
static gm_tensor *b_bn(gm_tape *T, void *p) { check *c = (check *)p; return gm_batchnorm(T, &c->bn, c->a, c->mode); }
static gm_tensor *b_mse(gm_tape *T, void *p) { check *c = (check *)p; return gm_mse(T, c->a, c->b); }
static gm_tensor *b_bern(gm_tape *T, void *p) { check *c = (check *)p; return gm_bernoulli_nll(T, c->a, c->b); }
static gm_tensor *b_gauss(gm_tape *T, void *p) { check *c = (check *)p; return gm_gaussian_nll(T, c->a, c->b, c->c); }
/* a small network: shared inputs, accumulation across branches, a scalar at the end */
static gm_tensor *b_chain(gm_tape *T, void *p)
{
    check *c = (check *)p;
    gm_tensor *h = gm_tanh(T, gm_dense(T, &c->dense, c->a));
    return gm_mean(T, gm_add(T, gm_mul(T, h, h), gm_sigmoid(T, h)));
}

static void grad_binary(void)
{
    check c = new_check();
    c.a = input(&c, "a", gm_shape3(2, 3, 4), -1, 1, 0); c.b = input(&c, "b", gm_shape3(2, 3, 4), -1, 1, 0);
    grad_ok("add", b_add, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape2(4, 5), -1, 1, 0); c.b = input(&c, "b", gm_shape1(5), -1, 1, 0);
    grad_ok("add (per-feature vector)", b_add, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape4(2, 3, 2, 3), -1, 1, 0); c.b = input(&c, "b", gm_shape1(1), -1, 1, 0);
    grad_ok("add (one number)", b_add, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape4(2, 3, 2, 3), -1, 1, 0); c.b = input(&c, "b", gm_shape1(3), -1, 1, 0);
    grad_ok("sub (per-channel vector)", b_sub, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape2(3, 7), -1, 1, 0); c.b = input(&c, "b", gm_shape2(3, 7), -1, 1, 0);
    grad_ok("mul", b_mul, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape4(2, 3, 2, 3), -1, 1, 0); c.b = input(&c, "b", gm_shape1(3), -1, 1, 0);
    grad_ok("mul (per-channel vector)", b_mul, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape2(3, 4), -1, 1, 0);
    grad_ok("mul (x * x, same input)", b_mul_self, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape2(3, 4), -1, 1, 0);
    grad_ok("scale", b_scale, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape2(5, 7), -1, 1, 0); c.b = input(&c, "b", gm_shape2(7, 3), -1, 1, 0);
    grad_ok("matmul", b_matmul, &c);
    c = new_check();
    c.a = input(&c, "x", gm_shape2(3, 6), -1, 1, 0); c.dense = gm_dense_new(&c.P, "d", 6, 5, &c.rng);
    grad_ok("dense", b_dense, &c);
    c = new_check();              /* lecture 02, exercise 3: a backward that only adds (+=) */
    c.a = input(&c, "x", gm_shape2(3, 6), -1, 1, 0); c.dense = gm_dense_new(&c.P, "d", 6, 5, &c.rng);
    grad_ok("student_dense (+= loops)", b_student_dense, &c);
    /* enough rows (B, and out for dW) that the products take the tiled, packed path too */
    c = new_check();
    c.a = input(&c, "x", gm_shape2(11, 9), -1, 1, 0); c.dense = gm_dense_new(&c.P, "d", 9, 13, &c.rng);
    grad_ok("dense (B=11, tiled products)", b_dense, &c);
}

static void grad_unary(void)
{
    struct { const char *name; gm_build_fn f; float lo, hi, kink; } ops[] = {
        {"relu", b_relu, -2, 2, 0.05f},     {"leaky_relu", b_leaky, -2, 2, 0.05f},
        {"sigmoid", b_sigmoid, -4, 4, 0},   {"tanh", b_tanh, -2, 2, 0},
        {"softplus", b_softplus, -4, 4, 0}, {"silu", b_silu, -4, 4, 0},
        {"exp", b_exp, -2, 2, 0},           {"log", b_log, 0.5f, 3, 0},
        {"square", b_square, -2, 2, 0},     {"sum", b_sum, -1, 1, 0},
        {"student_abs (00-design)", b_student_abs, -2, 2, 0.1f},
        {"mean", b_mean, -1, 1, 0},         {"sum_per_example", b_sum_ex, -1, 1, 0},
        {"mean_per_example", b_mean_ex, -1, 1, 0}, {"flatten", b_flatten, -1, 1, 0},
    };
    int k;
    for (k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++) {
        check c = new_check();
        c.a = input(&c, "x", gm_shape4(2, 3, 2, 5), ops[k].lo, ops[k].hi, ops[k].kink);
        grad_ok(ops[k].name, ops[k].f, &c);
    }
}

static void grad_shape(void)
{
    check c = new_check();
    c.a = input(&c, "a", gm_shape3(2, 3, 5), -1, 1, 0); c.b = input(&c, "b", gm_shape2(5, 6), -1, 1, 0);
    grad_ok("reshape", b_reshape, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape4(2, 3, 2, 3), -1, 1, 0); c.b = input(&c, "b", gm_shape4(2, 2, 2, 3), -1, 1, 0);
    grad_ok("concat (channels)", b_concat, &c);
    c = new_check();
    c.a = input(&c, "a", gm_shape2(3, 2), -1, 1, 0); c.b = input(&c, "b", gm_shape2(3, 5), -1, 1, 0);
    grad_ok("concat (features)", b_concat, &c);
    c = new_check();
    c.a = input(&c, "x", gm_shape4(2, 3, 3, 5), -1, 1, 0);
    grad_ok("upsample2x", b_up, &c);
    c = new_check();
    c.a = input(&c, "x", gm_shape4(2, 3, 4, 6), -1, 1, 0);
    grad_ok("avgpool2x2", b_pool, &c);
}

/* Convolutions at odd shapes: tiled products (many channels), odd sizes with stride 2, K = S,
 * padding larger than the stride, S = 3, output padding; with more than 4 output channels
 * (unfolded into a product) and with 1 to 4 at stride 1 (the direct path). */
static void grad_conv(void)
{
    static const struct { const char *name; int transposed, c, h, w, cout, k, s, p, op; } cases[] = {
        {"conv2d (K3 S2 P1)", 0, 3, 5, 7, 5, 3, 2, 1, 0},
        {"conv2d (K2 S1 P0)", 0, 2, 6, 5, 5, 2, 1, 0, 0},
        {"conv2d (C 3->9, tiled products)", 0, 3, 4, 5, 9, 3, 1, 1, 0},
        {"conv2d (K4 S2 P1, 7x5)", 0, 2, 7, 5, 6, 4, 2, 1, 0},
        {"conv2d (K2 S2 P0)", 0, 2, 5, 6, 5, 2, 2, 0, 0},
        {"conv2d (K5 S3 P3)", 0, 2, 8, 7, 5, 5, 3, 3, 0},
        {"conv2d direct (Cout 1, K3 S1 P1)", 0, 3, 5, 7, 1, 3, 1, 1, 0},
        {"conv2d direct (Cout 3, K4 S1 P1, 7x5)", 0, 2, 7, 5, 3, 4, 1, 1, 0},
        {"conv2d direct (Cout 2, K5 S1 P3)", 0, 2, 8, 7, 2, 5, 1, 3, 0},
        {"conv2d direct (Cout 4, K2 S1 P0)", 0, 2, 6, 5, 4, 2, 1, 0, 0},
        {"conv2d (Cout 1, K4 S2 P1: unfolded)", 0, 2, 7, 5, 1, 4, 2, 1, 0},
        {"conv_transpose2d (C 9->3, tiled)", 1, 9, 3, 2, 3, 3, 2, 1, 0},
        {"conv_transpose2d (K3 S2 P1 OP1)", 1, 3, 3, 4, 2, 3, 2, 1, 1},
        {"conv_transpose2d (K4 S2 P1)", 1, 3, 3, 2, 2, 4, 2, 1, 0},
        {"conv_transpose2d (K4 S2 P1 OP1)", 1, 2, 3, 4, 3, 4, 2, 1, 1},
        {"conv_transpose2d (K5 S3 P2 OP2)", 1, 2, 3, 2, 2, 5, 3, 2, 2},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check c = new_check();
        c.a = input(&c, "x", gm_shape4(2, cases[i].c, cases[i].h, cases[i].w), -1, 1, 0);
        if (cases[i].transposed) {
            c.convt = gm_conv_transpose2d_new(&c.P, "convt", cases[i].c, cases[i].cout, cases[i].k, cases[i].s,
                                              cases[i].p, cases[i].op, &c.rng);
            grad_ok(cases[i].name, b_convt, &c);
        } else {
            c.conv = gm_conv2d_new(&c.P, "conv", cases[i].c, cases[i].cout, cases[i].k, cases[i].s, cases[i].p, &c.rng);
            grad_ok(cases[i].name, b_conv, &c);
        }
    }
}

static void grad_norm_and_losses(void)
{
    check c = new_check();
    c.a = input(&c, "x", gm_shape4(3, 2, 3, 5), -1, 2, 0);
    c.bn = gm_batchnorm_new(&c.P, "bn", 2);
    gm_init_uniform(c.bn.gamma, 0.5f, 1.5f, &c.rng); gm_init_uniform(c.bn.beta, -1, 1, &c.rng);
    c.mode = GM_TRAIN;
    grad_ok("batchnorm (train, B,C,H,W)", b_bn, &c);
    c = new_check();
    c.a = input(&c, "x", gm_shape2(6, 4), -1, 2, 0);
    c.bn = gm_batchnorm_new(&c.P, "bn", 4);
    gm_init_uniform(c.bn.gamma, 0.5f, 1.5f, &c.rng);
    c.mode = GM_TRAIN;
    grad_ok("batchnorm (train, B,D)", b_bn, &c);
    c = new_check();
    c.a = input(&c, "x", gm_shape4(2, 3, 2, 2), -1, 2, 0);
    c.bn = gm_batchnorm_new(&c.P, "bn", 3);
    gm_init_uniform(c.bn.gamma, 0.5f, 1.5f, &c.rng); gm_init_uniform(c.bn.mean, -1, 1, &c.rng);
    gm_init_uniform(c.bn.var, 0.5f, 2, &c.rng);
    c.mode = GM_EVAL;
    grad_ok("batchnorm (eval)", b_bn, &c);
    c = new_check();
    c.a = input(&c, "pred", gm_shape4(2, 1, 3, 4), -1, 1, 0); c.b = input(&c, "target", gm_shape4(2, 1, 3, 4), -1, 1, 0);
    grad_ok("mse", b_mse, &c);
    c = new_check();
    c.a = input(&c, "logits", gm_shape2(3, 5), -4, 4, 0); c.b = input(&c, "x", gm_shape2(3, 5), 0, 1, 0);
    grad_ok("bernoulli_nll", b_bern, &c);
    c = new_check();
    c.a = input(&c, "mean", gm_shape2(3, 4), -1, 1, 0); c.b = input(&c, "logvar", gm_shape2(3, 4), -1, 1, 0);
    c.c = input(&c, "x", gm_shape2(3, 4), -1, 1, 0);
    grad_ok("gaussian_nll", b_gauss, &c);
    c = new_check();
    c.a = input(&c, "x", gm_shape2(4, 3), -1, 1, 0); c.dense = gm_dense_new(&c.P, "d", 3, 5, &c.rng);
    grad_ok("a small network (reuse, +=)", b_chain, &c);
}

/* ---- known values ---- */
static void losses_known_values(void)
{
    gm_tape *T = gm_tape_new(1 << 20);
    float l[6] = {0, 0, 0, 3, -2, 0.5f}, x[6] = {1, 0, 0.3f, 1, 0, 0.5f};
    gm_tensor *L = gm_from(T, gm_shape2(2, 3), l), *X = gm_from(T, gm_shape2(2, 3), x);
    gm_tensor *bern = gm_bernoulli_nll(T, L, X), *mse = gm_mse(T, X, X);
    gm_tensor *g = gm_gaussian_nll(T, X, gm_zeros(T, gm_shape2(2, 3)), X);
    /* zero logits: p = 1/2 for every value, so -log p = 3 log 2 per example */
    EXPECT_NEAR(bern->val[0], 3 * log(2.0), 1e-5);
    /* second row: softplus(l) - x l per pixel, summed by hand */
    EXPECT_NEAR(bern->val[1], (log1p(exp(3.0)) - 3) + log1p(exp(-2.0)) + (log1p(exp(0.5)) - 0.25), 1e-5);
    EXPECT_NEAR(mse->val[0], 0, 0);
    EXPECT_NEAR(g->val[1], 1.5 * log(2 * 3.14159265358979), 1e-5);   /* x = mean, unit variance */
    /* extreme logits stay finite (the stable form) */
    L->val[0] = 1000; L->val[1] = -1000;
    bern = gm_bernoulli_nll(T, L, X);
    EXPECT(isfinite(bern->val[0]));
    EXPECT_NEAR(bern->val[0], log(2.0), 1e-5);   /* (l=1000, x=1) and (l=-1000, x=0) cost 0 */
    gm_tape_free(T);
}

/* sigmoid and SiLU (their own e^x, see gm__exp_neg) against the formula in double, to a few
 * float roundings, over [-90, 90] */
static void sigmoid_matches_formula(void)
{
    gm_tape *T = gm_tape_new(1 << 22);
    gm_tensor *x = gm_zeros(T, gm_shape1(18001)), *s, *si;
    double worst = 0;
    int i;
    for (i = 0; i < x->size; i++) x->val[i] = -90.0f + 0.01f * (float)i;
    s = gm_sigmoid(T, x);
    si = gm_silu(T, x);
    for (i = 0; i < x->size; i++) {
        double v = x->val[i], ref = 1.0 / (1.0 + exp(-v));
        if (ref < 1e-37) { EXPECT(s->val[i] < 1e-37f); continue; }        /* below the normal floats */
        worst = fmax(worst, fabs(s->val[i] - ref) / ref);
        if (v != 0.0) worst = fmax(worst, fabs(si->val[i] - v * ref) / fabs(v * ref));
    }
    EXPECT(worst < 5e-7);
    gm_tape_free(T);
}

/* One step whose loss is sum_i w_i g_i: afterwards w->grad = g, through gm_backward (the
 * optimizers step only what a backward gave a gradient). */
static void backward_to(gm_tape *T, gm_tensor *w, const float *g)
{
    gm_tape_reset(T);
    gm_backward(T, gm_sum(T, gm_mul(T, w, gm_from(T, w->shape, g))));
}

static void optimizers_known_values(void)
{
    gm_params P = {0};
    gm_tape *T = gm_tape_new(1 << 16);
    gm_tensor *w = gm_param_new(&P, "w", gm_shape1(2));
    gm_optim *adam = gm_adam_new(&P, 0.1f, 0.9f, 0.999f), *sgd;
    const float g1[2] = {0.5f, -4}, g2[2] = {2, 0}, g3[2] = {3, 4};
    w->val[0] = 1; w->val[1] = -2;
    backward_to(T, w, g1);
    gm_optim_step(adam);
    /* first Adam step: m/(1-b1) = g and v/(1-b2) = g^2, so theta moves by lr sign(g) */
    EXPECT_NEAR(w->val[0], 1 - 0.1, 1e-6);
    EXPECT_NEAR(w->val[1], -2 + 0.1, 1e-6);
    gm_optim_step(adam);   /* same gradient again: still exactly lr per step (up to eps) */
    EXPECT_NEAR(w->val[0], 0.8, 1e-6);
    gm_optim_free(adam);
    sgd = gm_sgd_new(&P, 0.5f, 0.9f);
    w->val[0] = 1;
    backward_to(T, w, g2);
    gm_optim_step(sgd);     /* v = 2, w = 1 - 0.5*2 = 0 */
    gm_optim_step(sgd);     /* v = 0.9*2 + 2 = 3.8, w = 0 - 1.9 = -1.9 */
    EXPECT_NEAR(w->val[0], -1.9, 1e-6);
    gm_optim_free(sgd);
    backward_to(T, w, g3);
    EXPECT_NEAR(gm_clip_grad_norm(&P, 1.0f), 5.0, 1e-6);
    EXPECT_NEAR(w->grad[0], 0.6, 1e-5);
    EXPECT_NEAR(w->grad[1], 0.8, 1e-5);
    gm_tape_free(T);
    gm_params_free(&P);
}

/* A parameter a step's loss does not reach, or reaches only behind gm_detach, has no
 * gradient that step: the optimizer leaves it (value and state) alone, instead of applying
 * the gradient an earlier step left in its grad; gm_clip_grad_norm does not count it; and
 * Adam's bias correction counts its own updates, so its first one is lr sign(g). */
static void optimizer_skips_parameters_without_gradient(void)
{
    int adam;
    for (adam = 0; adam < 2; adam++) {
        gm_params P = {0};
        gm_tape *T = gm_tape_new(1 << 16);
        gm_tensor *a = gm_param_new(&P, "a", gm_shape1(1)), *b = gm_param_new(&P, "b", gm_shape1(1));
        gm_tensor *c = gm_param_new(&P, "c", gm_shape1(1));
        gm_optim *opt = adam ? gm_adam_new(&P, 0.1f, 0.9f, 0.999f) : gm_sgd_new(&P, 0.1f, 0.9f);
        float a1, b1;
        a->val[0] = 1; b->val[0] = 2; c->val[0] = 3;
        gm_tape_reset(T);                                   /* step 1: L = 3a + 5b */
        gm_backward(T, gm_sum(T, gm_add(T, gm_scale(T, a, 3), gm_scale(T, b, 5))));
        EXPECT(gm_has_grad(a) && gm_has_grad(b) && !gm_has_grad(c));
        gm_optim_step(opt);
        a1 = a->val[0]; b1 = b->val[0];
        EXPECT(a1 < 1 && b1 < 2 && c->val[0] == 3);
        gm_tape_reset(T);                                   /* step 2: L = 5b, a unused */
        gm_backward(T, gm_sum(T, gm_scale(T, b, 5)));
        EXPECT(!gm_has_grad(a) && gm_has_grad(b) && a->grad[0] == 3);   /* a's grad: stale */
        EXPECT_NEAR(gm_clip_grad_norm(&P, 100.0f), 5.0, 1e-6);        /* b's alone */
        gm_optim_step(opt);
        EXPECT(a->val[0] == a1 && b->val[0] < b1);
        gm_tape_reset(T);                                   /* step 3: L = b detach(a) + 2c */
        b1 = b->val[0];
        gm_backward(T, gm_sum(T, gm_add(T, gm_mul(T, b, gm_detach(T, a)), gm_scale(T, c, 2))));
        EXPECT(!gm_has_grad(a) && gm_has_grad(b) && gm_has_grad(c));
        gm_optim_step(opt);
        EXPECT(a->val[0] == a1 && b->val[0] != b1);
        EXPECT_NEAR(c->val[0], 3 - 0.1 * (adam ? 1 : 2), 1e-6);      /* Adam: lr sign(g); SGD: lr g */
        gm_optim_free(opt);
        gm_tape_free(T);
        gm_params_free(&P);
    }
}

/* The transposed convolution is the adjoint of the convolution with the same weights:
 * <conv(x), y> = <x, convT(y)> when both have no bias. */
static void conv_transpose_is_adjoint(void)
{
    gm_params P = {0};
    gm_rng rng = gm_rng_new(3);
    gm_conv2d c = gm_conv2d_new(&P, "c", 3, 4, 3, 2, 1, &rng);
    gm_conv_transpose2d t = gm_conv_transpose2d_new(&P, "t", 4, 3, 3, 2, 1, 0, &rng);
    gm_tape *T = gm_tape_new(1 << 22);
    gm_tensor *x = gm_randn(T, gm_shape4(2, 3, 7, 7), &rng), *Ax, *y, *Aty;
    double lhs = 0, rhs = 0;
    int i;
    memcpy(t.w->val, c.w->val, (size_t)c.w->size * sizeof(float));  /* (4,3,3,3) both ways */
    memset(c.b->val, 0, 4 * sizeof(float));
    memset(t.b->val, 0, 3 * sizeof(float));
    Ax = gm_conv2d(T, &c, x);                                     /* (2,4,4,4) */
    y = gm_randn(T, Ax->shape, &rng);
    Aty = gm_conv_transpose2d(T, &t, y);                          /* back to (2,3,7,7) */
    EXPECT(gm_shape4(2, 3, 7, 7).d[2] == Aty->shape.d[2] && Aty->shape.d[3] == 7);
    for (i = 0; i < Ax->size; i++) lhs += (double)Ax->val[i] * y->val[i];
    for (i = 0; i < x->size; i++) rhs += (double)x->val[i] * Aty->val[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * fabs(lhs));
    gm_tape_free(T);
    gm_params_free(&P);
}

/* Small convolutions worked by hand. */
static void conv_known_values(void)
{
    gm_params P = {0};
    gm_rng rng = gm_rng_new(1);
    gm_conv2d c = gm_conv2d_new(&P, "c", 1, 1, 2, 1, 0, &rng);
    gm_tape *T = gm_tape_new(1 << 20);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    gm_tensor *y;
    int i;
    for (i = 0; i < 4; i++) c.w->val[i] = 1;
    c.b->val[0] = 0.5f;
    y = gm_conv2d(T, &c, gm_from(T, gm_shape4(1, 1, 3, 3), x));
    /* each output sums a 2x2 window: 1+2+4+5 = 12, 16, 24, 28, plus the bias */
    EXPECT(y->shape.d[2] == 2 && y->shape.d[3] == 2);
    EXPECT_NEAR(y->val[0], 12.5, 1e-6);
    EXPECT_NEAR(y->val[1], 16.5, 1e-6);
    EXPECT_NEAR(y->val[2], 24.5, 1e-6);
    EXPECT_NEAR(y->val[3], 28.5, 1e-6);
    gm_tape_free(T);
    gm_params_free(&P);
}

/* The definition of a convolution layer, y = gm_conv2d(l, x), as plain loops in double:
 *   y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n, c, S i - P + u, S j - P + v]
 * with x read as 0 outside the image. x (B,C,H,W), w (Co,C,K,K), y (B,Co,Ho,Wo) with
 * Ho = (H + 2P - K)/S + 1 (rounded down), the same for Wo. The fast paths of >>ops-conv
 * (im2col and one matrix product; the direct loops for few output channels) are tested
 * against this function in conv_matches_definition. */
static void conv2d_reference(const gm_conv2d *l, const gm_tensor *x, double *y)
{
    int B = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    int K = l->k, S = l->stride, P = l->pad, Co = l->cout;
    int Ho = (H + 2 * P - K) / S + 1, Wo = (W + 2 * P - K) / S + 1, n, o, i, j, c, u, v;
    for (n = 0; n < B; n++)                                 /* image            */
        for (o = 0; o < Co; o++)                            /* output channel   */
            for (i = 0; i < Ho; i++)                        /* output row       */
                for (j = 0; j < Wo; j++) {                  /* output column    */
                    double s = l->b->val[o];
                    for (c = 0; c < C; c++)                 /* input channel    */
                        for (u = 0; u < K; u++)             /* kernel row       */
                            for (v = 0; v < K; v++) {       /* kernel column    */
                                int r = S * i - P + u, q = S * j - P + v;    /* the pixel read */
                                if (r >= 0 && r < H && q >= 0 && q < W)
                                    s += (double)l->w->val[((o * C + c) * K + u) * K + v] * x->val[((n * C + c) * H + r) * W + q];
                            }
                    y[((n * Co + o) * Ho + i) * Wo + j] = s;
                }
}

/* The definition of a transposed convolution, y = gm_conv_transpose2d(l, x), the adjoint of
 * the loops above: every input pixel x[n,c,i,j] stamps the kernel w[c,o,:,:], scaled by its
 * value, into y with its corner at (S i - P, S j - P); overlapping stamps add, and what
 * falls outside y is cropped:
 *   y[n,o,r,q] = b[o] + sum of w[c,o,u,v] x[n,c,i,j] over all c,i,j,u,v with
 *                r = S i - P + u, q = S j - P + v.
 * x (B,C,H,W), w (C,Co,K,K), y (B,Co,Ho,Wo) with Ho = (H - 1) S - 2P + K + OP. */
static void conv_transpose2d_reference(const gm_conv_transpose2d *l, const gm_tensor *x, double *y)
{
    int B = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    int K = l->k, S = l->stride, P = l->pad, Co = l->cout;
    int Ho = (H - 1) * S - 2 * P + K + l->out_pad, Wo = (W - 1) * S - 2 * P + K + l->out_pad, n, o, i, j, c, u, v;
    for (n = 0; n < B; n++)
        for (o = 0; o < Co; o++)
            for (i = 0; i < Ho * Wo; i++) y[(n * Co + o) * Ho * Wo + i] = l->b->val[o];
    for (n = 0; n < B; n++)                                 /* image            */
        for (c = 0; c < C; c++)                             /* input channel    */
            for (i = 0; i < H; i++)                         /* input row        */
                for (j = 0; j < W; j++)                     /* input column     */
                    for (o = 0; o < Co; o++)                /* output channel   */
                        for (u = 0; u < K; u++)             /* kernel row       */
                            for (v = 0; v < K; v++) {       /* kernel column    */
                                int r = S * i - P + u, q = S * j - P + v;    /* the pixel written */
                                if (r >= 0 && r < Ho && q >= 0 && q < Wo)
                                    y[((n * Co + o) * Ho + r) * Wo + q] += (double)l->w->val[((c * Co + o) * K + u) * K + v] * x->val[((n * C + c) * H + i) * W + j];
                            }
}

/* The worst difference between the layer and its definition on random inputs, B = 2 (the
 * gradient checks only see that the backward matches the forward, not the forward itself). */
static double conv_error(int C, int Co, int H, int W, int K, int S, int P, int OP, int transposed)
{
    gm_params Pm = {0};
    gm_rng rng = gm_rng_new(11);
    gm_tape *T = gm_tape_new(1 << 22);
    gm_tensor *x = gm_randn(T, gm_shape4(2, C, H, W), &rng), *y;
    double *ref, worst = 0;
    int i;
    if (transposed) {
        gm_conv_transpose2d l = gm_conv_transpose2d_new(&Pm, "t", C, Co, K, S, P, OP, &rng);
        y = gm_conv_transpose2d(T, &l, x);
        ref = (double *)calloc((size_t)y->size, sizeof(double));
        conv_transpose2d_reference(&l, x, ref);
    } else {
        gm_conv2d l = gm_conv2d_new(&Pm, "c", C, Co, K, S, P, &rng);
        y = gm_conv2d(T, &l, x);
        ref = (double *)calloc((size_t)y->size, sizeof(double));
        conv2d_reference(&l, x, ref);
    }
    for (i = 0; i < y->size; i++) worst = fmax(worst, fabs(ref[i] - y->val[i]));
    free(ref);
    gm_tape_free(T);
    gm_params_free(&Pm);
    return worst;
}

static void conv_matches_definition(void)
{
    EXPECT(conv_error(3, 6, 7, 5, 4, 2, 1, 0, 0) < 1e-4);     /* DCGAN's down-sampling, odd sizes */
    EXPECT(conv_error(2, 5, 8, 7, 5, 3, 3, 0, 0) < 1e-4);     /* S = 3, P > S */
    EXPECT(conv_error(2, 5, 6, 5, 3, 1, 1, 0, 0) < 1e-4);     /* stride 1 */
    EXPECT(conv_error(3, 1, 7, 5, 3, 1, 1, 0, 0) < 1e-4);     /* the direct path (S = 1, Cout <= 4) */
    EXPECT(conv_error(3, 3, 7, 5, 4, 1, 2, 0, 0) < 1e-4);     /* even K, P > K / 2 */
    EXPECT(conv_error(2, 4, 8, 7, 5, 1, 0, 0, 0) < 1e-4);     /* no padding */
    EXPECT(conv_error(3, 2, 3, 4, 4, 2, 1, 0, 1) < 1e-4);     /* DCGAN's up-sampling */
    EXPECT(conv_error(3, 2, 3, 4, 3, 2, 1, 1, 1) < 1e-4);     /* output padding */
    EXPECT(conv_error(2, 2, 3, 2, 5, 3, 2, 2, 1) < 1e-4);
}

/* The one matrix product against plain loops, at sizes that straddle its blocking
 * (K > 256, N > 512, M not a multiple of 4): the forward A B and both backward products
 * dA = dY B^T and dB = A^T dY, which between them use three of the transpose cases. */
static void matmul_matches_naive(void)
{
    gm_params P = {0};
    gm_tape *T = gm_tape_new((size_t)64 << 20);
    gm_rng rng = gm_rng_new(9);
    int M = 7, N = 530, K = 300, i, j, k;
    gm_tensor *a = gm_param_new(&P, "a", gm_shape2(M, K)), *b = gm_param_new(&P, "b", gm_shape2(K, N)), *y;
    double wy = 0, wa = 0, wb = 0;
    gm_init_normal(a, 0, 1, &rng);
    gm_init_normal(b, 0, 1, &rng);
    y = gm_matmul(T, a, b);
    gm_backward(T, gm_sum(T, y));                        /* dY = 1 everywhere */
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0;
            for (k = 0; k < K; k++) s += (double)a->val[i * K + k] * b->val[k * N + j];
            wy = fmax(wy, fabs(s - y->val[i * N + j]));
        }
    for (i = 0; i < M; i++)                               /* dA[i,k] = sum_j B[k,j] */
        for (k = 0; k < K; k++) {
            double s = 0;
            for (j = 0; j < N; j++) s += b->val[k * N + j];
            wa = fmax(wa, fabs(s - a->grad[i * K + k]));
        }
    for (k = 0; k < K; k++)                               /* dB[k,j] = sum_i A[i,k] */
        for (j = 0; j < N; j++) {
            double s = 0;
            for (i = 0; i < M; i++) s += a->val[i * K + k];
            wb = fmax(wb, fabs(s - b->grad[k * N + j]));
        }
    EXPECT(wy < 1e-3);
    EXPECT(wa < 1e-3);
    EXPECT(wb < 1e-4);
    gm_tape_free(T);
    gm_params_free(&P);
}

/* The worst error of one product shape against plain loops in double: A (M,K) feeds both
 * gm_matmul(A, B) and a dense layer (K -> N, weights W (N,K)), and L = sum(Y1 R1) +
 * sum(Y2 R2) for fixed random R. Between them this runs every transpose case forward and
 * backward, A's gradient summed over two consumers (the dense backward adds into the zeros
 * the walk put there, the matmul's adds to that), and C = bias + product. */
static double product_error(int M, int K, int N)
{
    gm_params P = {0};
    gm_tape *T = gm_tape_new((size_t)16 << 20);
    gm_rng rng = gm_rng_new((uint64_t)(M * 1000003 + K * 1009 + N));
    gm_tensor *a = gm_param_new(&P, "a", gm_shape2(M, K)), *b = gm_param_new(&P, "b", gm_shape2(K, N));
    gm_tensor *r1 = gm_buffer_new(&P, "r1", gm_shape2(M, N)), *r2 = gm_buffer_new(&P, "r2", gm_shape2(M, N));
    gm_tensor *y1, *y2;
    gm_dense d = gm_dense_new(&P, "d", K, N, &rng);
    float *w, *bias;
    double worst = 0;
    int i, j, k;
    gm_init_normal(a, 0, 1, &rng);
    gm_init_normal(b, 0, 1, &rng);
    gm_init_normal(r1, 0, 1, &rng);
    gm_init_normal(r2, 0, 1, &rng);
    w = d.w->val; bias = d.b->val;
    y1 = gm_matmul(T, a, b);
    y2 = gm_dense(T, &d, a);
    gm_backward(T, gm_add(T, gm_sum(T, gm_mul(T, y1, r1)), gm_sum(T, gm_mul(T, y2, r2))));
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {                       /* Y1 = A B, Y2 = A W^T + bias */
            double s1 = 0, s2 = bias[j];
            for (k = 0; k < K; k++) {
                s1 += (double)a->val[i * K + k] * b->val[k * N + j];
                s2 += (double)a->val[i * K + k] * w[j * K + k];
            }
            worst = fmax(worst, fmax(fabs(s1 - y1->val[i * N + j]), fabs(s2 - y2->val[i * N + j])));
        }
    for (i = 0; i < M; i++)
        for (k = 0; k < K; k++) {                       /* dA = R1 B^T + R2 W */
            double s = 0;
            for (j = 0; j < N; j++)
                s += (double)r1->val[i * N + j] * b->val[k * N + j] + (double)r2->val[i * N + j] * w[j * K + k];
            worst = fmax(worst, fabs(s - a->grad[i * K + k]));
        }
    for (k = 0; k < K; k++)
        for (j = 0; j < N; j++) {                       /* dB = A^T R1, dW = R2^T A */
            double s1 = 0, s2 = 0;
            for (i = 0; i < M; i++) {
                s1 += (double)a->val[i * K + k] * r1->val[i * N + j];
                s2 += (double)r2->val[i * N + j] * a->val[i * K + k];
            }
            worst = fmax(worst, fmax(fabs(s1 - b->grad[k * N + j]), fabs(s2 - d.w->grad[j * K + k])));
        }
    for (j = 0; j < N; j++) {                           /* dbias = sum over rows of R2 */
        double s = 0;
        for (i = 0; i < M; i++) s += r2->val[i * N + j];
        worst = fmax(worst, fabs(s - d.b->grad[j]));
    }
    gm_tape_free(T);
    gm_params_free(&P);
    return worst;
}

/* Shapes that reach each way the product is computed: one row (a batch of 1), few columns
 * (a layer with 1 or 2 outputs, or the weights of one with 2 inputs, done transposed), few
 * steps of k (K = 1 at batch 1, or 2 inputs), and tiles with edges, at sizes that are not
 * multiples of any vector or tile width. */
static void small_products_match_naive(void)
{
    static const int shapes[][3] = {           /* M, K, N */
        {1, 1, 1}, {1, 2, 128}, {1, 128, 128}, {1, 128, 2}, {1, 1, 128}, {1, 37, 200}, {2, 3, 5},
        {3, 300, 7}, {256, 2, 128}, {256, 128, 2}, {128, 1, 128}, {128, 256, 2}, {256, 128, 1},
        {9, 17, 33}, {37, 7, 9}, {300, 8, 7}, {13, 5, 1}, {5, 300, 3}, {33, 9, 100}, {64, 64, 64},
        {20, 1, 530}, {7, 6, 70}, {70, 7, 6}
    };
    int s;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        double e = product_error(shapes[s][0], shapes[s][1], shapes[s][2]);
        if (!(e < 1e-3)) printf("  M %d K %d N %d: worst error %g\n", shapes[s][0], shapes[s][1], shapes[s][2], e);
        EXPECT(e < 1e-3);
    }
}

/* A product and convolutions big enough to be shared among threads (an unfolded one, c,
 * then a direct one, d, with one output channel): the same bits with 1 thread and with 3
 * (each number is summed by one thread in a fixed order), and the product equal to plain
 * loops. */
static void run_big(gm_conv2d *c, gm_conv2d *d, gm_tensor *a, gm_tensor *b, float *out_mm, float *out_conv,
                    float *out_grad)
{
    gm_tape *T = gm_tape_new((size_t)256 << 20);
    gm_rng rng = gm_rng_new(5);
    gm_tensor *y = gm_matmul(T, a, b), *x = gm_randn(T, gm_shape4(16, 8, 20, 20), &rng), *z;
    z = gm_conv2d(T, d, gm_conv2d(T, c, x));
    memcpy(out_mm, y->val, (size_t)y->size * sizeof(float));
    memcpy(out_conv, z->val, (size_t)z->size * sizeof(float));
    gm_backward(T, gm_add(T, gm_sum(T, gm_square(T, y)), gm_sum(T, gm_square(T, z))));
    memcpy(out_grad, c->w->grad, (size_t)c->w->size * sizeof(float));
    memcpy(out_grad + c->w->size, d->w->grad, (size_t)d->w->size * sizeof(float));
    gm_tape_free(T);
}

static void threads_give_identical_results(void)
{
    gm_params P = {0};
    gm_rng rng = gm_rng_new(8);
    int M = 150, K = 333, N = 270, i, j, k;
    gm_tensor *a = gm_param_new(&P, "a", gm_shape2(M, K)), *b = gm_param_new(&P, "b", gm_shape2(K, N));
    gm_conv2d c = gm_conv2d_new(&P, "c", 8, 16, 3, 1, 1, &rng), d = gm_conv2d_new(&P, "d", 16, 1, 5, 1, 2, &rng);
    int nz = 16 * 400, ng = c.w->size + d.w->size;
    float *mm1 = (float *)malloc(sizeof(float) * M * N), *mm3 = (float *)malloc(sizeof(float) * M * N);
    float *cv1 = (float *)malloc(sizeof(float) * nz), *cv3 = (float *)malloc(sizeof(float) * nz);
    float *g1 = (float *)malloc(sizeof(float) * ng), *g3 = (float *)malloc(sizeof(float) * ng);
    double worst = 0;
    gm_init_normal(a, 0, 1, &rng);
    gm_init_normal(b, 0, 1, &rng);
    setenv("GM_THREADS", "1", 1);
    run_big(&c, &d, a, b, mm1, cv1, g1);
    setenv("GM_THREADS", "3", 1);
    run_big(&c, &d, a, b, mm3, cv3, g3);
    unsetenv("GM_THREADS");
    EXPECT(memcmp(mm1, mm3, sizeof(float) * M * N) == 0);
    EXPECT(memcmp(cv1, cv3, sizeof(float) * nz) == 0);
    EXPECT(memcmp(g1, g3, sizeof(float) * ng) == 0);
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0;
            for (k = 0; k < K; k++) s += (double)a->val[i * K + k] * b->val[k * N + j];
            worst = fmax(worst, fabs(s - mm3[i * N + j]));
        }
    EXPECT(worst < 1e-3);
    free(mm1); free(mm3); free(cv1); free(cv3); free(g1); free(g3);
    gm_params_free(&P);
}

static void batchnorm_running_stats(void)
{
    gm_params P = {0};
    gm_batchnorm bn = gm_batchnorm_new(&P, "bn", 1);
    gm_tape *T = gm_tape_new(1 << 20);
    float x[4] = {1, 2, 3, 6};
    gm_tensor *y = gm_batchnorm(T, &bn, gm_from(T, gm_shape2(4, 1), x), GM_TRAIN);
    /* batch mean 3, biased variance 3.5, unbiased 14/3; running = 0.9 old + 0.1 new */
    EXPECT_NEAR(bn.mean->val[0], 0.3, 1e-6);
    EXPECT_NEAR(bn.var->val[0], 0.9 + 0.1 * 14.0 / 3.0, 1e-6);
    EXPECT_NEAR(y->val[3], 3.0 / sqrt(3.5 + 1e-5), 1e-5);
    EXPECT((bn.mean->flags & GM_BUFFER) && !(bn.mean->flags & GM_PARAM));
    gm_tape_free(T);
    gm_params_free(&P);
}

/* ---- the tape ---- */
static void tape_gradients_overwrite_and_reset(void)
{
    gm_params P = {0};
    gm_tensor *w = gm_param_new(&P, "w", gm_shape1(3));
    gm_tape *T = gm_tape_new(1 << 20);
    int step;
    size_t used_after_first = 0;
    w->val[0] = 1; w->val[1] = 2; w->val[2] = 3;
    for (step = 0; step < 3; step++) {
        gm_tensor *loss;
        gm_tape_reset(T);
        loss = gm_sum(T, gm_square(T, w));            /* dL/dw = 2w, not accumulated over steps */
        EXPECT_NEAR(gm_backward(T, loss), 14, 1e-6);
        EXPECT_NEAR(w->grad[2], 6, 1e-6);
        if (step == 0) used_after_first = gm_tape_peak(T);
    }
    EXPECT(gm_tape_peak(T) == used_after_first);       /* the arena is reused, not grown */
    /* detach stops the gradient */
    gm_tape_reset(T);
    gm_backward(T, gm_sum(T, gm_add(T, gm_detach(T, gm_square(T, w)), w)));
    EXPECT_NEAR(w->grad[2], 1, 1e-6);
    /* what lies only behind a detach is not differentiated: its grad stays NULL, and a
     * parameter there has no gradient this step (gm_has_grad), whatever its grad holds */
    {
        gm_tensor *v = gm_param_new(&P, "v", gm_shape1(3)), *sq;
        gm_tape_reset(T);
        gm_backward(T, gm_sum(T, gm_square(T, v)));
        EXPECT(v->grad[0] == 0 && v->grad[1] == 0);       /* v is zeros: grad 2v = 0 ... */
        v->val[1] = 1;
        gm_tape_reset(T);
        gm_backward(T, gm_sum(T, gm_square(T, v)));
        EXPECT_NEAR(v->grad[1], 2, 1e-6);                  /* ... now 2 */
        gm_tape_reset(T);
        sq = gm_square(T, v);
        gm_backward(T, gm_sum(T, gm_add(T, gm_detach(T, sq), w)));
        EXPECT(sq->grad == NULL);
        EXPECT(!gm_has_grad(v) && gm_has_grad(w));
        EXPECT_NEAR(w->grad[1], 1, 1e-6);
    }
    gm_tape_free(T);
    gm_params_free(&P);
}

typedef struct { gm_tape *T; gm_tensor *a, *b; gm_dense d; } misuse;
static void use_after_reset(void *p) { misuse *m = (misuse *)p; gm_tape_reset(m->T); gm_relu(m->T, m->a); }
/* a loss read after the next step's reset: its memory is already the next step's */
static void item_after_reset(void *p)
{
    misuse *m = (misuse *)p;
    gm_tensor *loss;
    gm_tape_reset(m->T);
    loss = gm_sum(m->T, gm_zeros(m->T, gm_shape1(3)));
    gm_item(loss);                              /* fine in its own step */
    gm_tape_reset(m->T);
    gm_item(loss);
}
static void backward_twice(void *p)
{
    misuse *m = (misuse *)p;
    gm_tensor *l;
    gm_tape_reset(m->T);
    l = gm_sum(m->T, gm_square(m->T, m->b));
    gm_backward(m->T, l);
    gm_backward(m->T, l);
}
static void bad_matmul(void *p) { misuse *m = (misuse *)p; gm_tape_reset(m->T); gm_matmul(m->T, m->b, m->b); }
static void dense_on_images(void *p)
{
    misuse *m = (misuse *)p;
    gm_tape_reset(m->T);
    gm_dense(m->T, &m->d, gm_zeros(m->T, gm_shape4(2, 1, 2, 2)));
}
static void arena_full(void *p)
{
    misuse *m = (misuse *)p;
    gm_tape_reset(m->T);
    gm_zeros(m->T, gm_shape2(1000, 1000));
}

/* An arena whose size is not a multiple of the 64-byte alignment: the first tensor takes a
 * rounded-up block, so the bounds check must compare rounded sizes too (it once let every
 * later request through, writing past the end). */
typedef struct odd_arena { gm_tape *T; int first, second; } odd_arena;
static void overfill_odd_arena(void *p)
{
    odd_arena *a = (odd_arena *)p;
    gm_zeros(a->T, gm_shape1(a->first));
    gm_zeros(a->T, gm_shape1(a->second));       /* does not fit: must stop, not write past */
}

static void tape_misuse_is_caught(void)
{
    gm_params P = {0};
    gm_rng r = gm_rng_new(1);
    misuse m;
    m.T = gm_tape_new(1 << 20);
    m.d = gm_dense_new(&P, "d", 4, 2, &r);
    m.b = gm_param_new(&P, "b", gm_shape2(2, 3));
    m.b->val[0] = 1;
    gm_tape_reset(m.T);
    m.a = gm_zeros(m.T, gm_shape2(2, 2));
    EXPECT(gm_test_expect_fatal(use_after_reset, &m, "before gm_tape_reset"));
    EXPECT(gm_test_expect_fatal(item_after_reset, &m, "gm_item: an input (made by gm_sum"));
    EXPECT(gm_test_expect_fatal(backward_twice, &m, "called twice"));
    EXPECT(gm_test_expect_fatal(bad_matmul, &m, "test_ops.c"));          /* names the caller */
    EXPECT(gm_test_expect_fatal(bad_matmul, &m, "a is (2,3), b is (2,3)"));
    EXPECT(gm_test_expect_fatal(dense_on_images, &m, "flatten"));
    EXPECT(gm_test_expect_fatal(arena_full, &m, "arena full"));
    {
        odd_arena small = {NULL, 17, 1000}, large = {NULL, 24993, 10000};
        small.T = gm_tape_new(100);
        large.T = gm_tape_new(100000);
        EXPECT(gm_test_expect_fatal(overfill_odd_arena, &small, "used 128 bytes of 128 bytes"));
        EXPECT(gm_test_expect_fatal(overfill_odd_arena, &large, "arena full"));
        gm_tape_free(small.T);
        gm_tape_free(large.T);
    }
    gm_tape_free(m.T);
    gm_params_free(&P);
}

/* NaN and infinity: a small ReLU network, one NaN in its input, a clean target. ReLU maps
 * NaN to 0, so the loss stays finite; the NaN reaches the first layer's weights through
 * their gradient (x^T dy) and the optimizer must stop there, naming them. */
typedef struct nan_net {
    gm_params P;
    gm_dense l1, l2;
    gm_optim *opt;
    gm_tape *T;
    float x[12], target[2];
} nan_net;

static void nan_net_steps(void *p)
{
    nan_net *n = (nan_net *)p;
    int step;
    for (step = 0; step < 3; step++) {
        gm_tensor *x, *y;
        gm_tape_reset(n->T);
        x = gm_from(n->T, gm_shape2(2, 4), n->x);
        y = gm_dense(n->T, &n->l2, gm_relu(n->T, gm_dense(n->T, &n->l1, x)));
        gm_backward(n->T, gm_mean(n->T, gm_mse(n->T, y, gm_from(n->T, gm_shape2(2, 1), n->target))));
        gm_optim_step(n->opt);
    }
}

/* A backward that overflows while its forward does not: d(1e30 * sum(x w))/dx = 1e30 w. */
static void overflowing_backward(void *p)
{
    nan_net *n = (nan_net *)p;
    gm_tensor *x, *w;
    gm_tape_reset(n->T);
    x = n->l1.w;                                     /* 1e-25, a parameter */
    w = gm_from(n->T, gm_shape2(3, 4), n->x);        /* 1e20 */
    gm_backward(n->T, gm_scale(n->T, gm_sum(n->T, gm_mul(n->T, x, w)), 1e30f));
}

/* log of a negative number, then more ops: the message must name gm_log, not only gm_sum. */
static void nan_from_log(void *p)
{
    nan_net *n = (nan_net *)p;
    gm_tensor *a;
    gm_tape_reset(n->T);
    a = gm_log(n->T, gm_from(n->T, gm_shape1(2), n->x));
    gm_backward(n->T, gm_sum(n->T, gm_scale(n->T, gm_dense(n->T, &n->l1, gm_reshape(n->T, a, gm_shape2(1, 2))), 2.0f)));
}

/* A parameter that holds NaN (loaded, or set by hand): the op reading it is named, and it. */
static void nan_parameter(void *p)
{
    nan_net *n = (nan_net *)p;
    gm_tape_reset(n->T);
    gm_backward(n->T, gm_sum(n->T, gm_dense(n->T, &n->l1, gm_from(n->T, gm_shape2(1, 2), n->x))));
}

/* y = b * v with a NaN in v: the gradient check must fail, not read NaN as "no error". */
static gm_tensor *times_nan(gm_tape *T, void *p)
{
    nan_net *n = (nan_net *)p;
    float v[3] = {1.0f, NAN, 2.0f};
    return gm_mul(T, n->l1.b, gm_from(T, gm_shape1(3), v));
}

static nan_net *nan_net_new(int in, int check_finite)
{
    nan_net *n = (nan_net *)calloc(1, sizeof *n);
    gm_rng r = gm_rng_new(3);
    int i;
    n->l1 = gm_dense_new(&n->P, "l1", in, 3, &r);
    n->l2 = gm_dense_new(&n->P, "l2", 3, 1, &r);
    n->opt = gm_adam_new(&n->P, 1e-2f, 0.9f, 0.999f);
    setenv("GM_CHECK_FINITE", check_finite ? "1" : "0", 1);
    n->T = gm_tape_new(1 << 20);
    setenv("GM_CHECK_FINITE", "1", 1);               /* the tests' own setting (main.c) */
    for (i = 0; i < 12; i++) n->x[i] = 0.1f * (float)(i + 1);
    n->target[0] = 0.5f; n->target[1] = -0.5f;
    return n;
}

static void nan_net_free(nan_net *n)
{
    gm_tape_free(n->T);
    gm_optim_free(n->opt);
    gm_params_free(&n->P);
    free(n);
}

static void nonfinite_values_are_caught(void)
{
    nan_net *n;
    int i;
    /* clean, the network trains; one NaN in the input: stopped at the first step, naming l1.w */
    n = nan_net_new(4, 0);
    nan_net_steps(n);
    EXPECT(isfinite(n->l1.w->val[0]) && isfinite(n->l2.w->val[0]));
    n->x[5] = NAN;
    EXPECT(gm_test_expect_fatal(nan_net_steps, n, "step 4: parameter \"l1.w\" holds NaN or infinity because its gradient did"));
    nan_net_free(n);
    /* GM_CHECK_FINITE names the op that read it, and gm_from at its line as its maker */
    n = nan_net_new(4, 1);
    n->x[5] = NAN;
    EXPECT(gm_test_expect_fatal(nan_net_steps, n, "gm_dense: an input (gm_from at tests/test_ops.c:"));
    nan_net_free(n);
    /* a loss made non-finite: the op that made the first NaN is named */
    n = nan_net_new(2, 0);
    n->x[1] = -1.0f;
    EXPECT(gm_test_expect_fatal(nan_from_log, n, "diverged at step 1: the loss is NaN (made by gm_sum at tests/test_ops.c:"));
    EXPECT(gm_test_expect_fatal(nan_from_log, n, "the step's first NaN was made by gm_log at tests/test_ops.c:"));
    nan_net_free(n);
    n = nan_net_new(2, 0);
    n->l1.b->val[1] = NAN;
    EXPECT(gm_test_expect_fatal(nan_parameter, n, "the step's first NaN was made by gm_dense at tests/test_ops.c:"));
    EXPECT(gm_test_expect_fatal(nan_parameter, n, "from its input parameter \"l1.b\", which holds NaN"));
    nan_net_free(n);
    n = nan_net_new(2, 0);
    setenv("GM_CHECK_FINITE", "0", 1);               /* gm_grad_check makes its own tape */
    EXPECT(gm_grad_check(times_nan, n, &n->l1.b, 1, GRAD_H, 1) > GRAD_TOL);
    setenv("GM_CHECK_FINITE", "1", 1);
    nan_net_free(n);
    /* a backward that overflows: with GM_CHECK_FINITE, the backward of gm_mul is named */
    n = nan_net_new(4, 1);
    for (i = 0; i < 12; i++) n->l1.w->val[i] = 1e-25f;
    for (i = 0; i < 12; i++) n->x[i] = 1e20f;
    EXPECT(gm_test_expect_fatal(overflowing_backward, n, "the backward of gm_mul at tests/test_ops.c:"));
    nan_net_free(n);
}

static void rng_is_reproducible(void)
{
    gm_rng a = gm_rng_new(5), b = gm_rng_new(5), c = gm_rng_new(6);
    double s = 0, sq = 0;
    int i, same = 1, differ = 0, perm[10], seen[10] = {0};
    for (i = 0; i < 1000; i++) {
        float u = gm_rng_normal(&a), v = gm_rng_normal(&b), w = gm_rng_normal(&c);
        same &= u == v;
        differ |= u != w;
        s += u; sq += (double)u * u;
    }
    EXPECT(same && differ);
    EXPECT(fabs(s / 1000) < 0.1 && fabs(sq / 1000 - 1) < 0.1);       /* N(0,1): mean 0, var 1 */
    for (i = 0; i < 10; i++) perm[i] = i;
    gm_rng_shuffle(&a, perm, 10);
    for (i = 0; i < 10; i++) seen[perm[i]]++;
    for (i = 0; i < 10; i++) EXPECT(seen[i] == 1);
}

void tests_ops(void)
{
    printf("ops: gradient checks (L = sum y r, central differences, h = %g)\n", (double)GRAD_H);
    TEST(grad_binary);
    TEST(grad_unary);
    TEST(grad_shape);
    TEST(grad_conv);
    TEST(grad_norm_and_losses);
    TEST(losses_known_values);
    TEST(sigmoid_matches_formula);
    TEST(optimizers_known_values);
    TEST(optimizer_skips_parameters_without_gradient);
    TEST(conv_transpose_is_adjoint);
    TEST(conv_known_values);
    TEST(conv_matches_definition);
    TEST(matmul_matches_naive);
    TEST(small_products_match_naive);
    TEST(threads_give_identical_results);
    TEST(batchnorm_running_stats);
    TEST(tape_gradients_overwrite_and_reset);
    TEST(tape_misuse_is_caught);
    TEST(nonfinite_values_are_caught);
    TEST(rng_is_reproducible);
}
