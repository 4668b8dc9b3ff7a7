/* 07_posterior_collapse - posterior collapse, and three ways to train the same VAE
 *
 * What it shows: a VAE with Z = 50 latent dimensions whose decoder is strong enough to model
 * the images without z (an autoregressive decoder: every pixel also sees the pixels before
 * it; pixels binarized so p(x|z) is a true likelihood). Trained by the plain ELBO, its
 * KL(q(z|x) || p(z)) stays small and most latent units go dead: for them q(z_j|x) is the
 * prior whatever x is. The same model on the same batches, trained with KL annealing (beta
 * rising from 0 to 1 over the first half) or with free bits (no KL pressure on a dimension
 * below lambda nats), keeps a larger KL and more units active. Table per setting: KL,
 * active units (Var_x mu_j(x) > 0.01 on the test set, Burda et al. 2016), dimensions with
 * KL_j > 0.1 nats, reconstruction and -ELBO, in nats per test image.
 * --decoder mlp swaps in the plain MLP decoder of vae.h: no posterior collapse, but
 * variable collapse (some of the 50 units unused) once trained for longer (--epochs 10).
 * Samples: the autoregressive decoder draws x pixel by pixel; the MLP one gives pixel means.
 * Lecture: lectures/07-posterior-collapse.md
 * Run:     make build/posterior_collapse && ./build/posterior_collapse   (about 24 s on 2 cores)
 *          ./build/posterior_collapse --seed 2 ; --decoder mlp --epochs 10 ; --lambda 0.05
 * Output:  out/posterior_collapse/kl_curve.png   KL of every training batch, per setting
 *          out/posterior_collapse/kl_dims.png    test KL of each latent dimension, sorted
 *          out/posterior_collapse/recon.png      test images; then per setting x ~ p(x|z = mu(x))
 *          out/posterior_collapse/samples.png    per setting a row of x ~ p(x|z), z ~ N(0, I)
 *          out/posterior_collapse/samples.npy    --samples per setting (plain, annealed, free
 *                                                bits in that order), (3N,1,28,28) in [0,1]
 *          result lines: active_units_<s>, kl_<s>, rec_<s>, neg_elbo_<s> for
 *          s = plain, annealed, free_bits
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --decoder D    pixel (default: the MLP decoder plus every earlier pixel) or mlp\n"
    "  --epochs N     passes over the training set per setting (default 2; 1 with --quick)\n"
    "  --latent Z     latent dimensions (default 50)\n"
    "  --lambda L     free bits: nats per latent dimension left free of KL pressure (default 0.25)\n"
    "  --lr R         Adam step size (default 0.003)\n"
    "  --samples N    samples per setting written to samples.npy (default 1000)\n";

/* ---- the decoder p_theta(x|z) ---------------------------------------------------------------
 * mlp:   logits = f_theta(z)                          (vae.h: Z-400 ReLU-784)
 * pixel: logits = f_theta(z) + W x + b,   W strictly lower triangular (W_ij = 0 for j >= i),
 * so pixel i (raster order) also sees every pixel before it:
 *     p(x|z) = prod_i Bernoulli(x_i; sigmoid(f(z)_i + sum_{j<i} W_ij x_j + b_i)),
 * a fully visible sigmoid belief net (Frey 1998) whose biases depend on z: a proper
 * autoregressive distribution over x that can model much of x with no help from z. */
typedef struct model {
    vae v;                      /* the encoder q_phi(z|x) and f_theta */
    int pixel;                  /* 1: add the autoregressive term */
    gm_dense ar;                /* W (784,784), b (784) */
} model;

/* W_ij = 0 for j >= i: after initialization and after every optimizer step */
static void mask_future(gm_dense *l)
{
    int i, j;
    for (i = 0; i < 784; i++)
        for (j = i; j < 784; j++) l->w->val[i * 784 + j] = 0.0f;
}

static model model_new(int pixel, int Z, gm_rng *rng)
{
    model m;
    memset(&m, 0, sizeof m);
    m.v = vae_new(VAE_MLP, Z, rng);
    m.pixel = pixel;
    if (pixel) {
        m.ar = gm_dense_new(&m.v.P, "ar", 784, 784, rng);
        mask_future(&m.ar);
    }
    return m;
}

/* the logits of p(x|z); x is only read where W lets it be (the pixels before each one) */
static gm_tensor *decode(gm_tape *T, const model *m, gm_tensor *z, gm_tensor *x)
{
    gm_tensor *logits = vae_decode(T, &m->v, z);                                    /* f(z)       */
    gm_tensor *past;
    if (!m->pixel) return logits;
    past = gm_reshape(T, gm_dense(T, &m->ar, gm_flatten(T, x)), logits->shape);    /* W x_<i + b */
    return gm_add(T, logits, past);
}

/* x_d = 1 where x_d > 1/2, else 0: with binary pixels the Bernoulli p(x|z) is a true
 * likelihood, and the autoregressive decoder is fed at sampling time what it saw in training */
static void binarize(gm_dataset *ds)
{
    long i;
    for (i = 0; i < (long)ds->n * ds->d; i++) ds->x[i] = ds->x[i] > 0.5f ? 1.0f : 0.0f;
}

/* The pieces of -ELBO for a batch: rec (B), kl_dim (B,Z), and mu (B,Z). */
typedef struct terms { gm_tensor *mu, *rec, *kl_dim; } terms;

static terms forward(gm_tape *T, const model *m, gm_tensor *x, gm_rng *rng)
{
    terms t;
    gm_tensor *logvar, *z;
    vae_encode(T, &m->v, x, &t.mu, &logvar);                     /* q_phi(z|x) = N(mu, e^logvar) */
    z = gm_reparameterize(T, t.mu, logvar, rng);                 /* z = mu + sigma eps           */
    t.rec = gm_bernoulli_nll(T, decode(T, m, z, x), x);          /* -log p_theta(x|z)            */
    t.kl_dim = gm_kl_normal_std(T, t.mu, logvar);                /* KL(q(z_j|x) || N(0,1))       */
    return t;
}

/* ---- the three ways to train it ------------------------------------------------------------- */
typedef struct setting {
    const char *name, *key;
    int anneal;                 /* beta = min(1, step / (steps/2)) instead of 1 */
    int free_bits;              /* the KL term sum_j max(lambda, mean_b KL_bj)   */
} setting;

typedef struct outcome {
    double rec, kl, neg_elbo;   /* test set, nats per image */
    int active;                 /* active units */
    int informative;            /* dimensions whose test KL exceeds 0.1 nats */
    float *kl_dim;              /* (Z) test KL of each latent dimension */
    float *curve;               /* KL of each training batch */
} outcome;

static void train(model *m, gm_dataset *train_set, const setting *s, float lambda, float lr, long steps,
                  float *curve, gm_tape *T, gm_rng *rng)
{
    gm_optim *opt = gm_adam_new(&m->v.P, lr, 0.9f, 0.999f);
    gm_progress bar = gm_progress_start(s->name, steps);
    long step, per_epoch = gm_batches(train_set, 128);
    int i;
    for (step = 0; step < steps; step++) {
        terms t;
        gm_tensor *rec, *kl, *loss;
        float beta = s->anneal ? gm_anneal_linear(step, steps / 2) : 1.0f;
        double kl_sum = 0;
        if (step % per_epoch == 0) gm_dataset_shuffle(train_set, rng);
        gm_tape_reset(T);
        t = forward(T, m, gm_batch(T, train_set, step, 128), rng);
        rec = gm_mean(T, t.rec);                                            /* E_q[-log p(x|z)]         */
        if (s->free_bits) kl = gm_free_bits(T, t.kl_dim, lambda, 1);       /* sum_j max(lambda, KL_j)  */
        else kl = gm_mean(T, gm_sum_per_example(T, t.kl_dim));             /* sum_j KL_j               */
        kl = gm_scale(T, kl, beta);                                         /* beta KL                  */
        loss = gm_add(T, rec, kl);
        gm_backward(T, loss);
        gm_optim_step(opt);
        if (m->pixel) mask_future(&m->ar);
        for (i = 0; i < t.kl_dim->size; i++) kl_sum += t.kl_dim->val[i];
        curve[step] = (float)(kl_sum / t.rec->size);                        /* the true KL, per image   */
        gm_progress_update(&bar, step + 1, "rec %.1f kl %.2f beta %.2f", gm_item(rec), curve[step], beta);
    }
    gm_progress_finish(&bar);
    gm_optim_free(opt);
}

/* -ELBO, its terms and the KL of each dimension on the test set; active units from mu */
static void evaluate(const model *m, const gm_dataset *test, outcome *o, gm_tape *T, gm_rng *rng)
{
    int Z = m->v.Z, n = test->n, nb = gm_batches(test, 500), i, j;
    float *mu = (float *)malloc((size_t)n * Z * sizeof(float));
    o->rec = o->kl = 0;
    for (i = 0; i < nb; i++) {
        terms t;
        gm_tape_reset(T);
        t = forward(T, m, gm_batch(T, test, i, 500), rng);
        for (j = 0; j < t.rec->size; j++) o->rec += t.rec->val[j] / n;
        for (j = 0; j < t.kl_dim->size; j++) o->kl_dim[j % Z] += t.kl_dim->val[j] / n;
        memcpy(mu + (size_t)i * 500 * Z, t.mu->val, (size_t)t.mu->size * sizeof(float));
    }
    o->informative = 0;
    for (j = 0; j < Z; j++) { o->kl += o->kl_dim[j]; o->informative += o->kl_dim[j] > 0.1f; }
    o->neg_elbo = o->rec + o->kl;
    o->active = gm_active_units(mu, n, Z, 0.01f, NULL);        /* A_j = Var_x mu_j(x) > 0.01 */
    free(mu);
}

/* x ~ p(x|z) for n codes z (n,Z), into x (n,784). The autoregressive decoder draws pixel by
 * pixel in raster order, x_i ~ Bernoulli(p_i), each draw seen by the pixels after it; the MLP
 * decoder's pixels are independent given z, and we keep their means (as vae.h does). */
static void sample_x(gm_tape *T, const model *m, const float *z, int n, float *x, gm_rng *rng)
{
    const float *W = m->pixel ? m->ar.w->val : NULL, *b = m->pixel ? m->ar.b->val : NULL;
    gm_tensor *f;
    int s, i, j;
    gm_tape_reset(T);
    f = vae_decode(T, &m->v, gm_from(T, gm_shape2(n, m->v.Z), z));             /* f(z), (n,1,28,28) */
    for (s = 0; s < n; s++) {
        float *xs = x + (size_t)s * 784;
        const float *fs = f->val + (size_t)s * 784;
        for (i = 0; i < 784; i++) {
            float a = fs[i], p;
            if (m->pixel) {
                a += b[i];
                for (j = 0; j < i; j++) a += W[i * 784 + j] * xs[j];             /* sum_{j<i} W_ij x_j */
            }
            p = 1.0f / (1.0f + expf(-a));
            xs[i] = m->pixel ? (float)(gm_rng_uniform(rng) < p) : p;
        }
    }
}

/* ---- pictures --------------------------------------------------------------------------------- */
static void save_plots(demo *d, const setting *set, const outcome *out, int Z, long steps, float lambda)
{
    gm_plot *curve = gm_plot_new("KL(q(z|x) || p(z)) of each training batch", "step", "nats per image");
    gm_plot *dims = gm_plot_new("test KL of each latent dimension, largest first", "rank", "nats");
    float *sorted = (float *)malloc((size_t)Z * sizeof(float)), *floor_ = (float *)malloc((size_t)Z * sizeof(float));
    int k, i, j;
    for (k = 0; k < 3; k++) {
        for (i = 0; i < Z; i++) {                       /* insertion sort, descending */
            float v = out[k].kl_dim[i];
            for (j = i; j > 0 && sorted[j - 1] < v; j--) sorted[j] = sorted[j - 1];
            sorted[j] = v;
        }
        gm_plot_line(curve, set[k].name, NULL, out[k].curve, (int)steps);
        gm_plot_line(dims, set[k].name, NULL, sorted, Z);
    }
    for (i = 0; i < Z; i++) floor_[i] = lambda;
    gm_plot_line(dims, "free-bits lambda", NULL, floor_, Z);
    gm_plot_logy(curve, 1);
    gm_plot_logy(dims, 1);
    demo_check(d, gm_plot_save(curve, demo_path(d, "kl_curve.png"), 0, 0), "saving kl_curve.png");
    demo_check(d, gm_plot_save(dims, demo_path(d, "kl_dims.png"), 0, 0), "saving kl_dims.png");
    gm_plot_free(curve); gm_plot_free(dims);
    free(sorted); free(floor_);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "posterior_collapse", usage);
    const char *dec = demo_str(&d, "--decoder", "pixel");
    int pixel = strcmp(dec, "pixel") == 0;
    int epochs = demo_int(&d, "--epochs", d.quick ? 1 : 2);
    int Z = demo_int(&d, "--latent", 50), N = demo_int(&d, "--samples", d.quick ? 64 : 1000);
    float lambda = demo_float(&d, "--lambda", 0.25f), lr = demo_float(&d, "--lr", 3e-3f);
    const setting set[3] = { {"plain ELBO", "plain", 0, 0}, {"KL annealing", "annealed", 1, 0},
                             {"free bits", "free_bits", 0, 1} };
    enum { SHOW = 16 };
    gm_tape *T = gm_tape_new(0);
    gm_dataset train_set, test;
    outcome out[3];
    float *samples = (float *)malloc((size_t)3 * N * 784 * sizeof(float));
    float *recon = (float *)malloc((size_t)4 * SHOW * 784 * sizeof(float));
    float *grid = (float *)malloc((size_t)3 * SHOW * 784 * sizeof(float));
    float *z = (float *)malloc((size_t)(N > SHOW ? N : SHOW) * Z * sizeof(float));
    int shape[4] = {3 * N, 1, 28, 28}, k, i;
    long steps;

    if (N < SHOW) { fprintf(stderr, "posterior_collapse: --samples must be at least %d\n", SHOW); return 2; }
    if (!pixel && strcmp(dec, "mlp")) { fprintf(stderr, "posterior_collapse: --decoder is pixel or mlp\n"); return 2; }
    demo_images(&d, &train_set, &test, 3000);
    binarize(&train_set);
    binarize(&test);
    steps = (long)epochs * gm_batches(&train_set, 128);
    printf("VAE with Z = %d, decoder %s, %d epochs of %d batches of 128 per setting, Adam %g\n",
           Z, pixel ? "MLP + autoregressive (every earlier pixel)" : "MLP", epochs, gm_batches(&train_set, 128), lr);
    printf("free bits lambda = %g nats per dimension; annealing: beta 0 -> 1 over the first %ld steps\n\n",
           lambda, steps / 2);
    memcpy(recon, gm_batch(T, &test, 0, SHOW)->val, (size_t)SHOW * 784 * sizeof(float));   /* row 0: x */

    for (k = 0; k < 3; k++) {
        gm_rng rng = gm_rng_new(d.seed);          /* every setting: same initial weights, same batches */
        model m = model_new(pixel, Z, &rng);
        gm_tensor *mu, *logvar;
        out[k].curve = (float *)malloc((size_t)steps * sizeof(float));
        out[k].kl_dim = (float *)calloc((size_t)Z, sizeof(float));
        train(&m, &train_set, &set[k], lambda, lr, steps, out[k].curve, T, &rng);
        evaluate(&m, &test, &out[k], T, &rng);
        /* what z carries: x ~ p(x | z = mu(x)) for the first test images */
        gm_tape_reset(T);
        vae_encode(T, &m.v, gm_batch(T, &test, 0, SHOW), &mu, &logvar);
        memcpy(z, mu->val, (size_t)SHOW * Z * sizeof(float));
        sample_x(T, &m, z, SHOW, recon + (size_t)(k + 1) * SHOW * 784, &rng);
        /* new images: z ~ N(0, I) */
        for (i = 0; i < N * Z; i++) z[i] = gm_rng_normal(&rng);
        sample_x(T, &m, z, N, samples + (size_t)k * N * 784, &rng);
        memcpy(grid + (size_t)k * SHOW * 784, samples + (size_t)k * N * 784, (size_t)SHOW * 784 * sizeof(float));
        gm_params_free(&m.v.P);
    }

    printf("%-14s %8s %14s %12s %9s %9s\n", "setting", "KL", "active units", "KL_j > 0.1", "rec", "-ELBO");
    for (k = 0; k < 3; k++)
        printf("%-14s %8.2f %9d / %-2d %12d %9.2f %9.2f\n", set[k].name, out[k].kl, out[k].active, Z,
               out[k].informative, out[k].rec, out[k].neg_elbo);
    printf("(test set, %d images, nats per image; active: Var_x mu_j(x) > 0.01; KL_j > 0.1: dimensions\n"
           " carrying more than 0.1 nats)\n\n", test.n);
    save_plots(&d, set, out, Z, steps, lambda);
    demo_check(&d, gm_save_image_grid(demo_path(&d, "recon.png"), recon, 4 * SHOW, 1, 28, 28, SHOW, 0, 1),
               "saving recon.png");
    demo_check(&d, gm_save_image_grid(demo_path(&d, "samples.png"), grid, 3 * SHOW, 1, 28, 28, SHOW, 0, 1),
               "saving samples.png");
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), samples, 4, shape), "saving samples.npy");
    for (k = 0; k < 3; k++) {
        char key[64];
        snprintf(key, sizeof key, "active_units_%s", set[k].key); demo_result(key, out[k].active);
        snprintf(key, sizeof key, "kl_%s", set[k].key);           demo_result(key, out[k].kl);
        snprintf(key, sizeof key, "rec_%s", set[k].key);          demo_result(key, out[k].rec);
        snprintf(key, sizeof key, "neg_elbo_%s", set[k].key);     demo_result(key, out[k].neg_elbo);
        free(out[k].curve); free(out[k].kl_dim);
    }
    free(samples); free(recon); free(z); free(grid);
    gm_tape_free(T);
    gm_dataset_free(&train_set);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
