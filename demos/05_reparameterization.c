/* 05_reparameterization - two unbiased gradients of an expectation, and their variances
 *
 * What it shows: the gradient of E_q[f(z)] with respect to the parameters mu and sigma of
 * q = N(mu, sigma^2), for f(z) = z^2, whose exact gradient is known:
 *     E_q[z^2] = mu^2 + sigma^2,   d/dmu = 2 mu,   d/dsigma = 2 sigma.
 * Two Monte Carlo estimators from N samples, both run through genmod's tape:
 *   pathwise (reparameterization)  z = mu + sigma eps, eps ~ N(0,1) (gm_reparameterize);
 *                                  backpropagate (1/N) sum_i f(z_i): (1/N) sum_i f'(z_i) dz_i
 *   score function (REINFORCE)     (1/N) sum_i f(z_i) grad log q(z_i), built as the gradient
 *                                  of the surrogate (1/N) sum_i [f(z_i)] log q([z_i]), where
 *                                  [.] is held constant (gm_detach)
 * For N = 1, 10, ..., 10^4 it repeats each estimate R times: the means match the exact
 * gradient (both are unbiased), the variances differ by a constant factor at every N (both
 * fall as 1/N), a factor that grows with |mu| / sigma.
 * Lecture: lectures/05-reparameterization.md (companion of 05-variational-autoencoders.md)
 * Run:     make build/reparameterization && ./build/reparameterization     (under 1 s on 2 cores)
 *          ./build/reparameterization --mu 3 --sigma 0.5     the gap widens
 * Output:  out/reparameterization/variance.png   variance of each estimator against N (log axes)
 *          out/reparameterization/spread.png     histogram of the R estimates of d/dmu at N = 10
 *          out/reparameterization/estimates.npy  (2 estimators, 2 parameters, 5 N, R) all estimates
 *          result lines: var_pathwise, var_score (variance of the d/dmu estimate at N = 100),
 *          grad_mu_exact, grad_mu_pathwise, grad_mu_score, and the same for sigma
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include <math.h>

static const char *usage =
    "  --mu X       mean of q (default 2)\n"
    "  --sigma X    standard deviation of q (default 1)\n"
    "  --repeats R  estimates per estimator and N (default 1000; 200 with --quick)\n";

enum { NS = 5,            /* N = 1, 10, 100, 1000, 10000 samples per estimate */
       N_RESULT = 2,      /* the result lines report N = 10^2                  */
       N_HIST = 1,        /* the histogram shows N = 10^1                      */
       PATHWISE = 0, SCORE = 1 };

/* the integrand f(z) = z^2 */
static gm_tensor *f(gm_tape *T, gm_tensor *z) { return gm_square(T, z); }

/* One estimate of (dE/dmu, dE/dsigma) from N samples z ~ N(mu, sigma^2). mu and logvar are
 * (1,1) parameters; sigma = e^(logvar/2), so dE/dsigma = dE/dlogvar * dlogvar/dsigma
 * = dE/dlogvar * 2 / sigma. */
static void estimate(gm_tape *T, int which, int N, gm_tensor *mu, gm_tensor *logvar, gm_rng *rng, float g[2])
{
    gm_tensor *mu_n, *lv_n, *z, *loss;
    gm_tape_reset(T);
    mu_n = gm_repeat(T, mu, N);                              /* (N,1), gradients sum back */
    lv_n = gm_repeat(T, logvar, N);
    z = gm_reparameterize(T, mu_n, lv_n, rng);               /* z = mu + sigma eps        */
    if (which == PATHWISE) {
        loss = gm_mean(T, f(T, z));                          /* (1/N) sum_i f(z_i)        */
    } else {
        gm_tensor *z_c = gm_detach(T, z);                    /* the sample, as a constant */
        gm_tensor *f_c = gm_reshape(T, gm_detach(T, f(T, z)), gm_shape1(N));  /* f(z_i), constant */
        gm_tensor *log_q = gm_scale(T, gm_gaussian_nll(T, mu_n, lv_n, z_c), -1.0f);  /* log q(z_i) */
        loss = gm_mean(T, gm_mul(T, f_c, log_q));            /* (1/N) sum_i f(z_i) log q(z_i) */
    }
    gm_backward(T, loss);
    g[0] = mu->grad[0];
    g[1] = logvar->grad[0] * 2.0f / expf(0.5f * logvar->val[0]);
}

/* The variance of a one-sample estimate (N = 1), in closed form for f(z) = z^2 with
 * z = mu + sigma eps, from E[eps^2] = 1, E[eps^4] = 3, E[eps^6] = 15, E[eps^8] = 105
 * (derived in the lecture). An N-sample estimate has this variance over N. */
static double one_sample_var(int which, int p, double m, double s)
{
    double m2 = m * m, s2 = s * s;
    if (which == PATHWISE) return p == 0 ? 4 * s2                       /* 2 z           */
                                         : 4 * m2 + 8 * s2;             /* 2 z eps       */
    return p == 0 ? (m2 * m2 + 18 * m2 * s2 + 15 * s2 * s2) / s2 - 4 * m2  /* z^2 eps / s    */
                  : (2 * m2 * m2 + 60 * m2 * s2 + 78 * s2 * s2) / s2 - 4 * s2; /* z^2 (eps^2-1)/s */
}

/* mean and (unbiased) variance of n numbers */
static void mean_var(const float *x, int n, double *mean, double *var)
{
    double s = 0, s2 = 0;
    int i;
    for (i = 0; i < n; i++) { s += x[i]; s2 += (double)x[i] * x[i]; }
    *mean = s / n;
    *var = (s2 - s * s / n) / (n - 1);
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "reparameterization", usage);
    float mu0 = demo_float(&d, "--mu", 2.0f, -100, 100), sigma0 = demo_float(&d, "--sigma", 1.0f, 0.001, 100);
    int R = demo_int(&d, "--repeats", d.quick ? 200 : 1000, 2, 100000);
    int n_used = d.quick ? NS - 1 : NS;                      /* --quick stops at N = 1000 */
    const char *est_name[2] = {"pathwise", "score function"}, *par_name[2] = {"mu", "sigma"};
    double exact[2], mean[2][2][NS], var[2][2][NS];
    int which, p, k, r, shape[4];
    gm_rng rng = gm_rng_new(d.seed);
    gm_params P = {0};
    gm_tensor *mu, *logvar;
    gm_tape *T;
    float *all, lgN[NS];
    gm_plot *pl;

    printf("data: built-in (the Gaussian q = N(mu, sigma^2), sampled here; no data set needed)\n");
    exact[0] = 2.0 * mu0;                                    /* d/dmu    (mu^2 + sigma^2) */
    exact[1] = 2.0 * sigma0;                                 /* d/dsigma (mu^2 + sigma^2) */

    /* ---- the model: two numbers ------------------------------------------------------------ */
    mu = gm_param_new(&P, "mu", gm_shape2(1, 1));
    logvar = gm_param_new(&P, "logvar", gm_shape2(1, 1));
    mu->val[0] = mu0;
    logvar->val[0] = 2.0f * logf(sigma0);
    T = gm_tape_new(64 << 20);
    demo_check(&d, T != NULL, "gm_tape_new");
    all = (float *)malloc((size_t)2 * 2 * NS * R * sizeof(float));   /* [which][p][k][r] */
    memset(all, 0, (size_t)2 * 2 * NS * R * sizeof(float));

    /* ---- the experiment: R estimates per estimator and N ------------------------------------ */
    for (which = 0; which < 2; which++)
        for (k = 0; k < n_used; k++) {
            int N = (int)pow(10, k);
            for (r = 0; r < R; r++) {
                float g[2];
                estimate(T, which, N, mu, logvar, &rng, g);
                for (p = 0; p < 2; p++) all[((which * 2 + p) * NS + k) * R + r] = g[p];
            }
            for (p = 0; p < 2; p++) mean_var(all + ((which * 2 + p) * NS + k) * R, R, &mean[which][p][k], &var[which][p][k]);
        }

    /* ---- the numbers ----------------------------------------------------------------------- */
    printf("\nf(z) = z^2, q = N(%g, %g^2): E_q[f] = mu^2 + sigma^2; exact gradient d/dmu = %g, d/dsigma = %g\n",
           mu0, sigma0, exact[0], exact[1]);
    printf("%d estimates per row; mean (unbiased: near the exact value) and variance of the estimates\n\n", R);
    for (p = 0; p < 2; p++) {
        printf("  d/d%-5s %8s %26s %26s %12s\n", par_name[p], "N", "pathwise: mean   variance",
               "score: mean   variance", "var ratio");
        for (k = 0; k < n_used; k++)
            printf("  %-8s %8d %14.4f %11.4g %14.4f %11.4g %12.1f\n", "", (int)pow(10, k),
                   mean[PATHWISE][p][k], var[PATHWISE][p][k], mean[SCORE][p][k], var[SCORE][p][k],
                   var[SCORE][p][k] / var[PATHWISE][p][k]);
        printf("\n");
    }
    printf("  N x variance, the variance of a one-sample estimate, stays put as N grows:\n");
    printf("  %-24s %10s", "", "exact");
    for (k = 0; k < n_used; k++) printf("    N = 1e%d", k);
    printf("\n");
    for (which = 0; which < 2; which++)
        for (p = 0; p < 2; p++) {
            printf("  %-15s d/d%-5s %10.1f", est_name[which], par_name[p], one_sample_var(which, p, mu0, sigma0));
            for (k = 0; k < n_used; k++) printf(" %10.1f", var[which][p][k] * pow(10, k));
            printf("\n");
        }

    printf("\n  all %d estimates at N = %d: mean +- standard error (exact: %g, %g)\n", R, (int)pow(10, n_used - 1),
           exact[0], exact[1]);
    for (which = 0; which < 2; which++)
        printf("  %-15s d/dmu %.4f +- %.4f   d/dsigma %.4f +- %.4f\n", est_name[which],
               mean[which][0][n_used - 1], sqrt(var[which][0][n_used - 1] / R),
               mean[which][1][n_used - 1], sqrt(var[which][1][n_used - 1] / R));

    /* ---- output: pictures and the raw estimates -------------------------------------------- */
    for (k = 0; k < NS; k++) lgN[k] = (float)k;
    pl = gm_plot_new("variance of the gradient estimate", "log10 N (samples per estimate)", "variance");
    for (which = 0; which < 2; which++)
        for (p = 0; p < 2; p++) {
            float v[NS];
            char label[48];
            for (k = 0; k < n_used; k++) v[k] = (float)var[which][p][k];
            snprintf(label, sizeof label, "%s, d/d%s", est_name[which], par_name[p]);
            gm_plot_line(pl, label, lgN, v, n_used);
        }
    gm_plot_logy(pl, 1);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "variance.png"), 0, 0), "saving variance.png");
    gm_plot_free(pl);

    {   /* histogram of the d/dmu estimates at N = 10, 60 bins over the score estimates' range */
        enum { BINS = 60 };
        const float *e[2];
        float lo = 1e30f, hi = -1e30f, centre[BINS], count[2][BINS], xs[2], ys[2];
        for (which = 0; which < 2; which++) e[which] = all + ((which * 2 + 0) * NS + N_HIST) * R;
        for (r = 0; r < R; r++) {
            if (e[SCORE][r] < lo) lo = e[SCORE][r];
            if (e[SCORE][r] > hi) hi = e[SCORE][r];
        }
        memset(count, 0, sizeof count);
        for (k = 0; k < BINS; k++) centre[k] = lo + (hi - lo) * (k + 0.5f) / BINS;
        for (which = 0; which < 2; which++)
            for (r = 0; r < R; r++) {
                int b = (int)((e[which][r] - lo) / (hi - lo) * BINS);
                if (b >= 0 && b < BINS) count[which][b] += 1.0f / R;
                else if (b == BINS) count[which][BINS - 1] += 1.0f / R;
            }
        pl = gm_plot_new("estimates of d/dmu E[z^2] from N = 10 samples", "estimate", "fraction of estimates");
        gm_plot_line(pl, "pathwise", centre, count[PATHWISE], BINS);
        gm_plot_line(pl, "score function", centre, count[SCORE], BINS);
        xs[0] = xs[1] = (float)exact[0];
        ys[0] = 0; ys[1] = count[PATHWISE][0];
        for (k = 0; k < BINS; k++) if (count[PATHWISE][k] > ys[1]) ys[1] = count[PATHWISE][k];
        gm_plot_line(pl, "exact gradient", xs, ys, 2);
        demo_check(&d, gm_plot_save(pl, demo_path(&d, "spread.png"), 0, 0), "saving spread.png");
        gm_plot_free(pl);
    }
    shape[0] = 2; shape[1] = 2; shape[2] = NS; shape[3] = R;
    demo_check(&d, gm_save_npy(demo_path(&d, "estimates.npy"), all, 4, shape), "saving estimates.npy");

    printf("\n");
    demo_result("var_pathwise", var[PATHWISE][0][N_RESULT]);
    demo_result("var_score", var[SCORE][0][N_RESULT]);
    demo_result("grad_mu_exact", exact[0]);
    demo_result("grad_mu_pathwise", mean[PATHWISE][0][n_used - 1]);
    demo_result("grad_mu_score", mean[SCORE][0][n_used - 1]);
    demo_result("grad_sigma_exact", exact[1]);
    demo_result("grad_sigma_pathwise", mean[PATHWISE][1][n_used - 1]);
    demo_result("grad_sigma_score", mean[SCORE][1][n_used - 1]);

    /* ---- cleanup ----------------------------------------------------------------------------- */
    free(all);
    gm_params_free(&P);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
