/* 04_latent_variable_model - p(x) = integral of p(x|z) p(z) dz, and why prior samples fail
 *
 * What it shows: one decoder p_theta(x|z) (the MLP decoder of demos/vae.h, Z = 20, the same
 * initial weights every time) trained three ways, with the same number of steps and the
 * same number of decoder passes (128) per step:
 *   prior MC, S = 1    maximize log p(x|z), z ~ p(z): the mean of log p(x|z_s) over prior
 *                      samples (Jensen's lower bound of the course notes); its optimum
 *                      ignores z and draws the mean garment for every z
 *   prior MC, S = 16   maximize the honest Monte Carlo estimate
 *                      log p(x) ~ log (1/S) sum_s p(x|z_s), z_s ~ p(z)  (gm_iwae)
 *   VAE                the same decoder with an amortized encoder q_phi(z|x), by the ELBO
 * Then, for each: samples x = sigmoid(logits(z)), z ~ N(0, I), how much they vary, and the
 * naive estimate of log p(x) on test images for S = 1 ... 10^4 prior samples: its value,
 * its spread, and how many of the S samples actually carry it.
 * Lecture: lectures/04-latent-variable-models.md
 * Run:     make build/latent_variable_model && ./build/latent_variable_model
 *          (3 epochs' worth of steps per model; about 26 s on 2 cores)
 *          ./build/latent_variable_model --S 64      a larger S for the honest estimate
 * Output:  out/latent_variable_model/samples.png     side by side: test images, samples of
 *                                                    prior MC S=1, prior MC S=16, the VAE
 *          out/latent_variable_model/estimate.png    naive log p(x) estimate against S
 *          out/latent_variable_model/samples.npy     10000 VAE samples (10000,1,28,28)
 *          out/latent_variable_model/samples_prior_mc_s1.npy, samples_prior_mc_s16.npy
 *          result lines: sample_var_{data,prior_mc_s1,prior_mc,vae} (per-pixel variance
 *          across samples), edge_{data,prior_mc_s1,prior_mc,vae} (sharpness),
 *          test_log_px_naive_{prior_mc,vae} (naive estimate with 10^4 prior samples, for the
 *          --S model and the VAE), test_elbo_vae, test_kl_vae, ess_vae (effective sample size
 *          of the 10^4)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"
#include <math.h>

static const char *usage =
    "  --epochs N     training length of every model, in VAE epochs (default 3; 1 with --quick)\n"
    "  --S N          prior samples per image for the honest estimate (default 16, divides 128)\n"
    "  --latent Z     latent dimensions (default 20)\n"
    "  --eval N       test images for the naive log p(x) estimate (default 1000)\n"
    "  --samples N    samples written per model (default 10000)\n";

enum { ROWS = 8, COLS = 5,      /* samples.png: four blocks of ROWS x COLS, side by side    */
       GRID_W = 4 * COLS + 3,   /* cells per row, with a grey column between blocks          */
       PASSES = 128,            /* decoder passes per training step, for every model        */
       S_MAX = 10000,           /* prior samples behind the largest naive estimate          */
       NS = 5 };                /* S = 1, 10, 100, 1000, 10000                              */

/* Train the decoder alone by maximizing the naive Monte Carlo estimate of log p(x):
 *     loss = -(1/B) sum_b log (1/S) sum_s p(x_b | z_bs),   z_bs ~ p(z),   B = PASSES / S.
 * For S = 1 this is -log p(x|z) at one prior sample: its gradient is, on average, that of the
 * mean-of-logs objective -(1/S) sum_s log p(x|z_s) for any S. */
static void train_prior_mc(vae *m, gm_dataset *train, int S, long steps, gm_tape *T, gm_rng *rng)
{
    gm_optim *opt = gm_adam_new(&m->P, 1e-3f, 0.9f, 0.999f);   /* the encoder gets no gradient */
    int B = PASSES / S, per_epoch = gm_batches(train, B);
    char what[32];
    gm_progress bar;
    long step;
    snprintf(what, sizeof what, "prior MC S=%d", S);
    bar = gm_progress_start(what, steps);
    for (step = 0; step < steps; step++) {
        gm_tensor *x, *log_w, *log_px, *loss;
        if (step % per_epoch == 0) gm_dataset_shuffle(train, rng);
        gm_tape_reset(T);
        x = gm_batch(T, train, step, B);
        log_w = vae_log_weights(T, m, x, S, VAE_PROPOSE_PRIOR, rng); /* log p(x|z_s), z_s ~ p(z)  (B S) */
        log_px = gm_iwae(T, log_w, S);                      /* log (1/S) sum_s p(x|z_s)  (B)   */
        loss = gm_scale(T, gm_mean(T, log_px), -1.0f);
        gm_backward(T, loss);
        gm_optim_step(opt);
        gm_progress_update(&bar, step + 1, "-log p^(x) %.1f", gm_item(loss));
    }
    gm_progress_finish(&bar);
    gm_optim_free(opt);
}

/* How a set of n images (n, 784) varies and how sharp it is:
 *   var   the variance across the images of each pixel, averaged over pixels (0: all equal)
 *   rms   the RMS distance of the images from the mean training image `ref`
 *   edge  the mean squared difference of neighbouring pixels (right and below): blur
 *         lowers it, sharp garment outlines raise it */
typedef struct image_stats { double var, rms, edge; } image_stats;

static image_stats stats_of(const float *x, int n, const float *ref)
{
    image_stats st = {0, 0, 0};
    int i, j, r, c;
    st.var = vae_pixel_variance(x, n, 784);
    for (j = 0; j < 784; j++)
        for (i = 0; i < n; i++) {
            double v = x[(size_t)i * 784 + j];
            st.rms += (v - ref[j]) * (v - ref[j]);
        }
    for (i = 0; i < n; i++)
        for (r = 0; r < 27; r++)
            for (c = 0; c < 27; c++) {
                const float *p = x + (size_t)i * 784 + r * 28 + c;
                st.edge += (p[1] - p[0]) * (p[1] - p[0]) + (p[28] - p[0]) * (p[28] - p[0]);
            }
    st.rms = sqrt(st.rms / ((double)n * 784));
    st.edge /= (double)n * 27 * 27 * 2;
    return st;
}

/* The model that ignores z altogether, p(x|z) = prod_d Bernoulli(x_d; m_d) with m the mean
 * training image: its exact log p(x), averaged over the first n test images. This is where
 * the S = 1 objective leads (see the lecture). */
static double log_px_mean_image(const gm_dataset *test, int n, const float *m)
{
    double acc = 0;
    int i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < 784; j++) {
            double x = test->x[(size_t)i * 784 + j], p = m[j] < 1e-6f ? 1e-6 : m[j];
            acc += x * log(p) + (1 - x) * log(1 - p);
        }
    return acc / n;
}

/* Put the first ROWS x COLS images of x (n, 784) into block `bk` (0..3) of the grid. */
static void place_block(float *grid, int bk, const float *x)
{
    int r, c;
    for (r = 0; r < ROWS; r++)
        for (c = 0; c < COLS; c++)
            memcpy(grid + (size_t)(r * GRID_W + bk * (COLS + 1) + c) * 784, x + (size_t)(r * COLS + c) * 784,
                   784 * sizeof(float));
}

/* log w_is = log p(x_i|z_s) for the first n test images and S_MAX codes z_s ~ p(z), into
 * lw (n, S_MAX). For the Bernoulli decoder with logits l = l(z),
 *     log p(x|z) = sum_d (x_d l_d - softplus(l_d)) = x . l(z) - c(z),
 * a dot product minus a constant per code: decode the codes once, then one matrix product
 * (gm_matmul) gives every image against every code. */
static void prior_log_likelihoods(gm_tape *T, const vae *m, const gm_dataset *test, int n, gm_rng *rng, float *lw)
{
    float *z = (float *)malloc((size_t)S_MAX * m->Z * sizeof(float));
    float *logit_t = (float *)malloc((size_t)784 * S_MAX * sizeof(float));  /* (784, S_MAX) */
    double *c = (double *)malloc(S_MAX * sizeof(double));    /* c_s = sum_d softplus(l_sd) */
    int i, s, j, b;
    for (i = 0; i < S_MAX * m->Z; i++) z[i] = gm_rng_normal(rng);
    for (s = 0; s < S_MAX; s += 500) {                        /* decode z in chunks of 500 */
        gm_tensor *l;
        gm_tape_reset(T);
        l = vae_decode(T, m, gm_from(T, gm_shape2(500, m->Z), z + (size_t)s * m->Z));
        for (i = 0; i < 500; i++) {
            double acc = 0;
            for (j = 0; j < 784; j++) {
                float v = l->val[i * 784 + j];
                logit_t[(size_t)j * S_MAX + s + i] = v;
                acc += v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
            }
            c[s + i] = acc;
        }
    }
    for (b = 0; b < n; b += 100) {                            /* 100 test images at a time */
        int nb = n - b < 100 ? n - b : 100;
        gm_tensor *xl;
        gm_tape_reset(T);
        xl = gm_matmul(T, gm_from(T, gm_shape2(nb, 784), test->x + (size_t)b * 784),
                       gm_from(T, gm_shape2(784, S_MAX), logit_t));           /* x . l(z_s) */
        for (i = 0; i < nb; i++)
            for (s = 0; s < S_MAX; s++)
                lw[(size_t)(b + i) * S_MAX + s] = (float)(xl->val[(size_t)i * S_MAX + s] - c[s]);
    }
    free(z); free(logit_t); free(c);
}

/* The naive estimate log p^_S(x) = log (1/S) sum_s p(x|z_s) on n test images, for S = 1, 10,
 * ..., 10^4: the S_MAX prior codes, shared by all images, cut into S_MAX / S disjoint groups
 * of S give S_MAX / S independent estimates per image. est[k] is their mean over images and
 * groups, spread[k] the standard deviation of one estimate; ess is the effective sample size
 * (sum w)^2 / sum w^2 of all S_MAX weights w_s = p(x|z_s), averaged over images. */
typedef struct naive_est { double est[NS], spread[NS], ess; } naive_est;

static naive_est naive_estimate(gm_tape *T, const vae *m, const gm_dataset *test, int n, gm_rng *rng)
{
    float *lw = (float *)malloc((size_t)n * S_MAX * sizeof(float));
    float *est = (float *)malloc((size_t)n * S_MAX * sizeof(float));
    naive_est r;
    int k;
    prior_log_likelihoods(T, m, test, n, rng, lw);            /* log w_is = log p(x_i|z_s)     */
    for (k = 0; k < NS; k++) {
        int S = (int)pow(10, k);
        vae_group_estimates(T, lw, n, S_MAX, S, est);         /* log p^_S of every group of S  */
        r.est[k] = vae_mean_sd(est, n, S_MAX / S, &r.spread[k]);
    }
    r.ess = vae_weight_stats(lw, n, S_MAX).ess;
    free(lw); free(est);
    return r;
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "latent_variable_model", usage);
    int epochs = demo_epochs(&d, d.quick ? 1 : 3);
    int S = demo_int(&d, "--S", 16, 1, PASSES), Z = demo_int(&d, "--latent", 20, 1, 784);
    int n_eval = demo_int(&d, "--eval", d.quick ? 100 : 1000, 1, 10000);
    int n_samples = demo_int(&d, "--samples", d.quick ? 500 : 10000, ROWS * COLS, 60000);
    const char *name[3] = {"prior MC, S = 1", NULL, "VAE (encoder q(z|x))"};
    const char *npy[3] = {"samples_prior_mc_s1.npy", NULL, "samples.npy"};
    char name1[32], npy1[40];
    int train_S[2] = {1, S}, shape[4] = {0, 1, 28, 28}, i, k, md;
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    gm_dataset train, test;
    float *x, *grid, *mean_img, *zs, est_y[3][NS], log_s[NS];
    image_stats st[3], st_data;
    naive_est ne[3];
    vae_score elbo = {0, 0, 0};
    long steps;
    gm_plot *pl;

    if (PASSES % S) { fprintf(stderr, "latent_variable_model: --S must divide %d\n", PASSES); return 2; }
    snprintf(name1, sizeof name1, "prior MC, S = %d", S);
    snprintf(npy1, sizeof npy1, "samples_prior_mc_s%d.npy", S);
    name[1] = name1; npy[1] = npy1;

    /* ---- data ------------------------------------------------------------------------- */
    demo_images(&d, &train, &test, 3000);
    if (n_eval > test.n) n_eval = test.n;
    steps = (long)epochs * gm_batches(&train, PASSES);
    mean_img = (float *)calloc(784, sizeof(float));           /* the mean training image */
    for (i = 0; i < train.n; i++) for (k = 0; k < 784; k++) mean_img[k] += train.x[(size_t)i * 784 + k] / train.n;
    st_data = stats_of(test.x, test.n, mean_img);
    printf("decoder Z = %d -> 400 -> 784 (Bernoulli logits), %ld steps of %d decoder passes per model\n",
           Z, steps, PASSES);

    /* ---- samples: one picture, test images then the three models' samples side by side -- */
    x = (float *)malloc((size_t)n_samples * 784 * sizeof(float));
    zs = (float *)malloc((size_t)n_samples * Z * sizeof(float));
    grid = (float *)malloc((size_t)ROWS * GRID_W * 784 * sizeof(float));
    for (i = 0; i < ROWS * GRID_W * 784; i++) grid[i] = 0.5f;   /* grey between the blocks */
    place_block(grid, 0, test.x);
    for (i = 0; i < n_samples * Z; i++) zs[i] = gm_rng_normal(&rng);  /* the same z for every model */
    shape[0] = n_samples;

    for (md = 0; md < 3; md++) {
        /* ---- model: the same decoder, the same initial weights -------------------------- */
        gm_rng init = gm_rng_new(d.seed + 1);
        vae m = vae_new(VAE_MLP, Z, &init);
        if (md < 2) {
            train_prior_mc(&m, &train, train_S[md], steps, T, &rng);
        } else {
            vae_cfg cfg = vae_cfg_default(epochs);
            cfg.verbose = 0;
            cfg.B = PASSES;
            vae_train(&m, &train, NULL, &cfg, T, &rng, "VAE");
        }

        /* ---- sampling and scoring --------------------------------------------------------- */
        vae_decode_all(T, &m, zs, n_samples, x);
        demo_check(&d, gm_save_npy(demo_path(&d, npy[md]), x, 4, shape), "saving samples");
        place_block(grid, md + 1, x);
        st[md] = stats_of(x, n_samples, mean_img);
        ne[md] = naive_estimate(T, &m, &test, n_eval, &rng);
        if (md == 2) {
            gm_dataset head = test;                            /* ELBO on the same images */
            head.n = n_eval;
            elbo = vae_eval(T, &m, &head, &rng);
        }
        gm_params_free(&m.P);
    }

    /* ---- the numbers ---------------------------------------------------------------------- */
    printf("\nsamples x = sigmoid(logits(z)), z ~ N(0, I), %d per model (the same z for all)\n", n_samples);
    printf("  %-22s %16s %22s %14s\n", "", "pixel variance", "RMS from mean image", "edge energy");
    printf("  %-22s %16.4f %22.4f %14.4f\n", "test images (data)", st_data.var, st_data.rms, st_data.edge);
    for (md = 0; md < 3; md++)
        printf("  %-22s %16.4f %22.4f %14.4f\n", name[md], st[md].var, st[md].rms, st[md].edge);

    printf("\nnaive estimate log p^(x) = log (1/S) sum_s p(x|z_s), z_s ~ p(z), mean over %d test images\n"
           "(+- the standard deviation of one estimate, across disjoint sets of S prior samples), in nats\n", n_eval);
    printf("  %-22s", "S");
    for (k = 0; k < NS; k++) printf(" %16d", (int)pow(10, k));
    printf("   ESS at 10^4\n");
    for (md = 0; md < 3; md++) {
        printf("  %-22s", name[md]);
        for (k = 0; k < NS; k++) {
            char cell[32];
            snprintf(cell, sizeof cell, k < NS - 1 ? "%.1f +- %.1f" : "%.1f", ne[md].est[k], ne[md].spread[k]);
            printf(" %16s", cell);
        }
        printf("   %8.2f\n", ne[md].ess);
    }
    printf("  the mean training image as p(x|z) for every z: exactly %.1f\n", log_px_mean_image(&test, n_eval, mean_img));
    printf("  VAE ELBO on the same images (closed-form KL, one z per image): %.1f, of which\n"
           "  KL(q(z|x) || p(z)) = %.1f, e^KL = %.2g\n", -elbo.neg_elbo, elbo.kl, exp(elbo.kl));

    /* ---- output: pictures ------------------------------------------------------------------ */
    {
        char caption[160];
        gm_grid_labels labels = {NULL, NULL, NULL};
        snprintf(caption, sizeof caption, "left to right: test images; samples of %s; of %s; of the VAE",
                 name[0], name[1]);
        labels.caption = caption;
        demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "samples.png"), grid, ROWS * GRID_W, 1, 28, 28,
                                                  GRID_W, 0, 1, &labels), "saving samples.png");
    }
    for (k = 0; k < NS; k++) log_s[k] = (float)k;
    pl = gm_plot_new("naive estimate of log p(x) with prior samples", "log10 S", "nats (mean over test images)");
    for (md = 0; md < 3; md++) {
        for (k = 0; k < NS; k++) est_y[md][k] = (float)ne[md].est[k];
        gm_plot_line(pl, name[md], log_s, est_y[md], NS);
    }
    {
        float xs[2] = {0, NS - 1}, ys[2];
        ys[0] = ys[1] = (float)-elbo.neg_elbo;
        gm_plot_line(pl, "VAE ELBO", xs, ys, 2);
    }
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "estimate.png"), 0, 0), "saving estimate.png");
    gm_plot_free(pl);

    printf("\n");
    demo_result("sample_var_data", st_data.var);
    demo_result("sample_var_prior_mc_s1", st[0].var);
    demo_result("sample_var_prior_mc", st[1].var);
    demo_result("sample_var_vae", st[2].var);
    demo_result("edge_data", st_data.edge);
    demo_result("edge_prior_mc_s1", st[0].edge);
    demo_result("edge_prior_mc", st[1].edge);
    demo_result("edge_vae", st[2].edge);
    demo_result("test_log_px_naive_prior_mc", ne[1].est[NS - 1]);
    demo_result("test_log_px_naive_vae", ne[2].est[NS - 1]);
    demo_result("test_elbo_vae", -elbo.neg_elbo);
    demo_result("test_kl_vae", elbo.kl);
    demo_result("ess_vae", ne[2].ess);

    /* ---- cleanup ---------------------------------------------------------------------------- */
    free(x); free(zs); free(grid); free(mean_img);
    gm_tape_free(T);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
