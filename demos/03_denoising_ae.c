/* 03_denoising_ae - a plain autoencoder against a denoising one
 *
 * What it shows: two autoencoders with the same architecture (MLP 784-256-64-256-784,
 * ReLU, sigmoid output), the same initial weights and the same batches. The plain AE
 * learns x -> x; the denoising AE (DAE) is shown a corrupted x~ ~ q(x~|x) and must give
 * back the clean x. On corrupted test images the plain AE carries much of the noise
 * through, while the DAE pulls its input back towards the images it was trained on and
 * makes about half the error. On clean images the order flips: the DAE only ever saw
 * corrupted inputs.
 * Lecture: lectures/03-denoising-autoencoders.md
 * Run:     make build/denoising_ae && ./build/denoising_ae      (about 14 s on 2 cores)
 *          ./build/denoising_ae --corruption mask --noise 0.5   (zero half the pixels)
 * Output:  out/denoising_ae/rows.png         ten test images, one per column; rows: clean x,
 *                                            corrupted x~, plain AE(x~), DAE(x~), and the
 *                                            DAE's correction DAE(x~) - x~ (grey 0, white +1,
 *                                            black -1)
 *          out/denoising_ae/noise_sweep.png  test error against the noise level, for the
 *                                            input itself, the plain AE and the DAE
 *          out/denoising_ae/recon.npy        (4, 256, 28, 28): clean, corrupted, plain AE
 *                                            and DAE outputs for the first 256 test images
 *          result lines: mse_ae_corrupted, mse_dae_corrupted, mse_ae_clean, mse_dae_clean
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --corruption S   gaussian or mask (default gaussian)\n"
    "  --noise X        the std of the Gaussian, or the fraction of pixels zeroed (default 0.5)\n"
    "  --epochs N       passes over the training set, for each model (default 3)\n"
    "  --latent Z       size of the code (default 64)\n"
    "  --batch B        batch size (default 128)\n";

enum { GAUSSIAN, MASK };
enum { SHOW = 10, NSWEEP = 9 };        /* images in rows.png; noise levels in the sweep */

/* ---------------------------------------------------------------- model */
/* encoder 784 -> 256 -> Z (linear code), decoder Z -> 256 -> 784 (sigmoid: pixels in (0,1)) */
typedef struct ae { gm_params P; gm_dense e1, e2, d1, d2; } ae;

static ae ae_new(int D, int H, int Z, uint64_t seed)
{
    ae m;
    gm_rng rng = gm_rng_new(seed);          /* one seed for both models: the same start */
    memset(&m, 0, sizeof m);
    m.e1 = gm_dense_new(&m.P, "enc1", D, H, &rng);
    m.e2 = gm_dense_new(&m.P, "enc2", H, Z, &rng);
    m.d1 = gm_dense_new(&m.P, "dec1", Z, H, &rng);
    m.d2 = gm_dense_new(&m.P, "dec2", H, D, &rng);
    return m;
}

static gm_tensor *encode(gm_tape *T, const ae *m, gm_tensor *x)     /* z = f(x), (B,D) -> (B,Z) */
{
    return gm_dense(T, &m->e2, gm_relu(T, gm_dense(T, &m->e1, x)));
}

static gm_tensor *decode(gm_tape *T, const ae *m, gm_tensor *z)     /* x^ = g(z), (B,Z) -> (B,D) */
{
    return gm_sigmoid(T, gm_dense(T, &m->d2, gm_relu(T, gm_dense(T, &m->d1, z))));
}

/* ---------------------------------------------------------------- corruption */
/* x~ ~ q(x~|x), drawn pixel by pixel into a new tensor. It is data, not model: no
 * gradient flows into it.
 *   gaussian: x~_d = clip(x_d + noise e_d, 0, 1),   e_d ~ N(0,1)
 *   mask:     x~_d = 0 with probability noise, x_d otherwise */
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

/* The mean over the first n test images of (1/D)||r - x||^2, where r is the model's output
 * for x~ (for x itself when noise = 0) and x the CLEAN image; m == NULL scores x~ itself.
 * The corruption comes from a fixed seed, so every model is shown the very same x~. */
static double test_mse(gm_tape *T, const ae *m, const gm_dataset *test, int n, int kind,
                       float noise, uint64_t seed)
{
    gm_rng rng = gm_rng_new(seed);
    double sum = 0;
    int i, b, B = 500;
    for (i = 0; i * B < n; i++) {
        gm_tensor *x, *xt, *r, *err;
        gm_tape_reset(T);
        x   = gm_flatten(T, gm_batch(T, test, i, B));
        xt  = noise > 0 ? corrupt(T, x, kind, noise, &rng) : x;
        r   = m ? decode(T, m, encode(T, m, xt)) : xt;
        err = gm_mse(T, r, x);                                     /* (B), one per image */
        for (b = 0; b < err->size && i * B + b < n; b++) sum += err->val[b];
    }
    return sum / n;
}

/* ---------------------------------------------------------------- main */
int main(int argc, char **argv)
{
    /* configuration */
    demo d = demo_start(argc, argv, "denoising_ae", usage);
    const char *cname = demo_str(&d, "--corruption", "gaussian");
    int kind = strcmp(cname, "mask") == 0 ? MASK : GAUSSIAN;
    float noise = demo_float(&d, "--noise", 0.5f, 0, kind == MASK ? 1 : 10);
    int epochs = demo_epochs(&d, 3), Z = demo_int(&d, "--latent", 64, 1, 784);
    int B = demo_int(&d, "--batch", 128, 1, 4096), H = 256;
    int SAVE = 256, k, s, i;
    double mse[2][2];                     /* [plain AE, DAE][clean input, corrupted input] */
    ae model[2];
    gm_dataset train, test;
    gm_tape *T;

    if (strcmp(cname, "gaussian") && strcmp(cname, "mask")) {
        fprintf(stderr, "denoising_ae: --corruption wants gaussian or mask, got \"%s\"\n", cname);
        return 2;
    }
    T = gm_tape_new(0);
    demo_check(&d, T != NULL, "gm_tape_new");

    /* data */
    demo_images(&d, &train, &test, 3000);
    if (SAVE > test.n) SAVE = test.n;
    printf("corruption: %s, noise %.2f; MLP %d-%d-%d-%d-%d; %d epochs of %d batches of %d\n",
           kind == MASK ? "mask" : "gaussian", noise, train.d, H, Z, H, train.d,
           epochs, gm_batches(&train, B), B);

    /* training: the same start and the same batches for both models; the only difference
     * is the corruption in front of the encoder. Both minimize (1/D)||g(f(input)) - x||^2
     * against the CLEAN x, the quantity the table below reports. */
    for (k = 0; k < 2; k++) {
        gm_rng order = gm_rng_new(d.seed + 1);                  /* batch order: the same for both */
        gm_rng rng = gm_rng_new(d.seed + 4);                    /* the DAE's noise, a stream of its own */
        long step, steps = (long)epochs * gm_batches(&train, B);
        gm_progress bar = gm_progress_start(k ? "train DAE" : "train AE ", steps);
        gm_optim *opt;
        float avg = 0;
        model[k] = ae_new(train.d, H, Z, d.seed);
        opt = gm_adam_new(&model[k].P, 1e-3f, 0.9f, 0.999f);
        demo_check(&d, opt != NULL, "gm_adam_new");
        for (step = 0; step < steps; step++) {
            gm_tensor *x, *xt, *r, *loss;
            float l;
            if (step % gm_batches(&train, B) == 0) gm_dataset_shuffle(&train, &order);
            gm_tape_reset(T);
            x    = gm_flatten(T, gm_batch(T, &train, step, B));          /* (B,D), clean  */
            xt   = k ? corrupt(T, x, kind, noise, &rng) : x;             /* x~ ~ q(x~|x)  */
            r    = decode(T, &model[k], encode(T, &model[k], xt));       /* g(f(x~))      */
            loss = gm_mean(T, gm_mse(T, r, x));                          /* vs the clean x */
            l    = gm_backward(T, loss);
            gm_optim_step(opt);
            avg  = step ? 0.98f * avg + 0.02f * l : l;                    /* smoothed, for the bar */
            gm_progress_update(&bar, step + 1, "mse %.4f", avg);
        }
        gm_progress_finish(&bar);
        gm_optim_free(opt);
    }

    /* the table: every model on the same clean and corrupted test images */
    for (k = 0; k < 2; k++) {
        mse[k][0] = test_mse(T, &model[k], &test, test.n, kind, 0, 0);
        mse[k][1] = test_mse(T, &model[k], &test, test.n, kind, noise, d.seed + 2);
    }
    printf("\ntest MSE per pixel against the clean image, %d test images\n", test.n);
    printf("  %-32s %10s %14s\n", "", "clean x", "corrupted x~");
    printf("  %-32s %10.5f %14.5f\n", "the input itself (no model)", 0.0,
           test_mse(T, NULL, &test, test.n, kind, noise, d.seed + 2));
    printf("  %-32s %10.5f %14.5f\n", "plain AE, trained x -> x", mse[0][0], mse[0][1]);
    printf("  %-32s %10.5f %14.5f\n", "denoising AE, trained x~ -> x", mse[1][0], mse[1][1]);

    /* output: rows.png and recon.npy, from the first test images and the table's x~ */
    {
        int D = train.d, n = SAVE, shape[4];
        size_t nd = (size_t)n * D, sd = (size_t)SHOW * D;
        float *rec = (float *)malloc(4 * nd * sizeof(float));     /* clean, x~, AE, DAE */
        float *grid = (float *)malloc(5 * sd * sizeof(float));
        gm_rng rng = gm_rng_new(d.seed + 2);
        gm_tensor *x, *xt;
        demo_check(&d, rec && grid, "malloc");
        gm_tape_reset(T);
        x  = gm_flatten(T, gm_batch(T, &test, 0, n));
        xt = corrupt(T, x, kind, noise, &rng);
        memcpy(rec, x->val, nd * sizeof(float));
        memcpy(rec + nd, xt->val, nd * sizeof(float));
        for (k = 0; k < 2; k++)
            memcpy(rec + (2 + k) * nd, decode(T, &model[k], encode(T, &model[k], xt))->val, nd * sizeof(float));
        for (s = 0; s < 4; s++) memcpy(grid + s * sd, rec + s * nd, sd * sizeof(float));
        for (i = 0; i < SHOW * D; i++)           /* DAE(x~) - x~, from [-1,1] to [0,1] */
            grid[4 * sd + i] = 0.5f + 0.5f * (rec[3 * nd + i] - rec[nd + i]);
        {
            static const char *const rows[5] = {"clean x", "corrupted x~", "plain AE(x~)", "DAE(x~)", "DAE(x~) - x~"};
            gm_grid_labels labels = {NULL, rows, NULL};
            demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "rows.png"), grid, 5 * SHOW, 1, 28, 28, SHOW, 0, 1,
                                                      &labels), "gm_save_image_grid_labeled");
        }
        shape[0] = 4; shape[1] = n; shape[2] = 28; shape[3] = 28;
        demo_check(&d, gm_save_npy(demo_path(&d, "recon.npy"), rec, 4, shape), "gm_save_npy");
        free(rec);
        free(grid);
    }

    /* output: noise_sweep.png, the error as the test noise level goes 0, 0.1, ..., 0.8 */
    {
        float lvl[NSWEEP], curve[3][NSWEEP], at_noise = (float)mse[1][1];
        int n = test.n < 2000 ? test.n : 2000;
        char title[64], label[64];
        gm_plot *p;
        for (s = 0; s < NSWEEP; s++) {
            lvl[s] = 0.1f * s;
            curve[0][s] = (float)test_mse(T, NULL, &test, n, kind, lvl[s], d.seed + 3);
            for (k = 0; k < 2; k++) curve[1 + k][s] = (float)test_mse(T, &model[k], &test, n, kind, lvl[s], d.seed + 3);
        }
        printf("\nnoise sweep, first %d test images (the picture noise_sweep.png):\n  %-16s", n, "noise level");
        for (s = 0; s < NSWEEP; s++) printf(" %7.1f", lvl[s]);
        for (k = 0; k < 3; k++) {
            printf("\n  %-16s", k == 0 ? "input x~ itself" : k == 1 ? "plain AE" : "denoising AE");
            for (s = 0; s < NSWEEP; s++) printf(" %7.4f", curve[k][s]);
        }
        printf("\n");
        snprintf(title, sizeof title, "test MSE vs the clean x, %s noise", kind == MASK ? "mask" : "gaussian");
        snprintf(label, sizeof label, "DAE at its training level %.2f", noise);
        p = gm_plot_new(title, kind == MASK ? "fraction of pixels zeroed" : "noise std", "MSE per pixel");
        gm_plot_line(p, "input x~ itself", lvl, curve[0], NSWEEP);
        gm_plot_line(p, "plain AE", lvl, curve[1], NSWEEP);
        gm_plot_line(p, "denoising AE", lvl, curve[2], NSWEEP);
        gm_plot_scatter(p, label, &noise, &at_noise, 1);
        demo_check(&d, gm_plot_save(p, demo_path(&d, "noise_sweep.png"), 0, 0), "gm_plot_save");
        gm_plot_free(p);
    }

    demo_result("mse_ae_corrupted", mse[0][1]);
    demo_result("mse_dae_corrupted", mse[1][1]);
    demo_result("mse_ae_clean", mse[0][0]);
    demo_result("mse_dae_clean", mse[1][0]);

    /* cleanup */
    for (k = 0; k < 2; k++) gm_params_free(&model[k].P);
    gm_tape_free(T);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
