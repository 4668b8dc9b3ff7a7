/* demos/gan.h - what the three 1-D GAN demos of lecture 09 share: the data (lecture 01's
 * two-bump mixture), a small MLP for G and D, and the numbers and curves on a grid of x
 * that compare densities: a density estimate from samples, D(x) on the grid, D* and the
 * Jensen-Shannon divergence by quadrature. Include after demo.h. */
#ifndef GENMOD_GAN_H
#define GENMOD_GAN_H

#include <math.h>

/* ---- the data: p_data = 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2) ----------------------------- */
#define MODE 2.0
#define SPREAD 0.5
static inline double normal_pdf(double x, double m, double s)
{
    double u = (x - m) / s;
    return exp(-0.5 * u * u) / (s * 2.5066282746310002);      /* sqrt(2 pi) */
}
static inline double p_data(double x) { return 0.5 * normal_pdf(x, -MODE, SPREAD) + 0.5 * normal_pdf(x, MODE, SPREAD); }

/* B draws x ~ p_data as a (B,1) batch */
static inline gm_tensor *data_batch(gm_tape *T, int B, gm_rng *rng)
{
    gm_tensor *x = gm_zeros(T, gm_shape2(B, 1));
    int i;
    for (i = 0; i < B; i++)
        x->val[i] = (float)((gm_rng_uniform(rng) < 0.5f ? -MODE : MODE) + SPREAD * gm_rng_normal(rng));
    return x;
}

/* ---- the networks: 1 -> H -> H -> 1, leaky ReLU between ----------------------------------- */
typedef struct mlp { gm_dense l1, l2, l3; } mlp;
static inline mlp mlp_new(gm_params *P, const char *name, int hidden, gm_rng *rng)
{
    mlp m;
    char n[3][32];
    snprintf(n[0], 32, "%s.1", name); snprintf(n[1], 32, "%s.2", name); snprintf(n[2], 32, "%s.3", name);
    m.l1 = gm_dense_new(P, n[0], 1, hidden, rng);
    m.l2 = gm_dense_new(P, n[1], hidden, hidden, rng);
    m.l3 = gm_dense_new(P, n[2], hidden, 1, rng);
    return m;
}
static inline gm_tensor *mlp_forward(gm_tape *T, const mlp *m, gm_tensor *x)       /* (B,1) -> (B,1) */
{
    gm_tensor *h = gm_leaky_relu(T, gm_dense(T, &m->l1, x), 0.2f);
    h = gm_leaky_relu(T, gm_dense(T, &m->l2, h), 0.2f);
    return gm_dense(T, &m->l3, h);
}
/* D's probability s(l) = 1 / (1 + e^-l) that x is real, averaged over a batch of logits */
static inline double mean_prob(const gm_tensor *logits)
{
    double sum = 0.0;
    int i;
    for (i = 0; i < logits->size; i++) sum += 1.0 / (1.0 + exp(-logits->val[i]));
    return sum / logits->size;
}
/* G(z) for B draws z ~ N(0, 1): the generator's samples, (B,1) */
static inline gm_tensor *generate(gm_tape *T, const mlp *G, int B, gm_rng *rng)
{
    return mlp_forward(T, G, gm_randn(T, gm_shape2(B, 1), rng));
}

/* ---- curves on the grid x_i = X_LO + i h, i = 0..GRID-1 ------------------------------------- */
#define GRID 481
#define X_LO -6.0
#define X_HI 6.0
#define GRID_H ((X_HI - X_LO) / (GRID - 1))
static inline double grid_x(int i) { return X_LO + i * GRID_H; }

/* A density from n samples: the average of Gaussian bumps of width BW around them (a kernel
 * density estimate; BW is small against the data's spread 0.5, so it blurs little). */
#define BW 0.08
static inline void density_estimate(const float *s, int n, float *dens)
{
    int i, j;
    for (i = 0; i < GRID; i++) dens[i] = 0.0f;
    for (j = 0; j < n; j++) {                     /* each sample's bump, cut at 5 BW */
        int lo = (int)ceil((s[j] - 5 * BW - X_LO) / GRID_H), hi = (int)floor((s[j] + 5 * BW - X_LO) / GRID_H);
        for (i = lo < 0 ? 0 : lo; i <= hi && i < GRID; i++)
            dens[i] += (float)(normal_pdf(grid_x(i), s[j], BW) / n);
    }
}

/* D(x) = sigmoid(l(x)) on the grid, and the logit l(x) too if logit is not NULL */
static inline void d_on_grid(gm_tape *T, const mlp *D, float *d, float *logit)
{
    gm_tensor *x = gm_zeros(T, gm_shape2(GRID, 1)), *l;
    int i;
    for (i = 0; i < GRID; i++) x->val[i] = (float)grid_x(i);
    l = mlp_forward(T, D, x);
    for (i = 0; i < GRID; i++) {
        d[i] = 1.0f / (1.0f + expf(-l->val[i]));
        if (logit) logit[i] = l->val[i];
    }
}

/* D*(x) = p_data / (p_data + p_g), 1/2 where both vanish */
static inline void d_star(const float *pd, const float *pg, float *ds)
{
    int i;
    for (i = 0; i < GRID; i++) ds[i] = pd[i] + pg[i] > 0 ? pd[i] / (pd[i] + pg[i]) : 0.5f;
}

/* How far D is from D*: the integral of |D - D*| (p_data + p_g) / 2, i.e. the mean of
 * |D - D*| over an even mix of real and generated samples (where D is trained). */
static inline double d_gap(const float *d, const float *ds, const float *pd, const float *pg)
{
    double acc = 0;
    int i;
    for (i = 0; i < GRID; i++) acc += fabs(d[i] - ds[i]) * 0.5 * (pd[i] + pg[i]) * GRID_H;
    return acc;
}

/* JS(p || q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, as a sum over the grid
 * points times their spacing (0 log 0 = 0; both densities vanish at the ends) */
static inline double js_quadrature(const float *p, const float *q)
{
    double acc = 0;
    int i;
    for (i = 0; i < GRID; i++) {
        double m = 0.5 * (p[i] + q[i]);
        if (p[i] > 0) acc += 0.5 * p[i] * log(p[i] / m) * GRID_H;
        if (q[i] > 0) acc += 0.5 * q[i] * log(q[i] / m) * GRID_H;
    }
    return acc;
}

#endif
