/* 10_mode_collapse - mode collapse on the ring of 8 and the grid of 25, packing (PacGAN), and
 * collapse on images counted by a classifier
 *
 * What it shows: a GAN trained on a mixture of well separated Gaussians covers some of its
 * modes and drops others. Two GANs, identical but for the discriminator's input, train on
 * each of GM_RING8 and GM_GRID25: the vanilla one (D judges one sample) and the packed one
 * (PacGAN, Lin et al. 2018: D judges m samples at once, all real or all generated, so a
 * generator that repeats itself is easier to tell from data). The networks follow PacGAN's
 * 2-D experiments, narrowed and sped up to fit a short run: G maps z ~ N(0, I_2) through four
 * dense ReLU layers to a point (PacGAN: 400 units, batch norm); D has three dense LeakyReLU
 * layers (PacGAN: maxout); non-saturating loss, one D step per G step, batches of 100 packs,
 * Adam at 1e-3 with betas (0.5, 0.9) (PacGAN: 1e-4 for 400 epochs), decayed over the second
 * half; the grid, with three times the modes, gets three times the steps. Each run is scored
 * by gm_mode_coverage (the protocol of VEEGAN and PacGAN) on --samples generated points:
 * modes captured, the share of high-quality samples, KL(h || u).
 * Then the same GAN code, wider, on Fashion-MNIST (or the built-in shapes), twice: healthy,
 * one G step per D step, and collapsed, five G steps per D step, so that D lags and G runs
 * to wherever D currently scores highest. genmod's classifier (lecture 10, demos/classifier.h)
 * names the class of each sample; the classes found are scored like modes (gm_mode_histogram).
 * Lecture: lectures/10-mode-collapse.md
 * Run:     make build/mode_collapse && ./build/mode_collapse          (under two minutes on two
 *                                          cores; the first run also trains the classifier)
 *          ./build/mode_collapse --seeds 5      the tables over 5 seeds, mean and spread
 * Output:  out/mode_collapse/{ring,grid}_{vanilla,packed}.png   per GAN a strip of 5 scatter
 *                                          plots: its samples over training (first seed)
 *          out/mode_collapse/samples.npy   (4 N, 2) float32: N points each of ring vanilla,
 *                                          ring packed, grid vanilla, grid packed (first seed)
 *          out/mode_collapse/images_{healthy,collapsed}.png   64 samples of each image GAN
 *          result lines modes_, hq_, kl_ {vanilla, fixed} and the same with _grid;
 *          classes_ and kl_classes_ {healthy, collapsed}
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "classifier.h"
#include <sys/wait.h>

static const char *usage =
    "  --steps N      training steps per GAN on the ring (default 12000; the grid gets 3N)\n"
    "  --pack M       samples per discriminator input of the packed GAN (default 2)\n"
    "  --seeds N      train every GAN with N seeds, print mean and spread (default 1)\n"
    "  --samples N    generated points (and images) scored and saved per GAN (default 2500)\n"
    "  --lr R         Adam step size of G and D on the 2-D sets, decayed linearly to 0 over the\n"
    "                 second half (default 0.001)\n"
    "  --rounds N     rounds of one D step and 1 or 5 G steps per image GAN (default 1500)\n"
    CLASSIFIER_USAGE;

enum { FRAMES = 5, B = 100, B_IMAGES = 64 };       /* pictures per strip, packs per batch */

/* ---- one GAN code for the points and the images ---------------------------------------------
 * G: z (n,Z) -> (ng - 1) x [dense H, ReLU] -> dense X, then tanh for images
 * D: x (n,X) -> packed (n/m, X m) -> (nd - 1) x [dense H, LeakyReLU 0.2] -> dense 1, a logit per pack
 * On the plane: Z = X = 2, H = 128, ng = 5, nd = 4 (PacGAN: H = 400, batch norm in G, maxout
 * in D; in short runs batch norm and PacGAN's N(0, 0.02^2) weights made G slower to leave its
 * first shape, lines between the modes). On images: Z = 64, X = 784, H = 256, ng = nd = 2.
 * PyTorch's initialization (gm_dense_new). */
typedef struct gan {
    gm_params PG, PD;
    gm_dense g[5], d[4];
    int ng, nd, z, images;
    int m;                                        /* the packing degree, 1: vanilla */
} gan;

static gan gan_new(int z, int x, int hidden, int ng, int nd, int m, gm_rng *rng)
{
    gan n;
    int i;
    memset(&n, 0, sizeof n);
    n.ng = ng; n.nd = nd; n.z = z; n.m = m; n.images = x > 2;
    for (i = 0; i < ng; i++) {
        char name[32];
        snprintf(name, sizeof name, "G%d", i);
        n.g[i] = gm_dense_new(&n.PG, name, i ? hidden : z, i < ng - 1 ? hidden : x, rng);
    }
    for (i = 0; i < nd; i++) {
        char name[32];
        snprintf(name, sizeof name, "D%d", i);
        n.d[i] = gm_dense_new(&n.PD, name, i ? hidden : x * m, i < nd - 1 ? hidden : 1, rng);
    }
    return n;
}

/* x = G(z) for count fresh z ~ N(0, I): (count, X) */
static gm_tensor *generate(gm_tape *T, const gan *n, int count, gm_rng *rng)
{
    gm_tensor *h = gm_randn(T, gm_shape2(count, n->z), rng);
    int i;
    for (i = 0; i < n->ng - 1; i++) h = gm_relu(T, gm_dense(T, &n->g[i], h));
    h = gm_dense(T, &n->g[n->ng - 1], h);
    return n->images ? gm_tanh(T, h) : h;
}

/* D's logits for x (B m, X): packing is a reshape, m consecutive samples side by side */
static gm_tensor *discriminate(gm_tape *T, const gan *n, gm_tensor *x)
{
    gm_tensor *h = gm_reshape(T, x, gm_shape2(x->shape.d[0] / n->m, x->size / x->shape.d[0] * n->m));
    int i;
    for (i = 0; i < n->nd - 1; i++) h = gm_leaky_relu(T, gm_dense(T, &n->d[i], h), 0.2f);
    return gm_dense(T, &n->d[n->nd - 1], h);
}

/* ---- training: one D step, then g G steps, the textbook loop ----------------------------------
 * batch: samples per step (packs times m). Adam with betas (0.5, beta2). decay: lr falls
 * linearly to 0 over the second half.
 * frames, if not NULL, receives FRAMES times N samples, one set every steps/FRAMES. name: the
 * progress bar's, NULL for none. */
static void train(gan *n, gm_dataset *data, long steps, int batch, int g, float lr, float beta2, int decay, float *frames,
                  int N, gm_tape *T, gm_rng *rng, const char *name)
{
    gm_optim *optG = gm_adam_new(&n->PG, lr, 0.5f, beta2), *optD = gm_adam_new(&n->PD, lr, 0.5f, beta2);
    gm_progress bar = gm_progress_start(name ? name : "", steps);
    long step, per_epoch = data->n / batch;          /* whole batches only, so packs fill up */
    int f = 0, j;
    for (step = 0; step < steps; step++) {
        gm_tensor *real, *fake, *loss_d, *loss_g = NULL;
        float ld, lg = 0;
        if (decay && step >= steps / 2) optG->lr = optD->lr = lr * 2.0f * (float)(steps - step) / (float)steps;
        if (step % per_epoch == 0) gm_dataset_shuffle(data, rng);
        /* D: minimize -log D(x) - log(1 - D(G(z))), G frozen behind gm_detach */
        gm_tape_reset(T);
        real = gm_batch(T, data, step % per_epoch, batch);                 /* x ~ p_data    */
        fake = gm_detach(T, generate(T, n, batch, rng));
        loss_d = gm_gan_d_loss(T, discriminate(T, n, real), discriminate(T, n, fake), GM_GAN_NONSATURATING);
        ld = gm_backward(T, loss_d);
        gm_optim_step(optD);
        /* G: minimize -log D(G(z)); D's gradients are computed but not applied */
        for (j = 0; j < g; j++) {
            gm_tape_reset(T);
            loss_g = gm_gan_g_loss(T, discriminate(T, n, generate(T, n, batch, rng)), GM_GAN_NONSATURATING);
            lg = gm_backward(T, loss_g);
            gm_optim_step(optG);
        }
        if (name) gm_progress_update(&bar, step + 1, "loss D %.3f G %.3f", ld, lg);
        if (frames && (step + 1) * FRAMES >= (long)(f + 1) * steps) {        /* a picture every steps/5 */
            gm_tape_reset(T);
            memcpy(frames + (size_t)f++ * N * 2, generate(T, n, N, rng)->val, (size_t)N * 2 * sizeof(float));
        }
    }
    if (name) gm_progress_finish(&bar);
    gm_optim_free(optG); gm_optim_free(optD);
}

/* ---- one GAN from start to end, and two at once -------------------------------------------------
 * A job trains one GAN from its own seed, by the recipe it holds (train's arguments), and
 * writes to out: with frames, FRAMES sets of N samples taken during training, then N samples
 * of the trained G (N X floats). */
typedef struct job {
    gm_dataset *data;
    long steps;
    int images, m, g, N, frames;     /* images: the image GAN; m: packing; g: G steps per D step */
    int batch, decay;                /* samples per step; lr decayed over the second half */
    float lr, beta2;                 /* Adam's step size and (0.5, beta2) */
    uint64_t seed;
    const char *name;
    int bar;                         /* show a progress bar */
} job;

static size_t job_floats(const job *j)
{
    return j->images ? (size_t)j->N * 784 : (size_t)(j->frames ? FRAMES + 1 : 1) * j->N * 2;
}

static void run(const job *j, float *out)
{
    gm_rng rng = gm_rng_new(j->seed);   /* a pair of GANs: the same G at the start, the same data order */
    gm_tape *T = gm_tape_new(0);
    gan n = j->images ? gan_new(64, 784, 256, 2, 2, 1, &rng) : gan_new(2, 2, 128, 5, 4, j->m, &rng);
    size_t last = j->frames ? (size_t)FRAMES * j->N * 2 : 0;
    if (!T) { fprintf(stderr, "mode_collapse: making a tape failed: %s\n", gm_last_error()); exit(1); }
    train(&n, j->data, j->steps, j->batch, j->g, j->lr, j->beta2, j->decay, j->frames ? out : NULL, j->N, T, &rng,
          j->bar ? j->name : NULL);
    gm_tape_reset(T);
    memcpy(out + last, generate(T, &n, j->N, &rng)->val, (job_floats(j) - last) * sizeof(float));
    gm_params_free(&n.PG); gm_params_free(&n.PD);
    gm_tape_free(T);
}

/* The jobs of two lists at once, on two cores: list b in a child process (fork), which sends
 * its outs back through a pipe when it is done, list a here. Each job draws only from its own
 * seed, so the numbers are exactly those of running every job one after the other, which is
 * what happens when no second process can be made. */
static void side_by_side(const job *a, float *const *out_a, int na, const job *b, float *const *out_b, int nb)
{
    int fd[2], status = 0, i;
    pid_t child = -1;
    size_t got = 0, want = 0;
    fflush(stdout); fflush(stderr);               /* nothing buffered gets written twice */
    if (pipe(fd) == 0 && (child = fork()) < 0) { close(fd[0]); close(fd[1]); }
    if (child == 0) {                             /* the child: list b, then its outs down the pipe */
        close(fd[0]);
        for (i = 0; i < nb; i++) run(&b[i], out_b[i]);
        for (i = 0; i < nb; i++) {
            size_t bytes = job_floats(&b[i]) * sizeof(float), done = 0;
            while (done < bytes) {
                ssize_t w = write(fd[1], (char *)out_b[i] + done, bytes - done);
                if (w <= 0) _exit(1);
                done += (size_t)w;
            }
        }
        _exit(0);
    }
    for (i = 0; i < na; i++) run(&a[i], out_a[i]);
    if (child < 0) { for (i = 0; i < nb; i++) run(&b[i], out_b[i]); return; }
    close(fd[1]);
    for (i = 0; i < nb; i++) {
        size_t bytes = job_floats(&b[i]) * sizeof(float), done = 0;
        ssize_t r = 1;
        while (done < bytes && (r = read(fd[0], (char *)out_b[i] + done, bytes - done)) > 0) done += (size_t)r;
        got += done; want += bytes;
    }
    close(fd[0]);
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < want) {
        fprintf(stderr, "mode_collapse: a GAN trained in the second process failed\n");
        exit(1);
    }
}

/* ---- pictures: per GAN a strip of FRAMES scatter plots ----------------------------------------- */
static void save_strips(demo *d, const char *set, float *const frames[2], int N, long steps, int m)
{
    gm_plot *p[2 * FRAMES];
    float *x = (float *)malloc((size_t)N * sizeof(float)), *y = (float *)malloc((size_t)N * sizeof(float));
    int r, f, i;
    for (r = 0; r < 2; r++)
        for (f = 0; f < FRAMES; f++) {
            const float *s = frames[r] + (size_t)f * N * 2;
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

/* ---- on images: the classes genmod's classifier sees in N samples ------------------------------
 * x: N images in tanh's [-1, 1], mapped to [0, 1] here. Each sample counts for its most
 * probable class; the counts are scored like modes. The first 64 samples go to png. */
static gm_modes classes_found(demo *d, classifier *c, float *x, int N, int *counts, const char *png)
{
    float *p = (float *)malloc((size_t)N * CLASSIFIER_CLASSES * sizeof(float));
    int i;
    demo_check(d, p != NULL, "allocating the class probabilities");
    for (i = 0; i < N * 784; i++) x[i] = 0.5f * (x[i] + 1.0f);
    if (png) demo_check(d, gm_save_image_grid(demo_path(d, png), x, 64, 1, 28, 28, 8, 0, 1), "saving a sample grid");
    classifier_embed(c, x, N, NULL, p);
    classifier_count_top(p, N, counts);
    free(p);
    return gm_mode_histogram(counts, CLASSIFIER_CLASSES, N);
}

static void mean_spread(const double *v, int n, double *mean, double *sd)
{
    int i;
    *mean = *sd = 0;
    for (i = 0; i < n; i++) *mean += v[i] / n;
    for (i = 0; i < n && n > 1; i++) *sd += (v[i] - *mean) * (v[i] - *mean) / (n - 1);
    *sd = sqrt(*sd);
}

/* a row of the table: mean (standard deviation) over S seeds of the modes (of K), the
 * high-quality share in % (none for images) and the KL */
static void report(const char *data, const char *gan_name, const double *modes, const double *hq, const double *kl,
                   int S, int K)
{
    double a, b, c, e, f, g;
    mean_spread(modes, S, &a, &b); mean_spread(kl, S, &f, &g);
    printf("%-8s %-14s %7.1f (%4.1f) / %-2d", data, gan_name, a, b, K);
    if (hq) { mean_spread(hq, S, &c, &e); printf(" %10.1f (%4.1f)", 100 * c, 100 * e); }
    else printf(" %17s", "");
    printf(" %10.3f (%.3f)\n", f, g);
}

/* result line key_which_suffix: the mean over S seeds */
static void result_mean(const char *key, const char *which, const char *suffix, const double *v, int S)
{
    double mean, sd;
    char name[64];
    mean_spread(v, S, &mean, &sd);
    snprintf(name, sizeof name, "%s_%s%s", key, which, suffix);
    demo_result(name, mean);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "mode_collapse", usage);
    long steps = demo_int(&d, "--steps", d.quick ? 100 : 12000, 1, 10000000);
    int m = demo_int(&d, "--pack", 2, 2, 16), S = demo_int(&d, "--seeds", 1, 1, 100);
    int N = demo_int(&d, "--samples", 2500, 100, 1000000);
    int rounds = demo_int(&d, "--rounds", d.quick ? 20 : 1500, 1, 1000000);
    float lr = demo_float(&d, "--lr", 1e-3f, 1e-6, 0.1);
    static const char *set_name[2] = {"ring", "grid"}, *key[2] = {"", "_grid"}, *img_name[2] = {"healthy", "collapsed"};
    const gm_toy toy[2] = {GM_RING8, GM_GRID25};
    float *out[6], *samples = (float *)malloc((size_t)4 * N * 2 * sizeof(float)), centers[50], sigma;
    double modes[3][2][100], hq[2][2][100], kl[3][2][100];  /* [ring, grid, images][vanilla/healthy, packed/collapsed][seed] */
    int shape[2] = {4 * N, 2}, counts[2][CLASSIFIER_CLASSES], t, k, s, K, i;
    gm_dataset images, test;
    classifier c;

    setenv("GM_THREADS", "1", 0);   /* one core per GAN, two GANs at once (side_by_side); unless set */
    for (i = 0; i < 6; i++) {       /* what each GAN of a seed leaves: frames and points, or images */
        out[i] = (float *)malloc((size_t)N * (i < 4 ? (FRAMES + 1) * 2 : 784) * sizeof(float));
        demo_check(&d, out[i] != NULL, "allocating the samples");
    }
    demo_check(&d, samples != NULL, "allocating the samples");
    classifier_need_file(&d);
    demo_images(&d, &images, &test, 2000);
    for (i = 0; i < images.n * images.d; i++) images.x[i] = 2.0f * images.x[i] - 1.0f;     /* tanh's range */
    printf("points: the built-in ring of 8 and grid of 25 Gaussians (gm_synthetic_2d)\n");
    printf("on the plane, G: z(2) -> 4 x [dense 128, ReLU] -> 2;  D: 3 x [dense 128, LeakyReLU 0.2] -> 1;  "
           "batches of %d packs\n", B);
    printf("Adam %g (0.5, 0.9), linear decay to 0 over the second half; %ld steps on the ring, %ld on the grid;"
           " packed: m = %d\n", lr, steps, 3 * steps, m);
    printf("on images, G: z(64) -> dense 256, ReLU -> 784, tanh;  D: dense 256, LeakyReLU 0.2 -> 1;  batches of %d;"
           " Adam 0.005 (0.5, 0.999);\n%d rounds of one D step and 1 G step (healthy) or 5 (collapsed)\n\n",
           B_IMAGES, rounds);
    classifier_get(&d, &c, classifier_is_builtin(&images));
    for (s = 0; s < S; s++) {
        /* six GANs per seed: [ring, grid, images][vanilla or healthy, packed or collapsed]. The
         * packed ones here (they take the longest, and show their progress), the other four in
         * a second process: both take about as long. */
        gm_dataset data[2];
        job J[6];
        char name[6][64];
        uint64_t seed = d.seed + s;
        int at[3][2] = {{2, 0}, {3, 1}, {4, 5}};           /* where GAN [t][k] is in J */
        for (t = 0; t < 2; t++) gm_synthetic_2d(&data[t], toy[t], 100000, seed);
        for (t = 0; t < 3; t++)
            for (k = 0; k < 2; k++) {
                int slot = at[t][k];
                snprintf(name[slot], sizeof name[slot], "seed %d %s %s", s + 1, t < 2 ? set_name[t] : "images",
                         t < 2 ? (k ? "packed" : "vanilla") : img_name[k]);
                if (t < 2) J[slot] = (job){.data = &data[t], .steps = t ? 3 * steps : steps, .m = k ? m : 1, .g = 1,
                                        .N = N, .frames = s == 0, .batch = B * (k ? m : 1), .decay = 1, .lr = lr,
                                        .beta2 = 0.9f, .seed = seed, .name = name[slot], .bar = k};
                else J[slot] = (job){.data = &images, .steps = rounds, .images = 1, .m = 1, .g = k ? 5 : 1, .N = N,
                                  .batch = B_IMAGES, .lr = 5e-3f, .beta2 = 0.999f, .seed = seed, .name = name[slot]};
            }
        side_by_side(J, out, 2, J + 2, out + 2, 4);
        for (t = 0; t < 2; t++) {
            float *frames[2];
            K = gm_toy_modes(toy[t], centers, &sigma);
            for (k = 0; k < 2; k++) {
                const float *x = (frames[k] = out[at[t][k]]) + (s == 0 ? (size_t)FRAMES * N * 2 : 0);
                gm_modes r = gm_mode_coverage(x, N, centers, K, sigma, NULL);
                if (s == 0) memcpy(samples + (size_t)(2 * t + k) * N * 2, x, (size_t)N * 2 * sizeof(float));
                modes[t][k][s] = r.captured; hq[t][k][s] = r.hq; kl[t][k][s] = r.kl;
                printf("seed %3d  %-6s %-9s modes %2d / %-2d  high quality %5.1f %%  KL %.3f\n", s + 1, set_name[t],
                       k ? "packed" : "vanilla", r.captured, K, 100 * r.hq, r.kl);
            }
            if (s == 0) save_strips(&d, set_name[t], frames, N, J[at[t][0]].steps, m);
            gm_dataset_free(&data[t]);
        }
        for (k = 0; k < 2; k++) {
            char png[64];
            gm_modes r;
            snprintf(png, sizeof png, "images_%s.png", img_name[k]);
            r = classes_found(&d, &c, out[at[2][k]], N, counts[k], s == 0 ? png : NULL);
            modes[2][k][s] = r.captured; kl[2][k][s] = r.kl;
            printf("seed %3d  images %-9s classes %2d / 10  KL %.3f\n", s + 1, img_name[k], r.captured, r.kl);
        }
        if (s == 0) {
            printf("\nseed 1: the %d samples of each image GAN by the classifier's most probable class\n", N);
            printf("  %-16s %8s %10s\n", "class", "healthy", "collapsed");
            for (k = 0; k < CLASSIFIER_CLASSES; k++) {
                char label[24];
                snprintf(label, sizeof label, "class %d", k);
                printf("  %-16s %8d %10d\n", images.class_names ? images.class_names[k] : label, counts[0][k], counts[1][k]);
            }
            printf("\n");
        }
    }
    printf("\nover %d seed(s): mean (standard deviation); a mode or class counts with >= %d of its %d samples"
           " (points: within 3 sigma)\n", S, GM_MODE_MIN_SAMPLES, N);
    printf("%-8s %-14s %16s %18s %16s\n", "data", "GAN", "modes captured", "high quality %", "KL(h || u)");
    for (t = 0; t < 2; t++)
        for (k = 0; k < 2; k++) {
            char gan_name[32];
            snprintf(gan_name, sizeof gan_name, k ? "packed m = %d" : "vanilla", m);
            report(set_name[t], gan_name, modes[t][k], hq[t][k], kl[t][k], S, t ? 25 : 8);
        }
    for (k = 0; k < 2; k++) report("images", img_name[k], modes[2][k], NULL, kl[2][k], S, 10);
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), samples, 2, shape), "saving samples.npy");
    for (t = 0; t < 2; t++)
        for (k = 0; k < 2; k++) {
            const char *which = k ? "fixed" : "vanilla";
            result_mean("modes", which, key[t], modes[t][k], S);
            result_mean("hq", which, key[t], hq[t][k], S);
            result_mean("kl", which, key[t], kl[t][k], S);
        }
    for (k = 0; k < 2; k++) {
        result_mean("classes", img_name[k], "", modes[2][k], S);
        result_mean("kl_classes", img_name[k], "", kl[2][k], S);
    }
    for (i = 0; i < 6; i++) free(out[i]);
    free(samples);
    classifier_free(&c);
    gm_dataset_free(&images); gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
