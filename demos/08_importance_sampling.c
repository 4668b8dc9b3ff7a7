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
 * Whole test set: 50 draws per image give IWAE_1, _5, _50 (disjoint groups of the 50) for
 * both proposals. A subset: 5000 draws per image give the estimate at many k, its spread,
 * log p(x) itself and KL(p(z|x) || r) as the weights see it; then each image gets its own
 * best Gaussian q, which splits the ELBO's gap into approximation and amortization gaps.
 * Lecture: lectures/08-likelihood.md
 * Run:     make build/vae build/importance_sampling && ./build/vae &&
 *          ./build/importance_sampling --model out/vae/vae_mlp.ckpt    (the model ./build/vae
 *                     saved; about 32 s on 2 cores)
 *          ./build/importance_sampling          (trains the same VAE here first, 10 epochs)
 * Output:  out/importance_sampling/estimates.png  average estimate vs log10 k, both proposals
 *          out/importance_sampling/bound.png      the q(z|x) proposal alone: IWAE_k rising with k
 *          out/importance_sampling/spread.png     the independent estimates of 3 images vs log10 k
 *          out/importance_sampling/proposals.png  per test image: x, then decoded z ~ q(z|x)
 *                                                 (upper row) and z ~ p(z) (lower row)
 *          out/importance_sampling/samples.npy    those decoded proposals (120,1,28,28)
 *          result lines (nats per image): elbo, iwae_1, iwae_5, iwae_50, naive_1, naive_5,
 *          naive_50 (test set); log_px_is, log_px_naive, sd_iwae_50, sd_naive_50,
 *          elbo_amortized, elbo_per_image, gap_approximation, gap_amortization (subset)
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
    "  --samples K    draws per image on the subset: 50, 100, 250, 500, 1000, 2500 or 5000 (default 5000;\n"
    "                 500 with --quick)\n"
    "  --subset N     test images for the many-sample estimates and the per-image fits (default 50; 10 with --quick)\n"
    "  --steps N      Adam steps of the per-image fits (default 500; 20 with --quick)\n"
    "  --lr X         their learning rate at the start (default 0.01)\n";

enum { CHUNK = 5000 };                 /* most rows (image, sample) on the tape at once */

/* log w_bs (vae_log_weights) for K draws z_bs ~ r per image, the first n images of ds, into
 * logw (n, K) row-major. At most CHUNK rows at a time, so memory stays bounded. */
static void log_weights(gm_tape *T, const vae *m, const gm_dataset *ds, int n, int K, int proposal, gm_rng *rng,
                        float *logw)
{
    int S = K < CHUNK ? K : CHUNK, nb = CHUNK / S, b0, s0, b, s;
    for (b0 = 0; b0 < n; b0 += nb) {
        int bn = n - b0 < nb ? n - b0 : nb;
        for (s0 = 0; s0 < K; s0 += S) {
            int sn = K - s0 < S ? K - s0 : S;
            gm_tensor *x, *lw;
            gm_tape_reset(T);
            x = gm_from(T, gm_shape4(bn, 1, 28, 28), ds->x + (size_t)b0 * 784);
            lw = vae_log_weights(T, m, x, sn, proposal, rng);
            for (b = 0; b < bn; b++)
                for (s = 0; s < sn; s++) logw[(size_t)(b0 + b) * K + s0 + s] = lw->val[b * sn + s];
        }
    }
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

/* ---- K draws per image on the first n test images (K in ks): the estimate at every k of ks dividing K */
enum { NK = 12, SHOW = 3, DOTS = 50 };
static const int ks[NK] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
typedef struct sweep {
    int n, K, nk, k[NK];                    /* images, draws per image; the k of ks that divide K  */
    double mean[2][NK], sd[2][NK];          /* per proposal (q, p) and k: mean, sd of one estimate */
    vae_weights w[2][NK];                   /* ESS and KL(p(z|x) || r) from groups of k draws      */
    float dots[2][NK][SHOW][DOTS];          /* the first estimates of images 0 .. SHOW-1           */
} sweep;

static sweep sweep_estimates(gm_tape *T, const vae *m, const gm_dataset *test, int n, int K, gm_rng *rng)
{
    float *logw = (float *)malloc((size_t)n * K * sizeof(float)), *est = (float *)malloc((size_t)n * K * sizeof(float));
    int p, j, i, s, g;
    sweep sw;
    sw.n = n; sw.K = K;
    for (p = 0; p < 2; p++) {
        log_weights(T, m, test, n, K, p, rng, logw);                 /* log w (n, K)              */
        for (j = sw.nk = 0; j < NK && ks[j] <= K; j++) {
            if (K % ks[j]) continue;
            g = K / ks[j];
            vae_group_estimates(T, logw, n, K, ks[j], est);         /* IWAE_k of each group (n, g) */
            sw.k[sw.nk] = ks[j];
            sw.mean[p][sw.nk] = vae_mean_sd(est, n, g, &sw.sd[p][sw.nk]);
            sw.w[p][sw.nk] = vae_weight_stats(logw, n * g, ks[j]);   /* one row per group of k     */
            for (i = 0; i < SHOW; i++)
                for (s = 0; s < g && s < DOTS; s++) sw.dots[p][sw.nk][i][s] = est[i * g + s];
            sw.nk++;
        }
    }
    free(logw); free(est);
    return sw;
}

static int k_at(const sweep *sw, int k)         /* the index of k (50 divides K: always there) */
{
    int j = 0;
    while (sw->k[j] != k) j++;
    return j;
}

static void print_sweep(const sweep *sw)
{
    int j;
    printf("\nthe first %d test images, %d draws each, cut into groups of k: the mean estimate log p^, the sd of\n"
           "one estimate, and from each group's normalized weights w~ the ESS and KL^ = log k + sum_s w~_s log w~_s,\n"
           "the self-normalized estimate of KL(p(z|x) || proposal), never above log k\n", sw->n, sw->K);
    printf("      k   q(z|x):  log p^       sd     ESS    KL^    p(z):  log p^       sd     ESS    KL^\n");
    for (j = 0; j < sw->nk; j++)
        printf("  %5d         %9.2f %8.2f %7.1f %6.2f        %9.2f %8.2f %7.1f %6.2f\n", sw->k[j], sw->mean[0][j],
               sw->sd[0][j], sw->w[0][j].ess, sw->w[0][j].kl, sw->mean[1][j], sw->sd[1][j], sw->w[1][j].ess, sw->w[1][j].kl);
}

/* estimates.png and bound.png: the mean estimate against log10 k (and mean - 1 sd);
 * spread.png: every independent estimate of images 0 .. SHOW-1, shifted sideways per image. */
static void plot_sweep(demo *d, const sweep *sw)
{
    float lk[NK], mean[2][NK], low[2][NK], dx[NK * DOTS], dy[NK * DOTS];
    int j, p, i, s, nd;
    gm_plot *pl;
    for (j = 0; j < sw->nk; j++) {
        lk[j] = (float)log10(sw->k[j]);
        for (p = 0; p < 2; p++) { mean[p][j] = (float)sw->mean[p][j]; low[p][j] = (float)(sw->mean[p][j] - sw->sd[p][j]); }
    }
    pl = gm_plot_new("average estimate of log p(x) vs number of samples k", "log10 k", "nats per image");
    gm_plot_line(pl, "q(z|x) proposal: IWAE_k", lk, mean[0], sw->nk);
    gm_plot_line(pl, "p(z) proposal: naive Monte Carlo", lk, mean[1], sw->nk);
    gm_plot_line(pl, "naive: mean - 1 sd of one estimate", lk, low[1], sw->nk - 1);   /* k = K: no repeats */
    demo_check(d, gm_plot_save(pl, demo_path(d, "estimates.png"), 0, 0), "saving");
    gm_plot_free(pl);

    pl = gm_plot_new("q(z|x) proposal alone: IWAE_k rises towards log p(x)", "log10 k", "nats per image");
    gm_plot_line(pl, "IWAE_k (k = 1: the ELBO)", lk, mean[0], sw->nk);
    gm_plot_line(pl, "mean - 1 sd of one estimate", lk, low[0], sw->nk - 1);
    demo_check(d, gm_plot_save(pl, demo_path(d, "bound.png"), 0, 0), "saving");
    gm_plot_free(pl);

    pl = gm_plot_new("independent estimates of log p(x) for 3 test images", "log10 k", "nats");
    for (p = 0; p < 2; p++)
        for (i = 0; i < SHOW; i++) {
            char label[40];
            for (j = nd = 0; j < sw->nk; j++)
                for (s = 0; s < sw->K / sw->k[j] && s < DOTS; s++, nd++) {
                    dx[nd] = lk[j] + 0.06f * (i - 1);
                    dy[nd] = sw->dots[p][j][i][s];
                }
            snprintf(label, sizeof label, "image %d, %s", i, p ? "p(z)" : "q(z|x)");
            gm_plot_scatter(pl, label, dx, dy, nd);
        }
    demo_check(d, gm_plot_save(pl, demo_path(d, "spread.png"), 0, 0), "saving");
    gm_plot_free(pl);
}

/* ---- the amortization gap (Cremer, Li & Duvenaud 2018) -------------------------------------
 * -ELBO of q = N(mu, e^lv) for each image of x: rec + closed-form KL (vae_terms_of), averaged
 * over S draws z = mu + e^(lv/2) eps.  (B) */
static gm_tensor *neg_elbo(gm_tape *T, const vae *m, gm_tensor *x, gm_tensor *mu, gm_tensor *lv, int S, gm_rng *rng)
{
    vae_terms t = vae_terms_of(T, m, gm_repeat(T, x, S), gm_repeat(T, mu, S), gm_repeat(T, lv, S), rng);
    return gm_mean_per_example(T, gm_reshape(T, gm_add(T, t.rec, t.kl), gm_shape2(x->shape.d[0], S)));
}

/* The mean ELBO of the first n test images under q = N(mu, e^lv) (n, Z each), from EVAL draws
 * per image, EVAL_S at a time. The draws come from a fixed seed, so every q is judged on the
 * same eps. */
enum { EVAL = 1000, EVAL_S = 50, FIT_S = 10 };
static double mean_elbo(gm_tape *T, const vae *m, const gm_dataset *test, int n, const float *mu, const float *lv)
{
    gm_rng eps = gm_rng_new(12345);
    double sum = 0;
    int r, b;
    for (r = 0; r < EVAL / EVAL_S; r++) {
        gm_tensor *e;
        gm_tape_reset(T);
        e = neg_elbo(T, m, gm_from(T, gm_shape4(n, 1, 28, 28), test->x), gm_from(T, gm_shape2(n, m->Z), mu),
                     gm_from(T, gm_shape2(n, m->Z), lv), EVAL_S, &eps);
        for (b = 0; b < n; b++) sum -= e->val[b] / ((double)n * (EVAL / EVAL_S));
    }
    return sum;
}

/* Per-image inference: each of the first n test images gets its own q_i = N(mu_i, e^lv_i),
 * started at the encoder's output and improved by Adam on the ELBO (FIT_S draws per step,
 * the learning rate falling linearly to 0). The loss is the mean over images, but each q_i
 * only gets its own image's gradient and Adam scales every coordinate on its own, so these are n
 * separate fits run side by side. elbo[c] is the mean ELBO after at[c] steps (at[0] = 0:
 * the encoder's q). */
static void fit_per_image(gm_tape *T, const vae *m, const gm_dataset *test, int n, int nat, const int *at,
                          float lr, gm_rng *rng, double *elbo)
{
    gm_params P = {0, 0, 0};
    gm_tensor *mu = gm_param_new(&P, "mu", gm_shape2(n, m->Z)), *lv = gm_param_new(&P, "logvar", gm_shape2(n, m->Z));
    gm_tensor *emu, *elv;
    gm_optim *opt;
    int step, c, steps = at[nat - 1];
    gm_tape_reset(T);
    vae_encode(T, m, gm_from(T, gm_shape4(n, 1, 28, 28), test->x), &emu, &elv);
    memcpy(mu->val, emu->val, (size_t)mu->size * sizeof(float));
    memcpy(lv->val, elv->val, (size_t)lv->size * sizeof(float));
    opt = gm_adam_new(&P, lr, 0.9f, 0.999f);
    for (step = c = 0; c < nat; step++) {
        while (c < nat && step == at[c]) elbo[c++] = mean_elbo(T, m, test, n, mu->val, lv->val);
        if (step == steps) break;
        gm_tape_reset(T);
        gm_backward(T, gm_mean(T, neg_elbo(T, m, gm_from(T, gm_shape4(n, 1, 28, 28), test->x), mu, lv, FIT_S, rng)));
        opt->lr = lr * (1.0f - (float)step / steps);
        gm_optim_step(opt);
    }
    gm_optim_free(opt);
    gm_params_free(&P);
}

int main(int argc, char **argv)
{
    enum { NFULL = 50, NAT = 5 };
    demo d = demo_start(argc, argv, "importance_sampling", usage);
    const char *model = demo_str(&d, "--model", NULL);
    int arch = vae_arch(&d), Z = demo_int(&d, "--latent", 20, 1, 784);
    int K = demo_int(&d, "--samples", d.quick ? 500 : 5000, NFULL, 5000);
    int nsub = demo_int(&d, "--subset", d.quick ? 10 : 50, SHOW, CHUNK / EVAL_S);
    int steps = demo_int(&d, "--steps", d.quick ? 20 : 500, 0, 100000), at[NAT];
    float lr = demo_float(&d, "--lr", 0.01f, 1e-6, 1);
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 1 : 10));
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    gm_dataset train, test;
    vae m;
    vae_score ev;
    double elbo_at[NAT], log_px;
    int j, p;
    sweep full, sw;

    for (j = 0; j < NK && ks[j] != K; j++) {}                   /* K must be in the list ks */
    if (j == NK) { fprintf(stderr, "importance_sampling: --samples must be one of the values in the usage\n"); return 2; }
    demo_images(&d, &train, &test, 2000);                       /* >= 100 test images: nsub fits */

    /* ---- the model: ./build/vae's checkpoint, or the same VAE trained here ----------------- */
    m = vae_new(arch, Z, &rng);
    if (model) {
        demo_check(&d, gm_load_params(&m.P, model), "loading --model");
        printf("model: %s (%s, Z = %d)\n", model, arch == VAE_MLP ? "mlp" : "conv", Z);
    } else {
        printf("model: training the VAE (%s, Z = %d) for %d epochs\n", arch == VAE_MLP ? "mlp" : "conv", Z, cfg.epochs);
        vae_train(&m, &train, &test, &cfg, T, &rng, "vae");
    }
    ev = vae_eval(T, &m, &test, &rng);                  /* closed-form KL, one z per image */

    /* ---- the whole test set: NFULL draws per image and proposal, cut into groups of k ------ */
    full = sweep_estimates(T, &m, &test, test.n, NFULL, &rng);
    printf("\naverage estimates of log p(x) over %d test images, nats per image (all <= log p(x) on average)\n"
           "  ELBO, closed-form KL, one z  %9.2f   (its KL(q(z|x) || p(z)) term: %.2f, e^KL = %.2g)\n",
           test.n, -ev.neg_elbo, ev.kl, exp(ev.kl));
    printf("  proposal      k = 1      k = 5     k = 50   (from disjoint groups of k of %d draws per image)\n", NFULL);
    for (p = 0; p < 2; p++)
        printf("  %-8s  %9.2f  %9.2f  %9.2f   %s\n", p ? "p(z)" : "q(z|x)", full.mean[p][0], full.mean[p][k_at(&full, 5)],
               full.mean[p][k_at(&full, 50)], p ? "naive Monte Carlo" : "IWAE_k");
    printf("ELBO <= IWAE_5 <= IWAE_50: %s\n", -ev.neg_elbo <= full.mean[0][k_at(&full, 5)] &&
           full.mean[0][k_at(&full, 5)] <= full.mean[0][k_at(&full, 50)] ? "yes" : "NO");

    /* ---- a subset: many draws per image, the estimate at many k ---------------------------- */
    sw = sweep_estimates(T, &m, &test, nsub, K, &rng);
    print_sweep(&sw);
    plot_sweep(&d, &sw);
    save_proposals(&d, T, &m, &test, &rng);
    log_px = sw.mean[0][sw.nk - 1];

    /* ---- the same subset: the encoder's q against the best q of each image ------------------ */
    for (j = 0; j < NAT; j++) at[j] = j ? steps >> (2 * (NAT - 1 - j)) : 0;    /* 0, s/64, s/16, s/4, s */
    fit_per_image(T, &m, &test, nsub, NAT, at, lr, &rng, elbo_at);
    printf("\nper-image q: N(mu, e^logvar) of each of the %d images, from the encoder's output, Adam (lr %g falling\n"
           "to 0, %d draws per step); mean ELBO from %d fixed draws per image\n", nsub, lr, FIT_S, EVAL);
    for (j = 0; j < NAT; j++)
        if (!j || at[j] > at[j - 1]) printf("  step %5d   ELBO %8.2f%s\n", at[j], elbo_at[j], j ? "" : "   (the encoder's q)");
    printf("  log p(x) ~ IWAE_%d %.2f: ELBO gap %.2f = approximation gap %.2f + amortization gap %.2f\n", K, log_px,
           log_px - elbo_at[0], log_px - elbo_at[NAT - 1], elbo_at[NAT - 1] - elbo_at[0]);

    printf("\n(log-likelihoods in nats per image, negative; -ELBO and -IWAE_k are the matching losses)\n");
    demo_result("elbo", -ev.neg_elbo);
    demo_result("iwae_1", full.mean[0][k_at(&full, 1)]);
    demo_result("iwae_5", full.mean[0][k_at(&full, 5)]);
    demo_result("iwae_50", full.mean[0][k_at(&full, 50)]);
    demo_result("naive_1", full.mean[1][k_at(&full, 1)]);
    demo_result("naive_5", full.mean[1][k_at(&full, 5)]);
    demo_result("naive_50", full.mean[1][k_at(&full, 50)]);
    demo_result("log_px_is", log_px);
    demo_result("log_px_naive", sw.mean[1][sw.nk - 1]);
    demo_result("sd_iwae_50", sw.sd[0][k_at(&sw, 50)]);
    demo_result("sd_naive_50", sw.sd[1][k_at(&sw, 50)]);
    demo_result("elbo_amortized", elbo_at[0]);
    demo_result("elbo_per_image", elbo_at[NAT - 1]);
    demo_result("gap_approximation", log_px - elbo_at[NAT - 1]);
    demo_result("gap_amortization", elbo_at[NAT - 1] - elbo_at[0]);

    gm_params_free(&m.P);
    gm_tape_free(T);
    gm_dataset_free(&train); gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
