/* tests/test_flows.c - section 8's normalizing flows (RealNVP coupling layers): a new flow
 * is the identity and scores the standard normal's log-density; one coupling with constant
 * scale and shift scores the Gaussian it maps to N(0, 1); x -> z -> x returns x; one
 * coupling's Jacobian is triangular with the kept dimensions' diagonal 1; the log-determinant
 * equals log |det| of a finite-difference Jacobian; sampling is the inverse of N(0, I)
 * draws; finite-difference gradient checks of the forward (z and the log-determinant), of
 * the inverse and of the likelihood. */
#include "../genmod.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

/* A flow whose heads are random (a new flow is the identity: nothing to test there), scales
 * large enough that each layer bends the plane visibly. */
static gm_flow random_flow(gm_params *P, int D, int K, int H, gm_rng *rng)
{
    gm_flow f = gm_flow_new(P, "f", D, K, H, rng);
    int k;
    for (k = 0; k < K; k++) {
        gm_init_uniform(f.layer[k].u.w, -0.8f, 0.8f, rng);
        gm_init_uniform(f.layer[k].u.b, -0.5f, 0.5f, rng);
        gm_init_uniform(f.layer[k].t.w, -0.8f, 0.8f, rng);
        gm_init_uniform(f.layer[k].t.b, -0.5f, 0.5f, rng);
        gm_init_uniform(f.layer[k].a, 0.5f, 1.5f, rng);
    }
    return f;
}

/* log N(x; mean, var) of one number, in double */
static double log_normal(double x, double mean, double var)
{
    return -0.5 * (log(2 * 3.14159265358979323846 * var) + (x - mean) * (x - mean) / var);
}

/* A new flow maps x to itself: log-determinant 0, -log p(x) = -log N(x; 0, I). */
static void new_flow_is_the_identity(void)
{
    gm_rng rng = gm_rng_new(3);
    gm_params P = {0};
    gm_flow f = gm_flow_new(&P, "f", 3, 4, 8, &rng);
    gm_tape *T = gm_tape_new(1 << 22);
    gm_tensor *x = gm_randn(T, gm_shape2(5, 3), &rng), *logdet, *z = gm_flow_forward(T, &f, x, &logdet);
    gm_tensor *nll = gm_flow_nll(T, &f, x);
    int b, d;
    for (b = 0; b < 5; b++) {
        double want = 0;
        for (d = 0; d < 3; d++) {
            want -= log_normal(x->val[3 * b + d], 0, 1);
            EXPECT(z->val[3 * b + d] == x->val[3 * b + d]);
        }
        EXPECT(logdet->val[b] == 0.0f);
        EXPECT_NEAR(nll->val[b], want, 1e-5);
    }
    gm_tape_free(T); gm_flow_free(&f); gm_params_free(&P);
}

/* One coupling whose heads are constants: s = a tanh(u) = 0.5 and t = 1 on the moved
 * dimension x1, so z1 = e^0.5 x1 + 1 and z0 = x0. The model is then x1 ~ N(-e^-0.5, e^-1),
 * x0 ~ N(0, 1): its -log p(x) in closed form. A sign slip in the log-determinant, or a
 * shift applied to the kept dimension, changes it. */
static void constant_coupling_is_a_known_gaussian(void)
{
    gm_rng rng = gm_rng_new(4);
    gm_params P = {0};
    gm_flow f = gm_flow_new(&P, "f", 2, 1, 4, &rng);
    gm_tape *T = gm_tape_new(1 << 20);
    gm_tensor *x = gm_randn(T, gm_shape2(6, 2), &rng), *nll;
    int b;
    f.layer[0].u.b->val[0] = f.layer[0].u.b->val[1] = (float)atanh(0.5);   /* a = 1: s = 0.5 */
    f.layer[0].t.b->val[0] = f.layer[0].t.b->val[1] = 1.0f;
    nll = gm_flow_nll(T, &f, x);
    EXPECT(f.layer[0].keep->val[0] == 1.0f && f.layer[0].keep->val[1] == 0.0f);   /* layer 0 keeps x0 */
    for (b = 0; b < 6; b++)
        EXPECT_NEAR(nll->val[b], -log_normal(x->val[2 * b], 0, 1) - log_normal(x->val[2 * b + 1], -exp(-0.5), exp(-1.0)),
                    1e-5);
    gm_tape_free(T); gm_flow_free(&f); gm_params_free(&P);
}

/* x -> z = f(x) -> f^-1(z) returns x to a relative error of 1e-5 (|x - f^-1(f(x))| over
 * max(1, |x|), in float32), in D = 2 and an odd D = 5, for coordinates of standard deviation
 * 1, 4 and 7: points well inside and far out (|x| up to 12 in D = 2, 19 in D = 5); z differs
 * from x, so the check is not that of the identity. gm_flow_sample is f^-1 of the same
 * normal draws. */
static void inverse_returns_x(void)
{
    static const int dims[2] = {2, 5};
    int i, j;
    for (i = 0; i < 2; i++) {
        int D = dims[i], B = 64;
        gm_rng rng = gm_rng_new(10 + i), r1, r2;
        gm_params P = {0};
        gm_flow f = random_flow(&P, D, 6, 16, &rng);
        gm_tape *T = gm_tape_new(1 << 24);
        gm_tensor *x = gm_randn(T, gm_shape2(B, D), &rng), *z, *back, *zs;
        float *s = (float *)malloc(sizeof(float) * 8 * D);
        double worst = 0, moved = 0;
        for (j = 0; j < B * D; j++) x->val[j] *= 1.0f + 3.0f * (j % 3);   /* std 1, 4 and 7 */
        z = gm_flow_forward(T, &f, x, NULL);
        back = gm_flow_inverse(T, &f, z);
        for (j = 0; j < B * D; j++) {
            worst = fmax(worst, fabs(back->val[j] - x->val[j]) / fmax(1.0, fabs(x->val[j])));
            moved = fmax(moved, fabs(z->val[j] - x->val[j]));
        }
        printf("  flow inverse, D = %d: worst |x - f^-1(f(x))| / max(1, |x|) = %.2e (f moves x by up to %.2f)\n",
               D, worst, moved);
        EXPECT(worst < 1e-5);
        EXPECT(moved > 0.5);
        r1 = r2 = gm_rng_new(99);
        gm_flow_sample(T, &f, 8, s, &r1);
        zs = gm_flow_inverse(T, &f, gm_randn(T, gm_shape2(8, D), &r2));
        EXPECT(memcmp(s, zs->val, sizeof(float) * 8 * D) == 0);
        free(s); gm_tape_free(T); gm_flow_free(&f); gm_params_free(&P);
    }
}

/* z = f(x) of one point x (D), in double */
static void f_of(gm_tape *T, const gm_flow *f, const double *x, double *z)
{
    float xf[8];
    gm_tensor *out;
    int d;
    for (d = 0; d < f->D; d++) xf[d] = (float)x[d];
    gm_tape_reset(T);
    out = gm_flow_forward(T, f, gm_from(T, gm_shape2(1, f->D), xf), NULL);
    for (d = 0; d < f->D; d++) z[d] = out->val[d];
}

/* log |det A| of a D x D matrix (row-major, destroyed) by Gaussian elimination with pivoting */
static double log_abs_det(double *A, int D)
{
    double acc = 0;
    int i, j, k;
    for (k = 0; k < D; k++) {
        int p = k;
        for (i = k + 1; i < D; i++) if (fabs(A[i * D + k]) > fabs(A[p * D + k])) p = i;
        for (j = 0; j < D; j++) { double t = A[k * D + j]; A[k * D + j] = A[p * D + j]; A[p * D + j] = t; }
        acc += log(fabs(A[k * D + k]));
        for (i = k + 1; i < D; i++) {
            double m = A[i * D + k] / A[k * D + k];
            for (j = k; j < D; j++) A[i * D + j] -= m * A[k * D + j];
        }
    }
    return acc;
}

/* The Jacobian dz_i/dx_j by central differences (h = 1e-3, the step as floats hold it), into J (D x D) */
static void fd_jacobian(gm_tape *T, const gm_flow *f, const double *x, double *J)
{
    double xp[8], zp[8], zm[8], h = 1e-3;
    int i, j, D = f->D;
    for (j = 0; j < D; j++) {
        memcpy(xp, x, sizeof(double) * D);
        xp[j] = x[j] + h; f_of(T, f, xp, zp);
        xp[j] = x[j] - h; f_of(T, f, xp, zm);
        for (i = 0; i < D; i++) J[i * D + j] = (zp[i] - zm[i]) / ((double)(float)(x[j] + h) - (float)(x[j] - h));
    }
}

/* One coupling's Jacobian is triangular: the kept dimensions depend on themselves only
 * (dz_kept/dx = its row of the identity). The log-determinant of a flow of 4 couplings,
 * in D = 2 and D = 3, equals log |det J| of the finite-difference Jacobian at a few points. */
static void logdet_matches_the_jacobian(void)
{
    static const int dims[2] = {2, 3};
    int i, p, r, c;
    for (i = 0; i < 2; i++) {
        int D = dims[i];
        gm_rng rng = gm_rng_new(20 + i);
        gm_params P = {0}, P1 = {0};
        gm_flow f = random_flow(&P, D, 4, 8, &rng), one = random_flow(&P1, D, 1, 8, &rng);
        gm_tape *T = gm_tape_new(1 << 22);
        double x[8], J[64], worst = 0, tri = 0;
        for (p = 0; p < 4; p++) {
            gm_tensor *ld;
            float xf[8];
            for (r = 0; r < D; r++) xf[r] = (float)(x[r] = 1.5 * gm_rng_normal(&rng));
            fd_jacobian(T, &one, x, J);
            for (r = 0; r < D; r++)
                if (one.layer[0].keep->val[r] == 1.0f)
                    for (c = 0; c < D; c++) tri = fmax(tri, fabs(J[r * D + c] - (r == c)));
            fd_jacobian(T, &f, x, J);
            gm_tape_reset(T);
            gm_flow_forward(T, &f, gm_from(T, gm_shape2(1, D), xf), &ld);
            worst = fmax(worst, fabs(ld->val[0] - log_abs_det(J, D)));
        }
        printf("  flow log-determinant, D = %d: worst |logdet - log|det J_fd|| = %.2e; kept rows of one "
               "coupling's J_fd off the identity by %.1e\n", D, worst, tri);
        EXPECT(worst < 2e-3);
        EXPECT(tri < 1e-3);
        gm_tape_free(T); gm_flow_free(&f); gm_flow_free(&one); gm_params_free(&P); gm_params_free(&P1);
    }
}

typedef struct fcheck { gm_params P; gm_flow f; gm_tensor *x; } fcheck;
/* [z, log |det|] (B, D + 1): both outputs of the forward at once */
static gm_tensor *b_forward(gm_tape *T, void *p)
{
    fcheck *c = (fcheck *)p;
    gm_tensor *logdet, *z = gm_flow_forward(T, &c->f, c->x, &logdet);
    return gm_concat(T, z, gm_reshape(T, logdet, gm_shape2(logdet->size, 1)));
}
static gm_tensor *b_inverse(gm_tape *T, void *p) { fcheck *c = (fcheck *)p; return gm_flow_inverse(T, &c->f, c->x); }
static gm_tensor *b_nll(gm_tape *T, void *p) { fcheck *c = (fcheck *)p; return gm_flow_nll(T, &c->f, c->x); }

/* The flows are compositions of ops whose gradients test_ops checks one by one; these check
 * the compositions. Their finite differences run through a dozen float32 ops, and the worst
 * errors sit on the smallest gradients of the hidden layers (a hundred times below the
 * largest of their tensor, at gm_grad_check's floor of 1% of it). At h = GRAD_H, float32
 * rounding dominates there: 1.3e-3, 4.2e-4 and 1.1e-2 for the three checks below. Rounding
 * falls as 1/h and truncation grows as h^2, so these checks take h = 3e-2 (measured: 7.3e-4,
 * 4.3e-4 and 3.0e-3; with 5e-2, 2.0e-3, 1.2e-3 and 1.7e-3) and the project's GRAD_TOL. The
 * margin depends on the flow: over 30 random flows of the same sizes (these among them) at
 * h = 3e-2 the worst is 1.2e-2 (forward), 2.2e-2 (inverse) and 2.4e-2 (nll); no one step brings
 * them all under 1e-2 (at 5e-2 truncation takes over: up to 8.0e-2). A wrong or missing
 * term errs by order 1: a gm_detach on t in gm__coupling_st gives 1.94, 1.97 and 1.94. */
#define FLOW_GRAD_H 3e-2f

/* Gradients by finite differences: the forward (z and the log-determinant) and the inverse
 * of one coupling in D = 3 against x (or z) and all its parameters (10 tensors), and -log p(x)
 * of two couplings against all of theirs (18 tensors). */
static void grad_flows(void)
{
    static const char *name[3] = {"flow forward, x, 1 coupling", "flow inverse, z, 1 coupling",
                                  "flow nll, 2 couplings"};
    static const gm_build_fn build[3] = {b_forward, b_inverse, b_nll};
    int k;
    for (k = 0; k < 3; k++) {
        fcheck c;
        gm_rng rng = gm_rng_new(30 + k);
        memset(&c, 0, sizeof c);
        if (k < 2) {
            c.x = gm_param_new(&c.P, "x", gm_shape2(3, 3));
            gm_init_uniform(c.x, -1.0f, 1.0f, &rng);
        }
        c.f = random_flow(&c.P, 3, k < 2 ? 1 : 2, 5, &rng);
        if (k == 2) {
            c.x = gm_buffer_new(&c.P, "x", gm_shape2(3, 3));
            gm_init_uniform(c.x, -1.0f, 1.0f, &rng);
        }
        EXPECT(gm_test_grad_h(name[k], build[k], &c, &c.P, FLOW_GRAD_H) < GRAD_TOL);
        gm_flow_free(&c.f);
    }
}

void tests_flows(void)
{
    TEST(new_flow_is_the_identity);
    TEST(constant_coupling_is_a_known_gaussian);
    TEST(inverse_returns_x);
    TEST(logdet_matches_the_jacobian);
    TEST(grad_flows);
}
