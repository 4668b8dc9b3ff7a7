/* 09_dcgan - a deep convolutional GAN on Fashion-MNIST
 *
 * What it shows: a generator G (code z -> image) and a discriminator D (image -> logit)
 * trained against each other (Goodfellow et al. 2014) with the all-convolutional recipe of
 * Radford, Metz & Chintala 2016: strided convolutions in D instead of pooling, transposed
 * convolutions in G instead of upsampling, batch norm in both, ReLU in G and LeakyReLU 0.2
 * in D, tanh on G's output. An iteration is the textbook's: k steps of D on real images
 * against G(z) held fixed (gm_detach), then one step of G with the non-saturating loss
 * -log D(G(z)), each network with its own optimizer. The same 64 codes are decoded after
 * every epoch, so the grids show one set of samples taking shape. At the end 10000 samples
 * are scored by genmod's FID and Inception Score (lecture 10, demos/classifier.h).
 *   G: z(64) -> dense 128*7*7 -> BN ReLU -> convT 128->64 k4 s2 p1 (14x14) -> BN ReLU
 *      -> convT 64->1 k4 s2 p1 (28x28) -> tanh
 *   D: conv 1->64 k4 s2 p1 (14x14) -> LeakyReLU 0.2 -> conv 64->128 k4 s2 p1 (7x7) -> BN
 *      -> LeakyReLU 0.2 -> dense 6272 -> 1 logit
 *   Adam 2e-4 (0.5, 0.999) for each, batch 64, images scaled to [-1, 1]
 * bench/ref/dcgan_train.py trains the same networks the same way in PyTorch.
 * Lecture: lectures/09-dcgan.md
 * Run:     make build/dcgan && ./build/dcgan              (3 epochs, under 10 min on 2 cores)
 * Output:  out/dcgan/epoch1.png ...   64 samples of the same fixed codes after each epoch
 *          out/dcgan/losses.png       D's and G's losses over training (running means)
 *          out/dcgan/samples.npy      10000 samples (10000,1,28,28) in [0,1]
 *          out/dcgan/generator.ckpt   G's parameters (its batch norms' running statistics too)
 *          result lines: d_loss, g_loss, d_real, d_fake (means over the last epoch), fid, is
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "classifier.h"

static const char *usage =
    "  --epochs N     passes of D over the training set (default 3; 1 with --quick)\n"
    "  --k K          discriminator steps per generator step (default 1)\n"
    "  --samples N    samples written to samples.npy and scored (default 10000; 500 with --quick)\n"
    CLASSIFIER_USAGE;

enum { Z = 64, B = 64 };

/* ---------------------------------------------------------------- the model */
typedef struct dcgan {
    gm_params PG, PD;                   /* two lists, so each network has its own optimizer */
    gm_dense g_fc, d_fc;
    gm_batchnorm g_bn1, g_bn2, d_bn;
    gm_conv_transpose2d g_up1, g_up2;   /* 7x7 -> 14x14 -> 28x28 */
    gm_conv2d d_down1, d_down2;         /* 28x28 -> 14x14 -> 7x7 */
} dcgan;

/* PyTorch's default initialization (as bench/ref/dcgan_train.py uses), not the paper's N(0, 0.02) */
static dcgan dcgan_new(gm_rng *rng)
{
    dcgan m;
    memset(&m, 0, sizeof m);
    m.g_fc    = gm_dense_new(&m.PG, "g.fc", Z, 128 * 7 * 7, rng);
    m.g_bn1   = gm_batchnorm_new(&m.PG, "g.bn1", 128);
    m.g_up1   = gm_conv_transpose2d_new(&m.PG, "g.up1", 128, 64, 4, 2, 1, 0, rng);
    m.g_bn2   = gm_batchnorm_new(&m.PG, "g.bn2", 64);
    m.g_up2   = gm_conv_transpose2d_new(&m.PG, "g.up2", 64, 1, 4, 2, 1, 0, rng);
    m.d_down1 = gm_conv2d_new(&m.PD, "d.down1", 1, 64, 4, 2, 1, rng);
    m.d_down2 = gm_conv2d_new(&m.PD, "d.down2", 64, 128, 4, 2, 1, rng);
    m.d_bn    = gm_batchnorm_new(&m.PD, "d.bn", 128);
    m.d_fc    = gm_dense_new(&m.PD, "d.fc", 128 * 7 * 7, 1, rng);
    return m;
}

/* G(z): z (n, 64) -> images (n,1,28,28) in (-1, 1). mode GM_TRAIN normalizes by the batch's
 * statistics (and updates the running ones), GM_EVAL by the running statistics. */
static gm_tensor *generate(gm_tape *T, const dcgan *m, gm_tensor *z, int mode)
{
    gm_tensor *h = gm_reshape(T, gm_dense(T, &m->g_fc, z), gm_shape4(z->shape.d[0], 128, 7, 7));
    h = gm_relu(T, gm_batchnorm(T, &m->g_bn1, h, mode));
    h = gm_relu(T, gm_batchnorm(T, &m->g_bn2, gm_conv_transpose2d(T, &m->g_up1, h), mode));
    return gm_tanh(T, gm_conv_transpose2d(T, &m->g_up2, h));
}

/* D(x): images (n,1,28,28) -> logits (n,1); D's probability that x is real is sigmoid(logit) */
static gm_tensor *discriminate(gm_tape *T, const dcgan *m, gm_tensor *x)
{
    gm_tensor *h = gm_leaky_relu(T, gm_conv2d(T, &m->d_down1, x), 0.2f);
    h = gm_leaky_relu(T, gm_batchnorm(T, &m->d_bn, gm_conv2d(T, &m->d_down2, h), GM_TRAIN), 0.2f);
    return gm_dense(T, &m->d_fc, gm_flatten(T, h));
}

/* n codes z ~ N(0, I) on the tape */
static gm_tensor *noise(gm_tape *T, int n, gm_rng *rng) { return gm_randn(T, gm_shape2(n, Z), rng); }

/* the mean over a batch of D's probability sigmoid(logit) */
static double mean_prob(const gm_tensor *logits)
{
    double s = 0;
    int i;
    for (i = 0; i < logits->size; i++) s += 1.0 / (1.0 + exp(-logits->val[i]));
    return s / logits->size;
}

/* ---------------------------------------------------------------- output */
/* G (eval mode) on n codes z (n, 64) into images in [0,1], (n,1,28,28) */
static void decode_all(gm_tape *T, const dcgan *m, const float *z, int n, float *out)
{
    int i, j;
    for (i = 0; i < n; i += 500) {
        int b = n - i < 500 ? n - i : 500;
        gm_tensor *x;
        gm_tape_reset(T);
        x = generate(T, m, gm_from(T, gm_shape2(b, Z), z + (size_t)i * Z), GM_EVAL);
        for (j = 0; j < x->size; j++) out[(size_t)i * 784 + j] = 0.5f * (x->val[j] + 1.0f);
    }
}

/* the running mean over the last w values of y (n), for a readable curve */
static void running_mean(const float *y, int n, int w, float *out)
{
    double s = 0;
    int i;
    for (i = 0; i < n; i++) {
        s += y[i] - (i >= w ? y[i - w] : 0.0f);
        out[i] = (float)(s / (i + 1 < w ? i + 1 : w));
    }
}

static void save_losses(demo *d, const float *ld, const float *lg, int n)
{
    float *s = (float *)malloc(sizeof(float) * n), x2[2] = {0, (float)(n - 1)}, y2[2];
    int w = n < 50 ? n : 50;
    gm_plot *pl = gm_plot_new("DCGAN: the losses, running means of 50 steps", "generator step", "nats");
    running_mean(ld, n, w, s);
    gm_plot_line(pl, "D: -log D(x) - log(1 - D(G(z)))", NULL, s, n);
    running_mean(lg, n, w, s);
    gm_plot_line(pl, "G: -log D(G(z))", NULL, s, n);
    y2[0] = y2[1] = 2.0f * logf(2.0f);
    gm_plot_line(pl, "D's loss at D = 1/2: 2 log 2", x2, y2, 2);
    y2[0] = y2[1] = logf(2.0f);
    gm_plot_line(pl, "G's loss at D = 1/2: log 2", x2, y2, 2);
    demo_check(d, gm_plot_save(pl, demo_path(d, "losses.png"), 0, 0), "saving");
    gm_plot_free(pl);
    free(s);
}

/* ---------------------------------------------------------------- main */
int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "dcgan", usage);
    int epochs = demo_epochs(&d, d.quick ? 1 : 3), k = demo_int(&d, "--k", 1, 1, 100);
    int n_samples = demo_int(&d, "--samples", d.quick ? 500 : 10000, 2, 100000);
    const char *clf = demo_arg(&d, "--classifier");
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    gm_dataset train, test;
    gm_optim *opt_g, *opt_d;
    dcgan m;
    float fixed_z[64 * Z], grid[64 * 784], *ld, *lg, *samples, *z;
    int nb, steps_per_epoch, e, i, shape[4];
    long step = 0;
    double fid, is, sum_ld = 0, sum_lg = 0, sum_real = 0, sum_fake = 0;

    if (clf && access(clf, R_OK) != 0) {         /* a wrong --classifier stops now, not after training */
        fprintf(stderr, "dcgan: --classifier %s: %s\n", clf, strerror(errno));
        exit(2);
    }
    /* data: images in [-1, 1], the range of tanh */
    demo_check(&d, T != NULL, "making the tape");
    demo_images(&d, &train, &test, 2000);
    for (i = 0; i < train.n * train.d; i++) train.x[i] = 2.0f * train.x[i] - 1.0f;
    nb = gm_batches(&train, B);
    steps_per_epoch = (nb + k - 1) / k;

    m = dcgan_new(&rng);
    opt_g = gm_adam_new(&m.PG, 2e-4f, 0.5f, 0.999f);
    opt_d = gm_adam_new(&m.PD, 2e-4f, 0.5f, 0.999f);
    printf("DCGAN: G %ld parameters, D %ld; %d epoch%s of %d D steps (batch %d), %d D step%s per G step\n",
           gm_params_count(&m.PG), gm_params_count(&m.PD), epochs, epochs > 1 ? "s" : "", nb, B, k, k > 1 ? "s" : "");
    for (i = 0; i < 64 * Z; i++) fixed_z[i] = gm_rng_normal(&rng);
    ld = (float *)malloc(sizeof(float) * epochs * steps_per_epoch);
    lg = (float *)malloc(sizeof(float) * epochs * steps_per_epoch);

    /* ---------------------------------------------------------------- training */
    for (e = 0; e < epochs; e++) {
        gm_progress bar = gm_progress_start("dcgan", steps_per_epoch);
        int b = 0, s;
        char png[32];
        sum_ld = sum_lg = sum_real = sum_fake = 0;
        gm_dataset_shuffle(&train, &rng);
        for (s = 0; s < steps_per_epoch; s++, step++) {
            gm_tensor *x, *gz, *real, *fake, *loss_d = NULL, *loss_g;
            int j;
            for (j = 0; j < k && b < nb; j++, b++) {            /* k steps of D, G held fixed */
                gm_tape_reset(T);
                x = gm_batch(T, &train, b, B);
                gz = gm_detach(T, generate(T, &m, noise(T, x->shape.d[0], &rng), GM_TRAIN));   /* G(z), no gradient */
                real = discriminate(T, &m, x);                                                 /* D(x)              */
                fake = discriminate(T, &m, gz);                                                /* D(G(z))           */
                loss_d = gm_gan_d_loss(T, real, fake, GM_GAN_NONSATURATING);    /* -log D(x) - log(1 - D(G(z))) */
                gm_backward(T, loss_d);
                gm_optim_step(opt_d);
                sum_real += mean_prob(real); sum_fake += mean_prob(fake);
            }
            ld[step] = gm_item(loss_d);
            gm_tape_reset(T);                                   /* one step of G, D held fixed */
            gz = generate(T, &m, noise(T, B, &rng), GM_TRAIN);                                 /* G(z)              */
            fake = discriminate(T, &m, gz);                                                    /* D(G(z))           */
            loss_g = gm_gan_g_loss(T, fake, GM_GAN_NONSATURATING);                          /* -log D(G(z))      */
            gm_backward(T, loss_g);
            gm_optim_step(opt_g);                               /* (D's gradients go unused) */
            lg[step] = gm_item(loss_g);
            sum_ld += ld[step]; sum_lg += lg[step];
            gm_progress_update(&bar, s + 1, "D %.3f G %.3f", ld[step], lg[step]);
        }
        gm_progress_finish(&bar);
        sum_ld /= steps_per_epoch; sum_lg /= steps_per_epoch; sum_real /= nb; sum_fake /= nb;
        printf("epoch %d   D loss %.3f   G loss %.3f   D(x) %.3f   D(G(z)) %.3f\n", e + 1, sum_ld, sum_lg,
               sum_real, sum_fake);
        decode_all(T, &m, fixed_z, 64, grid);                          /* the same 64 codes each epoch */
        snprintf(png, sizeof png, "epoch%d.png", e + 1);
        demo_check(&d, gm_save_image_grid(demo_path(&d, png), grid, 64, 1, 28, 28, 8, 0, 1), "saving");
    }
    save_losses(&d, ld, lg, (int)step);
    demo_check(&d, gm_save_params(&m.PG, demo_path(&d, "generator.ckpt")), "saving the generator");

    /* ---------------------------------------------------------------- samples and scores */
    samples = (float *)malloc(sizeof(float) * n_samples * 784);
    z = (float *)malloc(sizeof(float) * n_samples * Z);
    for (i = 0; i < n_samples * Z; i++) z[i] = gm_rng_normal(&rng);                  /* z ~ N(0, I) */
    decode_all(T, &m, z, n_samples, samples);
    shape[0] = n_samples; shape[1] = 1; shape[2] = 28; shape[3] = 28;
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), samples, 4, shape), "saving samples.npy");
    classifier_score(&d, samples, n_samples, &test, classifier_is_builtin(&train), &fid, &is);

    demo_result("d_loss", sum_ld);
    demo_result("g_loss", sum_lg);
    demo_result("d_real", sum_real);
    demo_result("d_fake", sum_fake);
    demo_result("fid", fid);
    demo_result("is", is);

    free(samples); free(z); free(ld); free(lg);
    gm_optim_free(opt_g); gm_optim_free(opt_d);
    gm_params_free(&m.PG); gm_params_free(&m.PD);
    gm_tape_free(T);
    gm_dataset_free(&train); gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
