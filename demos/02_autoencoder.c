/* 02_autoencoder - a deep autoencoder against PCA with the same latent size
 *
 * What it shows: squeeze 784 pixels through a bottleneck of Z numbers and back. PCA is
 * the best *linear* map for this (it keeps the Z directions of largest variance); a
 * nonlinear encoder/decoder can bend its Z-dimensional surface to follow the data and
 * reconstructs test images with a smaller error at the same Z. Trained for Z = 2 and 5
 * (or --latent Z), each next to PCA with Z components. --arch conv swaps the dense layers
 * that touch pixels for stride-2 convolutions (encoder) and transposed convolutions
 * (decoder): fewer weights, shared across positions.
 * Lecture: lectures/02-autoencoders.md
 * Run:     make build/autoencoder && ./build/autoencoder          (about 9 s on 2 cores)
 *          ./build/autoencoder --arch conv                        (a few minutes)
 *          ./build/autoencoder --latent 16 --epochs 5
 * Output:  out/autoencoder/recon_zZ.png   rows: test images, autoencoder, PCA
 *          out/autoencoder/loss_zZ.png    training curves
 *          out/autoencoder/latent_z2.png  the 2-D code of test images, coloured by class
 *          out/autoencoder/recon_zZ.npy   the autoencoder's reconstructions (N,1,28,28)
 *          result lines: mse_ae_zZ, mse_pca_zZ and params_zZ per size; mse_ae and mse_pca
 *          for the largest Z.
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --arch A       mlp (dense layers, the default) or conv (convolutions)\n"
    "  --latent Z     train only this latent size (default: 2 and 5)\n"
    "  --epochs N     passes over the training set (default 3; 6 over the small --quick set)\n"
    "  --hidden H     width of the MLP's hidden layers (default 256)\n"
    "  --pca-n N      training images used to estimate PCA (default 20000)\n";

/* ---------------------------------------------------------------- model */
/* mlp:   encoder 784 -> H -> Z              dense, ReLU, dense
 *        decoder Z -> H -> 784              dense, ReLU, dense
 * conv:  encoder 1x28x28 -> 32x14x14 -> 64x7x7 -> Z       conv, ReLU, conv, ReLU, dense
 *        decoder Z -> 64x7x7 -> 32x14x14 -> 1x28x28       dense, ReLU, convT, ReLU, convT
 *        every (transposed) convolution K=4, S=2, P=1: (28+2-4)/2+1 = 14 and (14-1)2-2+4 = 28
 * Both: a linear code z, pixels x^ = sigmoid(logits) in [0,1]. */
typedef struct ae {
    gm_params P;
    int conv;
    gm_dense e1, e2, d1, d2;        /* mlp: all four; conv: e2 (features -> z), d1 (z -> features) */
    gm_conv2d c1, c2;               /* conv: the encoder's stride-2 convolutions */
    gm_conv_transpose2d t1, t2;     /* conv: the decoder's stride-2 transposed convolutions */
} ae;

static ae ae_new(int conv, int H, int Z, gm_rng *rng)
{
    ae m;
    int F = conv ? 64 * 7 * 7 : H;                   /* features on either side of the code */
    memset(&m, 0, sizeof m);
    m.conv = conv;
    if (conv) {
        m.c1 = gm_conv2d_new(&m.P, "enc_conv1", 1, 32, 4, 2, 1, rng);
        m.c2 = gm_conv2d_new(&m.P, "enc_conv2", 32, 64, 4, 2, 1, rng);
    } else m.e1 = gm_dense_new(&m.P, "enc1", 784, H, rng);
    m.e2 = gm_dense_new(&m.P, "enc2", F, Z, rng);
    m.d1 = gm_dense_new(&m.P, "dec1", Z, F, rng);
    if (conv) {
        m.t1 = gm_conv_transpose2d_new(&m.P, "dec_convT1", 64, 32, 4, 2, 1, 0, rng);
        m.t2 = gm_conv_transpose2d_new(&m.P, "dec_convT2", 32, 1, 4, 2, 1, 0, rng);
    } else m.d2 = gm_dense_new(&m.P, "dec2", H, 784, rng);
    return m;
}

static gm_tensor *encode(gm_tape *T, ae *m, gm_tensor *x)    /* z = f(x): (B,1,28,28) -> (B,Z) */
{
    gm_tensor *h;
    if (m->conv) h = gm_relu(T, gm_conv2d(T, &m->c2, gm_relu(T, gm_conv2d(T, &m->c1, x))));
    else h = gm_relu(T, gm_dense(T, &m->e1, gm_flatten(T, x)));
    return gm_dense(T, &m->e2, gm_flatten(T, h));
}

static gm_tensor *decode(gm_tape *T, ae *m, gm_tensor *z)    /* x^ = g(z): (B,Z) -> (B,1,28,28) */
{
    int B = z->shape.d[0];
    gm_tensor *h = gm_relu(T, gm_dense(T, &m->d1, z)), *logits;
    if (m->conv) {
        h = gm_relu(T, gm_conv_transpose2d(T, &m->t1, gm_reshape(T, h, gm_shape4(B, 64, 7, 7))));
        logits = gm_conv_transpose2d(T, &m->t2, h);
    } else logits = gm_reshape(T, gm_dense(T, &m->d2, h), gm_shape4(B, 1, 28, 28));
    return gm_sigmoid(T, logits);
}

/* ---------------------------------------------------------------- PCA */
/* PCA keeps the top Z eigenvectors of the data covariance C = (1/n) sum (x - m)(x - m)^T.
 * C is summed with the same matrix product the networks use; the eigenvectors come from
 * subspace iteration, Q <- orthonormalize(C Q), which converges to the leading ones. */
typedef struct pca { int D, Z; float *mean, *C, *Q; } pca;   /* C: (D,D); Q: Z rows of D */

static pca pca_covariance(const gm_dataset *ds, int n, gm_tape *T)
{
    pca p;
    int D = ds->d, i, j, c, chunk = 500;
    memset(&p, 0, sizeof p);
    p.D = D;
    p.C = (float *)calloc((size_t)D * D, sizeof(float));
    p.mean = (float *)calloc((size_t)D, sizeof(float));
    if (n > ds->n) n = ds->n;
    for (i = 0; i < n; i++) for (j = 0; j < D; j++) p.mean[j] += ds->x[(size_t)i * D + j] / (float)n;
    for (c = 0; c < n; c += chunk) {                         /* C += Xc^T Xc, a chunk at a time */
        int m = n - c < chunk ? n - c : chunk;
        gm_tensor *xt, *x, *cc;
        gm_tape_reset(T);
        x = gm_zeros(T, gm_shape2(m, D));
        xt = gm_zeros(T, gm_shape2(D, m));
        for (i = 0; i < m; i++)
            for (j = 0; j < D; j++) {
                float v = ds->x[(size_t)(c + i) * D + j] - p.mean[j];
                x->val[(size_t)i * D + j] = v;
                xt->val[(size_t)j * m + i] = v;
            }
        cc = gm_matmul(T, xt, x);
        for (i = 0; i < D * D; i++) p.C[i] += cc->val[i] / (float)n;
    }
    return p;
}

static void pca_components(pca *p, int Z)
{
    int D = p->D, i, j, k, l, it;
    gm_rng rng = gm_rng_new(12345);
    float *CQ = (float *)calloc((size_t)Z * D, sizeof(float));
    p->Z = Z;
    free(p->Q);
    p->Q = (float *)calloc((size_t)Z * D, sizeof(float));
    for (i = 0; i < Z * D; i++) p->Q[i] = gm_rng_normal(&rng);
    for (it = 0; it < 200; it++) {
        for (k = 0; k < Z; k++)                              /* CQ_k = C q_k */
            for (i = 0; i < D; i++) {
                float s = 0;
                for (j = 0; j < D; j++) s += p->C[(size_t)i * D + j] * p->Q[(size_t)k * D + j];
                CQ[(size_t)k * D + i] = s;
            }
        for (k = 0; k < Z; k++) {                            /* Gram-Schmidt */
            float *q = CQ + (size_t)k * D, norm = 0;
            for (l = 0; l < k; l++) {
                float dot = 0;
                for (j = 0; j < D; j++) dot += q[j] * CQ[(size_t)l * D + j];
                for (j = 0; j < D; j++) q[j] -= dot * CQ[(size_t)l * D + j];
            }
            for (j = 0; j < D; j++) norm += q[j] * q[j];
            for (j = 0; j < D; j++) q[j] /= sqrtf(norm);
        }
        memcpy(p->Q, CQ, (size_t)Z * D * sizeof(float));
    }
    free(CQ);
}

/* x^ = m + Q^T Q (x - m): project onto the Z principal directions and back. */
static void pca_reconstruct(const pca *p, const float *x, float *out)
{
    int j, k;
    for (j = 0; j < p->D; j++) out[j] = p->mean[j];
    for (k = 0; k < p->Z; k++) {
        const float *q = p->Q + (size_t)k * p->D;
        float c = 0;
        for (j = 0; j < p->D; j++) c += q[j] * (x[j] - p->mean[j]);
        for (j = 0; j < p->D; j++) out[j] += c * q[j];
    }
}

/* ---------------------------------------------------------------- one latent size */
typedef struct score { double mse_ae, mse_pca; long params; } score;

static score run(demo *d, const gm_dataset *train0, const gm_dataset *test, int conv, int Z, int H,
                 int epochs, pca *p, gm_tape *T)
{
    const int B = 128, D = test->d, show = 10;
    const char *arch = conv ? "conv" : "mlp";
    gm_dataset train = *train0;               /* its own order; the arrays stay shared */
    gm_rng rng = gm_rng_new(d->seed);
    ae m = ae_new(conv, H, Z, &rng);
    gm_optim *opt = gm_adam_new(&m.P, 1e-3f, 0.9f, 0.999f);
    long steps = (long)epochs * gm_batches(&train, B), s;
    float *curve = (float *)calloc((size_t)steps, sizeof(float));
    float *grid = (float *)calloc((size_t)3 * show * D, sizeof(float));
    float *recon = (float *)calloc((size_t)test->n * D, sizeof(float));
    float *lat = (float *)calloc((size_t)2 * test->n, sizeof(float));
    float *pr = (float *)calloc((size_t)D, sizeof(float));     /* one PCA reconstruction */
    double sum_ae = 0, sum_pca = 0;
    score sc;
    char name[64], what[64];
    int i, j, shape[4];
    gm_progress bar;
    pca_components(p, Z);
    train.order = (int *)malloc((size_t)train.n * sizeof(int));
    memcpy(train.order, train0->order, (size_t)train.n * sizeof(int));

    /* training: minimize the mean squared error (1/D) ||x - g(f(x))||^2 */
    snprintf(what, sizeof what, "AE (%s) Z=%d", arch, Z);
    bar = gm_progress_start(what, steps);
    for (s = 0; s < steps; s++) {
        gm_tensor *x, *loss;
        if (s % gm_batches(&train, B) == 0) gm_dataset_shuffle(&train, &rng);
        gm_tape_reset(T);
        x = gm_batch(T, &train, s, B);                                   /* (B,1,28,28) */
        loss = gm_mean(T, gm_mse(T, decode(T, &m, encode(T, &m, x)), x));
        curve[s] = gm_backward(T, loss);
        gm_optim_step(opt);
        gm_progress_update(&bar, s + 1, "mse %.4f", curve[s]);
    }
    gm_progress_finish(&bar);

    /* test error of both, in the same units: mean over pixels and images */
    for (i = 0; i < gm_batches(test, 500); i++) {
        gm_tensor *x, *z, *r;
        gm_tape_reset(T);
        x = gm_batch(T, test, i, 500);
        z = encode(T, &m, x);
        r = decode(T, &m, z);
        for (j = 0; j < x->shape.d[0]; j++) {
            int n = i * 500 + j, k;
            memcpy(recon + (size_t)n * D, r->val + (size_t)j * D, (size_t)D * sizeof(float));
            if (Z >= 2) { lat[2 * n] = z->val[(size_t)j * Z]; lat[2 * n + 1] = z->val[(size_t)j * Z + 1]; }
            pca_reconstruct(p, x->val + (size_t)j * D, pr);
            for (k = 0; k < D; k++) {
                double ea = r->val[(size_t)j * D + k] - x->val[(size_t)j * D + k];
                double ep = pr[k] - x->val[(size_t)j * D + k];
                sum_ae += ea * ea;
                sum_pca += ep * ep;
            }
        }
    }
    sc.mse_ae = sum_ae / ((double)test->n * D);
    sc.mse_pca = sum_pca / ((double)test->n * D);
    sc.params = gm_params_count(&m.P);

    /* pictures: test images / autoencoder / PCA, one column per image */
    for (i = 0; i < show; i++) {
        memcpy(grid + (size_t)i * D, test->x + (size_t)i * D, (size_t)D * sizeof(float));
        memcpy(grid + (size_t)(show + i) * D, recon + (size_t)i * D, (size_t)D * sizeof(float));
        pca_reconstruct(p, test->x + (size_t)i * D, grid + (size_t)(2 * show + i) * D);
    }
    snprintf(name, sizeof name, "recon_z%d.png", Z);
    {
        static const char *const rows[3] = {"test images", "autoencoder", "PCA"};
        gm_grid_labels labels = {NULL, rows, NULL};
        demo_check(d, gm_save_image_grid_labeled(demo_path(d, name), grid, 3 * show, 1, 28, 28, show, 0, 1, &labels),
                   "saving");
    }
    shape[0] = test->n; shape[1] = 1; shape[2] = 28; shape[3] = 28;
    snprintf(name, sizeof name, "recon_z%d.npy", Z);
    demo_check(d, gm_save_npy(demo_path(d, name), recon, 4, shape), "saving");
    snprintf(what, sizeof what, "autoencoder training (%s)", arch);
    snprintf(name, sizeof name, "loss_z%d.png", Z);
    {
        gm_plot *pl = gm_plot_new(what, "step", "mean squared error");
        gm_plot_line(pl, "train batch", NULL, curve, (int)steps);
        gm_plot_logy(pl, 1);
        demo_check(d, gm_plot_save(pl, demo_path(d, name), 0, 0), "saving");
        gm_plot_free(pl);
    }
    snprintf(what, sizeof what, "2-D code of the test images (%s autoencoder)", arch);
    if (Z == 2 && test->y) {
        gm_plot *pl = gm_plot_new(what, "z1", "z2");
        gm_plot_scatter_labeled(pl, lat, test->y, test->n, test->nclass, test->class_names);
        gm_plot_equal_aspect(pl, 1);              /* a unit of z1 as long as one of z2 */
        demo_check(d, gm_plot_save(pl, demo_path(d, "latent_z2.png"), 0, 0), "saving");
        gm_plot_free(pl);
    }
    free(curve); free(grid); free(recon); free(lat); free(pr); free(train.order);
    gm_optim_free(opt);
    gm_params_free(&m.P);
    return sc;
}

/* ---------------------------------------------------------------- main */
int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "autoencoder", usage);
    const char *arch = demo_str(&d, "--arch", "mlp");
    int conv = strcmp(arch, "conv") == 0, one = demo_int(&d, "--latent", 0, 1, 64);  /* PCA's time grows with Z */
    int H = demo_int(&d, "--hidden", 256, 1, 4096), epochs = demo_epochs(&d, d.quick ? 6 : 3), i;
    int pca_n = demo_int(&d, "--pca-n", d.quick ? 2000 : 20000, 1000, 60000), sizes[2] = {2, 5}, nsizes = one > 0 ? 1 : 2;
    score sc[2];
    gm_dataset train, test;
    gm_tape *T = gm_tape_new(0);
    pca p;
    char key[32];

    if (!conv && strcmp(arch, "mlp") != 0) { fprintf(stderr, "autoencoder: --arch is mlp or conv\n"); return 2; }
    demo_images(&d, &train, &test, 3000);
    if (one > 0) sizes[0] = one;
    p = pca_covariance(&train, pca_n, T);
    for (i = 0; i < nsizes; i++) sc[i] = run(&d, &train, &test, conv, sizes[i], H, epochs, &p, T);

    printf("\ntest reconstruction error (mean squared error per pixel, %d test images), --arch %s\n", test.n, arch);
    printf("  latent Z   autoencoder      PCA   AE/PCA   parameters\n");
    for (i = 0; i < nsizes; i++)
        printf("  %8d   %11.5f  %7.5f   %6.3f   %10ld\n", sizes[i], sc[i].mse_ae, sc[i].mse_pca,
               sc[i].mse_ae / sc[i].mse_pca, sc[i].params);
    for (i = 0; i < nsizes; i++) {
        snprintf(key, sizeof key, "mse_ae_z%d", sizes[i]);  demo_result(key, sc[i].mse_ae);
        snprintf(key, sizeof key, "mse_pca_z%d", sizes[i]); demo_result(key, sc[i].mse_pca);
        snprintf(key, sizeof key, "params_z%d", sizes[i]);  demo_result(key, (double)sc[i].params);
    }
    demo_result("mse_ae", sc[nsizes - 1].mse_ae);
    demo_result("mse_pca", sc[nsizes - 1].mse_pca);

    free(p.mean); free(p.C); free(p.Q);
    gm_tape_free(T);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
