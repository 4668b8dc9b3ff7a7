/* 07_posterior_collapse - posterior collapse, and three ways to train the same VAE
 *
 * What it shows: VAEs with Z = 50 latent dimensions whose decoders can model the images
 * without z: every pixel also sees the pixels before it (autoregressive; pixels binarized,
 * so p(x|z) is a true likelihood). "linear" regresses each pixel on the earlier ones; "MADE"
 * adds a masked hidden layer of 1000 units (Germain et al. 2015). Trained by the plain ELBO,
 * the linear one keeps a few nats in z and a handful of units (a partial collapse); the MADE
 * one drives KL(q(z|x) || p(z)) to about 0: q(z|x) is the prior whatever x is. Each decoder
 * is trained three ways, from the same weights on the same batches: plain ELBO, KL annealing
 * (beta rising from 0 to 1 over the first half), free bits (no KL pressure on a dimension
 * below lambda nats). Table per model: KL, active units (Var_x mu_j(x) > 0.01, Burda et al.
 * 2016), dimensions with KL_j > 0.1, reconstruction and -ELBO, in nats per test image.
 * --decoder mlp: the MLP decoder of vae.h alone; variable collapse after --epochs 10.
 * Lecture: lectures/07-posterior-collapse.md
 * Run:     make build/posterior_collapse && ./build/posterior_collapse   (about 83 s on 2 cores)
 *          ./build/posterior_collapse --seed 2 ; --lr 0.003 ; --decoder mlp --epochs 10
 * Output:  out/posterior_collapse/kl_curve.png   KL of every training batch, per model
 *          out/posterior_collapse/kl_dims.png    test KL of each latent dimension, sorted
 *          out/posterior_collapse/recon.png      test images; then per model x ~ p(x|z = mu(x))
 *          out/posterior_collapse/samples.png    per model a row of x ~ p(x|z), z ~ N(0, I)
 *          out/posterior_collapse/samples.npy    --samples per model, in the table's order
 *          result lines active_units_<s>, kl_<s>, rec_<s>, neg_elbo_<s>, s = plain, annealed,
 *          free_bits, for the table's last decoder (the linear one's end in _linear)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --decoder D    ar (default: the linear, then the MADE decoder) or mlp\n"
    "  --hidden H     MADE's hidden units (default 1000)\n"
    "  --epochs N     passes over the training set per model (default 2; 1 with --quick)\n"
    "  --latent Z     latent dimensions (default 50)\n"
    "  --lambda L     free bits: nats per latent dimension left free of KL pressure (default 0.25)\n"
    "  --lr R         Adam step size (default 0.005)\n"
    "  --samples N    samples per model written to samples.npy (default 1000)\n";

/* ---- the decoder p_theta(x|z) ---------------------------------------------------------------
 * logits l = f(z) + g(x), p(x|z) = prod_i Bernoulli(x_i; sigmoid(l_i)), with f the MLP of vae.h
 * (Z-400 ReLU-784) and g a network of x in which l_i sees only the pixels before it (j < i):
 *   mlp:     g = 0                               the pixels are independent given z
 *   linear:  g(x) = A x + a,  A_ij = 0 unless j < i       (fully visible sigmoid belief net)
 *   MADE:    g(x) = A x + a + V relu(U x + c) + v, hidden unit k with a degree m_k in 0..782,
 *            U_kj = 0 unless j <= m_k, V_ik = 0 unless m_k < i: l_i sees x_j only through
 *            units with j <= m_k < i (Germain et al. 2015)
 * g alone is a model of x; z can only add what the earlier pixels do not tell. */
enum { MLP, LINEAR, MADE };
static const char *decoder_name[] = {"MLP", "linear", "MADE"};

typedef struct model {
    vae v;                      /* the encoder q_phi(z|x) and f_theta */
    int kind, H;
    gm_dense A, U, V;           /* A (784,784), U (H,784), V (784,H), with biases a, c, v */
    int *deg;                   /* degrees: pixel i has deg[i] = i, hidden unit k deg[784 + k] */
} model;

/* w_oi = 0 unless deg_in[i] < deg_out[o] (strict) or deg_in[i] <= deg_out[o]; applied after
 * initialization and after every Adam step (Adam moves masked weights too, since their
 * gradients are not zero; the next forward pass must not see them) */
static void mask(gm_dense *l, const int *deg_in, const int *deg_out, int strict)
{
    int o, i;
    for (o = 0; o < l->out; o++)
        for (i = 0; i < l->in; i++)
            if (deg_in[i] + strict > deg_out[o]) l->w->val[(size_t)o * l->in + i] = 0.0f;
}

static void mask_all(model *m)
{
    if (m->kind != MLP) mask(&m->A, m->deg, m->deg, 1);                         /* A_ij: j < i    */
    if (m->kind == MADE) {
        mask(&m->U, m->deg, m->deg + 784, 0);                                   /* U_kj: j <= m_k */
        mask(&m->V, m->deg + 784, m->deg, 1);                                   /* V_ik: m_k < i  */
    }
}

static model model_new(int kind, int H, int Z, gm_rng *rng)
{
    model m;
    int i;
    memset(&m, 0, sizeof m);
    m.v = vae_new(VAE_MLP, Z, rng);
    m.kind = kind; m.H = kind == MADE ? H : 0;
    m.deg = (int *)malloc((size_t)(784 + m.H) * sizeof(int));
    for (i = 0; i < 784 + m.H; i++) m.deg[i] = i < 784 ? i : (int)((long)(i - 784) * 783 / H);  /* 0..782 */
    if (kind != MLP) m.A = gm_dense_new(&m.v.P, "ar_A", 784, 784, rng);
    if (kind == MADE) {
        m.U = gm_dense_new(&m.v.P, "made_U", 784, H, rng);
        m.V = gm_dense_new(&m.v.P, "made_V", H, 784, rng);
    }
    mask_all(&m);
    return m;
}

/* the logits of p(x|z); x is read only where the masks let it be */
static gm_tensor *decode(gm_tape *T, const model *m, gm_tensor *z, gm_tensor *x)
{
    gm_tensor *logits = vae_decode(T, &m->v, z), *xf, *g;                         /* f(z)    */
    if (m->kind == MLP) return logits;
    xf = gm_flatten(T, x);
    g = gm_dense(T, &m->A, xf);                                                    /* A x + a */
    if (m->kind == MADE)                                                           /* + V relu(U x + c) + v */
        g = gm_add(T, g, gm_dense(T, &m->V, gm_relu(T, gm_dense(T, &m->U, xf))));
    return gm_add(T, logits, gm_reshape(T, g, logits->shape));
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
    char name[40];              /* "MADE, plain ELBO" */
    double rec, kl, neg_elbo;   /* test set, nats per image */
    int active, informative;    /* active units; dimensions whose test KL exceeds 0.1 nats */
    float *kl_dim;              /* (Z) test KL of each latent dimension, largest first */
    float *curve;               /* KL of each training batch */
} outcome;

static void train(model *m, gm_dataset *train_set, const setting *s, float lambda, float lr, long steps,
                  outcome *o, gm_tape *T, gm_rng *rng)
{
    gm_optim *opt = gm_adam_new(&m->v.P, lr, 0.9f, 0.999f);
    gm_progress bar = gm_progress_start(o->name, steps);
    long step, per_epoch = gm_batches(train_set, 128);
    for (step = 0; step < steps; step++) {
        terms t;
        gm_tensor *rec, *kl_true, *kl, *loss;
        float beta = s->anneal ? gm_anneal_linear(step, steps / 2) : 1.0f;
        if (step % per_epoch == 0) gm_dataset_shuffle(train_set, rng);
        gm_tape_reset(T);
        t = forward(T, m, gm_batch(T, train_set, step, 128), rng);
        rec = gm_mean(T, t.rec);                                            /* E_q[-log p(x|z)]         */
        kl_true = gm_mean(T, gm_sum_per_example(T, t.kl_dim));             /* sum_j KL_j               */
        kl = s->free_bits ? gm_free_bits(T, t.kl_dim, lambda, 1) : kl_true; /* or sum_j max(lambda, KL_j) */
        kl = gm_scale(T, kl, beta);                                         /* beta KL                  */
        loss = gm_add(T, rec, kl);
        gm_backward(T, loss);
        gm_optim_step(opt);
        mask_all(m);
        o->curve[step] = gm_item(kl_true);                                  /* the true KL, per image   */
        gm_progress_update(&bar, step + 1, "rec %.1f kl %.2f beta %.2f", gm_item(rec), o->curve[step], beta);
    }
    gm_progress_finish(&bar);
    gm_optim_free(opt);
}

/* -ELBO, its terms and the KL of each dimension (sorted, largest first) on the test set; active
 * units from mu; the codes mu(x) of the first `show` test images into mu_show (show,Z) */
static void evaluate(const model *m, const gm_dataset *test, outcome *o, float *mu_show, int show, gm_tape *T,
                     gm_rng *rng)
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
    for (i = 0; i < Z; i++) {                  /* the totals, and an insertion sort, descending */
        float v = o->kl_dim[i];
        o->kl += v;
        o->informative += v > 0.1f;
        for (j = i; j > 0 && o->kl_dim[j - 1] < v; j--) o->kl_dim[j] = o->kl_dim[j - 1];
        o->kl_dim[j] = v;
    }
    o->neg_elbo = o->rec + o->kl;
    o->active = gm_active_units(mu, n, Z, 0.01f, NULL);        /* A_j = Var_x mu_j(x) > 0.01 */
    memcpy(mu_show, mu, (size_t)show * Z * sizeof(float));
    free(mu);
}

/* x ~ p(x|z) for n codes z (n,Z), into x (n,784). An autoregressive decoder draws pixel by
 * pixel in raster order, x_i ~ Bernoulli(sigmoid(l_i)), each draw seen by the pixels after it.
 * MADE's hidden pre-activations h = U x + c start at c and grow by column i of U once x_i is
 * drawn; l_i reads only units with m_k < i, whose inputs are all drawn by then. The MLP
 * decoder's pixels are independent given z, and we keep their means (as vae.h does). */
static void sample_x(gm_tape *T, const model *m, const float *z, int n, float *x, gm_rng *rng)
{
    const float *A = m->A.w ? m->A.w->val : NULL, *U = m->H ? m->U.w->val : NULL, *V = m->H ? m->V.w->val : NULL;
    int H = m->H, s, i, j, k;
    float *h = (float *)malloc((size_t)(H + 1) * sizeof(float)), *f;
    gm_tape_reset(T);
    f = vae_decode(T, &m->v, gm_from(T, gm_shape2(n, m->v.Z), z))->val;         /* f(z), (n,784) */
    for (s = 0; s < n; s++) {
        float *xs = x + (size_t)s * 784;
        if (H) memcpy(h, m->U.b->val, (size_t)H * sizeof(float));               /* h = c */
        for (i = 0; i < 784; i++) {
            float l = f[(size_t)s * 784 + i];
            if (m->kind == MLP) { xs[i] = 1.0f / (1.0f + expf(-l)); continue; }    /* the pixel mean */
            l += m->A.b->val[i] + (H ? m->V.b->val[i] : 0.0f);
            for (j = 0; j < i; j++) l += A[(size_t)i * 784 + j] * xs[j];         /* + sum_{j<i} A_ij x_j   */
            for (k = 0; k < H; k++) l += V[(size_t)i * H + k] * (h[k] > 0 ? h[k] : 0); /* + sum_k V_ik relu(h_k) */
            xs[i] = (float)(gm_rng_uniform(rng) < 1.0f / (1.0f + expf(-l)));      /* x_i ~ Bernoulli     */
            for (k = 0; k < H && xs[i] > 0; k++) h[k] += U[(size_t)k * 784 + i];  /* h += U_{:,i} x_i    */
        }
    }
    free(h);
}

/* ---- pictures --------------------------------------------------------------------------------- */
static void save_plots(demo *d, const outcome *out, int n_models, int Z, long steps, float lambda)
{
    gm_plot *curve = gm_plot_new("KL(q(z|x) || p(z)) of each training batch", "step", "nats per image");
    gm_plot *dims = gm_plot_new("test KL of each latent dimension, largest first", "rank", "nats");
    float *floor_ = (float *)malloc((size_t)Z * sizeof(float));
    int k, i;
    for (k = 0; k < n_models; k++) {
        gm_plot_line(curve, out[k].name, NULL, out[k].curve, (int)steps);
        gm_plot_line(dims, out[k].name, NULL, out[k].kl_dim, Z);
    }
    for (i = 0; i < Z; i++) floor_[i] = lambda;
    gm_plot_line(dims, "free-bits lambda", NULL, floor_, Z);
    gm_plot_logy(curve, 1);
    gm_plot_logy(dims, 1);
    demo_check(d, gm_plot_save(curve, demo_path(d, "kl_curve.png"), 0, 0), "saving kl_curve.png");
    demo_check(d, gm_plot_save(dims, demo_path(d, "kl_dims.png"), 0, 0), "saving kl_dims.png");
    gm_plot_free(curve); gm_plot_free(dims);
    free(floor_);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "posterior_collapse", usage);
    const char *dec = demo_str(&d, "--decoder", "ar");
    int epochs = demo_epochs(&d, d.quick ? 1 : 2), H = demo_int(&d, "--hidden", 1000, 1, 4096);
    int Z = demo_int(&d, "--latent", 50, 1, 784), N = demo_int(&d, "--samples", d.quick ? 64 : 1000, 16, 10000);
    float lambda = demo_float(&d, "--lambda", 0.25f, 0, 10);
    float lr = demo_float(&d, "--lr", 5e-3f, 1e-6, 0.01);       /* 0.02 diverged (--decoder mlp) */
    const setting set[3] = { {"plain ELBO", "plain", 0, 0}, {"KL annealing", "annealed", 1, 0},
                             {"free bits", "free_bits", 0, 1} };
    int ar = strcmp(dec, "mlp") != 0, kinds[2] = {ar ? LINEAR : MLP, MADE};   /* the decoders, in order */
    int M = ar ? 6 : 3, shape[4] = {0, 1, 28, 28}, k, i;       /* models: decoders x settings */
    enum { SHOW = 16 };
    gm_tape *T = gm_tape_new(0);
    gm_dataset train_set, test;
    outcome out[6];
    float *samples = (float *)malloc((size_t)M * N * 784 * sizeof(float));
    float *recon = (float *)malloc((size_t)(M + 1) * SHOW * 784 * sizeof(float));
    float *grid = (float *)malloc((size_t)M * SHOW * 784 * sizeof(float));
    float *z = (float *)malloc((size_t)(N > SHOW ? N : SHOW) * Z * sizeof(float));
    long steps;

    if (ar && strcmp(dec, "ar")) { fprintf(stderr, "posterior_collapse: --decoder is ar or mlp\n"); return 2; }
    demo_images(&d, &train_set, &test, 3000);
    binarize(&train_set); binarize(&test);
    steps = (long)epochs * gm_batches(&train_set, 128);
    printf("VAE with Z = %d, %d epoch(s) of %d batches of 128 per model, Adam %g\n", Z, epochs, gm_batches(&train_set, 128), lr);
    if (ar) printf("decoders: linear, and MADE with %d hidden units\n", H);
    printf("free bits lambda = %g nats per dimension; annealing: beta 0 -> 1 over the first %ld steps\n\n", lambda, steps / 2);
    memcpy(recon, gm_batch(T, &test, 0, SHOW)->val, (size_t)SHOW * 784 * sizeof(float));   /* row 0: x */

    for (k = 0; k < M; k++) {
        gm_rng rng = gm_rng_new(d.seed);          /* every model: same initial weights, same batches */
        model m = model_new(kinds[k / 3], H, Z, &rng);
        snprintf(out[k].name, sizeof out[k].name, "%s, %s", decoder_name[m.kind], set[k % 3].name);
        out[k].curve = (float *)malloc((size_t)steps * sizeof(float));
        out[k].kl_dim = (float *)calloc((size_t)Z, sizeof(float));
        train(&m, &train_set, &set[k % 3], lambda, lr, steps, &out[k], T, &rng);
        evaluate(&m, &test, &out[k], z, SHOW, T, &rng);
        /* what z carries: x ~ p(x | z = mu(x)) for the first test images */
        sample_x(T, &m, z, SHOW, recon + (size_t)(k + 1) * SHOW * 784, &rng);
        /* new images: z ~ N(0, I) */
        for (i = 0; i < N * Z; i++) z[i] = gm_rng_normal(&rng);
        sample_x(T, &m, z, N, samples + (size_t)k * N * 784, &rng);
        memcpy(grid + (size_t)k * SHOW * 784, samples + (size_t)k * N * 784, (size_t)SHOW * 784 * sizeof(float));
        gm_params_free(&m.v.P);
        free(m.deg);
    }

    printf("%-8s %-14s %8s %14s %12s %9s %9s\n", "decoder", "setting", "KL", "active units", "KL_j > 0.1", "rec", "-ELBO");
    for (k = 0; k < M; k++)
        printf("%-8s %-14s %8.2f %9d / %-2d %12d %9.2f %9.2f\n", decoder_name[kinds[k / 3]], set[k % 3].name,
               out[k].kl, out[k].active, Z, out[k].informative, out[k].rec, out[k].neg_elbo);
    printf("(test set, %d images, nats per image; active: Var_x mu_j(x) > 0.01; KL_j > 0.1: dimensions\n"
           " carrying more than 0.1 nats)\n\n", test.n);
    save_plots(&d, out, M, Z, steps, lambda);
    {   /* each row named by its model ("decoder, setting"), under the test images */
        const char *rows[7];
        gm_grid_labels labels = {NULL, rows, NULL};
        rows[0] = "test images";
        for (k = 0; k < M; k++) rows[k + 1] = out[k].name;
        demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "recon.png"), recon, (M + 1) * SHOW, 1, 28, 28, SHOW,
                                                  0, 1, &labels), "saving recon.png");
        labels.rows = rows + 1;
        demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "samples.png"), grid, M * SHOW, 1, 28, 28, SHOW, 0, 1,
                                                  &labels), "saving samples.png");
    }
    shape[0] = M * N;
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), samples, 4, shape), "saving samples.npy");
    for (k = 0; k < M; k++) {                     /* the linear decoder's keys end in _linear */
        const char *s = set[k % 3].key, *e = ar && k < 3 ? "_linear" : "";
        char key[64];
        snprintf(key, sizeof key, "active_units_%s%s", s, e); demo_result(key, out[k].active);
        snprintf(key, sizeof key, "kl_%s%s", s, e);           demo_result(key, out[k].kl);
        snprintf(key, sizeof key, "rec_%s%s", s, e);          demo_result(key, out[k].rec);
        snprintf(key, sizeof key, "neg_elbo_%s%s", s, e);     demo_result(key, out[k].neg_elbo);
        free(out[k].curve); free(out[k].kl_dim);
    }
    free(samples); free(recon); free(z); free(grid);
    gm_tape_free(T); gm_dataset_free(&train_set); gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
