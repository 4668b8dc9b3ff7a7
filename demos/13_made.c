/* 13_made - MADE: an autoregressive model of binary garments, its exact likelihood,
 *           samples drawn pixel by pixel, and an ensemble of orderings
 *
 * What it shows: a masked autoencoder for distribution estimation (Germain, Gregor, Murray
 * & Larochelle 2015) factorizes p(x) = prod_d p(x_d | x_<d) over the 784 pixels and gives
 * every factor in one pass of a network, 784 -> 500 ReLU -> 784 logits, whose weights are
 * masked so that logit d sees only the pixels before d (genmod.h: // >>made). So -log p(x)
 * is exact, a sum of binary cross-entropies: no bound, no sampling. The demo
 *   1. trains one MADE (the raster order, one connectivity) and prints the exact test
 *      -log p(x) after every epoch (nats per image);
 *   2. draws 64 samples pixel by pixel, one network pass per pixel;
 *   3. trains the same network over K masks, each a random ordering and connectivity (one
 *      per step, in turn), and scores the test set with one mask and with the ensemble:
 *      log p(x) = log (1/K) sum_k p_k(x), a mixture of K autoregressive models.
 * The data are binarized once, the same for every --seed: pixel d of an image of grey
 * levels g is b_d = [u_d < g_d], so P(b_d = 1) = g_d, with u_d ~ U[0,1) drawn by gm_rng
 * seeded 0 for the training images and 1 for the test images, image by image and pixel by
 * pixel in file order (bench/ref/made_train.py draws the same numbers).
 * Training: Adam 2e-3 (runs made_lr1 and made_lr3 of lectures/figures/runs.txt try 1e-3
 * and 3e-3), batch 100, 5 epochs.
 * bench/ref/made_train.py is the PyTorch twin.
 * Lecture: lectures/13-autoregressive.md
 * Run:     make build/made && ./build/made             (run time: see lecture 13)
 * Output:  out/made/data.png         test images: grey levels, and their binarization below
 *          out/made/samples.png      64 samples of the one-mask model (raster order)
 *          out/made/orders.png       rows: 8 samples of the K-mask model under its masks 1..4
 *          out/made/samples.npy      the 64 samples (64,1,28,28) of 0 and 1
 *          result lines, nats per test image: test_nll (one mask), test_nll_rebinarized (the
 *          same model on the test images binarized again, seed 2: what the draw moves),
 *          test_nll_masks_one and test_nll_masks_ensemble (the K-mask model with its first
 *          mask, and the ensemble of all K)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --epochs N     passes over the training set (default 5; 1 with --quick)\n"
    "  --hidden H     hidden units (default 500)\n"
    "  --masks K      masks of the second model and its ensemble, 2..64 (default 8)\n"
    "  --lr R         Adam step size (default 0.002)\n";

enum { D = 784, B = 100, N_SAMPLES = 64, ROWS = 4, COLS = 8 };

/* ---- the data: one fixed stochastic binarization ------------------------------------------- */
static void binarize(float *x, size_t n, uint64_t seed)
{
    gm_rng r = gm_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) x[i] = gm_rng_uniform(&r) < x[i] ? 1.0f : 0.0f;
}

/* ---- the model: two masked layers ------------------------------------------------------------ */
typedef struct made {
    gm_params P;
    gm_masked_dense l[2];       /* 784 -> H, H -> 784 */
    int order[D];               /* the places m(d) of the current connectivity */
} made;

static made made_new(int H, gm_rng *rng)
{
    made m;
    memset(&m, 0, sizeof m);
    m.l[0] = gm_masked_dense_new(&m.P, "l0", D, H, rng);
    m.l[1] = gm_masked_dense_new(&m.P, "l1", H, D, rng);
    return m;
}

/* x (B,784) of 0 and 1 -> logits (B,784), l_d a function of the x_j with m(j) < m(d) only */
static gm_tensor *made_logits(gm_tape *T, void *model, gm_tensor *x)
{
    made *m = (made *)model;
    return gm_masked_dense(T, &m->l[1], gm_relu(T, gm_masked_dense(T, &m->l[0], x)));
}

/* -log p(x) of every image of ds under the current mask, into nll (n values); returns the mean */
static double test_nll(gm_tape *T, made *m, const gm_dataset *ds, double *nll)
{
    double sum = 0;
    int i, b, was = gm_tape_inference(T, 1);
    for (i = 0; i < gm_batches(ds, 500); i++) {
        gm_tensor *x, *nb;
        gm_tape_reset(T);
        x = gm_flatten(T, gm_batch(T, ds, i, 500));              /* (B,784) */
        nb = gm_bernoulli_nll(T, made_logits(T, m, x), x);        /* -log p(x) = sum_d BCE, exact */
        for (b = 0; b < nb->size; b++) { sum += nb->val[b]; if (nll) nll[i * 500 + b] = nb->val[b]; }
    }
    gm_tape_inference(T, was);
    return sum / ds->n;
}

/* Train for `epochs` epochs; K = 1: the mask made from seed, K > 1: step s uses the mask of
 * seed + s mod K (a random ordering each). After every epoch, the test -log p(x) with the
 * first mask. */
static void train(made *m, int K, uint64_t seed, gm_dataset *train_set, const gm_dataset *test, int epochs,
                  float lr, gm_tape *T, gm_rng *rng, const char *name)
{
    gm_optim *opt = gm_adam_new(&m->P, lr, 0.9f, 0.999f);
    long steps = (long)epochs * gm_batches(train_set, B), step;
    gm_progress bar = gm_progress_start(name, steps);
    double sum = 0;
    gm_made_connect(m->l, 2, m->order, K > 1, seed);
    for (step = 0; step < steps; step++) {
        gm_tensor *x, *loss;
        float l;
        if (step % gm_batches(train_set, B) == 0) { gm_dataset_shuffle(train_set, rng); sum = 0; }
        if (K > 1) gm_made_connect(m->l, 2, m->order, 1, seed + (uint64_t)(step % K));
        gm_tape_reset(T);
        x = gm_flatten(T, gm_batch(T, train_set, step, B));
        loss = gm_mean(T, gm_bernoulli_nll(T, made_logits(T, m, x), x));   /* -log p(x), batch mean */
        l = gm_backward(T, loss);
        gm_optim_step(opt);
        sum += l * x->shape.d[0];
        gm_progress_update(&bar, step + 1, "nll %.2f", l);
        if ((step + 1) % gm_batches(train_set, B) == 0) {
            gm_made_connect(m->l, 2, m->order, K > 1, seed);
            printf("%-9s epoch %2ld   train -log p(x) %7.2f   test -log p(x) %7.2f%s\n", name,
                   (step + 1) / gm_batches(train_set, B), sum / train_set->n, test_nll(T, m, test, NULL),
                   K > 1 ? " (mask 1 of K)" : "");
        }
    }
    gm_progress_finish(&bar);
    gm_optim_free(opt);
}

/* The ensemble: log p(x) = log (1/K) sum_k p_k(x) per image, from the K masks' -log p_k(x);
 * prints each mask's mean and returns the ensemble's mean -log p(x). */
static double ensemble_nll(gm_tape *T, made *m, int K, uint64_t seed, const gm_dataset *test)
{
    double *nll = (double *)malloc(sizeof(double) * (size_t)test->n * K), sum = 0;
    int k, i;
    if (!nll) { fprintf(stderr, "made: out of memory\n"); exit(1); }
    printf("each mask alone, -log p_k(x):");
    for (k = 0; k < K; k++) {
        gm_made_connect(m->l, 2, m->order, 1, seed + (uint64_t)k);
        printf(" %.2f", test_nll(T, m, test, nll + (size_t)k * test->n));
    }
    printf("\n");
    for (i = 0; i < test->n; i++) {                /* log-mean-exp of log p_k = -nll_k, from the largest */
        double top = -nll[i], acc = 0;
        for (k = 1; k < K; k++) if (-nll[(size_t)k * test->n + i] > top) top = -nll[(size_t)k * test->n + i];
        for (k = 0; k < K; k++) acc += exp(-nll[(size_t)k * test->n + i] - top);
        sum -= top + log(acc / K);
    }
    free(nll);
    gm_made_connect(m->l, 2, m->order, 1, seed);
    return sum / test->n;
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "made", usage);
    int epochs = demo_epochs(&d, d.quick ? 1 : 5), H = demo_int(&d, "--hidden", 500, 1, 8192);
    int K = demo_int(&d, "--masks", 8, 2, 64), shape[4] = {N_SAMPLES, 1, 28, 28}, k;
    float lr = demo_float(&d, "--lr", 0.002f, 1e-6, 1);
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    gm_dataset train_set, test;
    float *x = (float *)malloc(sizeof(float) * N_SAMPLES * D), grid[2 * COLS * D], *again, *swap;
    made one, many;
    double nll_one, nll_again, nll_mask, nll_ens, ones = 0;
    demo_check(&d, T && x, "allocation");

    /* ---- data ----------------------------------------------------------------------------- */
    demo_images(&d, &train_set, &test, 2000);
    memcpy(grid, test.x, sizeof(float) * COLS * D);               /* grey levels, then binary */
    again = (float *)malloc(sizeof(float) * (size_t)test.n * D);
    demo_check(&d, again != NULL, "allocation");
    memcpy(again, test.x, sizeof(float) * (size_t)test.n * D);
    binarize(train_set.x, (size_t)train_set.n * D, 0);
    binarize(test.x, (size_t)test.n * D, 1);
    binarize(again, (size_t)test.n * D, 2);          /* the test images binarized once more */
    memcpy(grid + COLS * D, test.x, sizeof(float) * COLS * D);
    {
        static const char *const rows[2] = {"grey levels", "binarized"};
        gm_grid_labels labels = {NULL, rows, NULL};
        demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "data.png"), grid, 2 * COLS, 1, 28, 28, COLS, 0, 1,
                                                  &labels), "saving");
    }
    for (k = 0; k < test.n * D; k++) ones += test.x[k];
    printf("binarized once: b_d = [u_d < g_d], u_d from gm_rng seed 0 (train) and 1 (test); %.4f of the "
           "test pixels are 1\n", ones / ((double)test.n * D));

    /* ---- model 1: one mask, the raster order ------------------------------------------- */
    one = made_new(H, &rng);
    many = made_new(H, &rng);
    printf("MADE %d -> %d ReLU -> %d, %ld parameters; Adam %g, batch %d, %d epoch%s of %d images\n\n", D, H,
           D, gm_params_count(&one.P), lr, B, epochs, epochs > 1 ? "s" : "", train_set.n);
    train(&one, 1, d.seed, &train_set, &test, epochs, lr, T, &rng, "one mask");
    nll_one = test_nll(T, &one, &test, NULL);
    swap = test.x; test.x = again;                 /* the other binarization of the same images */
    nll_again = test_nll(T, &one, &test, NULL);
    test.x = swap;

    /* ---- samples, pixel by pixel: 784 passes of the network -------------------------- */
    gm_made_sample(made_logits, &one, T, one.order, N_SAMPLES, D, x, &rng);
    demo_check(&d, gm_save_image_grid(demo_path(&d, "samples.png"), x, N_SAMPLES, 1, 28, 28, 8, 0, 1), "saving");
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), x, 4, shape), "saving samples.npy");

    /* ---- model 2: K masks, random orderings; one mask against the ensemble ------------ */
    printf("\n");
    train(&many, K, d.seed + 1000, &train_set, &test, epochs, lr, T, &rng, "K masks");
    nll_mask = test_nll(T, &many, &test, NULL);
    nll_ens = ensemble_nll(T, &many, K, d.seed + 1000, &test);
    for (k = 0; k < ROWS; k++) {                   /* COLS samples under each of the first orderings */
        gm_made_connect(many.l, 2, many.order, 1, d.seed + 1000 + (uint64_t)k);
        gm_made_sample(made_logits, &many, T, many.order, COLS, D, x + (size_t)k * COLS * D, &rng);
    }
    demo_check(&d, gm_save_image_grid(demo_path(&d, "orders.png"), x, ROWS * COLS, 1, 28, 28, COLS, 0, 1), "saving");

    printf("\ntest set (%d binarized images), exact -log p(x) in nats per image:\n", test.n);
    printf("  one mask (raster order)              %8.2f\n", nll_one);
    printf("  the same, another binarization       %8.2f\n", nll_again);
    printf("  K = %2d masks, scored with mask 1      %8.2f\n", K, nll_mask);
    printf("  K = %2d masks, ensemble of all K      %8.2f\n", K, nll_ens);
    demo_result("test_nll", nll_one);
    demo_result("test_nll_rebinarized", nll_again);
    demo_result("test_nll_masks_one", nll_mask);
    demo_result("test_nll_masks_ensemble", nll_ens);

    /* ---- cleanup ------------------------------------------------------------------------ */
    gm_params_free(&one.P); gm_params_free(&many.P);
    gm_dataset_free(&train_set); gm_dataset_free(&test);
    gm_tape_free(T);
    free(x); free(again);
    demo_done(&d);
    return 0;
}
