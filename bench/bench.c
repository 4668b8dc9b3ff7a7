/* bench/bench.c - the genmod side of the benchmark against PyTorch (see bench/README.md).
 *
 * One program, one workload per run, chosen by the first argument:
 *     build/bench vae       [--steps N]            one epoch of an MLP VAE on Fashion-MNIST
 *     build/bench dcgan     [--steps N]            DCGAN iterations at 28x28, batch 64
 *     build/bench diffusion [--steps N]            diffusion denoiser training steps, batch 64
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

/* ================================================================ 3. diffusion denoiser
 * eps_theta(x_t, t) on 28x28, batch 64, DDPM noise: beta linear 1e-4..0.02 over 1000 steps,
 * x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, loss = mean (eps_theta - eps)^2, Adam 1e-3.
 *   time: 32 sinusoidal features of t -> dense 128 SiLU -> dense 32 = e (B,32)
 *   h1 = SiLU(conv 1->32 k3 p1) + e broadcast over H,W          (B,32,28,28)
 *   h2 = SiLU(conv 32->64 k4 s2 p1)                              (B,64,14,14)
 *   h3 = SiLU(conv 64->64 k4 s2 p1)                              (B,64,7,7)
 *   u1 = [SiLU(convT 64->64 k4 s2 p1)(h3), h2]                   (B,128,14,14)
 *   u2 = [SiLU(convT 128->32 k4 s2 p1)(u1), h1]                  (B,64,28,28)
 *   out = conv 64->1 k3 p1                                       (B,1,28,28)
 * The broadcast of e: (B*32,1) times a row of ones (1,784), reshaped to (B,32,28,28). */
#define DIFF_T 1000
#define DIFF_F 32
typedef struct denoiser {
    gm_params P;
    gm_dense t1, t2;
    gm_conv2d c1, c2, c3, out;
    gm_conv_transpose2d u1, u2;
} denoiser;

static gm_tensor *denoise(gm_tape *T, denoiser *m, gm_tensor *xt, gm_tensor *feat, gm_tensor *ones)
{
    int B = xt->shape.d[0];
    gm_tensor *e = gm_dense(T, &m->t2, gm_silu(T, gm_dense(T, &m->t1, feat)));                  /* (B,32) */
    gm_tensor *eb = gm_reshape(T, gm_matmul(T, gm_reshape(T, e, gm_shape2(B * 32, 1)), ones),
                               gm_shape4(B, 32, 28, 28));
    gm_tensor *h1 = gm_add(T, gm_silu(T, gm_conv2d(T, &m->c1, xt)), eb);
    gm_tensor *h2 = gm_silu(T, gm_conv2d(T, &m->c2, h1));
    gm_tensor *h3 = gm_silu(T, gm_conv2d(T, &m->c3, h2));
    gm_tensor *u = gm_concat(T, gm_silu(T, gm_conv_transpose2d(T, &m->u1, h3)), h2);
    u = gm_concat(T, gm_silu(T, gm_conv_transpose2d(T, &m->u2, u)), h1);
    return gm_conv2d(T, &m->out, u);
}

static int bench_diffusion(const opts *o)
{
    const int B = 64;
    gm_dataset train;
    gm_rng rng = gm_rng_new(o->seed);
    denoiser m;
    gm_optim *opt;
    gm_tape *T;
    float abar[DIFF_T], one = 1.0f;
    double a = 1.0, fwd, flops, tail_sum = 0;
    int it, i, r, tail_n = 0, steps = o->steps > 0 ? o->steps : 100, tail = steps / 10 > 0 ? steps / 10 : 1;
    if (!load_train(&train, o->data)) return 1;
    for (i = 0; i < train.n * train.d; i++) train.x[i] = 2.0f * train.x[i] - 1.0f;
    gm_dataset_shuffle(&train, &rng);
    for (i = 0; i < DIFF_T; i++) {                       /* abar_t = prod_{s<=t} (1 - beta_s) */
        a *= 1.0 - (1e-4 + (0.02 - 1e-4) * i / (DIFF_T - 1));
        abar[i] = (float)a;
    }
    memset(&m, 0, sizeof m);
    m.t1 = gm_dense_new(&m.P, "t1", DIFF_F, 128, &rng);
    m.t2 = gm_dense_new(&m.P, "t2", 128, 32, &rng);
    m.c1 = gm_conv2d_new(&m.P, "c1", 1, 32, 3, 1, 1, &rng);
    m.c2 = gm_conv2d_new(&m.P, "c2", 32, 64, 4, 2, 1, &rng);
    m.c3 = gm_conv2d_new(&m.P, "c3", 64, 64, 4, 2, 1, &rng);
    m.u1 = gm_conv_transpose2d_new(&m.P, "u1", 64, 64, 4, 2, 1, 0, &rng);
    m.u2 = gm_conv_transpose2d_new(&m.P, "u2", 128, 32, 4, 2, 1, 0, &rng);
    m.out = gm_conv2d_new(&m.P, "out", 64, 1, 3, 1, 1, &rng);
    opt = gm_adam_new(&m.P, 1e-3f, 0.9f, 0.999f);
    T = gm_tape_new(0);
    header(o, steps);
    printf("params %ld\n", gm_params_count(&m.P));
    /* forward products; backward = dW everywhere + dx everywhere but into x_t and the features */
    fwd = 2.0 * B * (DIFF_F * 128 + 128 * 32 + 32 * 784             /* time MLP, broadcast */
                     + 784.0 * 32 * 9 + 196.0 * 64 * 32 * 16 + 49.0 * 64 * 64 * 16   /* c1 c2 c3 */
                     + 49.0 * 64 * 64 * 16 + 196.0 * 128 * 32 * 16 + 784.0 * 1 * 64 * 9); /* u1 u2 out */
    flops = steps * (3 * fwd - 2.0 * B * (784.0 * 32 * 9 + DIFF_F * 128));
    for (r = 0; r < o->reps; r++) {
        double t0 = 0;
        for (it = -o->warmup; it < steps; it++) {
            gm_tensor *x0, *eps, *xt, *feat, *ones, *loss;
            int b, j;
            if (it == 0) t0 = gm_seconds();
            gm_tape_reset(T);
            x0 = gm_batch(T, &train, it + o->warmup, B);                    /* (B,1,28,28) */
            eps = gm_randn(T, x0->shape, &rng);
            xt = gm_zeros(T, x0->shape);
            feat = gm_zeros(T, gm_shape2(B, DIFF_F));
            for (b = 0; b < B; b++) {
                int t = gm_rng_below(&rng, DIFF_T);
                float sa = sqrtf(abar[t]), sb = sqrtf(1.0f - abar[t]);
                for (j = 0; j < 784; j++) xt->val[b * 784 + j] = sa * x0->val[b * 784 + j] + sb * eps->val[b * 784 + j];
                for (j = 0; j < DIFF_F / 2; j++) {                           /* t f_j, f_j = 10000^(-j/16) */
                    float f = (float)t * expf(-9.210340372f * j / (DIFF_F / 2));
                    feat->val[b * DIFF_F + j] = sinf(f);
                    feat->val[b * DIFF_F + DIFF_F / 2 + j] = cosf(f);
                }
            }
            ones = gm_zeros(T, gm_shape2(1, 784));
            for (j = 0; j < 784; j++) ones->val[j] = one;
            loss = gm_mean(T, gm_mse(T, denoise(T, &m, xt, feat, ones), eps));
            gm_backward(T, loss);
            gm_optim_step(opt);
            if (it >= steps - tail) { tail_sum += gm_item(loss); tail_n++; }
        }
        printf("time %.6f\n", gm_seconds() - t0);
        printf("loss %.4f\n", tail_sum / tail_n);          /* mean over the last tenth of the steps */
        fflush(stdout);
    }
    printf("flops %.6g\n", flops);
    gm_tape_free(T);
    gm_optim_free(opt);
    gm_params_free(&m.P);
    gm_dataset_free(&train);
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
        fprintf(stderr, "usage: %s vae|dcgan|diffusion|toygan|sgemm [--steps N] [--warmup N] [--reps N] "
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
    if (strcmp(o.workload, "toygan") == 0) return bench_toygan(&o);
    if (strcmp(o.workload, "sgemm") == 0) return bench_sgemm(&o);
    fprintf(stderr, "bench: unknown workload \"%s\"\n", o.workload);
    return 2;
}
