/* bench/bench.c - the genmod side of the benchmark against PyTorch (see bench/README.md).
 *
 * One program, one workload per run, chosen by the first argument:
 *     build/bench vae       [--steps N]            one epoch of an MLP VAE on Fashion-MNIST
 *     build/bench dcgan     [--steps N]            DCGAN iterations at 28x28, batch 64
 *     build/bench diffusion [--steps N]            demos/12_ddpm.c's U-Net: training steps, batch 8
 *     build/bench ddim      [--steps S] [--batch N] DDIM sampling with it: N images (250), S steps (20)
 *     build/bench toygan    [--steps N] [--batch B] 2-D toy GAN iterations
 *     build/bench sgemm --m M --n N --k K [--ta 0|1] [--tb 0|1] [--via gemm|matmul] [--reps R]
 * plus --warmup N (untimed steps first), --seed N, --data DIR.
 * bench/ref/<workload>.py is the PyTorch twin of each: the same networks, data, batch sizes
 * and optimizers. The thread count is genmod's own setting: GM_THREADS in the environment
 * (OMP_NUM_THREADS in builds that used OpenMP); bench/run.sh sets both.
 *
 * Output is machine-readable, one "key value" per line, read by bench/run.sh:
 *     impl genmod            threads N         steps N (timed steps per repetition)
 *     time S                 seconds of one timed repetition (one line per repetition)
 *     loss L                 the training loss at the end (see each workload)
 *     flops F                floating-point operations of one timed repetition, counted
 *                            analytically: 2 M N K per matrix product (dense, conv, convT),
 *                            forward, plus 2 M N K for each gradient the backward computes
 *                            (the weight's always, the input's when the input needs one);
 *                            elementwise ops, losses, batch norm and Adam are not counted.
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- options */
typedef struct opts {
    const char *workload, *data, *via;
    int steps, warmup, batch, reps, m, n, k, ta, tb;
    uint64_t seed;
} opts;

static int arg_int(int argc, char **argv, const char *flag, int def)
{
    int i;
    for (i = 2; i + 1 < argc; i++) if (strcmp(argv[i], flag) == 0) return atoi(argv[i + 1]);
    return def;
}

static const char *arg_str(int argc, char **argv, const char *flag, const char *def)
{
    int i;
    for (i = 2; i + 1 < argc; i++) if (strcmp(argv[i], flag) == 0) return argv[i + 1];
    return def;
}

/* The thread count genmod runs with: GM_THREADS (genmod's own thread team), else the
 * OpenMP setting in an OpenMP build, else one per core; bench/run.sh sets both variables. */
static int threads(void)
{
    const char *env = getenv("GM_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
#ifdef _OPENMP
    return omp_get_max_threads();
#elif defined(_SC_NPROCESSORS_ONLN)
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
#else
    return 1;
#endif
}

/* The header every workload prints first. */
static void header(const opts *o, int steps)
{
    printf("impl genmod\nworkload %s\nthreads %d\nsteps %d\n", o->workload, threads(), steps);
    fflush(stdout);
}

/* FLOPs of one matrix product (M,K)(K,N) run forward, with its backward: the weight
 * gradient always, the input gradient when dx is set. */
static double mm_flops(double m, double n, double k, int backward, int dx)
{
    return 2.0 * m * n * k * (1 + (backward ? 1 + (dx != 0) : 0));
}

/* Fashion-MNIST train (60000 images in [0,1]) or a message saying why not. */
static int load_train(gm_dataset *train, const char *dir)
{
    gm_dataset test;
    if (!gm_load_fashion_mnist(train, &test, dir)) {
        fprintf(stderr, "bench: cannot load Fashion-MNIST: %s\n", gm_last_error());
        return 0;
    }
    gm_dataset_free(&test);
    return 1;
}

/* A (B) or (B,1) tensor filled with v: the targets of the GAN losses. */
static gm_tensor *filled(gm_tape *T, gm_shape s, float v)
{
    gm_tensor *t = gm_zeros(T, s);
    int i;
    for (i = 0; i < t->size; i++) t->val[i] = v;
    return t;
}

/* ================================================================ 1. VAE epoch
 * encoder 784-400 ReLU, heads 400->20 for mu and logvar; decoder 20-400 ReLU-784 logits.
 * loss per example = BCE-with-logits summed over pixels + KL(q(z|x) || N(0,I)),
 * averaged over the batch; Adam 1e-3, batch 128, shuffled. */
static int bench_vae(const opts *o)
{
    const int B = 128, D = 784, H = 400, Z = 20;
    gm_dataset train;
    gm_rng rng = gm_rng_new(o->seed);
    gm_params P = {0};
    gm_dense e1, emu, elv, d1, d2;
    gm_optim *opt;
    gm_tape *T;
    int nb, steps, s, r, tail;
    double flops;
    if (!load_train(&train, o->data)) return 1;
    e1 = gm_dense_new(&P, "e1", D, H, &rng);
    emu = gm_dense_new(&P, "emu", H, Z, &rng);
    elv = gm_dense_new(&P, "elv", H, Z, &rng);
    d1 = gm_dense_new(&P, "d1", Z, H, &rng);
    d2 = gm_dense_new(&P, "d2", H, D, &rng);
    opt = gm_adam_new(&P, 1e-3f, 0.9f, 0.999f);
    T = gm_tape_new(0);
    nb = gm_batches(&train, B);
    steps = o->steps > 0 && o->steps < nb ? o->steps : nb;
    tail = steps / 10 > 0 ? steps / 10 : 1;
    header(o, steps);
    /* per full batch: e1 (no dx: x is data), the two heads, d1, d2 */
    flops = (steps == nb ? (double)train.n : (double)steps * B) / B      /* examples / B batches */
          * (mm_flops(B, H, D, 1, 0) + 2 * mm_flops(B, Z, H, 1, 1) + mm_flops(B, H, Z, 1, 1) + mm_flops(B, D, H, 1, 1));
    for (r = 0; r < o->reps; r++) {
        double t0 = gm_seconds(), sum = 0.0;
        long count = 0;
        gm_dataset_shuffle(&train, &rng);
        for (s = 0; s < steps; s++) {
            gm_tensor *x, *h, *mu, *lv, *z, *logits, *rec, *kl, *loss;
            float half_z = -0.5f * Z;
            gm_tape_reset(T);
            x = gm_flatten(T, gm_batch(T, &train, s, B));                        /* (B, 784) */
            h = gm_relu(T, gm_dense(T, &e1, x));
            mu = gm_dense(T, &emu, h);                                            /* (B, Z)   */
            lv = gm_dense(T, &elv, h);                                            /* log sigma^2 */
            /* reparameterize: z = mu + e^(lv/2) eps */
            z = gm_add(T, mu, gm_mul(T, gm_exp(T, gm_scale(T, lv, 0.5f)), gm_randn(T, lv->shape, &rng)));
            logits = gm_dense(T, &d2, gm_relu(T, gm_dense(T, &d1, z)));
            rec = gm_bernoulli_nll(T, logits, x);                                 /* (B) */
            /* KL = 1/2 sum_j (mu_j^2 + e^lv_j - lv_j) - Z/2 */
            kl = gm_sub(T, gm_add(T, gm_square(T, mu), gm_exp(T, lv)), lv);
            kl = gm_add(T, gm_scale(T, gm_sum_per_example(T, kl), 0.5f), gm_from(T, gm_shape1(1), &half_z));
            loss = gm_mean(T, gm_add(T, rec, kl));
            gm_backward(T, loss);
            gm_optim_step(opt);
            if (s >= steps - tail) { sum += gm_item(loss) * x->shape.d[0]; count += x->shape.d[0]; }
        }
        printf("time %.6f\n", gm_seconds() - t0);
        printf("loss %.4f\n", sum / count);      /* per example, over the last tenth of the epoch */
        fflush(stdout);
    }
    printf("flops %.6g\n", flops);
    gm_tape_free(T);
    gm_optim_free(opt);
    gm_params_free(&P);
    gm_dataset_free(&train);
    return 0;
}

/* ================================================================ the GAN iteration
 * Both GAN workloads run the same iteration: a D step on a real batch x (label 1) and on
 * G(z) held fixed (label 0), then a G step on a fresh z with the non-saturating loss
 * -log D(G(z)) (binary cross-entropy with logits: gm_bernoulli_nll on the logits). A net is
 * a function and its layers. Returns the D loss; *g_loss gets the G loss. */
typedef gm_tensor *(*net_fn)(gm_tape *T, void *net, gm_tensor *x);

static float gan_iteration(gm_tape *T, gm_tensor *x, int zdim, net_fn gen, void *g, net_fn disc, void *d,
                           gm_optim *og, gm_optim *od, gm_rng *rng, float *g_loss)
{
    int B = x->shape.d[0];
    gm_tensor *fake = gm_detach(T, gen(T, g, gm_randn(T, gm_shape2(B, zdim), rng)));
    gm_tensor *lr = disc(T, d, x), *lf = disc(T, d, fake), *real_term, *fake_term;
    float ld;
    /* one statement per term: C leaves the order of a call's arguments open, and the order
     * ops land on the tape decides the order gradients are summed in */
    real_term = gm_mean(T, gm_bernoulli_nll(T, lr, filled(T, lr->shape, 1.0f)));    /* -log D(x)        */
    fake_term = gm_mean(T, gm_bernoulli_nll(T, lf, filled(T, lf->shape, 0.0f)));    /* -log(1 - D(G(z))) */
    ld = gm_backward(T, gm_add(T, real_term, fake_term));
    gm_optim_step(od);
    gm_tape_reset(T);                                        /* G step: -log D(G(z)) */
    lf = disc(T, d, gen(T, g, gm_randn(T, gm_shape2(B, zdim), rng)));
    *g_loss = gm_backward(T, gm_mean(T, gm_bernoulli_nll(T, lf, filled(T, lf->shape, 1.0f))));
    gm_optim_step(og);
    return ld;
}

/* ================================================================ 2. DCGAN iteration
 * G: z(64) -> dense 128*7*7 -> (128,7,7) BN ReLU -> convT 128->64 k4 s2 p1 (14x14) BN ReLU
 *    -> convT 64->1 k4 s2 p1 (28x28) -> tanh
 * D: conv 1->64 k4 s2 p1 (14x14) LeakyReLU 0.2 -> conv 64->128 k4 s2 p1 (7x7) BN LeakyReLU
 *    -> dense 6272 -> 1 logit
 * One iteration: a D step on a real batch and G(z) held fixed, then a G step on a fresh z
 * with the non-saturating loss -log D(G(z)). Adam 2e-4 (0.5, 0.999); images in [-1,1]. */
typedef struct gan28 {
    gm_params PG, PD;
    gm_dense gfc, dfc;
    gm_batchnorm gbn1, gbn2, dbn;
    gm_conv_transpose2d gt1, gt2;
    gm_conv2d dc1, dc2;
} gan28;

static gm_tensor *gan28_g(gm_tape *T, void *net, gm_tensor *z)
{
    gan28 *m = (gan28 *)net;
    gm_tensor *h = gm_reshape(T, gm_dense(T, &m->gfc, z), gm_shape4(z->shape.d[0], 128, 7, 7));
    h = gm_relu(T, gm_batchnorm(T, &m->gbn1, h, GM_TRAIN));
    h = gm_relu(T, gm_batchnorm(T, &m->gbn2, gm_conv_transpose2d(T, &m->gt1, h), GM_TRAIN));
    return gm_tanh(T, gm_conv_transpose2d(T, &m->gt2, h));
}

static gm_tensor *gan28_d(gm_tape *T, void *net, gm_tensor *x)
{
    gan28 *m = (gan28 *)net;
    gm_tensor *h = gm_leaky_relu(T, gm_conv2d(T, &m->dc1, x), 0.2f);
    h = gm_leaky_relu(T, gm_batchnorm(T, &m->dbn, gm_conv2d(T, &m->dc2, h), GM_TRAIN), 0.2f);
    return gm_dense(T, &m->dfc, gm_flatten(T, h));                                /* (B, 1) */
}

static int bench_dcgan(const opts *o)
{
    const int B = 64, Z = 64;
    gm_dataset train;
    gm_rng rng = gm_rng_new(o->seed);
    gan28 m;
    gm_optim *og, *od;
    gm_tape *T;
    int it, i, r, steps = o->steps > 0 ? o->steps : 100;
    double g_fwd, d_fwd, d_bwd_first, d_bwd_all, g_bwd, flops;
    float ld = 0, lg = 0;
    if (!load_train(&train, o->data)) return 1;
    for (i = 0; i < train.n * train.d; i++) train.x[i] = 2.0f * train.x[i] - 1.0f;     /* [-1,1] */
    gm_dataset_shuffle(&train, &rng);
    memset(&m, 0, sizeof m);
    m.gfc = gm_dense_new(&m.PG, "g.fc", Z, 128 * 7 * 7, &rng);
    m.gbn1 = gm_batchnorm_new(&m.PG, "g.bn1", 128);
    m.gt1 = gm_conv_transpose2d_new(&m.PG, "g.ct1", 128, 64, 4, 2, 1, 0, &rng);
    m.gbn2 = gm_batchnorm_new(&m.PG, "g.bn2", 64);
    m.gt2 = gm_conv_transpose2d_new(&m.PG, "g.ct2", 64, 1, 4, 2, 1, 0, &rng);
    m.dc1 = gm_conv2d_new(&m.PD, "d.c1", 1, 64, 4, 2, 1, &rng);
    m.dc2 = gm_conv2d_new(&m.PD, "d.c2", 64, 128, 4, 2, 1, &rng);
    m.dbn = gm_batchnorm_new(&m.PD, "d.bn", 128);
    m.dfc = gm_dense_new(&m.PD, "d.fc", 128 * 7 * 7, 1, &rng);
    og = gm_adam_new(&m.PG, 2e-4f, 0.5f, 0.999f);
    od = gm_adam_new(&m.PD, 2e-4f, 0.5f, 0.999f);
    T = gm_tape_new(0);
    header(o, steps);
    /* forward products: a conv is 2 B Cout Ho Wo Cin K K (on its output grid), a convT
     * 2 B Cin H W Cout K K (on its input grid), a dense 2 B in out */
    g_fwd = mm_flops(B, 6272, Z, 0, 0) + 2.0 * B * 128 * 49 * 64 * 16 + 2.0 * B * 64 * 196 * 1 * 16;
    d_fwd = 2.0 * B * 64 * 196 * 1 * 16 + 2.0 * B * 128 * 49 * 64 * 16 + mm_flops(B, 1, 6272, 0, 0);
    d_bwd_first = d_fwd + (d_fwd - 2.0 * B * 64 * 196 * 16);   /* dW everywhere, dx but not into the image */
    d_bwd_all = 2.0 * d_fwd;
    g_bwd = 2.0 * g_fwd - mm_flops(B, 6272, Z, 0, 0);          /* no gradient for z */
    /* D step: G fwd, D fwd twice, D bwd twice; G step: G fwd, D fwd, D bwd (all), G bwd */
    flops = steps * (g_fwd + 2 * d_fwd + 2 * d_bwd_first + g_fwd + d_fwd + d_bwd_all + g_bwd);
    for (r = 0; r < o->reps; r++) {
        double t0 = 0;
        for (it = -o->warmup; it < steps; it++) {
            gm_tensor *x;
            if (it == 0) t0 = gm_seconds();
            /* D step: real up, fake down */
            gm_tape_reset(T);
            x = gm_batch(T, &train, it + o->warmup, B);
            ld = gan_iteration(T, x, Z, gan28_g, &m, gan28_d, &m, og, od, &rng, &lg);
        }
        printf("time %.6f\n", gm_seconds() - t0);
        printf("loss %.4f\nloss_g %.4f\n", ld, lg);      /* D and G losses of the last iteration */
        fflush(stdout);
    }
    printf("flops %.6g\n", flops);
    gm_tape_free(T);
    gm_optim_free(og);
    gm_optim_free(od);
    gm_params_free(&m.PG);
    gm_params_free(&m.PD);
    gm_dataset_free(&train);
    return 0;
}

/* ================================================================ 3. diffusion
 * demos/12_ddpm.c's U-Net and its training step, and DDIM sampling with it. The network is a
 * second copy of the demo's unet_new / unet_forward / block_forward (the demo is a program
 * with its main, so it cannot be included): keep the two identical. C1, C2, C3 = 32, 64, 128:
 *   e = SiLU(dense 128->128 (SiLU(dense 64->128 (gm_time_embedding(t, 64)))))
 *   h28 = conv 1->C1 k3;   h14 = block(conv C1->C2 k3 s2 (h28));   h7 = block(conv C2->C3 k3 s2 (h14))
 *   h = SiLU(conv 2C2->C2 k1 ([convT C3->C2 k2 s2 (h7), h14]))
 *   out = conv 2C1->1 k3 (SiLU(groupnorm([convT C2->C1 k2 s2 (h), h28])))
 *   block(x) = x + conv(SiLU(norm(conv(SiLU(norm(x))) + dense 128->C (e))))   GroupNorm(8), 3x3 convs
 * The diffusion: cosine schedule, T = 1000, v target with min-SNR-5 weights, x0^ clamped to
 * [-1, 1] when sampling. */
enum { DIFF_T = 1000, DIFF_TE = 64, DIFF_E = 128, DIFF_G = 8 };
typedef struct block { gm_groupnorm n1, n2; gm_conv2d c1, c2; gm_dense temb; } block;
typedef struct unet {
    gm_params P;
    gm_dense t1, t2;
    gm_conv2d in, down1, down2, merge, out;
    block b14, b7;
    gm_conv_transpose2d up2, up1;
    gm_groupnorm out_norm;
} unet;

static block block_new(gm_params *P, const char *name, int c, gm_rng *rng)
{
    block b;
    char s[64];
    snprintf(s, sizeof s, "%s.n1", name); b.n1 = gm_groupnorm_new(P, s, c, DIFF_G);
    snprintf(s, sizeof s, "%s.c1", name); b.c1 = gm_conv2d_new(P, s, c, c, 3, 1, 1, rng);
    snprintf(s, sizeof s, "%s.t", name);  b.temb = gm_dense_new(P, s, DIFF_E, c, rng);
    snprintf(s, sizeof s, "%s.n2", name); b.n2 = gm_groupnorm_new(P, s, c, DIFF_G);
    snprintf(s, sizeof s, "%s.c2", name); b.c2 = gm_conv2d_new(P, s, c, c, 3, 1, 1, rng);
    return b;
}

static void unet_new(unet *m, int c, gm_rng *rng)
{
    int C1 = c, C2 = 2 * c, C3 = 4 * c;
    memset(m, 0, sizeof *m);
    m->t1 = gm_dense_new(&m->P, "t1", DIFF_TE, DIFF_E, rng);
    m->t2 = gm_dense_new(&m->P, "t2", DIFF_E, DIFF_E, rng);
    m->in = gm_conv2d_new(&m->P, "in", 1, C1, 3, 1, 1, rng);
    m->down1 = gm_conv2d_new(&m->P, "down1", C1, C2, 3, 2, 1, rng);
    m->b14 = block_new(&m->P, "b14", C2, rng);
    m->down2 = gm_conv2d_new(&m->P, "down2", C2, C3, 3, 2, 1, rng);
    m->b7 = block_new(&m->P, "b7", C3, rng);
    m->up2 = gm_conv_transpose2d_new(&m->P, "up2", C3, C2, 2, 2, 0, 0, rng);
    m->merge = gm_conv2d_new(&m->P, "merge", 2 * C2, C2, 1, 1, 0, rng);
    m->up1 = gm_conv_transpose2d_new(&m->P, "up1", C2, C1, 2, 2, 0, 0, rng);
    m->out_norm = gm_groupnorm_new(&m->P, "out_norm", 2 * C1, DIFF_G);
    m->out = gm_conv2d_new(&m->P, "out", 2 * C1, 1, 3, 1, 1, rng);
}

static gm_tensor *block_forward(gm_tape *T, const block *b, gm_tensor *x, gm_tensor *e)
{
    gm_tensor *h = gm_conv2d(T, &b->c1, gm_silu(T, gm_groupnorm(T, &b->n1, x)));
    h = gm_add(T, h, gm_dense(T, &b->temb, e));                     /* (B,C) over H,W */
    h = gm_conv2d(T, &b->c2, gm_silu(T, gm_groupnorm(T, &b->n2, h)));
    return gm_add(T, x, h);
}

static gm_tensor *unet_forward(gm_tape *T, void *model, gm_tensor *xt, const int *t)
{
    const unet *m = (const unet *)model;
    int nb = xt->shape.d[0], i;
    gm_tensor *tt = gm_zeros(T, gm_shape1(nb)), *e, *h28, *h14, *h7, *h;
    for (i = 0; i < nb; i++) tt->val[i] = (float)t[i];
    e = gm_dense(T, &m->t2, gm_silu(T, gm_dense(T, &m->t1, gm_time_embedding(T, tt, DIFF_TE))));
    e = gm_silu(T, e);
    h28 = gm_conv2d(T, &m->in, xt);
    h14 = block_forward(T, &m->b14, gm_conv2d(T, &m->down1, h28), e);
    h7 = gm_conv2d(T, &m->down2, h14);
    h7 = block_forward(T, &m->b7, h7, e);
    h = gm_concat(T, gm_conv_transpose2d(T, &m->up2, h7), h14);
    h = gm_silu(T, gm_conv2d(T, &m->merge, h));
    h = gm_concat(T, gm_conv_transpose2d(T, &m->up1, h), h28);
    return gm_conv2d(T, &m->out, gm_silu(T, gm_groupnorm(T, &m->out_norm, h)));
}

/* The FLOPs of the products recorded on T (dense, conv, convT: the header's count), read
 * from the tape so that they follow the network: 2 w->size per output position (convT:
 * per input position); after gm_backward, once more for dW and again where the input got
 * a gradient (not x_t, not the time features). */
static double tape_flops(const gm_tape *T, int backward)
{
    const gm_tensor *y;
    double sum = 0;
    for (y = T->last; y; y = y->prev) {
        int convt = strcmp(y->op, "gm_conv_transpose2d") == 0;
        const gm_tensor *x = y->in[0], *w = y->in[1], *grid = convt ? x : y;
        if (!convt && strcmp(y->op, "gm_conv2d") != 0 && strcmp(y->op, "gm_dense") != 0) continue;
        sum += 2.0 * w->size * (grid->size / grid->shape.d[1]) * (backward ? 2 + (x->grad != NULL) : 1);
    }
    return sum;
}

static gm_diffusion diffusion_new(void)
{
    gm_diffusion dif = gm_diffusion_new(GM_COSINE, DIFF_T);
    dif.target = GM_PREDICT_V;
    dif.clip = 1.0f;
    return dif;
}

/* training steps as the demo's train(): x0 a batch in [-1,1], t ~ U{1..T}, eps ~ N(0,I),
 * loss = min-SNR-5 weighted v error; Adam 1e-3 (the demo's after its warm-up). */
static int bench_diffusion(const opts *o)
{
    const int B = o->batch > 0 ? o->batch : 8;
    gm_dataset train;
    gm_rng rng = gm_rng_new(o->seed);
    gm_diffusion dif = diffusion_new();
    unet m;
    gm_optim *opt;
    gm_tape *T;
    double tail_sum = 0;
    int t[64], it, i, r, tail_n = 0, steps = o->steps > 0 ? o->steps : 100, tail = steps / 10 > 0 ? steps / 10 : 1;
    if (!load_train(&train, o->data)) return 1;
    for (i = 0; i < train.n * train.d; i++) train.x[i] = 2.0f * train.x[i] - 1.0f;
    gm_dataset_shuffle(&train, &rng);
    unet_new(&m, 32, &rng);
    opt = gm_adam_new(&m.P, 1e-3f, 0.9f, 0.999f);
    T = gm_tape_new(0);
    header(o, steps);
    printf("params %ld\n", gm_params_count(&m.P));
    for (r = 0; r < o->reps; r++) {
        double t0 = 0;
        for (it = -o->warmup; it < steps; it++) {
            gm_tensor *x0, *eps, *xt, *loss;
            if (it == 0) t0 = gm_seconds();
            gm_tape_reset(T);
            x0 = gm_batch(T, &train, it + o->warmup, B);                    /* (B,1,28,28) */
            for (i = 0; i < x0->shape.d[0]; i++) t[i] = 1 + gm_rng_below(&rng, DIFF_T);
            eps = gm_randn(T, x0->shape, &rng);
            xt = gm_q_sample(T, &dif, x0, eps, t);
            loss = gm_diffusion_loss(T, &dif, unet_forward(T, &m, xt, t), x0, eps, t, 5.0f);
            gm_backward(T, loss);
            gm_optim_step(opt);
            if (it >= steps - tail) { tail_sum += gm_item(loss); tail_n++; }
        }
        printf("time %.6f\n", gm_seconds() - t0);
        printf("loss %.4f\n", tail_sum / tail_n);          /* mean over the last tenth of the steps */
        fflush(stdout);
    }
    printf("flops %.6g\n", steps * tape_flops(T, 1));     /* the last step's, a full batch */
    gm_tape_free(T);
    gm_optim_free(opt);
    gm_params_free(&m.P);
    gm_diffusion_free(&dif);
    gm_dataset_free(&train);
    return 0;
}

/* DDIM sampling (eta 0) with the U-Net at its initialization: --batch images (250, as the
 * demo draws them) through --steps steps (20) of gm_diffusion_sample, which runs the tape in
 * inference mode. One timed repetition is one sampling run; --warmup steps run untimed. */
static int bench_ddim(const opts *o)
{
    int n = o->batch > 0 ? o->batch : 250, steps = o->steps > 0 ? o->steps : 20, r, *t = (int *)malloc(sizeof(int) * n);
    gm_rng rng = gm_rng_new(o->seed);
    gm_diffusion dif = diffusion_new();
    gm_shape s = gm_shape4(n, 1, 28, 28);
    float *x = (float *)malloc(sizeof(float) * n * 784);
    double sum = 0;
    unet m;
    gm_tape *T = gm_tape_new(0);
    unet_new(&m, 32, &rng);
    header(o, steps);
    if (o->warmup > 0) gm_diffusion_sample(&dif, unet_forward, &m, T, s, o->warmup, 0.0f, x, NULL, &rng);
    for (r = 0; r < o->reps; r++) {
        double t0 = gm_seconds();
        int i;
        gm_diffusion_sample(&dif, unet_forward, &m, T, s, steps, 0.0f, x, NULL, &rng);
        printf("time %.6f\n", gm_seconds() - t0);
        for (i = 0, sum = 0; i < n * 784; i++) sum += fabsf(x[i]);
        printf("loss %.4f\n", sum / (n * 784.0));          /* mean |x_0|: a check, not a loss */
        fflush(stdout);
    }
    gm_tape_reset(T);                                   /* one forward on n images, to count */
    for (r = 0; r < n; r++) t[r] = DIFF_T;
    unet_forward(T, &m, gm_from(T, s, x), t);
    printf("flops %.6g\n", steps * tape_flops(T, 0));
    gm_tape_free(T);
    gm_params_free(&m.P);
    gm_diffusion_free(&dif);
    free(x);
    free(t);
    return 0;
}

/* ================================================================ 4. toy 2-D GAN
 * G 2-128-128-2, D 2-128-128-1, ReLU, on the ring of 8 Gaussians; the same D step and
 * G step as the DCGAN; Adam 2e-4 (0.5, 0.999). At batch 1 the time is almost all per-op
 * overhead. */
typedef struct mlp3 { gm_dense a, b, c; } mlp3;

static gm_tensor *mlp3_run(gm_tape *T, void *net, gm_tensor *x)
{
    mlp3 *m = (mlp3 *)net;
    return gm_dense(T, &m->c, gm_relu(T, gm_dense(T, &m->b, gm_relu(T, gm_dense(T, &m->a, x)))));
}

static int bench_toygan(const opts *o)
{
    int B = o->batch > 0 ? o->batch : 256, it, r, steps = o->steps > 0 ? o->steps : 1000;
    gm_dataset data;
    gm_rng rng = gm_rng_new(o->seed);
    gm_params PG = {0}, PD = {0};
    mlp3 g, d;
    gm_optim *og, *od;
    gm_tape *T;
    double fwd, flops, tail_sum = 0;
    float ld, lg;
    int tail = steps / 10 > 0 ? steps / 10 : 1, tail_n = 0;
    gm_synthetic_2d(&data, GM_RING8, 10000, o->seed);
    gm_dataset_shuffle(&data, &rng);
    g.a = gm_dense_new(&PG, "g.a", 2, 128, &rng);
    g.b = gm_dense_new(&PG, "g.b", 128, 128, &rng);
    g.c = gm_dense_new(&PG, "g.c", 128, 2, &rng);
    d.a = gm_dense_new(&PD, "d.a", 2, 128, &rng);
    d.b = gm_dense_new(&PD, "d.b", 128, 128, &rng);
    d.c = gm_dense_new(&PD, "d.c", 128, 1, &rng);
    og = gm_adam_new(&PG, 2e-4f, 0.5f, 0.999f);
    od = gm_adam_new(&PD, 2e-4f, 0.5f, 0.999f);
    T = gm_tape_new((size_t)64 << 20);
    header(o, steps);
    fwd = 2.0 * B * (2 * 128 + 128 * 128 + 128 * 2);          /* both nets are this size, near enough */
    /* D step: G fwd, 2 D fwd, 2 D bwd (no dx into data); G step: G fwd, D fwd+bwd, G bwd */
    flops = steps * (fwd + 2 * (fwd + 2 * fwd - 2.0 * B * 256) + fwd + 3 * fwd + 3 * fwd - 2.0 * B * 256);
    for (r = 0; r < o->reps; r++) {
        double t0 = 0;
        for (it = -o->warmup; it < steps; it++) {
            gm_tensor *x;
            if (it == 0) t0 = gm_seconds();
            gm_tape_reset(T);
            x = gm_batch(T, &data, it + o->warmup, B);                          /* (B,2) */
            ld = gan_iteration(T, x, 2, mlp3_run, &g, mlp3_run, &d, og, od, &rng, &lg);
            if (it >= steps - tail) { tail_sum += ld; tail_n++; }
        }
        printf("time %.6f\n", gm_seconds() - t0);
        printf("loss %.4f\n", tail_sum / tail_n);          /* D loss, mean over the last tenth */
        fflush(stdout);
    }
    printf("flops %.6g\n", flops);
    gm_tape_free(T);
    gm_optim_free(og);
    gm_optim_free(od);
    gm_params_free(&PG);
    gm_params_free(&PD);
    gm_dataset_free(&data);
    return 0;
}

/* ================================================================ 5. sgemm alone
 * C (M,N) = op(A) op(B), op(X) = X or X^T, row-major, random inputs.
 *   --via gemm    genmod's one matrix routine gm__gemm (private, static: callable here because
 *                 this file defines GENMOD_IMPLEMENTATION), any transposes;
 *   --via matmul  the public op gm_matmul on a tape, forward only (no transposes: NN).
 * The inputs are fixed numbers shared with the reference, so C[0,0] ("loss") must agree. */
static void call_gemm(gm_tape *T, int ta, int tb, int M, int N, int K, const float *A, const float *Bm, float *C)
{
    gm__gemm(T, ta, tb, M, N, K, 1.0f, A, ta ? M : K, Bm, tb ? K : N, 0.0f, C, N);
}

/* Deterministic inputs that bench/ref/sgemm.py makes too: ((i 7919 + salt) mod 1000) / 1000 - 0.5 */
static void fill(gm_tensor *t, int salt)
{
    int i;
    for (i = 0; i < t->size; i++) t->val[i] = (float)(((long long)i * 7919 + salt) % 1000) / 1000.0f - 0.5f;
}

static int bench_sgemm(const opts *o)
{
    int M = o->m, N = o->n, K = o->k, r, reps = o->reps;
    int matmul = strcmp(o->via, "matmul") == 0;
    gm_params P = {0};
    gm_tensor *A = gm_param_new(&P, "A", o->ta ? gm_shape2(K, M) : gm_shape2(M, K));
    gm_tensor *Bm = gm_param_new(&P, "B", o->tb ? gm_shape2(N, K) : gm_shape2(K, N));
    float *C = (float *)malloc((size_t)M * N * sizeof(float));
    gm_tape *T = gm_tape_new((size_t)64 << 20);
    double flops = 2.0 * M * N * K, chk = 0;
    if (matmul && (o->ta || o->tb)) { fprintf(stderr, "bench: --via matmul has no transposes\n"); return 2; }
    fill(A, 1);
    fill(Bm, 2);
    if (reps <= 0) reps = (int)(2e9 / flops) < 5 ? 5 : (int)(2e9 / flops) > 200 ? 200 : (int)(2e9 / flops);
    header(o, 1);
    printf("shape %dx%dx%d %s%s via %s\n", M, N, K, o->ta ? "T" : "N", o->tb ? "T" : "N",
           matmul ? "gm_matmul" : "gm__gemm");
    for (r = -3; r < reps; r++) {
        double t0 = gm_seconds();
        gm_tape_reset(T);
        if (matmul) chk = gm_matmul(T, A, Bm)->val[0];
        else { call_gemm(T, o->ta, o->tb, M, N, K, A->val, Bm->val, C); chk = C[0]; }
        if (r >= 0) printf("time %.9f\n", gm_seconds() - t0);
    }
    printf("loss %.4f\n", chk);                        /* C[0,0], to compare with the BLAS */
    printf("flops %.6g\n", flops);
    gm_tape_free(T);
    gm_params_free(&P);
    free(C);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (argc < 2) {
        fprintf(stderr, "usage: %s vae|dcgan|diffusion|ddim|toygan|sgemm [--steps N] [--warmup N] [--reps N] "
                        "[--batch B] [--seed N] [--data DIR] [--m M --n N --k K --ta 0|1 --tb 0|1 --via gemm|matmul]\n",
                argv[0]);
        return 2;
    }
    memset(&o, 0, sizeof o);
    o.workload = argv[1];
    o.steps = arg_int(argc, argv, "--steps", 0);
    o.warmup = arg_int(argc, argv, "--warmup", 3);
    o.reps = arg_int(argc, argv, "--reps", strcmp(o.workload, "sgemm") == 0 ? 0 : 1);
    o.batch = arg_int(argc, argv, "--batch", 0);
    o.seed = (uint64_t)arg_int(argc, argv, "--seed", 1);
    o.data = arg_str(argc, argv, "--data", NULL);
    o.via = arg_str(argc, argv, "--via", "gemm");
    o.m = arg_int(argc, argv, "--m", 1024);
    o.n = arg_int(argc, argv, "--n", 1024);
    o.k = arg_int(argc, argv, "--k", 1024);
    o.ta = arg_int(argc, argv, "--ta", 0);
    o.tb = arg_int(argc, argv, "--tb", 0);
    if (strcmp(o.workload, "vae") == 0) return bench_vae(&o);
    if (strcmp(o.workload, "dcgan") == 0) return bench_dcgan(&o);
    if (strcmp(o.workload, "diffusion") == 0) return bench_diffusion(&o);
    if (strcmp(o.workload, "ddim") == 0) return bench_ddim(&o);
    if (strcmp(o.workload, "toygan") == 0) return bench_toygan(&o);
    if (strcmp(o.workload, "sgemm") == 0) return bench_sgemm(&o);
    fprintf(stderr, "bench: unknown workload \"%s\"\n", o.workload);
    return 2;
}
