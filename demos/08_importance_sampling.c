/* 08_importance_sampling - estimating log p(x): naive Monte Carlo, the ELBO, the IWAE bound
 *
 * What it shows: a trained VAE defines p(x) = integral of p(x|z) p(z) dz, and the integral is
 * estimated by importance sampling with some proposal r(z):
 *     log p(x) ~ IWAE_k(x) = log (1/k) sum_s w_s,   w_s = p(x|z_s) p(z_s) / r(z_s),  z_s ~ r.
 * With r = q(z|x), the encoder, k = 1 is the ELBO and the estimate rises with k towards
 * log p(x) (ELBO <= IWAE_5 <= IWAE_50 <= log p(x), Burda et al. 2016). With r = p(z), the
 * prior, w_s = p(x|z_s) and the same formula is the naive Monte Carlo estimate: far lower,
 * and far noisier, for every k we can afford. All numbers are average log-likelihoods in
 * nats per test image (negative; -ELBO etc. are the losses other demos print).
 * Over the whole test set: 50 samples per image give IWAE_1, IWAE_5, IWAE_50 (from
 * disjoint groups of the 50) for both proposals. On a subset: 5000 samples per image give
 * the estimate at many k, its spread across independent repeats, and log p(x) itself.
 * Lecture: lectures/08-likelihood.md
 * Run:     make build/importance_sampling && ./build/importance_sampling
 *                     (trains the pytorch/examples MLP VAE for 10 epochs first; about 46 s on
 *                     2 cores)
 *          ./build/importance_sampling --model out/vae/vae_mlp.ckpt   (the model ./build/vae saved)
 * Output:  out/importance_sampling/estimates.png  average estimate vs log10 k, both proposals
 *          out/importance_sampling/bound.png      the q(z|x) proposal alone: IWAE_k rising with k
 *          out/importance_sampling/spread.png     the independent estimates of 3 images vs log10 k
 *          out/importance_sampling/proposals.png  per test image: x, then decoded z ~ q(z|x)
 *                                                 (upper row) and z ~ p(z) (lower row)
 *          out/importance_sampling/samples.npy    those decoded proposals (120,1,28,28)
 *          result lines: elbo, iwae_1, iwae_5, iwae_50, naive_1, naive_5, naive_50 (test set),
 *          log_px_is, log_px_naive, sd_iwae_50, sd_naive_50 (subset), in nats per image
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --model PATH   load a VAE checkpoint (./build/vae writes out/vae/vae_mlp.ckpt) instead of training\n"
    "  --arch A       mlp (default) or conv: the checkpoint's architecture\n"
    "  --latent Z     latent dimensions (default 20)\n"
    "  --epochs N     training epochs without --model (default 10; 1 with --quick)\n"
    "  --samples K    samples per image on the subset, a multiple of 50 (default 5000; 500 with --quick)\n"
    "  --subset N     test images for the many-sample estimates (default 100; 10 with --quick)\n";

enum { CHUNK = 5000 };                 /* most rows (image, sample) on the tape at once */

/* log w_bs (vae_log_weights) for K draws z_bs ~ r per image, images i0 .. i0+n-1 of ds, into
 * logw (n, K) row-major. At most CHUNK rows at a time, so memory stays bounded. */
static void log_weights(gm_tape *T, const vae *m, const gm_dataset *ds, int i0, int n, int K,
                        int proposal, gm_rng *rng, float *logw)
{
    int S = K < CHUNK ? K : CHUNK, nb = CHUNK / S, b0, s0, b, s;
    for (b0 = 0; b0 < n; b0 += nb) {
        int bn = n - b0 < nb ? n - b0 : nb;
        for (s0 = 0; s0 < K; s0 += S) {
            int sn = K - s0 < S ? K - s0 : S;
            gm_tensor *x, *lw;
            gm_tape_reset(T);
            x = gm_from(T, gm_shape4(bn, 1, 28, 28), ds->x + (size_t)(i0 + b0) * 784);
            lw = vae_log_weights(T, m, x, sn, proposal, rng);
            for (b = 0; b < bn; b++)
                for (s = 0; s < sn; s++) logw[(size_t)(b0 + b) * K + s0 + s] = lw->val[b * sn + s];
        }
    }
}

/* The K samples of an image, cut into K/k disjoint groups of k, give K/k independent
 * estimates IWAE_k = log (1/k) sum_s w_s (gm_iwae). Returns their average over groups and
 * images; *sd (if not NULL) receives the standard deviation across groups, averaged over
 * images (0 if K/k = 1), and est (n, K/k) the estimates themselves (if not NULL). */
static double iwae_estimate(gm_tape *T, const float *logw, int n, int K, int k, double *sd, float *est)
{
    int g = K / k, b, j;
    double mean = 0.0, spread = 0.0;
    gm_tensor *e;
    gm_tape_reset(T);
    e = gm_iwae(T, gm_from(T, gm_shape1(n * K), logw), k);   /* (n K/k): image b at b g .. b g + g-1 */
    for (b = 0; b < n; b++) {
        double m = 0.0, v = 0.0;
        for (j = 0; j < g; j++) m += e->val[b * g + j];
        m /= g;
        for (j = 0; j < g; j++) v += (e->val[b * g + j] - m) * (e->val[b * g + j] - m);
        mean += m / n;
        if (g > 1) spread += sqrt(v / (g - 1)) / n;
    }
    if (sd) *sd = spread;
    if (est) memcpy(est, e->val, (size_t)e->size * sizeof(float));
    return mean;
}

/* Four test images, each followed by 15 decoded draws from q(z|x) (upper row) and from
 * p(z) (lower row): the proposals' candidates for "what made this x". */
static void save_proposals(demo *d, gm_tape *T, const vae *m, const gm_dataset *test, gm_rng *rng)
{
    enum { N = 4, S = 15 };
    float *grid = (float *)malloc(sizeof(float) * 2 * N * (S + 1) * 784);
    float *drawn = (float *)malloc(sizeof(float) * 2 * N * S * 784);
    int shape[4] = {2 * N * S, 1, 28, 28}, i, r;
    for (i = 0; i < N; i++)
        for (r = 0; r < 2; r++) {
            int row = 2 * i + r;
            gm_tensor *x, *rm, *rl, *p;
            gm_tape_reset(T);
            x = gm_from(T, gm_shape4(1, 1, 28, 28), test->x + (size_t)i * 784);
            p = gm_sigmoid(T, vae_decode(T, m, vae_propose(T, m, x, S, r ? VAE_PROPOSE_PRIOR : VAE_PROPOSE_Q, rng, &rm, &rl)));
            memcpy(grid + (size_t)row * (S + 1) * 784, x->val, sizeof(float) * 784);
            memcpy(grid + ((size_t)row * (S + 1) + 1) * 784, p->val, sizeof(float) * S * 784);
            memcpy(drawn + (size_t)row * S * 784, p->val, sizeof(float) * S * 784);
        }
    demo_check(d, gm_save_image_grid(demo_path(d, "proposals.png"), grid, 2 * N * (S + 1), 1, 28, 28, S + 1, 0, 1), "saving");
    demo_check(d, gm_save_npy(demo_path(d, "samples.npy"), drawn, 4, shape), "saving samples.npy");
    free(grid); free(drawn);
}


/* The estimates at every k of the list that divides K, from K draws per image on the first
 * n test images, for both proposals: printed as a table and drawn in three plots. */
enum { NK = 12, SHOW = 3, DOTS = 50 };
static const int ks[NK] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
typedef struct sweep { int nk, k[NK]; double mean[2][NK], sd[2][NK]; } sweep;

static sweep subset_sweep(demo *d, gm_tape *T, const vae *m, const gm_dataset *test, int n, int K, gm_rng *rng)
{
    static float dx[2][SHOW][NK * DOTS], dy[2][SHOW][NK * DOTS];   /* spread.png's dots */
    float *logw = (float *)malloc((size_t)n * K * sizeof(float)), *est = (float *)malloc((size_t)n * K * sizeof(float));
    float lk[NK], line[4][NK];
    int ndots[2][SHOW] = {{0}}, p, i, j, s;
    sweep sw;
    gm_plot *pl;
    for (p = 0; p < 2; p++) {
        log_weights(T, m, test, 0, n, K, p, rng, logw);
        for (j = sw.nk = 0; j < NK && ks[j] <= K; j++) {
            int g = K / ks[j];
            if (K % ks[j]) continue;
            sw.k[sw.nk] = ks[j];
            sw.mean[p][sw.nk] = iwae_estimate(T, logw, n, K, ks[j], &sw.sd[p][sw.nk], est);
            lk[sw.nk] = (float)log10(ks[j]);
            for (i = 0; i < SHOW; i++)            /* up to DOTS repeats of image i, side by side */
                for (s = 0; s < g && s < DOTS; s++, ndots[p][i]++) {
                    dx[p][i][ndots[p][i]] = lk[sw.nk] + 0.06f * (i - 1);
                    dy[p][i][ndots[p][i]] = est[i * g + s];
                }
            sw.nk++;
        }
    }
    printf("\nfirst %d test images, %d draws each: mean estimate (sd of one estimate, from K/k repeats)\n", n, K);
    printf("      k      q(z|x) proposal        p(z) proposal\n");
    for (j = 0; j < sw.nk; j++) {
        printf("  %5d   %9.2f (%6.2f)   %9.2f (%6.2f)\n", sw.k[j], sw.mean[0][j], sw.sd[0][j], sw.mean[1][j], sw.sd[1][j]);
        line[0][j] = (float)sw.mean[0][j];
        line[1][j] = (float)sw.mean[1][j];
        line[2][j] = (float)(sw.mean[0][j] - sw.sd[0][j]);
        line[3][j] = (float)(sw.mean[1][j] - sw.sd[1][j]);
    }

    pl = gm_plot_new("average estimate of log p(x) vs number of samples k", "log10 k", "nats per image");
    gm_plot_line(pl, "q(z|x) proposal: IWAE_k", lk, line[0], sw.nk);
    gm_plot_line(pl, "p(z) proposal: naive Monte Carlo", lk, line[1], sw.nk);
    gm_plot_line(pl, "naive: mean - 1 sd of one estimate", lk, line[3], sw.nk - 1);   /* k = K: no repeats */
    demo_check(d, gm_plot_save(pl, demo_path(d, "estimates.png"), 0, 0), "saving");
    gm_plot_free(pl);

    pl = gm_plot_new("q(z|x) proposal alone: IWAE_k rises towards log p(x)", "log10 k", "nats per image");
    gm_plot_line(pl, "IWAE_k (k = 1: the ELBO)", lk, line[0], sw.nk);
    gm_plot_line(pl, "mean - 1 sd of one estimate", lk, line[2], sw.nk - 1);
    demo_check(d, gm_plot_save(pl, demo_path(d, "bound.png"), 0, 0), "saving");
    gm_plot_free(pl);

    pl = gm_plot_new("independent estimates of log p(x) for 3 test images", "log10 k", "nats");
    for (p = 0; p < 2; p++)
        for (i = 0; i < SHOW; i++) {
            char label[40];
            snprintf(label, sizeof label, "image %d, %s", i, p ? "p(z)" : "q(z|x)");
            gm_plot_scatter(pl, label, dx[p][i], dy[p][i], ndots[p][i]);
        }
    demo_check(d, gm_plot_save(pl, demo_path(d, "spread.png"), 0, 0), "saving");
    gm_plot_free(pl);
    free(logw); free(est);
    return sw;
}

int main(int argc, char **argv)
{
    enum { NFULL = 50 };
    static const int kfull[3] = {1, 5, 50};
    demo d = demo_start(argc, argv, "importance_sampling", usage);
    const char *model = demo_str(&d, "--model", NULL);
    int arch = vae_arch(&d), Z = demo_int(&d, "--latent", 20);
    int K = demo_int(&d, "--samples", d.quick ? 500 : 5000), nsub = demo_int(&d, "--subset", d.quick ? 10 : 50);
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    gm_dataset train, test;
    vae m;
    float *logw;
    double full[2][3], elbo;
    int p, j, k50;
    sweep sw;

    if (K < NFULL || K % NFULL) { fprintf(stderr, "importance_sampling: --samples must be a multiple of %d\n", NFULL); return 2; }
    demo_images(&d, &train, &test, 2000);
    if (nsub < SHOW || nsub > test.n) { fprintf(stderr, "importance_sampling: --subset must be in %d..%d\n", SHOW, test.n); return 2; }

    /* ---- the model: ./build/vae's checkpoint, or the same VAE trained here ----------------- */
    m = vae_new(arch, Z, &rng);
    if (model) {
        demo_check(&d, gm_load_params(&m.P, model), "loading --model");
        printf("model: %s (%s, Z = %d)\n", model, arch == VAE_MLP ? "mlp" : "conv", Z);
    } else {
        vae_cfg cfg = vae_cfg_default(demo_int(&d, "--epochs", d.quick ? 1 : 10));
        printf("model: training the VAE (%s, Z = %d) for %d epochs\n", arch == VAE_MLP ? "mlp" : "conv", Z, cfg.epochs);
        vae_train(&m, &train, &test, &cfg, T, &rng, "vae");
    }
    elbo = -vae_eval(T, &m, &test, &rng).neg_elbo;      /* closed-form KL, one z per image */

    /* ---- the whole test set: NFULL draws per image and proposal, cut into groups of k ------ */
    logw = (float *)malloc((size_t)test.n * NFULL * sizeof(float));
    for (p = 0; p < 2; p++) {
        log_weights(T, &m, &test, 0, test.n, NFULL, p, &rng, logw);
        for (j = 0; j < 3; j++) full[p][j] = iwae_estimate(T, logw, test.n, NFULL, kfull[j], NULL, NULL);
    }
    free(logw);
    printf("\naverage estimates of log p(x) over %d test images, nats per image (all <= log p(x) on average)\n", test.n);
    printf("  ELBO, closed-form KL, one z  %9.2f\n", elbo);
    printf("  proposal      k = 1      k = 5     k = 50\n");
    printf("  q(z|x)    %9.2f  %9.2f  %9.2f   IWAE_k\n", full[0][0], full[0][1], full[0][2]);
    printf("  p(z)      %9.2f  %9.2f  %9.2f   naive Monte Carlo\n", full[1][0], full[1][1], full[1][2]);
    printf("ELBO <= IWAE_5 <= IWAE_50: %s\n", elbo <= full[0][1] && full[0][1] <= full[0][2] ? "yes" : "NO");

    /* ---- a subset: many draws per image, the estimate at many k ---------------------------- */
    sw = subset_sweep(&d, T, &m, &test, nsub, K, &rng);
    save_proposals(&d, T, &m, &test, &rng);

    printf("\n(log-likelihoods in nats per image, negative; -ELBO and -IWAE_k are the matching losses)\n");
    demo_result("elbo", elbo);
    demo_result("iwae_1", full[0][0]);
    demo_result("iwae_5", full[0][1]);
    demo_result("iwae_50", full[0][2]);
    demo_result("naive_1", full[1][0]);
    demo_result("naive_5", full[1][1]);
    demo_result("naive_50", full[1][2]);
    demo_result("log_px_is", sw.mean[0][sw.nk - 1]);
    demo_result("log_px_naive", sw.mean[1][sw.nk - 1]);
    for (k50 = 0; sw.k[k50] != 50; k50++) {}            /* 50 divides K, so it is in the sweep */
    demo_result("sd_iwae_50", sw.sd[0][k50]);
    demo_result("sd_naive_50", sw.sd[1][k50]);

    gm_params_free(&m.P);
    gm_tape_free(T);
    gm_dataset_free(&train); gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
