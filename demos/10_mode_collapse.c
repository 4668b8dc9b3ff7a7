/* 10_mode_collapse - mode collapse on the ring of 8 and the grid of 25, and packing (PacGAN)
 *
 * What it shows: a GAN trained on a mixture of well separated Gaussians covers some of its
 * modes and drops others. Two GANs, identical but for the discriminator's input, train on
 * each of GM_RING8 and GM_GRID25: the vanilla one (D judges one sample) and the packed one
 * (PacGAN, Lin et al. 2018: D judges m samples at once, all real or all generated, so a
 * generator that repeats itself is easier to tell from data). The networks follow PacGAN's
 * 2-D experiments, narrowed and sped up to fit a short run: G maps z ~ N(0, I_2) through four
 * dense ReLU layers to a point (PacGAN: 400 units, batch norm); D has three dense LeakyReLU
 * layers (PacGAN: maxout); non-saturating loss, one D step per G step, batches of 100
 * (packs), Adam at 2e-3 (PacGAN: 1e-4 for 400 epochs), decayed over the second half.
 * Each run is scored by gm_mode_coverage (the protocol of VEEGAN and PacGAN) on --samples
 * generated points: modes captured, the share of high-quality samples, KL(h || uniform).
 * Lecture: lectures/10-mode-collapse.md
 * Run:     make build/mode_collapse && ./build/mode_collapse          (about a minute)
 *          ./build/mode_collapse --seeds 5      the table over 5 seeds, mean and spread
 * Output:  out/mode_collapse/{ring,grid}_{vanilla,packed}.png   per GAN a strip of 5 scatter
 *                                          plots: its samples over training (first seed)
 *          out/mode_collapse/samples.npy   (4 N, 2) float32: N points each of ring vanilla,
 *                                          ring packed, grid vanilla, grid packed (first seed)
 *          result lines modes_, hq_, kl_ {vanilla, fixed} and the same with _grid
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --steps N      training steps per GAN on the ring (default 6000; the grid gets 2N)\n"
    "  --pack M       samples per discriminator input of the packed GAN (default 2)\n"
    "  --seeds N      train every GAN with N seeds, print mean and spread (default 1)\n"
    "  --samples N    generated points scored and saved per GAN (default 2500)\n"
    "  --lr R         Adam step size of G and D, decayed linearly to 0 over the second half (default 0.002)\n";

enum { H = 128, FRAMES = 5, B = 100 };           /* hidden units, pictures per strip, packs per batch */

/* ---- the two networks -----------------------------------------------------------------------
 * G: z (n,2) -> 4 x [dense H, ReLU] -> dense 2        (PacGAN: H = 400, batch norm before ReLU)
 * D: x (n,2) -> packed (n/m, 2m) -> 3 x [dense H, LeakyReLU 0.2] -> dense 1   one logit per pack
 * PyTorch's initialization (gm_dense_new). In short runs batch norm and PacGAN's N(0, 0.02^2)
 * weights made G slower to leave its first shape, lines between the modes (see the lecture). */
typedef struct gan {
    gm_params PG, PD;
    gm_dense g[5], d[4];
    int m;                                        /* the packing degree, 1: vanilla */
} gan;

static gan gan_new(int m, gm_rng *rng)
{
    gan n;
    int i;
    memset(&n, 0, sizeof n);
    n.m = m;
    for (i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "G%d", i);
        n.g[i] = gm_dense_new(&n.PG, name, i ? H : 2, i < 4 ? H : 2, rng);
    }
    for (i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "D%d", i);
        n.d[i] = gm_dense_new(&n.PD, name, i ? H : 2 * m, i < 3 ? H : 1, rng);
    }
    return n;
}

/* x = G(z) for count fresh z ~ N(0, I): (count, 2) */
static gm_tensor *generate(gm_tape *T, const gan *n, int count, gm_rng *rng)
{
    gm_tensor *h = gm_randn(T, gm_shape2(count, 2), rng);
    int i;
    for (i = 0; i < 4; i++) h = gm_relu(T, gm_dense(T, &n->g[i], h));
    return gm_dense(T, &n->g[4], h);
}

/* D's logits for x (B m, 2): packing is a reshape, m consecutive samples side by side */
static gm_tensor *discriminate(gm_tape *T, const gan *n, gm_tensor *x)
{
    gm_tensor *h = gm_reshape(T, x, gm_shape2(x->shape.d[0] / n->m, 2 * n->m));
    int i;
    for (i = 0; i < 3; i++) h = gm_leaky_relu(T, gm_dense(T, &n->d[i], h), 0.2f);
    return gm_dense(T, &n->d[3], h);
}

/* ---- training: one D step, then one G step, the textbook loop -------------------------------- */
static void train(gan *n, gm_dataset *data, long steps, float lr, float *frames, int N, gm_tape *T, gm_rng *rng,
                  const char *name)
{
    gm_optim *optG = gm_adam_new(&n->PG, lr, 0.5f, 0.999f), *optD = gm_adam_new(&n->PD, lr, 0.5f, 0.999f);
    gm_progress bar = gm_progress_start(name, steps);
    long step, per_epoch = gm_batches(data, B * n->m);
    int f = 0;
    for (step = 0; step < steps; step++) {
        gm_tensor *real, *fake, *loss_d, *loss_g;
        float ld, lg;
        if (step >= steps / 2) optG->lr = optD->lr = lr * 2.0f * (float)(steps - step) / (float)steps;
        if (step % per_epoch == 0) gm_dataset_shuffle(data, rng);
        /* D: minimize -log D(x) - log(1 - D(G(z))), G frozen behind gm_detach */
        gm_tape_reset(T);
        real = gm_batch(T, data, step, B * n->m);
        fake = gm_detach(T, generate(T, n, B * n->m, rng));
        loss_d = gm_gan_d_loss(T, discriminate(T, n, real), discriminate(T, n, fake), GM_GAN_NONSATURATING);
        ld = gm_backward(T, loss_d);
        gm_optim_step(optD);
        /* G: minimize -log D(G(z)); D's gradients are computed but not applied */
        gm_tape_reset(T);
        loss_g = gm_gan_g_loss(T, discriminate(T, n, generate(T, n, B * n->m, rng)), GM_GAN_NONSATURATING);
        lg = gm_backward(T, loss_g);
        gm_optim_step(optG);
        gm_progress_update(&bar, step + 1, "loss D %.3f G %.3f", ld, lg);
        if (frames && (step + 1) * FRAMES >= (long)(f + 1) * steps) {        /* a picture every steps/5 */
            gm_tape_reset(T);
            memcpy(frames + (size_t)f++ * N * 2, generate(T, n, N, rng)->val, (size_t)N * 2 * sizeof(float));
        }
    }
    gm_progress_finish(&bar);
    gm_optim_free(optG); gm_optim_free(optD);
}

/* ---- pictures: per GAN a strip of FRAMES scatter plots ----------------------------------------- */
static void save_strips(demo *d, const char *set, const float *frames, int N, long steps, int m)
{
    gm_plot *p[2 * FRAMES];
    float *x = (float *)malloc((size_t)N * sizeof(float)), *y = (float *)malloc((size_t)N * sizeof(float));
    int r, f, i;
    for (r = 0; r < 2; r++)
        for (f = 0; f < FRAMES; f++) {
            const float *s = frames + ((size_t)r * FRAMES + f) * N * 2;
            char title[96], gan_name[32];
            snprintf(gan_name, sizeof gan_name, r ? "packed m = %d" : "vanilla", m);
            snprintf(title, sizeof title, "%s, %s: step %ld", set, gan_name, (f + 1) * steps / FRAMES);
            for (i = 0; i < N; i++) { x[i] = s[2 * i]; y[i] = s[2 * i + 1]; }
            p[r * FRAMES + f] = gm_plot_new(title, NULL, NULL);
            gm_plot_scatter(p[r * FRAMES + f], NULL, x, y, N);
            gm_plot_equal_aspect(p[r * FRAMES + f], 1);
        }
    for (r = 0; r < 2; r++) {
        char name[64];
        snprintf(name, sizeof name, "%s_%s.png", set, r ? "packed" : "vanilla");
        demo_check(d, gm_plot_save_row(p + r * FRAMES, FRAMES, demo_path(d, name), 320, 320), "saving a strip");
    }
    for (i = 0; i < 2 * FRAMES; i++) gm_plot_free(p[i]);
    free(x); free(y);
}

static void mean_spread(const double *v, int n, double *mean, double *sd)
{
    int i;
    *mean = *sd = 0;
    for (i = 0; i < n; i++) *mean += v[i] / n;
    for (i = 0; i < n && n > 1; i++) *sd += (v[i] - *mean) * (v[i] - *mean) / (n - 1);
    *sd = sqrt(*sd);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "mode_collapse", usage);
    long steps = demo_int(&d, "--steps", d.quick ? 100 : 6000, 1, 10000000);
    int m = demo_int(&d, "--pack", 2, 2, 16), S = demo_int(&d, "--seeds", 1, 1, 100);
    int N = demo_int(&d, "--samples", 2500, 100, 1000000);
    float lr = demo_float(&d, "--lr", 2e-3f, 1e-6, 0.1);
    static const char *set_name[2] = {"ring", "grid"}, *key[2] = {"", "_grid"};
    const gm_toy toy[2] = {GM_RING8, GM_GRID25};
    gm_tape *T = gm_tape_new(0);
    float *frames = (float *)malloc((size_t)2 * FRAMES * N * 2 * sizeof(float));
    float *samples = (float *)malloc((size_t)4 * N * 2 * sizeof(float)), centers[50], sigma;
    double modes[2][2][100], hq[2][2][100], kl[2][2][100];      /* [set][vanilla, packed][seed] */
    int shape[2] = {4 * N, 2}, t, k, s, K;

    printf("data: the built-in ring of 8 and grid of 25 Gaussians (gm_synthetic_2d; --data is not used)\n");
    printf("G: z(2) -> 4 x [dense %d, ReLU] -> 2;  D: 3 x [dense %d, LeakyReLU 0.2] -> 1;  batches of %d packs\n",
           H, H, B);
    printf("Adam %g (0.5, 0.999), linear decay to 0 over the second half; %ld steps on the ring, %ld on the grid;"
           " packed: m = %d\n\n", lr, steps, 2 * steps, m);
    for (s = 0; s < S; s++)
        for (t = 0; t < 2; t++) {
            long n_steps = t ? 2 * steps : steps;
            gm_dataset data;
            K = gm_toy_modes(toy[t], centers, &sigma);
            gm_synthetic_2d(&data, toy[t], 100000, d.seed + s);
            for (k = 0; k < 2; k++) {
                gm_rng rng = gm_rng_new(d.seed + s);   /* both GANs: the same G at the start, the same data */
                gan n = gan_new(k ? m : 1, &rng);
                char name[64];
                gm_modes r;
                snprintf(name, sizeof name, "seed %d %s %s", s + 1, set_name[t], k ? "packed" : "vanilla");
                train(&n, &data, n_steps, lr, s == 0 ? frames + (size_t)k * FRAMES * N * 2 : NULL, N, T, &rng, name);
                gm_tape_reset(T);
                {
                    gm_tensor *x = generate(T, &n, N, &rng);
                    r = gm_mode_coverage(x->val, N, centers, K, sigma, NULL);
                    if (s == 0) memcpy(samples + (size_t)(2 * t + k) * N * 2, x->val, (size_t)N * 2 * sizeof(float));
                }
                modes[t][k][s] = r.captured; hq[t][k][s] = r.hq; kl[t][k][s] = r.kl;
                printf("seed %3d  %-4s %-8s modes %2d / %-2d  high quality %5.1f %%  KL %.3f\n", s + 1, set_name[t],
                       k ? "packed" : "vanilla", r.captured, K, 100 * r.hq, r.kl);
                gm_params_free(&n.PG); gm_params_free(&n.PD);
            }
            if (s == 0) save_strips(&d, set_name[t], frames, N, n_steps, m);
            gm_dataset_free(&data);
        }
    printf("\nover %d seed(s): mean (standard deviation); a mode counts with >= %d of %d samples within 3 sigma\n",
           S, GM_MODE_MIN_SAMPLES, N);
    printf("%-5s %-14s %16s %18s %16s\n", "data", "GAN", "modes captured", "high quality %", "KL(h || u)");
    for (t = 0; t < 2; t++)
        for (k = 0; k < 2; k++) {
            double a, b, c, e, f, g;
            char gan_name[32];
            mean_spread(modes[t][k], S, &a, &b); mean_spread(hq[t][k], S, &c, &e); mean_spread(kl[t][k], S, &f, &g);
            snprintf(gan_name, sizeof gan_name, k ? "packed m = %d" : "vanilla", m);
            printf("%-5s %-14s %7.1f (%4.1f) / %-2d %10.1f (%4.1f) %10.3f (%.3f)\n", set_name[t], gan_name, a, b,
                   t ? 25 : 8, 100 * c, 100 * e, f, g);
        }
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), samples, 2, shape), "saving samples.npy");
    for (t = 0; t < 2; t++)
        for (k = 0; k < 2; k++) {
            double mean, sd;
            char name[64];
            const char *which = k ? "fixed" : "vanilla";
            mean_spread(modes[t][k], S, &mean, &sd); snprintf(name, sizeof name, "modes_%s%s", which, key[t]); demo_result(name, mean);
            mean_spread(hq[t][k], S, &mean, &sd);    snprintf(name, sizeof name, "hq_%s%s", which, key[t]);    demo_result(name, mean);
            mean_spread(kl[t][k], S, &mean, &sd);    snprintf(name, sizeof name, "kl_%s%s", which, key[t]);    demo_result(name, mean);
        }
    free(frames); free(samples);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
