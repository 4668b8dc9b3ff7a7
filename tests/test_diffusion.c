/* tests/test_diffusion.c - section 8's diffusion pieces and the layers they need: the
 * schedules' constants, a finite-difference gradient check of group norm, the time
 * embedding, q(x_t | x_0), the denoising loss of each target and the (B,C) broadcast of
 * gm_add; one DDIM step against a value worked by hand, the ancestral step against DDPM's
 * posterior, samplers that must land on a one-point data set and reproduce a Gaussian's
 * mean and variance step by step, inference mode against
 * recording mode, and the moving average of parameters. */
#include "../genmod.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

/* alpha_bar_t from numpy in double (bench-free: python3 -c "import numpy as np; ..."):
 * np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)), and the cosine schedule's
 * 1 - f(t)/f(t-1) clipped at 0.999 with f(t) = cos((t/T + s)/(1 + s) pi/2)^2, s = 0.008.
 * The values Ho et al. (2020) and Nichol & Dhariwal (2021) define; genmod's tables must
 * match them to 1e-6 (relative for the tiny abar_T). */
static void schedules_match_known_values(void)
{
    gm_diffusion lin = gm_diffusion_new(GM_LINEAR, 1000), cos = gm_diffusion_new(GM_COSINE, 1000);
    gm_diffusion lin50 = gm_diffusion_new(GM_LINEAR, 50), bad = gm_diffusion_new(GM_LINEAR, 0);
    int t, monotone = 1;
    EXPECT(lin.alpha_bar && cos.alpha_bar && lin50.alpha_bar);
    EXPECT_NEAR(lin.alpha_bar[0], 1.0, 0);
    EXPECT_NEAR(lin.beta[1], 1e-4, 1e-12);
    EXPECT_NEAR(lin.beta[1000], 0.02, 1e-12);
    EXPECT_NEAR(lin.alpha_bar[1000] / 4.035829765375676e-05, 1.0, 1e-6);
    EXPECT_NEAR(lin.alpha_bar[500], 0.07858724288177824, 1e-6);
    EXPECT_NEAR(lin.alpha_bar[250], 0.5240853738253606, 1e-6);
    EXPECT_NEAR(cos.alpha_bar[500], 0.4938435904406382, 1e-6);
    EXPECT_NEAR(cos.alpha_bar[1], 0.999958715775178, 1e-6);
    EXPECT_NEAR(cos.alpha_bar[1000] / 2.4287669070348567e-09, 1.0, 1e-6);
    EXPECT_NEAR(cos.beta[1000], 0.999, 1e-12);                     /* the clip */
    EXPECT(lin50.alpha_bar[50] < 1e-5);                            /* scaled: still noise at T = 50 */
    EXPECT_NEAR(gm_diffusion_snr(&lin, 500), 0.07858724288177824 / (1 - 0.07858724288177824), 1e-6);
    for (t = 1; t <= 1000; t++) monotone &= cos.alpha_bar[t] < cos.alpha_bar[t - 1] && lin.alpha_bar[t] < lin.alpha_bar[t - 1];
    EXPECT(monotone);
    EXPECT(bad.beta == NULL && strstr(gm_last_error(), "T = 0") != NULL);
    gm_diffusion_free(&lin); gm_diffusion_free(&cos); gm_diffusion_free(&lin50); gm_diffusion_free(&bad);
}

typedef struct dcheck {
    gm_params P;
    gm_tensor *a, *b, *c;
    gm_groupnorm gn;
    gm_diffusion d;
    int t[3];
    float gamma;
    gm_rng rng;
} dcheck;

/* An input the check differentiates (a parameter), or with data = 1 one it only reads. */
static gm_tensor *dinput(dcheck *c, const char *name, gm_shape s, float lo, float hi, int data)
{
    gm_tensor *x = data ? gm_buffer_new(&c->P, name, s) : gm_param_new(&c->P, name, s);
    gm_init_uniform(x, lo, hi, &c->rng);
    return x;
}

static dcheck new_dcheck(void)
{
    dcheck c;
    memset(&c, 0, sizeof c);
    c.rng = gm_rng_new(5);
    c.t[0] = 3; c.t[1] = 500; c.t[2] = 990;
    return c;
}

static gm_tensor *b_gn(gm_tape *T, void *p) { dcheck *c = (dcheck *)p; return gm_groupnorm(T, &c->gn, c->a); }
/* the embedding of t scaled down, so a step of h in t moves the sines by a fraction */
static gm_tensor *b_temb(gm_tape *T, void *p) { dcheck *c = (dcheck *)p; return gm_time_embedding(T, c->a, 8); }
static gm_tensor *b_qs(gm_tape *T, void *p) { dcheck *c = (dcheck *)p; return gm_q_sample(T, &c->d, c->a, c->b, c->t); }
static gm_tensor *b_loss(gm_tape *T, void *p)
{
    dcheck *c = (dcheck *)p;
    return gm_diffusion_loss(T, &c->d, c->a, c->b, c->c, c->t, c->gamma);
}
static gm_tensor *b_add_bc(gm_tape *T, void *p) { dcheck *c = (dcheck *)p; return gm_mul(T, gm_add(T, c->a, c->b), c->a); }

static void grad_diffusion_ops(void)
{
    static const char *target_name[] = {"eps", "x0", "v"};
    dcheck c = new_dcheck();
    int k;
    c.a = dinput(&c, "x", gm_shape4(3, 4, 2, 3), -1, 2, 0);
    c.gn = gm_groupnorm_new(&c.P, "gn", 4, 2);
    gm_init_uniform(c.gn.gamma, 0.5f, 1.5f, &c.rng); gm_init_uniform(c.gn.beta, -1, 1, &c.rng);
    EXPECT(gm_test_grad("groupnorm (B,C,H,W), 2 groups", b_gn, &c, &c.P) < GRAD_TOL);
    c = new_dcheck();
    c.a = dinput(&c, "x", gm_shape2(2, 8), -1, 2, 0);
    c.gn = gm_groupnorm_new(&c.P, "gn", 8, 2);
    gm_init_uniform(c.gn.gamma, 0.5f, 1.5f, &c.rng);
    EXPECT(gm_test_grad("groupnorm (B,D), 2 groups", b_gn, &c, &c.P) < GRAD_TOL);
    c = new_dcheck();
    c.a = dinput(&c, "x", gm_shape4(2, 3, 2, 2), -1, 2, 0);
    c.gn = gm_groupnorm_new(&c.P, "gn", 3, 1);                    /* one group: layer norm */
    EXPECT(gm_test_grad("groupnorm, 1 group", b_gn, &c, &c.P) < GRAD_TOL);
    c = new_dcheck();
    c.a = dinput(&c, "t", gm_shape1(3), 0, 3, 0);                     /* small t: the fast sines still resolve */
    EXPECT(gm_test_grad("time embedding", b_temb, &c, &c.P) < GRAD_TOL);
    c = new_dcheck();
    c.d = gm_diffusion_new(GM_COSINE, 1000);
    c.a = dinput(&c, "x0", gm_shape2(3, 4), -1, 1, 0);
    c.b = dinput(&c, "eps", gm_shape2(3, 4), -2, 2, 0);
    EXPECT(gm_test_grad("q_sample", b_qs, &c, &c.P) < GRAD_TOL);
    gm_diffusion_free(&c.d);
    for (k = GM_PREDICT_EPS; k <= GM_PREDICT_V; k++) {
        char name[64];
        c = new_dcheck();
        c.d = gm_diffusion_new(GM_COSINE, 1000);
        c.d.target = (gm_target)k;
        c.gamma = 5.0f;
        c.a = dinput(&c, "pred", gm_shape4(3, 1, 2, 2), -1, 1, 0);
        c.b = dinput(&c, "x0", gm_shape4(3, 1, 2, 2), -1, 1, 1);     /* data: no gradient */
        c.c = dinput(&c, "eps", gm_shape4(3, 1, 2, 2), -2, 2, 1);
        snprintf(name, sizeof name, "diffusion loss (%s, min-SNR)", target_name[k]);
        EXPECT(gm_test_grad(name, b_loss, &c, &c.P) < GRAD_TOL);
        gm_diffusion_free(&c.d);
    }
    c = new_dcheck();
    c.a = dinput(&c, "a", gm_shape4(2, 3, 2, 2), -1, 1, 0);
    c.b = dinput(&c, "b", gm_shape2(2, 3), -1, 1, 0);
    EXPECT(gm_test_grad("add (B,C) over H,W", b_add_bc, &c, &c.P) < GRAD_TOL);
}

/* The loss's target and weight, worked by hand for one example at t = 500 of the linear
 * schedule (abar = 0.0785872, SNR = 0.0852900): pred 0, x0 = 0.5, eps = -1, so
 *   eps target: (0 - (-1))^2 = 1, weight min(SNR, 5)/SNR = 1;
 *   v = sqrt(abar) eps - sqrt(1 - abar) x0 = -0.280334 - 0.479951 = -0.760285, squared
 *   0.578034, weight min(SNR, 5)/(SNR + 1) = 0.0785872;  x0 with gamma 0.05: 0.25 * 0.05. */
static void diffusion_loss_known_values(void)
{
    gm_diffusion d = gm_diffusion_new(GM_LINEAR, 1000);
    gm_tape *T = gm_tape_new(1 << 20);
    float zero = 0, half = 0.5f, minus1 = -1;
    int t = 500;
    gm_tensor *p = gm_from(T, gm_shape2(1, 1), &zero), *x0 = gm_from(T, gm_shape2(1, 1), &half);
    gm_tensor *e = gm_from(T, gm_shape2(1, 1), &minus1);
    EXPECT_NEAR(gm_item(gm_diffusion_loss(T, &d, p, x0, e, &t, 5.0f)), 1.0, 1e-6);
    d.target = GM_PREDICT_V;
    EXPECT_NEAR(gm_item(gm_diffusion_loss(T, &d, p, x0, e, &t, 0.0f)), 0.578034, 1e-5);
    EXPECT_NEAR(gm_item(gm_diffusion_loss(T, &d, p, x0, e, &t, 5.0f)), 0.578034 * 0.0785872, 1e-5);
    d.target = GM_PREDICT_X0;
    EXPECT_NEAR(gm_item(gm_diffusion_loss(T, &d, p, x0, e, &t, 0.05f)), 0.25 * 0.05, 1e-6);
    gm_tape_free(T);
    gm_diffusion_free(&d);
}

/* One DDIM step (eta = 0) of the linear schedule from t = 500 to s = 250 with x_t = 0.3 and
 * predicted noise 0.1, by hand (in double, from the tables above):
 *   x0^ = (0.3 - sqrt(1 - 0.0785872) 0.1) / sqrt(0.0785872) = 0.727738,
 *   x_250 = sqrt(0.524085) x0^ + sqrt(1 - 0.524085) 0.1 = 0.595823.
 * The same step for a v-network and an x0-network given the v and x0 that this eps
 * implies lands on the same value, and clip = 0.5 clamps x0^ before the step. */
static void ddim_step_known_value(void)
{
    gm_diffusion d = gm_diffusion_new(GM_LINEAR, 1000);
    float x = 0.3f, out = 0.1f, a = (float)sqrt(d.alpha_bar[500]), c = (float)sqrt(1 - d.alpha_bar[500]);
    float x0 = 0.7277377f, v = a * out - c * x0, clipped = 0.5f;
    gm_ddim_step(&d, 500, 250, 0.0f, &x, &out, 1, NULL);
    EXPECT_NEAR(x, 0.5958231, 2e-6);
    x = 0.3f; d.target = GM_PREDICT_V;
    gm_ddim_step(&d, 500, 250, 0.0f, &x, &v, 1, NULL);
    EXPECT_NEAR(x, 0.5958231, 2e-6);
    x = 0.3f; d.target = GM_PREDICT_X0;
    gm_ddim_step(&d, 500, 250, 0.0f, &x, &x0, 1, NULL);
    EXPECT_NEAR(x, 0.5958231, 2e-6);
    x = 0.3f; d.clip = 0.5f;                   /* x0^ = 0.5, eps^ = (0.3 - a 0.5) / c */
    gm_ddim_step(&d, 500, 250, 0.0f, &x, &x0, 1, NULL);
    EXPECT_NEAR(x, sqrt(d.alpha_bar[250]) * clipped + sqrt(1 - d.alpha_bar[250]) * (0.3 - a * clipped) / c, 2e-6);
    gm_diffusion_free(&d);
}

/* With eta = 1 and s = t - 1 the step is DDPM's: x_{t-1} ~ N(mu~, beta~_t) with
 *   mu~ = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0^ + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
 *   beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t      (Ho et al. 2020, eq. 6-7).
 * 200000 steps from the same x_t: the mean and variance agree within 5 standard errors. */
static void ancestral_step_is_ddpm_posterior(void)
{
    gm_diffusion d = gm_diffusion_new(GM_COSINE, 1000);
    int n = 200000, i, t = 300;
    float *x = (float *)malloc(sizeof(float) * n), *out = (float *)malloc(sizeof(float) * n);
    double m = 0, v = 0, at = d.alpha_bar[t], ap = d.alpha_bar[t - 1], bt = d.beta[t];
    double x0 = (0.4 - sqrt(1 - at) * -0.7) / sqrt(at);
    double mu = sqrt(ap) * bt / (1 - at) * x0 + sqrt(1 - bt) * (1 - ap) / (1 - at) * 0.4, var = (1 - ap) / (1 - at) * bt;
    gm_rng rng = gm_rng_new(3);
    for (i = 0; i < n; i++) { x[i] = 0.4f; out[i] = -0.7f; }
    gm_ddim_step(&d, t, t - 1, 1.0f, x, out, n, &rng);
    for (i = 0; i < n; i++) m += x[i];
    m /= n;
    for (i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    v /= n - 1;
    EXPECT_NEAR(m, mu, 5 * sqrt(var / n));
    EXPECT_NEAR(v, var, 5 * var * sqrt(2.0 / (n - 1)));
    free(x); free(out);
    gm_diffusion_free(&d);
}

/* A data set of one point x0 = c: the ideal denoiser knows eps = (x_t - sqrt(abar_t) c) /
 * sqrt(1 - abar_t) exactly, so every sampler must end on c (DDIM from any step count, and
 * ancestral sampling: its last step adds no noise). It also checks the trace and that the
 * denoiser runs in inference mode on the steps the sampler promises. */
typedef struct point_model { const gm_diffusion *d; float c; int calls, last_t, inference; } point_model;
static gm_tensor *point_denoiser(gm_tape *T, void *model, gm_tensor *xt, const int *t)
{
    point_model *pm = (point_model *)model;
    gm_tensor *e = gm_zeros(T, xt->shape);
    double ab = pm->d->alpha_bar[t[0]];
    int i;
    for (i = 0; i < xt->size; i++) e->val[i] = (float)((xt->val[i] - sqrt(ab) * pm->c) / sqrt(1 - ab));
    pm->calls++;
    pm->last_t = t[0];
    pm->inference = gm_tape_inference(T, 1);
    return e;
}

static void samplers_find_a_point(void)
{
    gm_diffusion d = gm_diffusion_new(GM_LINEAR, 100);
    gm_tape *T = gm_tape_new(1 << 20);
    point_model pm;
    float x[6], trace[11 * 6];
    int steps[3] = {100, 10, 1}, k, i;
    for (k = 0; k < 3; k++) {
        gm_rng rng = gm_rng_new(9);
        float eta = k == 0 ? 1.0f : 0.0f;
        memset(&pm, 0, sizeof pm);
        pm.d = &d; pm.c = 0.25f;
        gm_diffusion_sample(&d, point_denoiser, &pm, T, gm_shape2(3, 2), steps[k], eta, x, k == 1 ? trace : NULL, &rng);
        for (i = 0; i < 6; i++) EXPECT_NEAR(x[i], 0.25, 1e-4);
        EXPECT(pm.calls == steps[k] && pm.last_t == 100 / steps[k] && pm.inference == 1);
        EXPECT(gm_tape_inference(T, 0) == 0);                      /* the sampler restored it */
    }
    for (i = 0; i < 6; i++) EXPECT_NEAR(trace[10 * 6 + i], 0.25, 1e-4);   /* DDIM-10: last frame x_0 */
    EXPECT(fabs(trace[0]) > 0.0f);                                   /* first frame x_T: noise */
    gm_tape_free(T);
    gm_diffusion_free(&d);
}

/* Where the steps fall: even strides, or strides that shrink towards t = T; always T down
 * to 0 without a repeat, and every step when S = T. */
static void sampler_steps(void)
{
    gm_diffusion d = gm_diffusion_new(GM_COSINE, 1000), e = gm_diffusion_new(GM_LINEAR, 7);
    int t[1001], S, i, sp, ok = 1;
    gm_diffusion_steps(&d, 50, t);
    EXPECT(t[50] == 1000 && t[49] == 980 && t[1] == 20 && t[0] == 0);
    d.spacing = GM_SPACING_NOISY;                    /* T (1 - (1 - i/S)^2), by hand: */
    gm_diffusion_steps(&d, 50, t);
    EXPECT(t[50] == 1000 && t[49] == 999 && t[48] == 998 && t[47] == 996);  /* 999.6 -> 1000, a repeat: 999 */
    EXPECT(t[25] == 750 && t[1] == 40 && t[0] == 0);                        /* 39.6 -> 40 */
    for (sp = 0; sp < 2; sp++) {       /* network calls where abar_t < 0.01 (t >= 936) */
        int calls = 0;
        d.spacing = (gm_spacing)sp;
        gm_diffusion_steps(&d, 50, t);
        for (i = 1; i <= 50; i++) calls += d.alpha_bar[t[i]] < 0.01;
        printf("  steps: DDIM-50 %s makes %d of its 50 network calls where abar_t < 0.01 (cosine)\n",
               sp ? "dense at the noisy end" : "evenly spaced", calls);
        EXPECT(calls == (sp ? 13 : 4));               /* i >= 37.35 of 50, and 940 ... 1000 */
    }
    for (sp = 0; sp < 2; sp++)
        for (S = 1; S <= 1000; S++) {
            d.spacing = e.spacing = (gm_spacing)sp;
            gm_diffusion_steps(&d, S, t);
            ok &= t[S] == 1000 && t[0] == 0;
            for (i = 1; i <= S; i++)        /* even: the steps every run before 0.7.1 took */
                ok &= t[i] > t[i - 1] && (S < 1000 || t[i] == i) && (sp || t[i] == (int)floor((double)i * 1000 / S + 0.5));
            if (S > 7) continue;
            gm_diffusion_steps(&e, S, t);
            ok &= t[S] == 7 && t[0] == 0;
            for (i = 1; i <= S; i++) ok &= t[i] > t[i - 1] && (S < 7 || t[i] == i);
        }
    EXPECT(ok);
    gm_diffusion_free(&d);
    gm_diffusion_free(&e);
}

/* A Gaussian data set, x_0 ~ N(mu, s2) in every coordinate: its ideal denoiser is linear,
 * E[x_0 | x_t] = mu + k_t (x_t - sqrt(abar_t) mu), k_t = sqrt(abar_t) s2 / (abar_t s2 + 1 - abar_t),
 * so every sampler step is x_s = A x_t + b + sigma z and the mean and variance of x_0 follow
 * exactly from m_T = 0, V_T = 1: m_s = A m_t + b, V_s = A^2 V_t + sigma^2. Where the one
 * point above pins only the last step, this checks the coefficients of every step, evenly
 * spaced or dense at the noisy end. It also
 * shows what the lecture says of few steps: DDIM-10's samples are too narrow, even given
 * the ideal network. */
typedef struct gauss_model { const gm_diffusion *d; double mu, s2; } gauss_model;
static double gauss_k(const gauss_model *g, int t)
{
    double ab = g->d->alpha_bar[t];
    return sqrt(ab) * g->s2 / (ab * g->s2 + 1 - ab);
}
/* E[x_0 | x_t = x] */
static double gauss_x0(const gauss_model *g, int t, double x)
{
    return g->mu + gauss_k(g, t) * (x - sqrt(g->d->alpha_bar[t]) * g->mu);
}
static gm_tensor *gauss_denoiser(gm_tape *T, void *model, gm_tensor *xt, const int *t)
{
    gauss_model *g = (gauss_model *)model;
    gm_tensor *v = gm_zeros(T, xt->shape);
    double ab = g->d->alpha_bar[t[0]], x0, eps;
    int i;
    for (i = 0; i < xt->size; i++) {                       /* the v target of that x_0 */
        x0 = gauss_x0(g, t[0], xt->val[i]);
        eps = (xt->val[i] - sqrt(ab) * x0) / sqrt(1 - ab);
        v->val[i] = (float)(sqrt(ab) * eps - sqrt(1 - ab) * x0);
    }
    return v;
}

static void samplers_match_a_gaussian(void)
{
    enum { N = 20000 };
    gm_diffusion d = gm_diffusion_new(GM_COSINE, 1000);
    gm_tape *T = gm_tape_new(1 << 22);
    gauss_model g;
    float *x = (float *)malloc(sizeof(float) * N);
    int steps[6] = {1000, 1000, 50, 10, 50, 10}, ts[1001], k, i, n, t, s;
    float etas[6] = {1, 0, 0, 0, 0, 0};
    double m_t, v_t, ab_t, ab_s, kt, sig2, c, A, x0, m, v, v_exact[6];
    d.target = GM_PREDICT_V;
    d.clip = 0;
    g.d = &d; g.mu = 0.3; g.s2 = 0.25;
    for (k = 0; k < 6; k++) {
        gm_rng rng = gm_rng_new(11);
        d.spacing = k < 4 ? GM_SPACING_EVEN : GM_SPACING_NOISY;
        gm_diffusion_steps(&d, steps[k], ts);
        m_t = 0; v_t = 1;
        for (n = steps[k]; n >= 1; n--) {
            t = ts[n];
            s = ts[n - 1];
            ab_t = d.alpha_bar[t]; ab_s = d.alpha_bar[s]; kt = gauss_k(&g, t);
            sig2 = etas[k] * etas[k] * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s);
            c = sqrt(1 - ab_s - sig2);                         /* x_s = sqrt(ab_s) x0 + c eps + sigma z */
            A = sqrt(ab_s) * kt + c * (1 - sqrt(ab_t) * kt) / sqrt(1 - ab_t);
            x0 = gauss_x0(&g, t, m_t);                         /* the step is linear: the mean maps through */
            m_t = sqrt(ab_s) * x0 + c * (m_t - sqrt(ab_t) * x0) / sqrt(1 - ab_t);
            v_t = A * A * v_t + sig2;
        }
        gm_diffusion_sample(&d, gauss_denoiser, &g, T, gm_shape2(N, 1), steps[k], etas[k], x, NULL, &rng);
        for (m = 0, i = 0; i < N; i++) m += x[i];
        m /= N;
        for (v = 0, i = 0; i < N; i++) v += (x[i] - m) * (x[i] - m);
        v /= N - 1;
        EXPECT_NEAR(m, m_t, 5 * sqrt(v_t / N));
        EXPECT_NEAR(v, v_t, 5 * v_t * sqrt(2.0 / (N - 1)));
        printf("  gaussian: %s %4d steps: variance %.4f sampled, %.4f exact, of the data's %.2f\n",
               etas[k] > 0 ? "ancestral " : k < 4 ? "DDIM      " : "DDIM noisy", steps[k], v, v_t, g.s2);
        v_exact[k] = v_t;
    }
    EXPECT_NEAR(v_exact[1], g.s2, 0.01 * g.s2);                      /* DDIM-1000: the ODE, nearly exact */
    EXPECT(v_exact[3] < 0.9 * g.s2);                                 /* DDIM-10: too narrow */
    /* most of the narrowing comes from the strides where sigma_t = sqrt((1 - abar_t) / abar_t)
     * is at the data's scale or below, at the clean end: the noisy-end spacing, whose strides
     * there are twice the even ones, narrows more */
    EXPECT(v_exact[4] < v_exact[2] && v_exact[5] < v_exact[3]);
    free(x);
    gm_tape_free(T);
    gm_diffusion_free(&d);
}

/* A small denoiser of everything the U-Net uses (conv, group norm, SiLU, the (B,C)
 * broadcast of a time embedding through a dense layer, a transposed conv, concat): the
 * forward in inference mode gives the same bits as when recording; inference records no
 * backward, and gm_backward refuses it. */
typedef struct tiny { gm_conv2d c1; gm_groupnorm gn; gm_dense emb; gm_conv_transpose2d up; } tiny;
static gm_tensor *tiny_forward(gm_tape *T, tiny *m, gm_tensor *x, gm_tensor *t)
{
    gm_tensor *h = gm_conv2d(T, &m->c1, x);
    h = gm_add(T, gm_silu(T, gm_groupnorm(T, &m->gn, h)), gm_dense(T, &m->emb, gm_time_embedding(T, t, 8)));
    return gm_concat(T, gm_conv_transpose2d(T, &m->up, h), x);
}

typedef struct infer { gm_tape *T; gm_tensor *w; } infer;
static void backward_in_inference(void *p)
{
    infer *f = (infer *)p;
    gm_backward(f->T, gm_sum(f->T, gm_square(f->T, f->w)));
}

static void inference_mode_same_values(void)
{
    gm_rng rng = gm_rng_new(4);
    gm_params P = {0};
    tiny m;
    gm_tape *T = gm_tape_new(1 << 22);
    float tv[2] = {3, 700}, *rec;
    gm_tensor *x, *t, *y;
    infer f;
    int n;
    m.c1 = gm_conv2d_new(&P, "c1", 1, 4, 3, 2, 1, &rng);
    m.gn = gm_groupnorm_new(&P, "gn", 4, 2);
    m.emb = gm_dense_new(&P, "emb", 8, 4, &rng);
    m.up = gm_conv_transpose2d_new(&P, "up", 4, 2, 4, 2, 1, 0, &rng);
    x = gm_randn(T, gm_shape4(2, 1, 8, 8), &rng);
    t = gm_from(T, gm_shape1(2), tv);
    y = tiny_forward(T, &m, x, t);
    n = y->size;
    rec = (float *)malloc(sizeof(float) * n);
    memcpy(rec, y->val, sizeof(float) * n);
    EXPECT(y->backward != NULL && y->in[0]->backward != NULL);
    EXPECT(gm_tape_inference(T, 1) == 0);
    y = tiny_forward(T, &m, x, t);
    EXPECT(y->size == n && memcmp(rec, y->val, sizeof(float) * n) == 0);
    EXPECT(y->backward == NULL && y->in[0]->backward == NULL);
    gm_tape_reset(T);
    f.T = T; f.w = m.c1.b;
    EXPECT(gm_test_expect_fatal(backward_in_inference, &f, "inference mode"));
    gm_tape_free(T);
    gm_params_free(&P);
    free(rec);
}

/* avg = 0.9 avg + 0.1 P for parameters, buffers copied; decay 0 copies; a model built
 * differently is refused. */
typedef struct emapair { gm_params *a, *b; } emapair;
static void ema_mismatch(void *p) { emapair *e = (emapair *)p; gm_ema_update(e->a, e->b, 0.5f); }

static void ema_of_parameters(void)
{
    gm_params P = {0}, A = {0}, W = {0};
    gm_tensor *p = gm_param_new(&P, "w", gm_shape1(2)), *pb = gm_buffer_new(&P, "stat", gm_shape1(1));
    gm_tensor *a = gm_param_new(&A, "w", gm_shape1(2)), *ab = gm_buffer_new(&A, "stat", gm_shape1(1));
    emapair e;
    gm_param_new(&W, "w", gm_shape1(3));
    gm_buffer_new(&W, "stat", gm_shape1(1));
    p->val[0] = 1; p->val[1] = -2; pb->val[0] = 7;
    gm_ema_update(&A, &P, 0.0f);
    EXPECT(a->val[0] == 1 && a->val[1] == -2 && ab->val[0] == 7);
    p->val[0] = 2; pb->val[0] = 8;
    gm_ema_update(&A, &P, 0.9f);
    EXPECT_NEAR(a->val[0], 1.1, 1e-6);
    EXPECT_NEAR(a->val[1], -2, 1e-6);
    EXPECT(ab->val[0] == 8);
    e.a = &W; e.b = &P;
    EXPECT(gm_test_expect_fatal(ema_mismatch, &e, "build both the same way"));
    gm_params_free(&P); gm_params_free(&A); gm_params_free(&W);
}

void tests_diffusion(void)
{
    TEST(schedules_match_known_values);
    TEST(grad_diffusion_ops);
    TEST(diffusion_loss_known_values);
    TEST(ddim_step_known_value);
    TEST(sampler_steps);
    TEST(ancestral_step_is_ddpm_posterior);
    TEST(samplers_find_a_point);
    TEST(samplers_match_a_gaussian);
    TEST(inference_mode_same_values);
    TEST(ema_of_parameters);
}
