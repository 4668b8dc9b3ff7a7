/* 06_vae_regularization - what each half of the ELBO does to a 2-D latent space
 *
 * What it shows: the same VAE with Z = 2, from the same initial weights and the same
 * batches, trained on three losses:
 *   reconly   E_q[-log p(x|z)]                   (beta = 0: an autoencoder with noise)
 *   klonly    KL(q(z|x) || p(z))                 (rec_weight = 0: nothing to reconstruct)
 *   both      E_q[-log p(x|z)] + KL(q(z|x) || p(z))   (the ELBO)
 * For each: a scatter of one z ~ q(z|x) per test image coloured by class, and the images
 * the decoder makes from a grid of z over [-3,3]^2 (where prior samples land). Numbers:
 * test reconstruction and KL, the size of the codes (rms of mu, typical sigma), how much
 * the codes know about the class (1-nearest-neighbour accuracy of mu), and how much of the
 * prior falls into holes of the aggregate posterior q(z) = mean_n q(z|x_n).
 * Lecture: lectures/06-latent-space-regularization.md
 * Run:     make build/vae_regularization && ./build/vae_regularization
 *          (3 models x 4 epochs: about 38 s on 2 cores)
 * Output:  out/vae_regularization/scatter-<loss>.png   z ~ q(z|x) of 10000 test images
 *          out/vae_regularization/grid-<loss>.png      decoded z on a 15x15 grid over [-3,3]^2
 *          out/vae_regularization/samples.png          64 samples of the "both" model
 *          out/vae_regularization/samples.npy          10000 samples (10000,1,28,28) of "both"
 *          result lines, for <loss> = reconly, klonly, both: <loss>_rec, <loss>_kl (nats per
 *          test image), <loss>_mu_rms, <loss>_knn_acc, <loss>_holes
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"
#include <math.h>

static const char *usage =
    "  --epochs N     passes over the training set per model (default 4; 1 with --quick)\n";

/* The three losses: loss = rec_weight * E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)). */
typedef struct setting { const char *key, *title; float rec_weight, beta; } setting;
static const setting settings[3] = {
    {"reconly", "rec only", 1, 0},
    {"klonly", "KL only", 0, 1},
    {"both", "rec + KL (the ELBO)", 1, 1},
};

enum { Z = 2, GRID = 15, N_PRIOR = 2000 };
#define TWO_PI 6.283185307179586f

typedef struct latent_stats { double mu_rms, sigma, knn_acc, holes; } latent_stats;

/* Fraction of prior samples z ~ N(0,I) where the aggregate posterior of the n test codes,
 * q(z) = (1/n) sum_n q(z|x_n), is below p(z)/10: prior mass the encoder never sends an
 * image to. Such z are "holes": the decoder was never trained there. */
static double prior_holes(gm_tape *T, const float *mu, const float *logvar, int n, gm_rng *rng)
{
    float z[N_PRIOR * Z], log_q[N_PRIOR];
    int s, holes = 0;
    for (s = 0; s < N_PRIOR * Z; s++) z[s] = gm_rng_normal(rng);
    vae_log_aggregate(T, mu, logvar, n, Z, z, N_PRIOR, log_q);
    for (s = 0; s < N_PRIOR; s++) {
        float log_p = -logf(TWO_PI) - 0.5f * (z[s * Z] * z[s * Z] + z[s * Z + 1] * z[s * Z + 1]);
        holes += log_q[s] < log_p - logf(10.0f);
    }
    return (double)holes / N_PRIOR;
}

/* How much the codes know about the class: the label of each test image in the second
 * half, guessed from its nearest neighbour (in mu) in the first half. Chance is 1/10. */
static double knn_accuracy(const float *mu, const int *y, int n)
{
    int i, k, half = n / 2, right = 0;
    for (i = half; i < n; i++) {
        double best = INFINITY;
        int guess = -1;
        for (k = 0; k < half; k++) {
            double dx = mu[i * Z] - mu[k * Z], dy = mu[i * Z + 1] - mu[k * Z + 1];
            if (dx * dx + dy * dy < best) { best = dx * dx + dy * dy; guess = y[k]; }
        }
        right += guess == y[i];
    }
    return (double)right / (n - half);
}

static latent_stats measure(gm_tape *T, const float *mu, const float *logvar, const gm_dataset *test, gm_rng *rng)
{
    latent_stats st;
    double mu2 = 0, lv = 0;
    int i, n = test->n;
    for (i = 0; i < n * Z; i++) { mu2 += (double)mu[i] * mu[i]; lv += logvar[i]; }
    st.mu_rms = sqrt(mu2 / (n * Z));
    st.sigma = exp(0.5 * lv / (n * Z));         /* geometric mean of sigma */
    st.knn_acc = knn_accuracy(mu, test->y, n);
    st.holes = prior_holes(T, mu, logvar, n, rng);
    return st;
}

/* one z = mu + sigma eps per test image, coloured by class; the circle holds 86% of N(0,I) */
static void save_scatter(demo *d, const setting *s, const float *mu, const float *logvar, const gm_dataset *test,
                         gm_rng *rng)
{
    float *z = (float *)malloc((size_t)test->n * Z * sizeof(float)), circle[2 * 101];
    char title[96], file[64];
    gm_plot *pl;
    int i;
    for (i = 0; i < test->n * Z; i++) z[i] = mu[i] + expf(0.5f * logvar[i]) * gm_rng_normal(rng);
    for (i = 0; i <= 100; i++) {
        circle[i] = 2 * cosf(TWO_PI * i / 100);
        circle[101 + i] = 2 * sinf(TWO_PI * i / 100);
    }
    snprintf(title, sizeof title, "one z ~ q(z|x) per test image, loss: %s", s->title);
    pl = gm_plot_new(title, "z1", "z2");
    gm_plot_scatter_labeled(pl, z, test->y, test->n, test->nclass, test->class_names);
    gm_plot_line(pl, "|z| = 2 (86% of p(z))", circle, circle + 101, 101);
    gm_plot_equal_aspect(pl, 1);                  /* so the circle is one */
    snprintf(file, sizeof file, "scatter-%s.png", s->key);
    demo_check(d, gm_plot_save(pl, demo_path(d, file), 640, 560), "saving the scatter");
    gm_plot_free(pl);
    free(z);
}

/* the decoder's pixel means on a GRID x GRID grid of z over [-3,3]^2, z2 = +3 on top */
static void save_grid(demo *d, gm_tape *T, const vae *m, const setting *s)
{
    float z[GRID * GRID * Z], *x = (float *)malloc(GRID * GRID * 784 * sizeof(float));
    char file[64];
    int r, c;
    for (r = 0; r < GRID; r++)
        for (c = 0; c < GRID; c++) {
            z[(r * GRID + c) * Z] = -3 + 6.0f * c / (GRID - 1);
            z[(r * GRID + c) * Z + 1] = 3 - 6.0f * r / (GRID - 1);
        }
    vae_decode_all(T, m, z, GRID * GRID, x);
    snprintf(file, sizeof file, "grid-%s.png", s->key);
    demo_check(d, gm_save_image_grid(demo_path(d, file), x, GRID * GRID, 1, 28, 28, GRID, 0, 1), "saving the grid");
    free(x);
}

static void setting_result(const char *key, const char *what, double v)
{
    char k[64];
    snprintf(k, sizeof k, "%s_%s", key, what);
    demo_result(k, v);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "vae_regularization", usage);
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 1 : 4));
    gm_tape *T = gm_tape_new(0);
    gm_dataset train, test;
    vae_score score[3];
    latent_stats st[3];
    int k;

    demo_images(&d, &train, &test, 3000);
    cfg.verbose = 0;
    printf("VAE (mlp), Z = %d, %d epochs of %d batches of %d per loss, same start for all three\n\n",
           Z, cfg.epochs, gm_batches(&train, cfg.B), cfg.B);
    printf("%-8s  %8s %7s  %7s %8s  %8s %7s\n", "loss", "test rec", "KL", "rms mu", "sigma", "1-NN acc", "holes");
    for (k = 0; k < 3; k++) {
        const setting *s = &settings[k];
        gm_rng rng = gm_rng_new(d.seed);         /* same weights, batches and noise for each loss */
        vae m = vae_new(VAE_MLP, Z, &rng);
        float *mu, *logvar;
        /* the objective: rec_weight E_q[-log p(x|z)] + beta KL(q(z|x) || p(z)), see vae_loss */
        cfg.rec_weight = s->rec_weight;
        cfg.beta = s->beta;
        vae_train(&m, &train, NULL, &cfg, T, &rng, s->key);
        score[k] = vae_eval(T, &m, &test, &rng);
        vae_encode_all(T, &m, &test, &mu, &logvar);
        st[k] = measure(T, mu, logvar, &test, &rng);
        printf("%-8s  %8.1f %7.2f  %7.3f %8.2g  %8.3f %7.3f\n", s->key, score[k].rec, score[k].kl,
               st[k].mu_rms, st[k].sigma, st[k].knn_acc, st[k].holes);
        save_scatter(&d, s, mu, logvar, &test, &rng);
        save_grid(&d, T, &m, s);
        if (strcmp(s->key, "both") == 0) vae_save_samples(&d, T, &m, 10000, 64, "samples.png", &rng);
        free(mu); free(logvar);
        gm_params_free(&m.P);
    }
    printf("\n(rec and KL in nats per test image; sigma: geometric mean of the encoder's sigma;\n"
           " 1-NN acc: class of a test image from its nearest code, chance 0.1;\n"
           " holes: share of z ~ p(z) where q(z) < p(z)/10)\n");

    for (k = 0; k < 3; k++) {
        setting_result(settings[k].key, "rec", score[k].rec);
        setting_result(settings[k].key, "kl", score[k].kl);
        setting_result(settings[k].key, "mu_rms", st[k].mu_rms);
        setting_result(settings[k].key, "knn_acc", st[k].knn_acc);
        setting_result(settings[k].key, "holes", st[k].holes);
    }

    gm_tape_free(T);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
