/* tests/test_gan.c - section 8's GAN objectives: a finite-difference gradient check of each
 * loss of each kind, values worked by hand, logits of +-50, weight clipping. Section 12's
 * mode coverage of 2-D mixtures on constructed samples. */
#include "../genmod.h"
#include "test.h"
#include <string.h>

typedef struct gcheck { gm_params P; gm_tensor *r, *f; gm_gan kind; } gcheck;

static gm_tensor *b_gan_d(gm_tape *T, void *p) { gcheck *c = (gcheck *)p; return gm_gan_d_loss(T, c->r, c->f, c->kind); }
static gm_tensor *b_gan_g(gm_tape *T, void *p) { gcheck *c = (gcheck *)p; return gm_gan_g_loss(T, c->f, c->kind); }

static void grad_gan_losses(void)
{
    static const char *names[] = {"minimax", "non-saturating", "least squares", "wasserstein"};
    int kind;
    for (kind = GM_GAN_MINIMAX; kind <= GM_GAN_WASSERSTEIN; kind++) {
        gm_rng rng = gm_rng_new(11);
        gcheck c;
        double ed, eg;
        memset(&c, 0, sizeof c);
        c.kind = (gm_gan)kind;
        c.r = gm_param_new(&c.P, "real", gm_shape2(5, 1));
        c.f = gm_param_new(&c.P, "fake", gm_shape1(4));      /* (B,1) and (B) both work */
        gm_init_uniform(c.r, -3, 3, &rng);
        gm_init_uniform(c.f, -3, 3, &rng);
        ed = gm_grad_check(b_gan_d, &c, c.P.t, 2, 1e-2f, 7);
        eg = gm_grad_check(b_gan_g, &c, &c.f, 1, 1e-2f, 7);
        printf("  grad gan %-15s D loss %.2e, G loss %.2e\n", names[kind], ed, eg);
        EXPECT(ed < 1e-2 && eg < 1e-2);
        gm_params_free(&c.P);
    }
}

/* At r = f = 0 D says 1/2 to everything: the minimax D loss is 2 log 2, the saturating G
 * loss log(1/2), the non-saturating -log(1/2). And at logits of +-50, where s(l) rounds to
 * 0 or 1 in float, every loss and gradient is finite and right: a confident, correct D
 * loses ~0 and its gradients vanish; a confident, wrong one loses 100 = 50 + 50 with
 * gradient -1/B and +1/B per logit; the saturating G loss saturates (gradient ~0 where D
 * rejects its samples) while the non-saturating one keeps gradient -1/B there. */
static void gan_losses_known_values(void)
{
    gm_tape *T = gm_tape_new(1 << 16);
    const float zero[2] = {0, 0}, pos[2] = {50, 50}, neg[2] = {-50, -50}, lr[2] = {0.5f, -1}, lf[2] = {2, 0};
    gm_params P = {0};
    gm_tensor *r = gm_param_new(&P, "r", gm_shape1(2)), *f = gm_param_new(&P, "f", gm_shape1(2));
    const double ln2 = log(2.0);
#define SET(t, v) memcpy((t)->val, (v), sizeof(v))
#define DLOSS(kind) (gm_tape_reset(T), gm_backward(T, gm_gan_d_loss(T, r, f, (kind))))
#define GLOSS(kind) (gm_tape_reset(T), gm_backward(T, gm_gan_g_loss(T, f, (kind))))
    SET(r, zero); SET(f, zero);
    EXPECT_NEAR(DLOSS(GM_GAN_MINIMAX), 2 * ln2, 1e-6);
    EXPECT_NEAR(DLOSS(GM_GAN_NONSATURATING), 2 * ln2, 1e-6);
    EXPECT_NEAR(GLOSS(GM_GAN_MINIMAX), -ln2, 1e-6);
    EXPECT_NEAR(GLOSS(GM_GAN_NONSATURATING), ln2, 1e-6);
    SET(r, pos); SET(f, neg);                   /* D right and sure */
    EXPECT(DLOSS(GM_GAN_MINIMAX) < 1e-20);
    EXPECT(fabs(r->grad[0]) < 1e-20 && fabs(f->grad[1]) < 1e-20);
    EXPECT_NEAR(GLOSS(GM_GAN_NONSATURATING), 50, 1e-5);      /* -log s(-50) */
    EXPECT_NEAR(f->grad[0], -0.5, 1e-6);                      /* still pushes: -1/B */
    EXPECT(GLOSS(GM_GAN_MINIMAX) > -1e-20);                   /* log(1 - s(-50)) ~ -2e-22 */
    EXPECT(fabs(f->grad[0]) < 1e-20);                         /* saturated */
    SET(r, neg); SET(f, pos);                   /* D wrong and sure */
    EXPECT_NEAR(DLOSS(GM_GAN_MINIMAX), 100, 1e-4);
    EXPECT_NEAR(r->grad[0], -0.5, 1e-6);
    EXPECT_NEAR(f->grad[1], 0.5, 1e-6);
    SET(r, lr); SET(f, lf);                     /* least squares and Wasserstein by hand */
    /* D: ((0.5-1)^2 + (-1-1)^2) / 4 + (2^2 + 0^2) / 4 = (0.25 + 4 + 4) / 4 */
    EXPECT_NEAR(DLOSS(GM_GAN_LEAST_SQUARES), 8.25 / 4, 1e-6);
    EXPECT_NEAR(GLOSS(GM_GAN_LEAST_SQUARES), (1.0 + 1.0) / 4, 1e-6);   /* ((2-1)^2 + (0-1)^2) / 4 */
    EXPECT_NEAR(DLOSS(GM_GAN_WASSERSTEIN), 1.0 - (-0.25), 1e-6);       /* E f - E r */
    EXPECT_NEAR(GLOSS(GM_GAN_WASSERSTEIN), -1.0, 1e-6);
#undef SET
#undef DLOSS
#undef GLOSS
    gm_tape_free(T);
    gm_params_free(&P);
}

static void clip_weights_clamps_parameters_only(void)
{
    gm_params P = {0};
    gm_tensor *w = gm_param_new(&P, "w", gm_shape1(4)), *s = gm_buffer_new(&P, "s", gm_shape1(1));
    w->val[0] = -1; w->val[1] = 0.005f; w->val[2] = 0.3f; w->val[3] = -0.01f;
    s->val[0] = 5;
    gm_clip_weights(&P, 0.01f);
    EXPECT(w->val[0] == -0.01f && w->val[1] == 0.005f && w->val[2] == 0.01f && w->val[3] == -0.01f);
    EXPECT(s->val[0] == 5);                     /* running statistics are not weights */
    gm_params_free(&P);
}

typedef struct { gm_tape *T; gm_tensor *a; } gmisuse;
static void gan_on_images(void *p) { gmisuse *m = (gmisuse *)p; gm_gan_g_loss(m->T, m->a, GM_GAN_NONSATURATING); }

static void gan_losses_refuse_wrong_shapes(void)
{
    gmisuse m;
    m.T = gm_tape_new(1 << 16);
    m.a = gm_zeros(m.T, gm_shape4(2, 1, 2, 2));
    EXPECT(gm_test_expect_fatal(gan_on_images, &m, "gm_gan_g_loss: needs one output per example"));
    gm_tape_free(m.T);
}

/* Samples placed by hand at distance r (in sigmas) from a center, in direction a. */
static void place(float *x, const float *c, double r, double a, float sigma)
{
    x[0] = (float)(c[0] + r * sigma * cos(a));
    x[1] = (float)(c[1] + r * sigma * sin(a));
}

/* The ring's 8 modes: 40 samples on each of modes 0..2 at 1 sigma, 20 on mode 3, 19 on
 * mode 4 at 2.9 sigma, 30 on mode 5 at 3.1 sigma (not high quality), 11 between modes.
 * Exact counts, the 20-sample rule, and the 3 sigma boundary. */
static void mode_coverage_counts(void)
{
    float c[50], sigma, x[2 * 300];
    int counts[8], n = 0, i, k;
    gm_modes m;
    EXPECT(gm_toy_modes(GM_RING8, c, &sigma) == 8 && sigma == 0.02f);
    for (k = 0; k < 3; k++)
        for (i = 0; i < 40; i++) place(x + 2 * n++, c + 2 * k, 1.0, 0.1 * i, sigma);
    for (i = 0; i < 20; i++) place(x + 2 * n++, c + 6, 2.9, 0.3 * i, sigma);       /* 20: captured */
    for (i = 0; i < 19; i++) place(x + 2 * n++, c + 8, 2.9, 0.3 * i, sigma);       /* 19: not     */
    for (i = 0; i < 30; i++) place(x + 2 * n++, c + 10, 3.1, 0.2 * i, sigma);      /* outside 3 sigma */
    for (i = 0; i < 11; i++) { x[2 * n] = 0.1f * i; x[2 * n + 1] = -0.05f * i; n++; } /* near the middle */
    m = gm_mode_coverage(x, n, c, 8, sigma, counts);
    EXPECT(n == 200);
    EXPECT(counts[0] == 40 && counts[1] == 40 && counts[2] == 40 && counts[3] == 20 && counts[4] == 19);
    EXPECT(counts[5] == 0 && counts[6] == 0 && counts[7] == 0);
    EXPECT(m.captured == 4);
    EXPECT_NEAR(m.hq, 159.0 / 200, 1e-12);
    /* h = (40, 40, 40, 20, 19)/159: KL = sum h log(8 h) */
    EXPECT_NEAR(m.kl, 3 * (40.0 / 159) * log(8 * 40.0 / 159) + (20.0 / 159) * log(8 * 20.0 / 159)
                      + (19.0 / 159) * log(8 * 19.0 / 159), 1e-9);
    EXPECT(gm_mode_coverage(x, n, c, 8, sigma, NULL).captured == 4);        /* counts optional */
    EXPECT(gm_mode_histogram(counts, 8, n).captured == m.captured);          /* the same scores */
    EXPECT(gm_mode_histogram(counts, 8, n).hq == m.hq && gm_mode_histogram(counts, 8, n).kl == m.kl);
}

static void histogram_too_many(void *p)
{
    int one[10] = {0};
    (void)p;
    one[3] = 1000;
    gm_mode_histogram(one, 10, 999);
}

/* gm_mode_histogram on counts given directly, the way lecture 10 scores classes: 10 classes,
 * 1000 samples all counted (hq = 1); one class with every sample gives KL = log 10; the
 * threshold is GM_MODE_MIN_SAMPLES samples; an empty histogram has no KL. */
static void mode_histogram_of_classes(void)
{
    int even[10], one[10] = {0}, edge[10] = {0}, none[10] = {0}, k;
    gm_modes m;
    for (k = 0; k < 10; k++) even[k] = 100;
    m = gm_mode_histogram(even, 10, 1000);
    EXPECT(m.captured == 10 && m.hq == 1.0);
    EXPECT_NEAR(m.kl, 0.0, 1e-12);
    one[6] = 1000;
    m = gm_mode_histogram(one, 10, 1000);
    EXPECT(m.captured == 1 && m.hq == 1.0);
    EXPECT_NEAR(m.kl, log(10.0), 1e-12);
    edge[0] = GM_MODE_MIN_SAMPLES; edge[1] = GM_MODE_MIN_SAMPLES - 1; edge[2] = 961;
    m = gm_mode_histogram(edge, 10, 2000);
    EXPECT(m.captured == 2);
    EXPECT_NEAR(m.hq, 1000.0 / 2000, 1e-12);
    m = gm_mode_histogram(none, 10, 5);
    EXPECT(m.captured == 0 && m.hq == 0.0 && isnan(m.kl));
    EXPECT(gm_test_expect_fatal(histogram_too_many, NULL, "gm_mode_histogram: the counts sum to 1000, more than n = 999"));
}

/* KL(h || uniform) is 0 when every mode has the same count and log K when one has them
 * all; no high-quality sample gives NAN. The grid's centers are where gm_synthetic_2d
 * draws its modes: real data land on their own labels' modes, every mode is captured, and
 * hq is near 1 - e^(-9/2), the mass of a 2-D Gaussian within 3 sigma. */
static void mode_coverage_kl_and_real_data(void)
{
    float c[50], sigma, x[2 * 250];
    int counts[25], i, k, n = 0, agree = 0;
    gm_modes m;
    gm_dataset ds;
    EXPECT(gm_toy_modes(GM_GRID25, c, &sigma) == 25 && sigma == 0.05f);
    EXPECT(gm_toy_modes(GM_TWO_MOONS, NULL, NULL) == 0);
    for (k = 0; k < 25; k++)
        for (i = 0; i < 10; i++) place(x + 2 * n++, c + 2 * k, 0.5, i, sigma);
    m = gm_mode_coverage(x, n, c, 25, sigma, NULL);
    EXPECT(m.captured == 0 && m.hq == 1.0);     /* 10 each: all high quality, none captured */
    EXPECT_NEAR(m.kl, 0.0, 1e-12);
    for (i = 0; i < n; i++) place(x + 2 * i, c + 2 * 7, 2.0, i, sigma);
    m = gm_mode_coverage(x, n, c, 25, sigma, NULL);
    EXPECT(m.captured == 1 && m.hq == 1.0);
    EXPECT_NEAR(m.kl, log(25.0), 1e-12);
    for (i = 0; i < n; i++) { x[2 * i] = 1; x[2 * i + 1] = 1; }      /* between four modes */
    m = gm_mode_coverage(x, n, c, 25, sigma, NULL);
    EXPECT(m.captured == 0 && m.hq == 0.0 && isnan(m.kl));
    gm_synthetic_2d(&ds, GM_GRID25, 10000, 3);
    m = gm_mode_coverage(ds.x, ds.n, c, 25, sigma, counts);
    for (i = 0; i < ds.n; i++) {                /* each point's nearest center is its label's */
        double best = 1e30;
        int near = -1;
        for (k = 0; k < 25; k++) {
            double dx = ds.x[2 * i] - c[2 * k], dy = ds.x[2 * i + 1] - c[2 * k + 1];
            if (dx * dx + dy * dy < best) { best = dx * dx + dy * dy; near = k; }
        }
        agree += near == ds.y[i];
    }
    EXPECT(agree == ds.n);
    EXPECT(m.captured == 25);
    EXPECT_NEAR(m.hq, 1 - exp(-4.5), 0.005);
    EXPECT(m.kl < 0.01);
    gm_dataset_free(&ds);
    gm_toy_modes(GM_RING8, c, &sigma);
    gm_synthetic_2d(&ds, GM_RING8, 10000, 4);
    m = gm_mode_coverage(ds.x, ds.n, c, 8, sigma, NULL);
    EXPECT(m.captured == 8);
    EXPECT_NEAR(m.hq, 1 - exp(-4.5), 0.005);
    gm_dataset_free(&ds);
}

void tests_gan(void)
{
    printf("GAN objectives\n");
    TEST(grad_gan_losses);
    TEST(gan_losses_known_values);
    TEST(clip_weights_clamps_parameters_only);
    TEST(gan_losses_refuse_wrong_shapes);
    printf("mode coverage of 2-D mixtures\n");
    TEST(mode_coverage_counts);
    TEST(mode_histogram_of_classes);
    TEST(mode_coverage_kl_and_real_data);
}
