/* 12_diffusion_forward.c - the forward process of a diffusion model: an image destroyed by
 * noise in many small steps, and the closed form that jumps to any step at once.
 *
 * What it shows
 *   One garment x_0 (a test image, pixels scaled to [-1, 1]) goes through the forward process
 *       q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),   t = 1..T = 1000,
 *   under genmod's two schedules, GM_LINEAR (Ho et al. 2020) and GM_COSINE (Nichol & Dhariwal
 *   2021). Lecture 12 derives that the steps compose to q(x_t | x_0) = N(sqrt(abar_t) x_0,
 *   (1 - abar_t) I). The demo checks it: it runs N chains (default 1000) of the process step
 *   by step from the same x_0 and, at t = 1, 10, 100, 500 and 1000, compares every pixel's
 *   empirical mean and variance with sqrt(abar_t) x_0 and 1 - abar_t. Each difference is
 *   divided by its Monte Carlo standard error,
 *       mean: sigma / sqrt(N),   variance: sqrt(2 / (N - 1)) sigma^2   (sigma^2 = 1 - abar_t),
 *   and the worst of these |z| is set beside what the largest of as many standard normal
 *   numbers would be: about sqrt(2 ln M) for M numbers, and a value exceeded in 1 % of runs.
 *   It also prints abar_t and SNR(t) = abar_t / (1 - abar_t) of both schedules, and abar_T
 *   for T = 50 with and without the linear schedule's 1000/T scaling.
 * Lecture: lectures/12-diffusion.md
 * Run:     make build/diffusion_forward && ./build/diffusion_forward      (about 30 s)
 *          --quick: 20 chains (about 2 s); --chains N; --image K picks test image K
 * Output (out/diffusion_forward/):
 *   strip.png      x_t at t = 0, 50, 100, 200, ..., 1000; rows: linear step by step (chain 0
 *                  of the check), linear in one jump (gm_q_sample), the same two for cosine
 *   alpha_bar.png  abar_t of both schedules;   snr.png  SNR(t) of both, log axis
 *   z_hist.png     histogram of every standardized error against the N(0, 1) density
 *   z.npy          the standardized errors, (2 schedules, 5 steps, 2 [mean, var], pixels)
 *   result lines: worst_z, worst_z_linear, worst_z_cosine, worst_z_mean, worst_z_var,
 *   z_typical (sqrt(2 ln M)), z_one_percent, abar_500_linear, abar_T_linear, abar_500_cosine,
 *   abar_T_cosine, abar_T50_linear, abar_T50_unscaled, snr1_linear, snr1_cosine (the step
 *   where SNR falls below 1), noise_steps_linear, noise_steps_cosine (steps with abar_t < 0.01)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include <math.h>

static const char *usage =
    "  --chains N   independent runs of the forward process per schedule (default 1000, --quick 20)\n"
    "  --image K    which test image is x_0, 0..99 (default 0)\n";

enum { T_STEPS = 1000, NCHECK = 5, NSTRIP = 12, BINS = 60 };
static const int CHECK[NCHECK] = {1, 10, 100, 500, 1000};
static const int STRIP[NSTRIP] = {0, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000};
static const char *NAME[2] = {"linear", "cosine"};

/* n chains of the forward process from x0 (D pixels), step by step. At the steps CHECK[k]
 * every pixel's deviation from the closed-form mean sqrt(abar_t) x0 is summed into s1 and its
 * square into s2 (each NCHECK x D). Chain 0's x_t at the steps STRIP[j] goes to strip. */
static void run_chains(const gm_diffusion *q, const float *x0, int D, int n, gm_rng *rng, double *s1,
                       double *s2, float *strip)
{
    float *x = (float *)malloc((size_t)D * sizeof(float));
    int c, t, i, k, j;
    memset(s1, 0, (size_t)NCHECK * D * sizeof(double));
    memset(s2, 0, (size_t)NCHECK * D * sizeof(double));
    memcpy(strip, x0, (size_t)D * sizeof(float));                        /* t = 0 */
    for (c = 0; c < n; c++) {
        memcpy(x, x0, (size_t)D * sizeof(float));
        for (t = 1, k = 0, j = 1; t <= q->T; t++) {
            float a = (float)sqrt(1.0 - q->beta[t]), b = (float)sqrt(q->beta[t]);
            for (i = 0; i < D; i++) x[i] = a * x[i] + b * gm_rng_normal(rng);   /* x_t ~ q(x_t | x_{t-1}) */
            if (k < NCHECK && t == CHECK[k]) {
                double m = sqrt(q->alpha_bar[t]);
                for (i = 0; i < D; i++) {
                    double dev = x[i] - m * x0[i];
                    s1[k * D + i] += dev;
                    s2[k * D + i] += dev * dev;
                }
                k++;
            }
            if (c == 0 && j < NSTRIP && t == STRIP[j]) memcpy(strip + (size_t)j++ * D, x, (size_t)D * sizeof(float));
        }
    }
    free(x);
}

/* KL(q(x_T | x_0) || N(0, I)) in nats: per pixel KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1 -
 * log s^2) / 2 with m = sqrt(abar) x0, s^2 = 1 - abar (lecture 05's formula). */
static double kl_to_prior(double abar, const float *x0, int D)
{
    double kl = 0;
    int i;
    for (i = 0; i < D; i++) kl += 0.5 * (abar * x0[i] * x0[i] - abar - log(1.0 - abar));
    return kl;
}

/* The c that the largest |z| of M independent N(0, 1) numbers exceeds with probability p:
 * P(max > c) = 1 - (1 - erfc(c / sqrt 2))^M, solved by bisection. */
static double max_abs_normal_quantile(double M, double p)
{
    double lo = 0, hi = 40;
    int it;
    for (it = 0; it < 100; it++) {
        double c = 0.5 * (lo + hi);
        if (1.0 - exp(M * log1p(-erfc(c / sqrt(2.0)))) > p) lo = c; else hi = c;
    }
    return 0.5 * (lo + hi);
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "diffusion_forward", usage);
    int n = demo_int(&d, "--chains", d.quick ? 20 : 1000, 2, 1000000);
    int image = demo_int(&d, "--image", 0, 0, 99);          /* every data set has 100 test images */
    gm_dataset train, test;
    gm_rng rng = gm_rng_new(d.seed);
    gm_diffusion q[2];
    int D, s, i, k, t, first_t[2] = {0, 0}, noise_steps[2] = {0, 0}, shape[4];
    float *x0, *grid, *z;
    double *s1, *s2, w[2][2] = {{0, 0}, {0, 0}}, M, z_typ, z_one, end[4];   /* w: worst |z|, */
    double w_lin, w_cos, w_mean, w_var, w_all;                                /* [schedule][mean, var] */

    /* ---- data: one garment, pixels to [-1, 1] as diffusion models take them ------------- */
    demo_images(&d, &train, &test, 500);
    D = test.d;
    x0 = (float *)malloc((size_t)D * sizeof(float));
    demo_check(&d, x0 != NULL, "allocation");
    for (i = 0; i < D; i++) x0[i] = 2.0f * test.x[(size_t)image * D + i] - 1.0f;   /* x = 2 pixel - 1 */
    printf("x_0: test image %d (%s), %d pixels in [-1, 1]; T = %d steps; %d chains per schedule\n", image,
           test.class_names && test.y ? test.class_names[test.y[image]] : "no class name", D, T_STEPS, n);

    /* ---- the two schedules -------------------------------------------------------------- */
    q[0] = gm_diffusion_new(GM_LINEAR, T_STEPS);
    q[1] = gm_diffusion_new(GM_COSINE, T_STEPS);
    demo_check(&d, q[0].beta && q[1].beta, "gm_diffusion_new");
    printf("\nthe schedules: abar_t (the share of x_0 left in x_t) and SNR(t) = abar_t / (1 - abar_t)\n");
    printf("     t   beta_t linear  abar_t linear     SNR linear   beta_t cosine  abar_t cosine     SNR cosine\n");
    {
        static const int at[] = {1, 10, 50, 100, 250, 500, 750, 900, 990, 1000};
        for (k = 0; k < (int)(sizeof at / sizeof at[0]); k++) {
            printf("%6d", at[k]);
            for (s = 0; s < 2; s++)
                printf(" %15.4e %14.4e %14.4e", q[s].beta[at[k]], q[s].alpha_bar[at[k]], gm_diffusion_snr(&q[s], at[k]));
            printf("\n");
        }
    }
    for (s = 0; s < 2; s++) {
        for (t = 1; t <= T_STEPS; t++) {
            if (!first_t[s] && gm_diffusion_snr(&q[s], t) < 1) first_t[s] = t;
            noise_steps[s] += q[s].alpha_bar[t] < 0.01;
        }
        printf("%s: SNR(t) < 1 from t = %d on; %d steps have abar_t < 0.01 (near-pure noise)\n", NAME[s],
               first_t[s], noise_steps[s]);
    }
    printf("cosine: sqrt(beta_1) = %.5f, just under the gap between two pixel values in [-1, 1], 2/255 = %.5f\n",
           sqrt(q[1].beta[1]), 2.0 / 255);
    {   /* T = 50: genmod scales the linear betas by 1000/T; without that, abar_T stays far from 0 */
        static const char *what[4] = {"T = 1000, linear", "T = 1000, cosine", "T = 50, linear, betas times 1000/T",
                                      "T = 50, linear, betas unscaled"};
        gm_diffusion q50 = gm_diffusion_new(GM_LINEAR, 50);
        demo_check(&d, q50.beta != NULL, "gm_diffusion_new");
        end[0] = q[0].alpha_bar[T_STEPS]; end[1] = q[1].alpha_bar[T_STEPS]; end[2] = q50.alpha_bar[50]; end[3] = 1;
        for (t = 1; t <= 50; t++) end[3] *= 1.0 - q50.beta[t] * 50 / 1000.0;    /* beta 1e-4 .. 0.02 */
        printf("\nwhere the forward process ends, for this x_0     abar_T   KL(q(x_T | x_0) || N(0, I)), nats\n");
        for (k = 0; k < 4; k++) printf("  %-42s %10.4e   %.3g\n", what[k], end[k], kl_to_prior(end[k], x0, D));
        gm_diffusion_free(&q50);
    }

    /* ---- the check: N chains step by step against the closed form q(x_t | x_0) ----------- */
    s1 = (double *)malloc((size_t)NCHECK * D * sizeof(double));
    s2 = (double *)malloc((size_t)NCHECK * D * sizeof(double));
    z = (float *)malloc((size_t)2 * NCHECK * 2 * D * sizeof(float));             /* [s][k][mean, var][i] */
    grid = (float *)malloc((size_t)4 * NSTRIP * D * sizeof(float));               /* the strip's 4 rows   */
    demo_check(&d, s1 && s2 && z && grid, "allocation");
    for (s = 0; s < 2; s++) {
        double sum_x2 = 0;
        for (i = 0; i < D; i++) sum_x2 += (double)x0[i] * x0[i];
        run_chains(&q[s], x0, D, n, &rng, s1, s2, grid + (size_t)2 * s * NSTRIP * D);
        printf("\n%s schedule, %d chains: empirical against closed form at %d pixels; the fitted\n"
               "coefficient is the least-squares c in mean(x_t) = c x_0 (+- its standard error)\n", NAME[s], n, D);
        printf("     t   sqrt(abar_t)   fitted coefficient     1 - abar_t   mean variance   worst |z|: mean   variance\n");
        for (k = 0; k < NCHECK; k++) {
            double ab = q[s].alpha_bar[CHECK[k]], var = 1.0 - ab, cx = 0, vbar = 0, wm = 0, wv = 0;
            for (i = 0; i < D; i++) {
                double dm = s1[k * D + i] / n;                                        /* mean - closed form */
                double v = (s2[k * D + i] - s1[k * D + i] * dm) / (n - 1);             /* sample variance    */
                double zm = dm / sqrt(var / n), zv = (v - var) / (sqrt(2.0 / (n - 1)) * var);
                z[((s * NCHECK + k) * 2 + 0) * D + i] = (float)zm;
                z[((s * NCHECK + k) * 2 + 1) * D + i] = (float)zv;
                if (fabs(zm) > wm) wm = fabs(zm);
                if (fabs(zv) > wv) wv = fabs(zv);
                cx += (sqrt(ab) * x0[i] + dm) * x0[i];
                vbar += v / D;
            }
            printf("%6d %14.6f %11.6f +- %.6f %14.4e %15.4e %17.2f %10.2f\n", CHECK[k], sqrt(ab), cx / sum_x2,
                   sqrt(var / n / sum_x2), var, vbar, wm, wv);
            w[s][0] = fmax(w[s][0], wm);
            w[s][1] = fmax(w[s][1], wv);
        }
    }
    M = 2.0 * NCHECK * 2 * D;                 /* tested numbers: schedules x steps x (mean, var) x pixels */
    z_typ = sqrt(2.0 * log(M));
    z_one = max_abs_normal_quantile(M, 0.01);
    w_lin = fmax(w[0][0], w[0][1]); w_cos = fmax(w[1][0], w[1][1]);
    w_mean = fmax(w[0][0], w[1][0]); w_var = fmax(w[0][1], w[1][1]); w_all = fmax(w_lin, w_cos);
    printf("\nworst |z| over both schedules %.2f (linear %.2f, cosine %.2f; means %.2f, variances %.2f)\n"
           "of M = %.0f numbers. Within Monte Carlo error: the largest |z| of M independent N(0, 1)\n"
           "numbers is typically about sqrt(2 ln M) = %.2f, and exceeds %.2f in 1 %% of runs.\n"
           "(The variances' z is normal only roughly: (N - 1) s^2 / sigma^2 is chi-square with N - 1 = %d\n"
           "degrees of freedom, whose skewness is sqrt(8 / (N - 1)) = %.3f)\n", w_all, w_lin, w_cos, w_mean, w_var, M, z_typ,
           z_one, n - 1, sqrt(8.0 / (n - 1)));

    /* ---- output: the strip, the schedules, the errors ----------------------------------- */
    {   /* the one-jump rows: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, one eps per column,
         * the same for both schedules */
        gm_tape *T = gm_tape_new(16 << 20);
        gm_tensor *xs, *eps, *xt;
        int steps[NSTRIP - 1];
        demo_check(&d, T != NULL, "gm_tape_new");
        xs = gm_zeros(T, gm_shape4(NSTRIP - 1, 1, test.h, test.w));
        for (k = 0; k < NSTRIP - 1; k++) {
            memcpy(xs->val + (size_t)k * D, x0, (size_t)D * sizeof(float));
            steps[k] = STRIP[k + 1];
        }
        eps = gm_randn(T, xs->shape, &rng);
        for (s = 0; s < 2; s++) {
            float *row = grid + (size_t)(2 * s + 1) * NSTRIP * D;
            xt = gm_q_sample(T, &q[s], xs, eps, steps);       /* sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps */
            memcpy(row, x0, (size_t)D * sizeof(float));
            memcpy(row + D, xt->val, (size_t)(NSTRIP - 1) * D * sizeof(float));
        }
        gm_tape_free(T);
    }
    {
        static const char *const rows[4] = {"linear, step by step", "linear, one jump", "cosine, step by step",
                                            "cosine, one jump"};
        char cols[NSTRIP][16];
        const char *col[NSTRIP];
        gm_grid_labels labels = {NULL, rows, col};
        for (k = 0; k < NSTRIP; k++) {
            snprintf(cols[k], sizeof cols[k], "t=%d", STRIP[k]);
            col[k] = cols[k];
        }
        demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "strip.png"), grid, 4 * NSTRIP, 1, test.h, test.w,
                                                  NSTRIP, -1.0f, 1.0f, &labels), "saving strip.png");
    }
    {
        float ts[T_STEPS + 1], ab[T_STEPS + 1], snr[T_STEPS + 1];
        gm_plot *pa = gm_plot_new("abar_t: the share of x_0 left in x_t", "t", "abar_t");
        gm_plot *ps = gm_plot_new("signal-to-noise ratio abar_t / (1 - abar_t)", "t", "SNR(t)");
        for (s = 0; s < 2; s++) {
            for (t = 0; t <= T_STEPS; t++) {
                ts[t] = (float)t;
                ab[t] = (float)q[s].alpha_bar[t];
                snr[t] = t ? (float)gm_diffusion_snr(&q[s], t) : 0;
            }
            gm_plot_line(pa, NAME[s], ts, ab, T_STEPS + 1);
            gm_plot_line(ps, NAME[s], ts + 1, snr + 1, T_STEPS);
        }
        gm_plot_logy(ps, 1);
        demo_check(&d, gm_plot_save(pa, demo_path(&d, "alpha_bar.png"), 0, 0), "saving alpha_bar.png");
        demo_check(&d, gm_plot_save(ps, demo_path(&d, "snr.png"), 0, 0), "saving snr.png");
        gm_plot_free(pa);
        gm_plot_free(ps);
    }
    {   /* histogram of the standardized errors of the means and of the variances, on [-5, 5] */
        float centre[BINS], h[2][BINS], pdf[BINS], w = 10.0f / BINS;
        int per = NCHECK * D, kind, b;
        gm_plot *pl = gm_plot_new("standardized errors of every pixel, step and schedule", "z", "density");
        memset(h, 0, sizeof h);
        for (b = 0; b < BINS; b++) {
            centre[b] = -5.0f + w * (b + 0.5f);
            pdf[b] = (float)(exp(-0.5 * centre[b] * centre[b]) / sqrt(2 * 3.14159265358979));
        }
        for (s = 0; s < 2; s++)
            for (k = 0; k < NCHECK; k++)
                for (kind = 0; kind < 2; kind++)
                    for (i = 0; i < D; i++) {
                        b = (int)floor((z[((s * NCHECK + k) * 2 + kind) * D + i] + 5.0f) / w);
                        if (b >= 0 && b < BINS) h[kind][b] += 1.0f / (2 * per * w);
                    }
        gm_plot_line(pl, "z of the means", centre, h[0], BINS);
        gm_plot_line(pl, "z of the variances", centre, h[1], BINS);
        gm_plot_line(pl, "N(0, 1) density", centre, pdf, BINS);
        demo_check(&d, gm_plot_save(pl, demo_path(&d, "z_hist.png"), 0, 0), "saving z_hist.png");
        gm_plot_free(pl);
    }
    shape[0] = 2; shape[1] = NCHECK; shape[2] = 2; shape[3] = D;
    demo_check(&d, gm_save_npy(demo_path(&d, "z.npy"), z, 4, shape), "saving z.npy");

    printf("\n");
    demo_result("worst_z", w_all);
    demo_result("worst_z_linear", w_lin);
    demo_result("worst_z_cosine", w_cos);
    demo_result("worst_z_mean", w_mean);
    demo_result("worst_z_var", w_var);
    demo_result("z_typical", z_typ);
    demo_result("z_one_percent", z_one);
    demo_result("abar_500_linear", q[0].alpha_bar[500]);
    demo_result("abar_T_linear", q[0].alpha_bar[T_STEPS]);
    demo_result("abar_500_cosine", q[1].alpha_bar[500]);
    demo_result("abar_T_cosine", q[1].alpha_bar[T_STEPS]);
    demo_result("abar_T50_linear", end[2]);
    demo_result("abar_T50_unscaled", end[3]);
    demo_result("snr1_linear", first_t[0]);
    demo_result("snr1_cosine", first_t[1]);
    demo_result("noise_steps_linear", noise_steps[0]);
    demo_result("noise_steps_cosine", noise_steps[1]);

    /* ---- cleanup ------------------------------------------------------------------------ */
    free(x0); free(s1); free(s2); free(z); free(grid);
    for (s = 0; s < 2; s++) gm_diffusion_free(&q[s]);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
