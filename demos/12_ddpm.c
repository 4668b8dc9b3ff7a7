/* 12_ddpm - a denoising diffusion model draws garments, on a laptop's CPU
 *
 * What it shows: a small U-Net learns to predict the noise mixed into Fashion-MNIST images
 * (Ho et al. 2020), and three samplers turn pure noise into garments with the same network:
 * ancestral sampling over all T = 1000 steps, and DDIM (Song et al. 2021) with 50 and with
 * 10 steps. The recipe spends the compute where it buys quality (lectures/12-ddpm.md
 * measures each choice with genmod's FID):
 *   - the U-Net works at 14x14 and 7x7, where a channel costs 4 and 16 times less than at
 *     28x28: one conv in and one out at full size, residual blocks below;
 *   - the cosine schedule (Nichol & Dhariwal 2021), the v target (Salimans & Ho 2022) with
 *     min-SNR-5 weights (Hang et al. 2023), Adam 1e-3 after a short warm-up, an
 *     exponential moving average of the weights (0.999) to sample from, and small batches
 *     (8) for many steps (24000); each is a flag, so the lecture can measure what it buys.
 * The U-Net (time embedding e = dense-SiLU-dense of 64 sinusoidal features of t, added per
 * channel inside every block; GroupNorm(8) + SiLU before every conv of a block):
 *   28x28: conv 1->C1 k3 ------------------------------------------ concat -> norm, SiLU, conv 2C1->1 k3
 *   14x14:   conv C1->C2 k3 s2, block(C2) ------ concat -> conv 2C2->C2 k1, SiLU, convT C2->C1 k2 s2
 *    7x7:      conv C2->C3 k3 s2, block(C3), convT C3->C2 k2 s2
 * with C1, C2, C3 = 32, 64, 128; block(C): x + conv(SiLU(norm(conv(SiLU(norm(x))) + e_C))).
 * bench/ref/ddpm_train.py trains the same network the same way in PyTorch.
 * Lecture: lectures/12-ddpm.md
 * Run:     make build/ddpm && ./build/ddpm        (trains and samples, under 20 min on 2 cores)
 *          ./build/ddpm --from out/ddpm/model.ckpt --sampler ancestral1000 --samples 10000
 *                                                 (samples from a trained model, no training)
 * Output:  out/ddpm/ancestral1000.png, ddim50.png, ddim10.png   64 samples of each sampler, from
 *                                                 the same 64 starting noises
 *          out/ddpm/reverse.png      8 rows: x_t at every fifth step of DDIM-50, x_T to x_0
 *                                    (the grids and these rows walk the steps --spacing places)
 *          out/ddpm/loss.png         the training loss
 *          out/ddpm/samples.npy      --samples samples (N,1,28,28) in [0,1] by --sampler
 *          out/ddpm/model.ckpt       the averaged weights (what samples come from);
 *          out/ddpm/train.ckpt, adam.ckpt   the weights and Adam's state, for --resume out/ddpm
 *          result lines: loss (the last tenth of training), fid and is of samples.npy
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "classifier.h"

static const char *usage =
    "  --steps N      training steps (default 24000; 40 with --quick)\n"
    "  --resume DIR   continue the training a run left in DIR (its train.ckpt, adam.ckpt and\n"
    "                 model.ckpt) for --steps more steps\n"
    "  --from PATH    no training: sample from this model.ckpt\n"
    "  --sampler S    for samples.npy: ddimN (eta 0) or ancestralN (eta 1), N steps of 1..1000\n"
    "                 (default ddim50; ancestral1000 is DDPM's sampler)\n"
    "  --spacing P    where the samplers' steps fall: even (default) or noisy (dense near t = T)\n"
    "  --samples N    samples written to samples.npy and scored (default 2000; 100 with --quick)\n"
    "  the recipe, one choice at a time (lecture 12 measures each):\n"
    "  --schedule S   cosine (default) or linear\n"
    "  --target P     v (default), eps or x0: what the network predicts\n"
    "  --gamma G      min-SNR-G loss weights (default 5; 0: unweighted)\n"
    "  --ema D        the average's decay (default 0.999; 0: sample from the trained weights)\n"
    "  --batch B      images per training step (default 8)\n"
    CLASSIFIER_USAGE;

enum { TSTEPS = 1000, BATCH = 8, STEPS = 24000, TE = 64, E = 128, GROUPS = 8 };

/* ---------------------------------------------------------------- the U-Net */
typedef struct block { gm_groupnorm n1, n2; gm_conv2d c1, c2; gm_dense temb; } block;
typedef struct unet {
    gm_params P;
    gm_tensor *recipe;                              /* (2): the schedule and the target, saved
                                                       with the weights so --from reads them */
    gm_dense t1, t2;                                /* the time embedding's MLP */
    gm_conv2d in, down1, down2, merge, out;
    block b14, b7;
    gm_conv_transpose2d up2, up1;
    gm_groupnorm out_norm;
} unet;

static block block_new(gm_params *P, const char *name, int c, gm_rng *rng)
{
    block b;
    char s[64];
    snprintf(s, sizeof s, "%s.n1", name); b.n1 = gm_groupnorm_new(P, s, c, GROUPS);
    snprintf(s, sizeof s, "%s.c1", name); b.c1 = gm_conv2d_new(P, s, c, c, 3, 1, 1, rng);
    snprintf(s, sizeof s, "%s.t", name);  b.temb = gm_dense_new(P, s, E, c, rng);
    snprintf(s, sizeof s, "%s.n2", name); b.n2 = gm_groupnorm_new(P, s, c, GROUPS);
    snprintf(s, sizeof s, "%s.c2", name); b.c2 = gm_conv2d_new(P, s, c, c, 3, 1, 1, rng);
    return b;
}

/* C1 = c channels at 28x28, C2 = 2c at 14x14, C3 = 4c at 7x7 (c = 32; 8 for --quick) */
static void unet_new(unet *m, int c, uint64_t seed)
{
    gm_rng rng = gm_rng_new(seed);
    int C1 = c, C2 = 2 * c, C3 = 4 * c;
    memset(m, 0, sizeof *m);
    m->recipe = gm_buffer_new(&m->P, "recipe", gm_shape1(2));
    m->t1 = gm_dense_new(&m->P, "t1", TE, E, &rng);
    m->t2 = gm_dense_new(&m->P, "t2", E, E, &rng);
    m->in = gm_conv2d_new(&m->P, "in", 1, C1, 3, 1, 1, &rng);
    m->down1 = gm_conv2d_new(&m->P, "down1", C1, C2, 3, 2, 1, &rng);
    m->b14 = block_new(&m->P, "b14", C2, &rng);
    m->down2 = gm_conv2d_new(&m->P, "down2", C2, C3, 3, 2, 1, &rng);
    m->b7 = block_new(&m->P, "b7", C3, &rng);
    m->up2 = gm_conv_transpose2d_new(&m->P, "up2", C3, C2, 2, 2, 0, 0, &rng);
    m->merge = gm_conv2d_new(&m->P, "merge", 2 * C2, C2, 1, 1, 0, &rng);
    m->up1 = gm_conv_transpose2d_new(&m->P, "up1", C2, C1, 2, 2, 0, 0, &rng);
    m->out_norm = gm_groupnorm_new(&m->P, "out_norm", 2 * C1, GROUPS);
    m->out = gm_conv2d_new(&m->P, "out", 2 * C1, 1, 3, 1, 1, &rng);
}

/* x + conv(SiLU(norm(conv(SiLU(norm(x))) + e W))): e is SiLU of the time embedding (B, E) */
static gm_tensor *block_forward(gm_tape *T, const block *b, gm_tensor *x, gm_tensor *e)
{
    gm_tensor *h = gm_conv2d(T, &b->c1, gm_silu(T, gm_groupnorm(T, &b->n1, x)));
    h = gm_add(T, h, gm_dense(T, &b->temb, e));                     /* (B,C) over H,W */
    h = gm_conv2d(T, &b->c2, gm_silu(T, gm_groupnorm(T, &b->n2, h)));
    return gm_add(T, x, h);
}

/* the network's output (the v target) for x_t (B,1,28,28) at steps t: a gm_denoiser */
static gm_tensor *unet_forward(gm_tape *T, void *model, gm_tensor *xt, const int *t)
{
    const unet *m = (const unet *)model;
    int nb = xt->shape.d[0], i;
    gm_tensor *tt = gm_zeros(T, gm_shape1(nb)), *e, *h28, *h14, *h7, *h;
    for (i = 0; i < nb; i++) tt->val[i] = (float)t[i];
    e = gm_dense(T, &m->t2, gm_silu(T, gm_dense(T, &m->t1, gm_time_embedding(T, tt, TE))));
    e = gm_silu(T, e);
    h28 = gm_conv2d(T, &m->in, xt);                                               /* (B,C1,28,28) */
    h14 = block_forward(T, &m->b14, gm_conv2d(T, &m->down1, h28), e);             /* (B,C2,14,14) */
    h7 = gm_conv2d(T, &m->down2, h14);                                            /* (B,C3,7,7)   */
    h7 = block_forward(T, &m->b7, h7, e);
    h = gm_concat(T, gm_conv_transpose2d(T, &m->up2, h7), h14);                   /* (B,2C2,14,14) */
    h = gm_silu(T, gm_conv2d(T, &m->merge, h));
    h = gm_concat(T, gm_conv_transpose2d(T, &m->up1, h), h28);                    /* (B,2C1,28,28) */
    return gm_conv2d(T, &m->out, gm_silu(T, gm_groupnorm(T, &m->out_norm, h)));
}

/* ---------------------------------------------------------------- training */
/* Adam's learning rate at `step`: 1e-3 after a linear warm-up over the first 200 steps */
static float learning_rate(long step) { return 1e-3f * (step < 200 ? (float)(step + 1) / 200 : 1.0f); }

/* the choices the lecture measures one at a time (flags --schedule --target --gamma --ema --batch) */
typedef struct recipe { gm_schedule schedule; gm_target target; float gamma, ema; int batch; } recipe;

static recipe recipe_parse(const demo *d)
{
    const char *sch = demo_str(d, "--schedule", "cosine"), *tgt = demo_str(d, "--target", "v");
    recipe r;
    r.schedule = strcmp(sch, "linear") == 0 ? GM_LINEAR : GM_COSINE;
    r.target = strcmp(tgt, "eps") == 0 ? GM_PREDICT_EPS : strcmp(tgt, "x0") == 0 ? GM_PREDICT_X0 : GM_PREDICT_V;
    r.gamma = demo_float(d, "--gamma", 5.0f, 0, 1e6);
    r.ema = demo_float(d, "--ema", 0.999f, 0, 0.99999);
    r.batch = demo_int(d, "--batch", BATCH, 1, 1024);
    if ((strcmp(sch, "linear") && strcmp(sch, "cosine")) || (strcmp(tgt, "v") && strcmp(tgt, "eps") && strcmp(tgt, "x0"))) {
        fprintf(stderr, "%s: --schedule is cosine or linear, --target v, eps or x0 (got %s, %s)\n", d->name, sch, tgt);
        exit(2);
    }
    return r;
}

/* the average's decay at `step`: r.ema, lower at first so the average forgets the random
 * start ((1 + step) / (10 + step), as many DDPM implementations do) */
static float ema_decay(const recipe *r, long step)
{
    float w = (1.0f + step) / (10.0f + step);
    return w < r->ema ? w : r->ema;
}

/* `steps` steps from `step` on: x_0 a batch of images in [-1, 1], t ~ U{1..T}, eps ~ N(0, I),
 * x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, loss = min-SNR-weighted |v^ - v|^2 (or the
 * recipe's target and weights). */
static double train(demo *d, unet *m, unet *avg, gm_optim *opt, const gm_diffusion *dif, const recipe *r,
                    gm_dataset *data, long *step, long steps, float *curve, gm_rng *rng)
{
    gm_tape *T = gm_tape_new(0);
    gm_progress bar = gm_progress_start("ddpm", steps);
    int *t = (int *)malloc(sizeof(int) * r->batch), b, nb = gm_batches(data, r->batch);
    long s, tail = steps / 10 > 0 ? steps / 10 : 1;
    double last = 0;
    demo_check(d, T != NULL, "making the tape");
    demo_check(d, t != NULL, "allocating the steps of a batch");
    for (s = 0; s < steps; s++, (*step)++) {
        gm_tensor *x0, *eps, *xt, *loss;
        if (*step % nb == 0) gm_dataset_shuffle(data, rng);
        gm_tape_reset(T);
        x0 = gm_batch(T, data, *step, r->batch);
        for (b = 0; b < x0->shape.d[0]; b++) t[b] = 1 + gm_rng_below(rng, TSTEPS);
        eps = gm_randn(T, x0->shape, rng);
        xt = gm_q_sample(T, dif, x0, eps, t);
        loss = gm_diffusion_loss(T, dif, unet_forward(T, m, xt, t), x0, eps, t, r->gamma);
        opt->lr = learning_rate(*step);
        curve[s] = gm_backward(T, loss);
        gm_optim_step(opt);
        gm_ema_update(&avg->P, &m->P, ema_decay(r, *step));
        if (s >= steps - tail) last += curve[s] / tail;
        gm_progress_update(&bar, s + 1, "loss %.4f", curve[s]);
    }
    gm_progress_finish(&bar);
    gm_tape_free(T);
    free(t);
    return last;
}

/* ---------------------------------------------------------------- sampling */
typedef struct sampler { const char *name; int steps; float eta; } sampler;

/* "ddim50" -> 50 steps, eta 0; "ancestral1000" -> 1000 steps, eta 1 */
static sampler sampler_parse(const demo *d, const char *s)
{
    sampler r;
    int n = 0, ddim = strncmp(s, "ddim", 4) == 0, anc = strncmp(s, "ancestral", 9) == 0;
    char rest = 0;
    r.name = s;
    if ((ddim || anc) && sscanf(s + (ddim ? 4 : 9), "%d%c", &n, &rest) == 1 && n >= 1 && n <= TSTEPS) {
        r.steps = n; r.eta = ddim ? 0.0f : 1.0f;
        return r;
    }
    fprintf(stderr, "%s: --sampler %s: give ddimN or ancestralN with N in 1..%d\n", d->name, s, TSTEPS);
    exit(2);
}

/* n samples by sampler s, 250 at a time, into out (n,1,28,28) in [0,1] */
static void draw(const unet *avg, const gm_diffusion *dif, sampler s, int n, float *out, gm_rng *rng)
{
    gm_tape *T = gm_tape_new(0);
    int i, j;
    for (i = 0; i < n; i += 250) {
        int nb = n - i < 250 ? n - i : 250;
        float *x = out + (size_t)i * 784;
        gm_diffusion_sample(dif, unet_forward, (void *)avg, T, gm_shape4(nb, 1, 28, 28), s.steps, s.eta, x, NULL, rng);
        for (j = 0; j < nb * 784; j++) x[j] = x[j] < -1 ? 0.0f : x[j] > 1 ? 1.0f : 0.5f * (x[j] + 1.0f);
    }
    gm_tape_free(T);
}

/* n (64; 16 with --quick) samples of each sampler from the same starting noises (the same
 * rng seed) */
static void sampler_grids(demo *d, const unet *avg, const gm_diffusion *dif)
{
    static const char *names[] = {"ancestral1000", "ddim50", "ddim10"};
    float x[64 * 784];
    int n = d->quick ? 16 : 64;
    char png[64];
    int k;
    for (k = 0; k < 3; k++) {
        gm_rng rng = gm_rng_new(d->seed + 100);
        double t0 = gm_seconds();
        draw(avg, dif, sampler_parse(d, names[k]), n, x, &rng);
        snprintf(png, sizeof png, "%s.png", names[k]);
        demo_check(d, gm_save_image_grid(demo_path(d, png), x, n, 1, 28, 28, 8, 0, 1), "saving");
        printf("sampler %-14s %d samples, %d network calls each -> %s\n", names[k], n, sampler_parse(d, names[k]).steps, png);
        fprintf(stderr, "ddpm: %s took %.1f s\n", names[k], gm_seconds() - t0);   /* times vary: not on stdout */
    }
}

/* 8 reverse processes of DDIM-50 as rows: x_t at every fifth step, from x_T to x_0 */
static void reverse_rows(demo *d, const unet *avg, const gm_diffusion *dif)
{
    enum { N = 8, S = 50, F = 11 };
    float *trace = (float *)malloc(sizeof(float) * (S + 1) * N * 784), x[N * 784], rows[N * F * 784];
    gm_rng rng = gm_rng_new(d->seed + 200);
    int i, f, j;
    gm_tape *T = gm_tape_new(0);
    gm_diffusion_sample(dif, unet_forward, (void *)avg, T, gm_shape4(N, 1, 28, 28), S, 0.0f, x, trace, &rng);
    for (i = 0; i < N; i++)
        for (f = 0; f < F; f++)
            for (j = 0; j < 784; j++) rows[((size_t)i * F + f) * 784 + j] = 0.5f * (trace[((size_t)f * (S / (F - 1)) * N + i) * 784 + j] + 1.0f);
    demo_check(d, gm_save_image_grid(demo_path(d, "reverse.png"), rows, N * F, 1, 28, 28, F, 0, 1), "saving");
    gm_tape_free(T);
    free(trace);
}

static void save_curve(demo *d, const float *loss, long n)
{
    gm_plot *pl = gm_plot_new("DDPM: the training loss of each step", "step", "loss");
    gm_plot_logy(pl, 1);
    gm_plot_line(pl, "loss", NULL, loss, (int)n);
    demo_check(d, gm_plot_save(pl, demo_path(d, "loss.png"), 0, 0), "saving");
    gm_plot_free(pl);
}

/* "dir/file" (valid until the next call) */
static const char *in_dir(const char *dir, const char *file)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return path;
}

/* --from's file and --resume's three must be there before any work (exit 2 otherwise) */
static void need_files(const demo *d, const char *from, const char *resume)
{
    static const char *files[] = {"train.ckpt", "adam.ckpt", "model.ckpt"};
    int k;
    if (from && resume) { fprintf(stderr, "%s: --from samples only, --resume trains: give one\n", d->name); exit(2); }
    if (from && access(from, R_OK) != 0) {
        fprintf(stderr, "%s: --from %s: %s\n", d->name, from, strerror(errno));
        exit(2);
    }
    for (k = 0; resume && k < 3; k++)
        if (access(in_dir(resume, files[k]), R_OK) != 0) {
            fprintf(stderr, "%s: --resume %s: %s: %s\n", d->name, resume, in_dir(resume, files[k]), strerror(errno));
            exit(2);
        }
}

/* ---------------------------------------------------------------- main */
int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "ddpm", usage);
    long steps = demo_int(&d, "--steps", d.quick ? 40 : STEPS, 1, 10000000), step = 0;
    int n_samples = demo_int(&d, "--samples", d.quick ? 100 : 2000, 2, 100000);
    const char *from = demo_arg(&d, "--from"), *resume = demo_arg(&d, "--resume");
    sampler s = sampler_parse(&d, demo_str(&d, "--sampler", "ddim50"));
    const char *spacing = demo_str(&d, "--spacing", "even");
    recipe r = recipe_parse(&d);
    gm_diffusion dif;
    gm_rng rng = gm_rng_new(d.seed);
    gm_dataset train_set, test;
    unet m, avg;
    gm_optim *opt;
    float *samples, *curve;
    double loss = 0, fid, is, t0;
    int i, shape[4] = {0, 1, 28, 28};

    if (strcmp(spacing, "even") != 0 && strcmp(spacing, "noisy") != 0) {
        fprintf(stderr, "%s: --spacing %s: give even or noisy\n", d.name, spacing);
        exit(2);
    }
    classifier_need_file(&d);
    need_files(&d, from, resume);
    demo_images(&d, &train_set, &test, 2000);
    for (i = 0; i < train_set.n * train_set.d; i++) train_set.x[i] = 2.0f * train_set.x[i] - 1.0f;
    unet_new(&m, d.quick ? 8 : 32, d.seed);
    unet_new(&avg, d.quick ? 8 : 32, d.seed);
    opt = gm_adam_new(&m.P, 1e-3f, 0.9f, 0.999f);
    if (from) demo_check(&d, gm_load_params(&avg.P, from), "loading --from");
    if (resume) {
        demo_check(&d, gm_load_params(&m.P, in_dir(resume, "train.ckpt")), "loading --resume's train.ckpt");
        demo_check(&d, gm_load_optim(opt, in_dir(resume, "adam.ckpt")), "loading --resume's adam.ckpt");
        demo_check(&d, gm_load_params(&avg.P, in_dir(resume, "model.ckpt")), "loading --resume's model.ckpt");
        step = opt->t;
    }
    if (from || resume) {                   /* a trained model's own schedule and target win */
        r.schedule = (gm_schedule)(from ? avg : m).recipe->val[0];
        r.target = (gm_target)(from ? avg : m).recipe->val[1];
    }
    m.recipe->val[0] = (float)r.schedule; m.recipe->val[1] = (float)r.target;
    dif = gm_diffusion_new(r.schedule, TSTEPS);
    demo_check(&d, dif.beta != NULL, "making the schedule");
    dif.target = r.target;
    dif.clip = 1.0f;                                    /* images live in [-1, 1] */
    dif.spacing = strcmp(spacing, "noisy") == 0 ? GM_SPACING_NOISY : GM_SPACING_EVEN;
    printf("U-Net: %ld parameters; %s schedule, T = %d, %s target, min-SNR-%g weights (0: none); EMA %g\n",
           gm_params_count(&m.P), r.schedule == GM_COSINE ? "cosine" : "linear", TSTEPS,
           r.target == GM_PREDICT_V ? "v" : r.target == GM_PREDICT_EPS ? "eps" : "x0", r.gamma, r.ema);
    if (from) printf("model: %s (no training)\n", from);
    if (resume) printf("resuming %s after step %ld\n", resume, step);

    if (!from) {
        curve = (float *)malloc(sizeof(float) * steps);
        t0 = gm_seconds();
        loss = train(&d, &m, &avg, opt, &dif, &r, &train_set, &step, steps, curve, &rng);
        printf("trained %ld steps of batch %d; loss over the last tenth %.4f\n", steps, r.batch, loss);
        fprintf(stderr, "ddpm: training took %.1f s\n", gm_seconds() - t0);
        save_curve(&d, curve, steps);
        demo_check(&d, gm_save_params(&m.P, demo_path(&d, "train.ckpt")), "saving train.ckpt");
        demo_check(&d, gm_save_optim(opt, demo_path(&d, "adam.ckpt")), "saving adam.ckpt");
        demo_check(&d, gm_save_params(&avg.P, demo_path(&d, "model.ckpt")), "saving model.ckpt");
        free(curve);
        sampler_grids(&d, &avg, &dif);
        reverse_rows(&d, &avg, &dif);
    }

    samples = (float *)malloc(sizeof(float) * n_samples * 784);
    t0 = gm_seconds();
    draw(&avg, &dif, s, n_samples, samples, &rng);
    printf("sampler %s%s: %d samples -> samples.npy\n", s.name, dif.spacing == GM_SPACING_NOISY ? " (steps dense at the noisy end)" : "",
           n_samples);
    fprintf(stderr, "ddpm: sampling took %.1f s\n", gm_seconds() - t0);
    shape[0] = n_samples;
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), samples, 4, shape), "saving samples.npy");
    classifier_score(&d, samples, n_samples, &test, classifier_is_builtin(&train_set), &fid, &is);

    if (!from) demo_result("loss", loss);
    demo_result("fid", fid);
    demo_result("is", is);
    free(samples);
    gm_optim_free(opt);
    gm_params_free(&m.P); gm_params_free(&avg.P);
    gm_diffusion_free(&dif);
    gm_dataset_free(&train_set); gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
