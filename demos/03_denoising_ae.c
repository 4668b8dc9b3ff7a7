/* 03 - Denoising autoencoders
 *
 * Two autoencoders with the same architecture (MLP 784-256-64-256-784, ReLU, sigmoid
 * output), the same initial weights and the same batches. The plain AE learns x -> x;
 * the denoising AE (DAE) sees a corrupted x~ ~ q(x~|x) and must give back the clean x.
 * Both are then asked to reconstruct clean and corrupted test images: the plain AE copies
 * the noise through, the DAE pulls the input back towards the images it was trained on.
 *
 * Lecture: lectures/03-denoising-autoencoders.md
 * Run:     make build/denoising_ae && ./build/denoising_ae        (about 35 s on two cores)
 *          ./build/denoising_ae --corruption mask --noise 0.5     (zero half the pixels)
 * Output (out/denoising_ae/):
 *   rows.png        10 test images per column block; rows: clean x / corrupted x~ /
 *                   plain AE(x~) / DAE(x~) / DAE correction DAE(x~) - x~ (grey = 0,
 *                   white = brighten, black = darken)
 *   noise_sweep.png test MSE against the clean image as the test noise level grows,
 *                   plain AE vs DAE (the DAE was trained at --noise only)
 *   recon.npy       (4, 256, 28, 28): clean, corrupted, plain AE and DAE outputs for the
 *                   first 256 test images
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --corruption S   gaussian (add N(0, noise^2), clip to [0,1]) or mask (zero a fraction noise of the pixels); default gaussian\n"
    "  --noise X        corruption level: the std of the Gaussian or the masked fraction (default 0.5)\n"
    "  --epochs N       passes over the training set for each model (default 3)\n"
    "  --latent N       size Z of the code (default 64)\n"
    "  --batch N        batch size B (default 64)\n";

enum { GAUSSIAN, MASK };

/* ---- model: f(x) = W2 relu(W1 x),  g(z) = sigmoid(W4 relu(W3 z)) ---- */
typedef struct ae {
    gm_params P;
    gm_dense enc1, enc2, dec1, dec2;
} ae;

static ae ae_new(int D, int H, int Z, uint64_t seed)
{
    ae m;
    gm_rng rng = gm_rng_new(seed);          /* same seed: both models start from the same weights */
    memset(&m, 0, sizeof m);
    m.enc1 = gm_dense_new(&m.P, "enc1", D, H, &rng);
    m.enc2 = gm_dense_new(&m.P, "enc2", H, Z, &rng);
    m.dec1 = gm_dense_new(&m.P, "dec1", Z, H, &rng);
    m.dec2 = gm_dense_new(&m.P, "dec2", H, D, &rng);
    return m;
}

static gm_tensor *encode(gm_tape *T, const ae *m, gm_tensor *x)      /* (B,D) -> (B,Z) */
{
    return gm_dense(T, &m->enc2, gm_relu(T, gm_dense(T, &m->enc1, x)));
}

static gm_tensor *decode(gm_tape *T, const ae *m, gm_tensor *z)      /* (B,Z) -> (B,D) in (0,1) */
{
    return gm_sigmoid(T, gm_dense(T, &m->dec2, gm_relu(T, gm_dense(T, &m->dec1, z))));
}

/* x~ ~ q(x~|x), a new tensor with no gradient (the corruption is data, not model).
 *   gaussian: x~_d = clip(x_d + noise e_d, 0, 1),  e_d ~ N(0,1)
 *   mask:     x~_d = 0 with probability noise, else x_d */
static gm_tensor *corrupt(gm_tape *T, gm_tensor *x, int kind, float noise, gm_rng *rng)
{
    gm_tensor *xt = gm_zeros(T, x->shape);
    int i;
    for (i = 0; i < x->size; i++) {
        float v = x->val[i];
        if (kind == GAUSSIAN) {
            v += noise * gm_rng_normal(rng);
            v = v < 0 ? 0 : v > 1 ? 1 : v;
        } else if (gm_rng_uniform(rng) < noise) {
            v = 0;
        }
        xt->val[i] = v;
    }
    return xt;
}

/* Mean over the first n test images of ||r - x||^2 / D, r the model's output for x~ (or for
 * x when noise = 0); m == NULL scores the corrupted input itself. The corruption is drawn
 * from a fixed seed, so every model sees the very same x~. */
static double test_mse(gm_tape *T, const ae *m, const gm_dataset *test, int n, int kind,
                       float noise, uint64_t seed)
{
    gm_rng rng = gm_rng_new(seed);
    double sum = 0;
    int i, b, B = 500, nb = (n + B - 1) / B;
    for (i = 0; i < nb; i++) {
        gm_tensor *x, *xt, *r, *err;
        gm_tape_reset(T);
        x  = gm_flatten(T, gm_batch(T, test, i, B));
        xt = noise > 0 ? corrupt(T, x, kind, noise, &rng) : x;
        r  = m ? decode(T, m, encode(T, m, xt)) : xt;
        err = gm_mse(T, r, x);                                /* (B): per-image MSE vs clean x */
        for (b = 0; b < err->size && i * B + b < n; b++) sum += err->val[b];
    }
    return sum / n;
}

int main(int argc, char **argv)
{
    /* ---- configuration ---- */
    demo d = demo_start(argc, argv, "denoising_ae", usage);
    const char *cname = demo_str(&d, "--corruption", "gaussian");
    int kind = strcmp(cname, "mask") == 0 ? MASK : GAUSSIAN;
    float noise = demo_float(&d, "--noise", 0.5f);
    int epochs = demo_int(&d, "--epochs", d.quick ? 1 : 3);
    int Z = demo_int(&d, "--latent", 64), H = 256, B = demo_int(&d, "--batch", 64);
    int SHOW = 10, SAVE = 256, NSWEEP = 9;
    gm_dataset train, test;
    gm_tape *T = gm_tape_new(0);
    ae model[2];                                  /* [0] plain AE, [1] denoising AE */
    double mse[2][2];                             /* [model][clean input, corrupted input] */
    int k, s, i;

    if (strcmp(cname, "gaussian") && strcmp(cname, "mask")) {
        fprintf(stderr, "denoising_ae: --corruption wants gaussian or mask, got \"%s\"\n", cname);
        return 2;
    }
    if (noise < 0 || (kind == MASK && noise > 1) || epochs < 1 || Z < 1 || B < 1) {
        fprintf(stderr, "denoising_ae: need noise >= 0 (<= 1 for mask), epochs, latent and batch >= 1\n");
        return 2;
    }
    demo_check(&d, T != NULL, "gm_tape_new");

    /* ---- data ---- */
    demo_images(&d, &train, &test, 3000);
    if (SAVE > test.n) SAVE = test.n;
    printf("corruption: %s, noise %.2f; MLP %d-%d-%d-%d-%d, %d epochs of %d batches of %d\n",
           kind == MASK ? "mask" : "gaussian", noise, train.d, H, Z, H, train.d,
           epochs, gm_batches(&train, B), B);

    /* ---- model and training ----
     * Same init, same batch order: the only difference between the two runs is the
     * corruption in front of the encoder. Loss: the mean over pixels of (r - x)^2 against
     * the CLEAN x, the quantity the table reports. */
    for (k = 0; k < 2; k++) {
        gm_rng rng = gm_rng_new(d.seed + 1);                  /* batch order and noise */
        long step, steps = (long)epochs * gm_batches(&train, B);
        gm_optim *opt;
        gm_progress pb = gm_progress_start(k ? "train DAE" : "train AE ", steps);
        float ema = 0;
        model[k] = ae_new(train.d, H, Z, d.seed);
        opt = gm_adam_new(&model[k].P, 1e-3f, 0.9f, 0.999f);
        demo_check(&d, opt != NULL, "gm_adam_new");
        for (step = 0; step < steps; step++) {
            gm_tensor *x, *xt, *r, *loss;
            float l;
            if (step % gm_batches(&train, B) == 0) gm_dataset_shuffle(&train, &rng);
            gm_tape_reset(T);
            x  = gm_flatten(T, gm_batch(T, &train, step, B));             /* (B,D), clean     */
            xt = k ? corrupt(T, x, kind, noise, &rng) : x;                /* x~ ~ q(x~|x)     */
            r  = decode(T, &model[k], encode(T, &model[k], xt));          /* r = g(f(x~))     */
            loss = gm_mean(T, gm_mse(T, r, x));                           /* ||r - x||^2 / D  */
            l = gm_backward(T, loss);
            gm_optim_step(opt);
            ema = step ? 0.98f * ema + 0.02f * l : l;
            gm_progress_update(&pb, step + 1, "mse %.4f", ema);
        }
        gm_progress_finish(&pb);
        gm_optim_free(opt);
    }

    /* ---- evaluation: the table ---- */
    for (k = 0; k < 2; k++) {
        mse[k][0] = test_mse(T, &model[k], &test, test.n, kind, 0, 0);
        mse[k][1] = test_mse(T, &model[k], &test, test.n, kind, noise, d.seed + 2);
    }
    printf("\ntest MSE against the clean image, %d test images:\n", test.n);
    printf("  %-36s %12s %12s\n", "", "clean x", "corrupted x~");
    printf("  %-36s %12.5f %12.5f\n", "no model (the input itself)", 0.0,
           test_mse(T, NULL, &test, test.n, kind, noise, d.seed + 2));
    printf("  %-36s %12.5f %12.5f\n", "plain AE, trained x -> x", mse[0][0], mse[0][1]);
    printf("  %-36s %12.5f %12.5f\n", "denoising AE, trained x~ -> x", mse[1][0], mse[1][1]);

    /* ---- output: rows.png, recon.npy ---- */
    {
        int D = train.d, n = SAVE, shape[4];
        float *rec = (float *)malloc((size_t)4 * n * D * sizeof(float));   /* clean, x~, AE, DAE */
        float *grid = (float *)malloc((size_t)5 * SHOW * D * sizeof(float));
        gm_rng rng = gm_rng_new(d.seed + 2);                  /* the table's first x~ */
        gm_tensor *x, *xt;
        demo_check(&d, rec && grid, "malloc");
        gm_tape_reset(T);
        x  = gm_flatten(T, gm_batch(T, &test, 0, n));
        xt = corrupt(T, x, kind, noise, &rng);
        memcpy(rec, x->val, (size_t)n * D * sizeof(float));
        memcpy(rec + (size_t)n * D, xt->val, (size_t)n * D * sizeof(float));
        for (k = 0; k < 2; k++) {
            gm_tensor *r = decode(T, &model[k], encode(T, &model[k], xt));
            memcpy(rec + (size_t)(2 + k) * n * D, r->val, (size_t)n * D * sizeof(float));
        }
        /* rows 0-3 as they are; row 4 the DAE's correction r - x~, mapped from [-1,1] to [0,1] */
        for (s = 0; s < 4; s++)
            memcpy(grid + (size_t)s * SHOW * D, rec + (size_t)s * n * D, (size_t)SHOW * D * sizeof(float));
        for (i = 0; i < SHOW * D; i++)
            grid[(size_t)4 * SHOW * D + i] = 0.5f + 0.5f * (rec[(size_t)3 * n * D + i] - rec[(size_t)n * D + i]);
        demo_check(&d, gm_save_image_grid(demo_path(&d, "rows.png"), grid, 5 * SHOW, 1, 28, 28, SHOW, 0, 1),
                   "gm_save_image_grid");
        shape[0] = 4; shape[1] = n; shape[2] = 28; shape[3] = 28;
        demo_check(&d, gm_save_npy(demo_path(&d, "recon.npy"), rec, 4, shape), "gm_save_npy");
        free(rec);
        free(grid);
    }

    /* ---- output: noise_sweep.png, error against the test noise level ---- */
    {
        float lvl[16], curve[3][16];
        int n = test.n < 2000 ? test.n : 2000;
        gm_plot *p;
        char title[96];
        for (s = 0; s < NSWEEP; s++) {
            lvl[s] = 0.1f * s;
            curve[0][s] = (float)test_mse(T, NULL, &test, n, kind, lvl[s], d.seed + 3);
            for (k = 0; k < 2; k++) curve[1 + k][s] = (float)test_mse(T, &model[k], &test, n, kind, lvl[s], d.seed + 3);
        }
        snprintf(title, sizeof title, "test MSE vs clean x (%s noise; DAE trained at %.2f)",
                 kind == MASK ? "mask" : "gaussian", noise);
        p = gm_plot_new(title, kind == MASK ? "fraction of pixels zeroed" : "noise std", "MSE");
        gm_plot_line(p, "input x~ itself", lvl, curve[0], NSWEEP);
        gm_plot_line(p, "plain AE", lvl, curve[1], NSWEEP);
        gm_plot_line(p, "denoising AE", lvl, curve[2], NSWEEP);
        demo_check(&d, gm_plot_save(p, demo_path(&d, "noise_sweep.png"), 0, 0), "gm_plot_save");
        gm_plot_free(p);
    }

    /* ---- results and cleanup ---- */
    demo_result("mse_ae_corrupted", mse[0][1]);
    demo_result("mse_dae_corrupted", mse[1][1]);
    demo_result("mse_ae_clean", mse[0][0]);
    demo_result("mse_dae_clean", mse[1][0]);
    for (k = 0; k < 2; k++) gm_params_free(&model[k].P);
    gm_tape_free(T);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
