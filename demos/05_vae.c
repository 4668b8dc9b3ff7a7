/* 05_vae - the variational autoencoder: train by the ELBO, reconstruct, sample
 *
 * What it shows: an encoder q(z|x) and a decoder p(x|z) trained together by maximizing
 * the evidence lower bound, ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)). The training curve
 * splits -ELBO into its reconstruction term and its KL term; the test -ELBO is printed
 * after every epoch (nats per image, an upper bound on -log p(x)). Then reconstructions of
 * test images and new images decoded from z ~ N(0, I). Last, why they are blurry: the
 * decoder draws the mean of p(x|z), whose spread across images falls short of the data's
 * by the reconstruction error (the variance loss), and a draw from p(x|z) adds pixel noise,
 * not detail.
 * With --arch mlp (the default) the network is the pytorch/examples VAE (784-400-20 /
 * 20-400-784, Adam 1e-3, batch 128); --arch conv swaps in a conv encoder and a
 * transposed-conv decoder (demos/vae.h).
 * Lecture: lectures/05-variational-autoencoders.md
 * Run:     make build/vae && ./build/vae                  (10 epochs, about 35 s on 2 cores)
 *          ./build/vae --arch conv --epochs 5
 *          ./build/vae --tape step.dot                      (one step's tape, printed and as DOT)
 * Output:  out/vae/curve.png        -ELBO, rec and KL of every training batch
 *          out/vae/recon.png        rows: test images, reconstructions (decoded mu)
 *          out/vae/samples.png      64 samples, x = sigmoid(logits(z)), z ~ N(0, I)
 *          out/vae/samples.npy      10000 samples (10000,1,28,28) in [0,1]
 *          out/vae/blur.png         rows: test images x, the decoder's mean for one
 *                                   z ~ q(z|x), and a draw from p(x|z) at that z
 *          out/vae/vae_<arch>.ckpt  the trained model (importance_sampling can load it)
 *          result lines: test_neg_elbo, test_rec, test_kl (nats per test image); var_data,
 *          var_recon, mse_recon, var_samples (pixel variances, the variance loss)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --arch A       mlp (default) or conv\n"
    "  --epochs N     passes over the training set (default 10; 2 with --quick)\n"
    "  --latent Z     latent dimensions (default 20)\n"
    "  --samples N    samples written to samples.npy (default 10000)\n"
    "  --tape F.dot   print the tape of one training step, write it to F.dot as Graphviz DOT,\n"
    "                 and stop (dot -Tpng F.dot -o F.png draws it)\n";

/* test images on top, their reconstructions sigmoid(logits(mu(x))) below */
static void save_reconstructions(demo *d, gm_tape *T, const vae *m, const gm_dataset *test)
{
    enum { N = 16 };
    float grid[2 * N * 784];
    gm_tensor *x, *mu, *lv, *p;
    gm_tape_reset(T);
    x = gm_batch(T, test, 0, N);
    vae_encode(T, m, x, &mu, &lv);
    p = gm_sigmoid(T, vae_decode(T, m, mu));
    memcpy(grid, x->val, sizeof(float) * N * 784);
    memcpy(grid + N * 784, p->val, sizeof(float) * N * 784);
    static const char *const rows[2] = {"test images x", "sigmoid(logits(mu(x)))"};
    gm_grid_labels labels = {NULL, rows, NULL};
    demo_check(d, gm_save_image_grid_labeled(demo_path(d, "recon.png"), grid, 2 * N, 1, 28, 28, N, 0, 1, &labels),
               "saving");
}

/* The variance loss. For (x, z) drawn as x from the data and z ~ q(z|x), the law of total
 * variance splits each pixel's variance: Var(x) = Var(E[x|z]) + E[Var(x|z)]. A decoder
 * trained to output E[x|z] (the optimum of the Bernoulli loss for grey targets) therefore
 * draws means whose spread falls short of the data's by E[(x - E[x|z])^2], the squared
 * error of its reconstructions. Pixel values averaged over the 784 pixels. Returns in v
 * Var(x), Var(E[x|z]), that squared error, and the variance of samples' means. */
static void variance_loss(demo *d, gm_tape *T, const vae *m, const gm_dataset *test, gm_rng *rng, double v[4])
{
    enum { ROW = 12 };
    int n = test->n, D = 784, i;
    float *mu, *lv, *z = (float *)malloc(sizeof(float) * n * m->Z);
    float *mean = (float *)malloc(sizeof(float) * n * D), grid[3 * ROW * 784];
    double var_data = vae_pixel_variance(test->x, n, D), var_mean, var_prior, mse = 0;
    vae_encode_all(T, m, test, &mu, &lv);
    for (i = 0; i < n * m->Z; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * gm_rng_normal(rng);   /* z ~ q(z|x) */
    vae_decode_all(T, m, z, n, mean);                                                        /* E[x|z]     */
    var_mean = vae_pixel_variance(mean, n, D);
    for (i = 0; i < n * D; i++) mse += (double)(test->x[i] - mean[i]) * (test->x[i] - mean[i]);
    mse /= (double)n * D;
    for (i = 0; i < n * m->Z; i++) z[i] = gm_rng_normal(rng);                               /* z ~ p(z)   */
    vae_decode_all(T, m, z, n, mean);
    var_prior = vae_pixel_variance(mean, n, D);
    printf("\nthe variance loss: pixel variance across %d images, averaged over the pixels\n", n);
    printf("  test images x                             Var(x)          %.4f\n", var_data);
    printf("  decoder means, z ~ q(z|x)                 Var(E[x|z])     %.4f\n", var_mean);
    printf("  their squared error (x - E[x|z])^2        E[Var(x|z)]     %.4f\n", mse);
    printf("  the two together                                          %.4f\n", var_mean + mse);
    printf("  decoder means, z ~ p(z) (samples)         Var             %.4f\n", var_prior);
    /* the picture: x, the mean decoded from one z ~ q(z|x), one draw x' ~ p(x|z) */
    memcpy(grid, test->x, sizeof(float) * ROW * D);
    for (i = 0; i < ROW * m->Z; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * gm_rng_normal(rng);
    vae_decode_all(T, m, z, ROW, grid + ROW * D);
    for (i = 0; i < ROW * D; i++) grid[2 * ROW * D + i] = gm_rng_uniform(rng) < grid[ROW * D + i] ? 1.0f : 0.0f;
    {
        static const char *const rows[3] = {"x", "E[x|z], z ~ q(z|x)", "x' ~ p(x|z)"};
        gm_grid_labels labels = {NULL, rows, NULL};
        demo_check(d, gm_save_image_grid_labeled(demo_path(d, "blur.png"), grid, 3 * ROW, 1, 28, 28, ROW, 0, 1, &labels),
                   "saving");
    }
    v[0] = var_data; v[1] = var_mean; v[2] = mse; v[3] = var_prior;
    free(mu); free(lv); free(z); free(mean);
}

static void save_curve(demo *d, const float *rec, const float *kl, long steps)
{
    float *total = (float *)malloc((size_t)steps * sizeof(float));
    gm_plot *pl = gm_plot_new("VAE training: -ELBO = rec + KL, nats per image", "step", "nats");
    long i;
    for (i = 0; i < steps; i++) total[i] = rec[i] + kl[i];
    gm_plot_line(pl, "-ELBO", NULL, total, (int)steps);
    gm_plot_line(pl, "rec = -log p(x|z)", NULL, rec, (int)steps);
    gm_plot_line(pl, "KL(q(z|x) || p(z))", NULL, kl, (int)steps);
    gm_plot_logy(pl, 1);
    demo_check(d, gm_plot_save(pl, demo_path(d, "curve.png"), 0, 0), "saving");
    gm_plot_free(pl);
    free(total);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "vae", usage);
    int arch = vae_arch(&d), Z = demo_int(&d, "--latent", 20, 1, 784);
    int n_samples = demo_int(&d, "--samples", 10000, 1, 60000);
    const char *tape = demo_str(&d, "--tape", NULL);
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 2 : 10));
    vae_lab L;
    vae m;
    vae_score s;
    double v[4];                          /* the variance loss */
    long steps;
    char ckpt[32];

    if (tape && (strlen(tape) < 5 || strcmp(tape + strlen(tape) - 4, ".dot") != 0)) {
        fprintf(stderr, "vae: --tape wants a file name ending in .dot, got \"%s\"\n", tape);
        return 2;
    }
    L = vae_lab_open(&d, 3000);
    m = vae_new(arch, Z, &L.rng);
    printf("VAE (%s), Z = %d, %ld parameters, %d epochs of %d batches of %d\n", arch == VAE_MLP ? "mlp" : "conv",
           Z, gm_params_count(&m.P), cfg.epochs, gm_batches(&L.train, cfg.B), cfg.B);
    if (tape) {                           /* the first training step as vae_train takes it, shown */
        vae_terms t;
        gm_tape_reset(L.T);
        t = vae_forward(L.T, &m, gm_batch(L.T, &L.train, 0, cfg.B), &L.rng);
        gm_backward(L.T, vae_loss(L.T, &t, &cfg, 0));
        gm_tape_print(L.T, stdout);
        demo_check(&d, gm_tape_save_dot(L.T, NULL, tape), "writing the tape");
        return vae_lab_close(&d, &L, &m.P);
    }
    steps = (long)cfg.epochs * gm_batches(&L.train, cfg.B);
    cfg.curve_rec = (float *)malloc((size_t)steps * sizeof(float));
    cfg.curve_kl = (float *)malloc((size_t)steps * sizeof(float));
    s = vae_train(&m, &L.train, &L.test, &cfg, L.T, &L.rng, "vae");

    save_curve(&d, cfg.curve_rec, cfg.curve_kl, steps);
    save_reconstructions(&d, L.T, &m, &L.test);
    vae_save_samples(&d, L.T, &m, n_samples, 64, "samples.png", &L.rng);
    snprintf(ckpt, sizeof ckpt, "vae_%s.ckpt", arch == VAE_MLP ? "mlp" : "conv");
    demo_check(&d, gm_save_params(&m.P, demo_path(&d, ckpt)), "saving the model");

    variance_loss(&d, L.T, &m, &L.test, &L.rng, v);

    printf("\ntest set (%d images): -ELBO %.2f nats = rec %.2f + KL %.2f\n", L.test.n, s.neg_elbo, s.rec, s.kl);
    demo_result("test_neg_elbo", s.neg_elbo);
    demo_result("test_rec", s.rec);
    demo_result("test_kl", s.kl);
    demo_result("var_data", v[0]);
    demo_result("var_recon", v[1]);
    demo_result("mse_recon", v[2]);
    demo_result("var_samples", v[3]);

    free(cfg.curve_rec); free(cfg.curve_kl);
    return vae_lab_close(&d, &L, &m.P);
}
