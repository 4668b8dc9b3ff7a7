/* tests/test_eval.c - what judges samples (lecture 10): the softmax cross-entropy that trains
 * the classifier (gradient check, values by hand), and section 12's eigendecomposition,
 * matrix square root, FID and Inception Score against matrices and sets whose answers are
 * known in closed form. */
#include "../genmod.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

/* ---- gm_cross_entropy ---- */
typedef struct xcheck { gm_params P; gm_tensor *l; const int *y; } xcheck;

static gm_tensor *b_xent(gm_tape *T, void *p) { xcheck *c = (xcheck *)p; return gm_cross_entropy(T, c->l, c->y); }

static void grad_cross_entropy(void)
{
    static const int labels[5] = {2, 0, 6, 6, 3};
    gm_rng rng = gm_rng_new(4);
    xcheck c;
    double err;
    memset(&c, 0, sizeof c);
    c.l = gm_param_new(&c.P, "logits", gm_shape2(5, 7));
    gm_init_uniform(c.l, -3, 3, &rng);
    c.y = labels;
    err = gm_grad_check(b_xent, &c, &c.l, 1, 1e-2f, 7);
    printf("  grad %-26s worst relative error %.2e\n", "cross_entropy", err);
    EXPECT(err < 1e-2);
    gm_params_free(&c.P);
}

/* Equal logits: -log(1/K). Logits (0, log 3): p = (1/4, 3/4), so -log p_1 = log(4/3) and
 * the gradient of the mean over B = 1 is p - onehot = (1/4, -1/4). Logits of +-1000, where
 * e^l overflows, give the exact answers 0 and 2000, with gradients 0 and (+1, -1)/B. */
static void cross_entropy_known_values(void)
{
    gm_tape *T = gm_tape_new(1 << 16);
    gm_params P = {0};
    gm_tensor *l = gm_param_new(&P, "l", gm_shape2(1, 2)), *big = gm_param_new(&P, "big", gm_shape2(2, 2));
    gm_tensor *eq, *y;
    static const int one[1] = {1}, lab[2] = {0, 1};
    const float big_v[4] = {1000, -1000, 1000, -1000};
    l->val[0] = 0; l->val[1] = (float)log(3.0);
    EXPECT_NEAR(gm_backward(T, gm_mean(T, gm_cross_entropy(T, l, one))), log(4.0 / 3.0), 1e-6);
    EXPECT_NEAR(l->grad[0], 0.25, 1e-6);
    EXPECT_NEAR(l->grad[1], -0.25, 1e-6);
    gm_tape_reset(T);
    eq = gm_zeros(T, gm_shape2(3, 10));
    y = gm_cross_entropy(T, eq, lab);
    EXPECT_NEAR(y->val[0], log(10.0), 1e-6);
    EXPECT_NEAR(y->val[2], log(10.0), 1e-6);
    gm_tape_reset(T);
    memcpy(big->val, big_v, sizeof big_v);
    y = gm_cross_entropy(T, big, lab);           /* example 0 right and sure, example 1 wrong and sure */
    EXPECT_NEAR(gm_backward(T, gm_mean(T, y)), 1000.0, 1e-3);
    EXPECT(y->val[0] == 0.0f);
    EXPECT_NEAR(y->val[1], 2000.0, 1e-3);
    EXPECT(big->grad[0] == 0.0f && big->grad[1] == 0.0f);
    EXPECT_NEAR(big->grad[2], 0.5, 1e-6);
    EXPECT_NEAR(big->grad[3], -0.5, 1e-6);
    gm_tape_free(T);
    gm_params_free(&P);
}

static void xent_bad_label(void *arg)
{
    gm_tape *T = (gm_tape *)arg;
    static const int bad[2] = {1, 3};
    gm_tape_reset(T);
    gm_cross_entropy(T, gm_zeros(T, gm_shape2(2, 3)), bad);
}

static void cross_entropy_refuses_bad_labels(void)
{
    gm_tape *T = gm_tape_new(1 << 16);
    EXPECT(gm_test_expect_fatal(xent_bad_label, T, "label 3 of example 1 is not a class of logits (2,3)"));
    gm_tape_free(T);
}

/* ---- the eigendecomposition ---- */

/* max |A - V diag(w) V^T| and max |V^T V - I| */
static void eigh_errors(const double *A, const double *w, const double *V, int n, double *rec, double *orth)
{
    int i, j, k;
    *rec = *orth = 0.0;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            double r = 0.0, o = 0.0;
            for (k = 0; k < n; k++) { r += V[i * n + k] * w[k] * V[j * n + k]; o += V[k * n + i] * V[k * n + j]; }
            if (fabs(A[i * n + j] - r) > *rec) *rec = fabs(A[i * n + j] - r);
            if (fabs(o - (i == j)) > *orth) *orth = fabs(o - (i == j));
        }
}

/* A random orthogonal n x n Q (Gram-Schmidt of normals), row-major. */
static void random_orthogonal(double *Q, int n, gm_rng *rng)
{
    int i, j, k;
    for (i = 0; i < n * n; i++) Q[i] = gm_rng_normal(rng);
    for (j = 0; j < n; j++) {                         /* column j */
        double norm = 0.0;
        for (k = 0; k < j; k++) {
            double dot = 0.0;
            for (i = 0; i < n; i++) dot += Q[i * n + j] * Q[i * n + k];
            for (i = 0; i < n; i++) Q[i * n + j] -= dot * Q[i * n + k];
        }
        for (i = 0; i < n; i++) norm += Q[i * n + j] * Q[i * n + j];
        for (i = 0; i < n; i++) Q[i * n + j] /= sqrt(norm);
    }
}

/* A = Q diag(lam) Q^T */
static void conjugate(double *A, const double *Q, const double *lam, int n)
{
    int i, j, k;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            double r = 0.0;
            for (k = 0; k < n; k++) r += Q[i * n + k] * lam[k] * Q[j * n + k];
            A[i * n + j] = r;
        }
}

static void eigh_known_matrices(void)
{
    enum { N = 12 };
    const double D[9] = {3, 0, 0, 0, -1, 0, 0, 0, 2};
    /* a rotation by 30 degrees conjugating diag(1, 4): A = R diag(1,4) R^T */
    const double c = sqrt(3.0) / 2, s = 0.5;
    double R[4] = {c, -s, s, c}, lam2[2] = {1, 4}, A2[4], w[N], V[N * N], Q[N * N], lam[N], A[N * N], rec, orth;
    gm_rng rng = gm_rng_new(9);
    int i;
    EXPECT(gm_eigh(D, 3, w, V));                     /* diagonal: its entries, sorted */
    EXPECT(w[0] == -1 && w[1] == 2 && w[2] == 3);
    EXPECT(fabs(V[1 * 3 + 0]) == 1 && fabs(V[2 * 3 + 1]) == 1 && fabs(V[0 * 3 + 2]) == 1);
    conjugate(A2, R, lam2, 2);
    EXPECT(gm_eigh(A2, 2, w, V));
    EXPECT_NEAR(w[0], 1, 1e-14);
    EXPECT_NEAR(w[1], 4, 1e-14);
    EXPECT_NEAR(fabs(V[0 * 2 + 1] * R[0 * 2 + 1] + V[1 * 2 + 1] * R[1 * 2 + 1]), 1, 1e-14);  /* eigenvector of 4: R's column 1 */
    /* random SPD with eigenvalues 0.5 .. 6: w sorted, A = V diag(w) V^T, V orthonormal */
    random_orthogonal(Q, N, &rng);
    for (i = 0; i < N; i++) lam[i] = 6.0 - 0.5 * i;
    conjugate(A, Q, lam, N);
    EXPECT(gm_eigh(A, N, w, V));
    for (i = 0; i < N; i++) EXPECT_NEAR(w[i], 0.5 * (i + 1), 1e-12);
    eigh_errors(A, w, V, N, &rec, &orth);
    printf("  %-31s max |A - V diag(w) V^T| %.1e, max |V^T V - I| %.1e\n", "eigh (random SPD 12x12)", rec, orth);
    EXPECT(rec < 1e-12 && orth < 1e-12);
    /* repeated eigenvalues 2, 2, 2, 5, 5, ...: any basis of each eigenspace will do */
    for (i = 0; i < N; i++) lam[i] = i < 3 ? 2.0 : 5.0;
    conjugate(A, Q, lam, N);
    EXPECT(gm_eigh(A, N, w, V));
    for (i = 0; i < N; i++) EXPECT_NEAR(w[i], i < 3 ? 2.0 : 5.0, 1e-12);
    eigh_errors(A, w, V, N, &rec, &orth);
    EXPECT(rec < 1e-12 && orth < 1e-12);
    A2[1] = A2[2] + 1.0;                              /* not symmetric: refused */
    EXPECT(!gm_eigh(A2, 2, w, V) && strstr(gm_last_error(), "not symmetric"));
}

/* sqrtm(A)^2 = A for a random PSD matrix of rank N - 2 (two eigenvalues 0); a matrix with
 * a negative eigenvalue is refused. */
static void sqrtm_squares_back(void)
{
    enum { N = 9 };
    double Q[N * N], lam[N], A[N * N], R[N * N], worst = 0.0;
    gm_rng rng = gm_rng_new(5);
    int i, j, k;
    random_orthogonal(Q, N, &rng);
    for (i = 0; i < N; i++) lam[i] = i < 2 ? 0.0 : 0.1 * i * i;
    conjugate(A, Q, lam, N);
    EXPECT(gm_sqrtm_psd(A, N, R));
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            double r = 0.0;
            for (k = 0; k < N; k++) r += R[i * N + k] * R[k * N + j];
            if (fabs(r - A[i * N + j]) > worst) worst = fabs(r - A[i * N + j]);
            EXPECT(R[i * N + j] == R[j * N + i]);
        }
    printf("  %-31s max |R R - A| %.1e\n", "sqrtm (PSD 9x9, rank 7)", worst);
    EXPECT(worst < 1e-12);
    lam[0] = -0.5;
    conjugate(A, Q, lam, N);
    EXPECT(!gm_sqrtm_psd(A, N, R) && strstr(gm_last_error(), "not positive semi-definite"));
}

/* ---- FID and IS ---- */

/* n draws of N(mu, diag(var)) in D dims, made exact in mean and covariance (over n - 1):
 * centre and whiten the draws, then scale; so the closed form holds without sampling error. */
static float *gaussian_set(int n, int D, const double *mu, const double *var, gm_rng *rng)
{
    float *f = (float *)malloc(sizeof(float) * n * D);
    double *x = (double *)malloc(sizeof(double) * n * D), *Q = (double *)malloc(sizeof(double) * D * D);
    double *S = (double *)calloc((size_t)D * D, sizeof(double)), *w = (double *)malloc(sizeof(double) * D);
    int i, j, k;
    for (i = 0; i < n * D; i++) x[i] = gm_rng_normal(rng);
    for (j = 0; j < D; j++) {                         /* centre */
        double m = 0.0;
        for (i = 0; i < n; i++) m += x[i * D + j] / n;
        for (i = 0; i < n; i++) x[i * D + j] -= m;
    }
    for (i = 0; i < n; i++)                           /* S = x^T x / (n - 1) = Q diag(w) Q^T */
        for (j = 0; j < D; j++) for (k = 0; k < D; k++) S[j * D + k] += x[i * D + j] * x[i * D + k] / (n - 1);
    gm_eigh(S, D, w, Q);
    for (i = 0; i < n; i++) {                         /* x Q diag(w)^-1/2 Q^T has covariance I */
        double y[16], z[16];
        for (k = 0; k < D; k++) { y[k] = 0; for (j = 0; j < D; j++) y[k] += x[i * D + j] * Q[j * D + k]; y[k] /= sqrt(w[k]); }
        for (j = 0; j < D; j++) { z[j] = 0; for (k = 0; k < D; k++) z[j] += y[k] * Q[j * D + k]; }
        for (j = 0; j < D; j++) f[i * D + j] = (float)(mu[j] + sqrt(var[j]) * z[j]);
    }
    free(x); free(Q); free(S); free(w);
    return f;
}

static void fid_closed_form(void)
{
    enum { n = 4000, D = 6 };
    const double mu1[D] = {0, 1, -1, 2, 0, 0.5}, var1[D] = {1, 2, 0.5, 1, 3, 0.25};
    const double mu2[D] = {1, 1, 0, 2, -1, 0.5}, var2[D] = {4, 2, 2, 0.25, 3, 1};
    double want = 0.0, fid, self;
    gm_rng rng = gm_rng_new(12);
    float *a = gaussian_set(n, D, mu1, var1, &rng), *b = gaussian_set(n, D, mu2, var2, &rng);
    int j;
    /* diagonal covariances: |mu1 - mu2|^2 + sum_j (sqrt a_j - sqrt b_j)^2 */
    for (j = 0; j < D; j++) want += (mu1[j] - mu2[j]) * (mu1[j] - mu2[j]) + pow(sqrt(var1[j]) - sqrt(var2[j]), 2);
    fid = gm_fid(a, n, b, n, D);
    self = gm_fid(a, n, a, n, D);
    printf("  %-31s %.6f, closed form %.6f; a set with itself %.1e\n", "fid (two Gaussians, D=6)", fid, want, self);
    EXPECT_NEAR(fid, want, 1e-4);
    EXPECT_NEAR(gm_fid(b, n, a, n, D), want, 1e-4);  /* symmetric */
    EXPECT(fabs(self) < 1e-6);
    EXPECT(isnan(gm_fid(a, 1, b, n, D)) && strstr(gm_last_error(), "2 or more rows"));
    free(a); free(b);
}

/* Full covariances that do not commute. For 2x2 PSD matrices the square root has a closed
 * form (Cayley-Hamilton): Tr M^1/2 = sqrt(Tr M + 2 sqrt(det M)), and with M = S1 S2 the
 * trace term is Tr S1 + Tr S2 - 2 sqrt(Tr(S1 S2) + 2 sqrt(det S1 det S2)). Here
 * S1 = [[2,1],[1,2]], S2 = diag(1, 3): 4 + 4 - 2 sqrt(8 + 2 sqrt 9) = 8 - 2 sqrt 14; the
 * means differ by (1, -2), adding 5. */
static void fid_full_covariance(void)
{
    enum { n = 3000, D = 2 };
    const double zero[D] = {0, 0}, one[D] = {1, 1}, mu2[D] = {1, -2}, var2[D] = {1, 3};
    gm_rng rng = gm_rng_new(21);
    float *a = gaussian_set(n, D, zero, one, &rng), *b = gaussian_set(n, D, mu2, var2, &rng);
    int i;
    for (i = 0; i < n; i++) {                         /* a <- L a with L L^T = S1 (Cholesky) */
        float x = a[i * 2], y = a[i * 2 + 1];
        a[i * 2] = (float)(sqrt(2.0) * x);
        a[i * 2 + 1] = (float)(x / sqrt(2.0) + sqrt(1.5) * y);
    }
    EXPECT_NEAR(gm_fid(a, n, b, n, D), 5 + 8 - 2 * sqrt(14.0), 1e-4);
    free(a); free(b);
}

static void inception_score_known_values(void)
{
    enum { n = 50, K = 10 };
    float p[n * K];
    int i, k;
    for (i = 0; i < n; i++)                            /* every row the same: IS = 1 */
        for (k = 0; k < K; k++) p[i * K + k] = (k + 1) / 55.0f;
    EXPECT_NEAR(gm_inception_score(p, n, K), 1.0, 1e-6);
    for (i = 0; i < n; i++)                            /* one-hot, classes equally often: IS = K */
        for (k = 0; k < K; k++) p[i * K + k] = k == i % K;
    EXPECT_NEAR(gm_inception_score(p, n, K), (double)K, 1e-6);
    for (i = 0; i < n; i++)                            /* one-hot on 2 classes only: IS = 2 */
        for (k = 0; k < K; k++) p[i * K + k] = k == i % 2;
    EXPECT_NEAR(gm_inception_score(p, n, K), 2.0, 1e-6);
    p[3] = 0.5f;                                       /* a row summing to 1.5: refused */
    EXPECT(isnan(gm_inception_score(p, n, K)) && strstr(gm_last_error(), "row 0 sums to 1.5"));
}

void tests_eval(void)
{
    TEST(grad_cross_entropy);
    TEST(cross_entropy_known_values);
    TEST(cross_entropy_refuses_bad_labels);
    TEST(eigh_known_matrices);
    TEST(sqrtm_squares_back);
    TEST(fid_closed_form);
    TEST(fid_full_covariance);
    TEST(inception_score_known_values);
}
