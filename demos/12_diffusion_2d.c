/* 12_diffusion_2d - a denoising diffusion model of points in the plane: the reverse process
 *                   frame by frame, and ancestral sampling against DDIM from one network
 *
 * What it shows: a DDPM (Ho et al. 2020) learns the swiss roll and lecture 10's ring of 8
 * Gaussians. Per set, a small network eps_theta(x_t, t) is trained on Ho et al.'s simple loss
 * |eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t)|^2, t uniform in 1..T, with the
 * linear schedule and T = 1000. The same network is then sampled by ancestral sampling (T
 * steps, eta = 1: Ho et al.'s Algorithm 2) and by DDIM (Song et al. 2021: S steps, eta = 0,
 * deterministic), and by every pairing of S in {10, 20, 50, 100, T} with eta in {0, 1}.
 * Each set of samples is scored against the training points in both directions: the mean
 * distance from a sample to its nearest training point ("to data": do the samples land on
 * the data?) and from a training point to its nearest sample ("from data": do they cover
 * it?), beside the same two numbers for as many fresh points of the true distribution
 * (held-out data: what a perfect sampler scores). On the ring, gm_mode_coverage counts the
 * modes captured and the share of samples within 3 std of a mode, as lecture 10 did for GANs.
 * The network: [x_t, sinusoidal features of t (32)] -> 4 x [dense 128, SiLU] -> 2, 54k
 * parameters; 20000 steps of 256 points drawn from 10000, Adam 0.002 decayed linearly to 0.
 * Lecture: lectures/12-ddpm.md
 * Run:     make build/diffusion_2d && ./build/diffusion_2d       (about a minute on one core)
 *          --ddim S sets the DDIM run of the pictures and results; --T 100 a shorter chain
 * Output:  out/diffusion_2d/
 *   {roll,ring}_reverse.png      x_t of one ancestral run at t = T, 4T/5, ..., 0
 *   {roll,ring}_reverse_end.png  the same run's last fifth: t = T/5, 4T/25, ..., 0
 *   samples.png                  ancestral and DDIM samples over the training data, per set
 *   samples.npy                  (4, N, 2) float32: roll ancestral, roll DDIM, ring ancestral, ring DDIM
 *   result lines {roll,ring}_{heldout,ancestral,ddim} ("to data") and
 *   {roll,ring}_cover_{heldout,ancestral,ddim} ("from data"); ring_modes_ and ring_hq_ of the same three
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --steps N      training steps per model (default 20000)\n"
    "  --T N          diffusion steps T, 50..5000 (default 1000, --quick 100)\n"
    "  --ddim S       steps of the DDIM run pictured and in the results, 1..T (default 20)\n"
    "  --samples N    points drawn by each sampler (default 2000)\n"
    "  --lr R         Adam step size, decayed linearly to 0 (default 0.002)\n"
    "  --hidden N     units per hidden layer (default 128)\n";

enum { EMB = 32, LAYERS = 4, N_TRAIN = 10000, B = 256, FRAMES = 6 };

/* ---- the network eps_theta(x_t, t) ---------------------------------------------------------- */
typedef struct net { gm_params P; gm_dense l[LAYERS + 1]; } net;

static net net_new(int hidden, gm_rng *rng)
{
    net m;
    int i;
    memset(&m, 0, sizeof m);
    for (i = 0; i <= LAYERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "l%d", i);
        m.l[i] = gm_dense_new(&m.P, name, i ? hidden : 2 + EMB, i < LAYERS ? hidden : 2, rng);
    }
    return m;
}

/* x_t (B,2) and steps t[b] -> the predicted noise (B,2); a gm_denoiser, so samplers call it too */
static gm_tensor *denoise(gm_tape *T, void *model, gm_tensor *xt, const int *t)
{
    net *m = (net *)model;
    int n = xt->shape.d[0], b, i;
    float *tf = (float *)gm_tape_alloc(T, sizeof(float) * (size_t)n);
    gm_tensor *h;
    for (b = 0; b < n; b++) tf[b] = (float)t[b];
    h = gm_concat(T, xt, gm_time_embedding(T, gm_from(T, gm_shape1(n), tf), EMB));   /* (B, 2 + EMB) */
    for (i = 0; i < LAYERS; i++) h = gm_silu(T, gm_dense(T, &m->l[i], h));
    return gm_dense(T, &m->l[LAYERS], h);
}

/* ---- training: Ho et al.'s Algorithm 1 ------------------------------------------------------ */
static double train(net *m, gm_dataset *data, const gm_diffusion *df, long steps, float lr, gm_tape *T,
                    gm_rng *rng, const char *name)
{
    gm_optim *opt = gm_adam_new(&m->P, lr, 0.9f, 0.999f);
    gm_progress bar = gm_progress_start(name, steps);
    int t[B], b;
    long step, last = steps < 1000 ? steps : 1000;
    double tail = 0;
    for (step = 0; step < steps; step++) {
        gm_tensor *x0, *eps, *xt, *loss;
        float l;
        if (step % gm_batches(data, B) == 0) gm_dataset_shuffle(data, rng);
        gm_tape_reset(T);
        x0 = gm_batch(T, data, step, B);                               /* x_0 ~ data        */
        for (b = 0; b < x0->shape.d[0]; b++) t[b] = 1 + gm_rng_below(rng, df->T);   /* t ~ U{1..T}       */
        eps = gm_randn(T, x0->shape, rng);                             /* eps ~ N(0, I)     */
        xt = gm_q_sample(T, df, x0, eps, t);                           /* x_t ~ q(x_t|x_0)  */
        loss = gm_diffusion_loss(T, df, denoise(T, m, xt, t), x0, eps, t, 0);  /* |eps - eps_theta|^2 */
        opt->lr = lr * (1.0f - (float)step / steps);
        l = gm_backward(T, loss);
        gm_optim_step(opt);
        if (step >= steps - last) tail += l / last;
        gm_progress_update(&bar, step + 1, "loss %.4f", l);
    }
    gm_progress_finish(&bar);
    gm_optim_free(opt);
    return tail;
}

/* ---- scores --------------------------------------------------------------------------------- */
/* the mean over the points a of A (n_a, 2) of the distance to the nearest point of B (n_b, 2) */
static double nearest_mean(const float *A, int n_a, const float *Bp, int n_b)
{
    double sum = 0;
    int i, j;
    for (i = 0; i < n_a; i++) {
        float best = INFINITY;
        for (j = 0; j < n_b; j++) {
            float dx = A[2 * i] - Bp[2 * j], dy = A[2 * i + 1] - Bp[2 * j + 1];
            if (dx * dx + dy * dy < best) best = dx * dx + dy * dy;
        }
        sum += sqrt(best);
    }
    return sum / n_a;
}

typedef struct score { double to_data, from_data; gm_modes modes; } score;

static score score_points(const float *x, int n, const gm_dataset *data, gm_toy kind)
{
    score s;
    float centers[16], sigma;
    int K = gm_toy_modes(kind, centers, &sigma);
    s.to_data = nearest_mean(x, n, data->x, data->n);
    s.from_data = nearest_mean(data->x, data->n, x, n);
    s.modes = K ? gm_mode_coverage(x, n, centers, K, sigma, NULL) : (gm_modes){0, 0, 0};
    return s;
}

static void print_row(const char *set, const char *sampler, int steps, int eta, score s, int K)
{
    char st[16] = "-", et[16] = "-";
    if (steps) { snprintf(st, sizeof st, "%d", steps); snprintf(et, sizeof et, "%d", eta); }
    printf("%-5s %-22s %5s %4s %10.4f %10.4f", set, sampler, st, et, s.to_data, s.from_data);
    if (K) printf("   %2d / %d %8.1f", s.modes.captured, K, 100 * s.modes.hq);
    printf("\n");
}

/* The step counts of the table: 10, 20, 50, 100, S and T, those up to T, ascending, each once. */
static int table_steps(int *list, int S, int T_steps)
{
    int c[6] = {10, 20, 50, 100, S, T_steps}, n = 0, v, k, next;
    for (v = 0;; v = next) {                       /* the smallest candidate above v, until none is */
        next = 0;
        for (k = 0; k < 6; k++)
            if (c[k] > v && c[k] <= T_steps && (!next || c[k] < next)) next = c[k];
        if (!next) return n;
        list[n++] = next;
    }
}

/* ---- pictures ------------------------------------------------------------------------------- */
/* n points xy (x0, y0, x1, ...) as one scatter series */
static void scatter(gm_plot *p, const char *label, const float *xy, int n)
{
    float *x = (float *)malloc(sizeof(float) * (size_t)n), *y = (float *)malloc(sizeof(float) * (size_t)n);
    int i;
    for (i = 0; i < n && x && y; i++) { x[i] = xy[2 * i]; y[i] = xy[2 * i + 1]; }
    if (x && y) gm_plot_scatter(p, label, x, y, n);
    free(x); free(y);
}

/* Frame f of a strip: the step t of the f-th of FRAMES evenly spaced steps from t0 down to 0 */
static int frame_t(int t0, int f) { return t0 - (int)((long)f * t0 / (FRAMES - 1)); }

/* A strip of FRAMES scatter plots of ancestral sampling's trace (x_t for t = T, ..., 0: T + 1
 * sets of n points, x_T first) at evenly spaced steps from t0 down to 0 */
static void save_frames(demo *d, const char *file, const gm_diffusion *df, const float *trace, int t0, int n)
{
    gm_plot *p[FRAMES];
    int f;
    for (f = 0; f < FRAMES; f++) {
        int t = frame_t(t0, f);
        char title[96];
        snprintf(title, sizeof title, "t = %d, abar_t = %.3f", t, df->alpha_bar[t]);
        p[f] = gm_plot_new(title, NULL, NULL);
        scatter(p[f], NULL, trace + (size_t)(df->T - t) * n * 2, n);
        gm_plot_equal_aspect(p[f], 1);
    }
    demo_check(d, gm_plot_save_row(p, FRAMES, demo_path(d, file), 320, 320), "saving a strip of frames");
    for (f = 0; f < FRAMES; f++) gm_plot_free(p[f]);
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "diffusion_2d", usage);
    long steps = demo_int(&d, "--steps", d.quick ? 300 : 20000, 1, 100000000);
    int T_steps = demo_int(&d, "--T", d.quick ? 100 : 1000, 50, 5000);
    int S = demo_int(&d, "--ddim", 20, 1, T_steps);
    int N = demo_int(&d, "--samples", d.quick ? 200 : 2000, 10, 10000);
    float lr = demo_float(&d, "--lr", 0.002f, 1e-6, 1);
    int hidden = demo_int(&d, "--hidden", 128, 1, 4096);
    static const char *set_name[2] = {"roll", "ring"}, *long_name[2] = {"swiss roll", "ring of 8"};
    static const char *which[3] = {"heldout", "ancestral", "ddim"};
    const gm_toy toy[2] = {GM_SWISS_ROLL, GM_RING8};
    int list[6], n_list, shape[3] = {4, N, 2}, k, e, s, K;
    gm_rng rng = gm_rng_new(d.seed);
    gm_diffusion df = gm_diffusion_new(GM_LINEAR, T_steps);
    gm_tape *T = gm_tape_new(0);
    float *anc = (float *)malloc(sizeof(float) * 2 * (size_t)N * (T_steps + 1));   /* ancestral trace */
    float *x = (float *)malloc(sizeof(float) * 2 * (size_t)N), *out = (float *)malloc(sizeof(float) * 4 * (size_t)N * 2);
    score res[2][3];                                       /* [roll, ring][held-out, ancestral, DDIM] */
    gm_plot *pics[4];
    net m[2];
    demo_check(&d, df.beta && T && anc && x && out, "allocation");
    n_list = table_steps(list, S, T_steps);
    for (s = 0; s < 2; s++) m[s] = net_new(hidden, &rng);

    printf("data: built-in 2-D sets, the swiss roll and the ring of 8 Gaussians (gm_synthetic_2d), %d training "
           "points each\n", N_TRAIN);
    printf("eps_theta: [x_t, time embedding (%d)] -> %d x [dense %d, SiLU] -> 2 (%ld parameters); linear schedule, "
           "T = %d\n", EMB, LAYERS, hidden, gm_params_count(&m[0].P), T_steps);
    printf("training: %ld steps of %d points, Adam %g decayed linearly to 0, the simple loss |eps - eps_theta|^2\n"
           "scores: mean distance from each of %d samples to the nearest training point (to data) and from each "
           "training point to the nearest sample (from data)\n", steps, B, lr, N);
    for (k = 0; k < 2; k++) {                  /* the steps of the pictured frames, and abar_t there */
        printf("%-19s", k ? "end frames, t:" : "frames, t:");
        for (e = 0; e < FRAMES; e++) printf(" %6d", frame_t(k ? T_steps / 5 : T_steps, e));
        printf("\n%-19s", k ? "end frames, abar_t:" : "frames, abar_t:");
        for (e = 0; e < FRAMES; e++) printf(" %6.3f", df.alpha_bar[frame_t(k ? T_steps / 5 : T_steps, e)]);
        printf("\n");
    }
    printf("%-22s", "last jump, steps S:");    /* every sampler's last update returns x0^(x_t1) */
    for (k = 0; k < n_list; k++) printf(" %6d", list[k]);
    printf("\n%-22s", "last jump, from t:");
    for (k = 0; k < n_list; k++) printf(" %6d", (int)floor((double)T_steps / list[k] + 0.5));
    printf("\n%-22s", "last jump, noise std:");
    for (k = 0; k < n_list; k++) printf(" %6.3f", sqrt(1.0 - df.alpha_bar[(int)floor((double)T_steps / list[k] + 0.5)]));
    printf("\n\n");
    for (s = 0; s < 2; s++) {
        gm_dataset data, held;
        gm_synthetic_2d(&data, toy[s], N_TRAIN, d.seed);
        gm_synthetic_2d(&held, toy[s], N, d.seed + 1000);
        K = gm_toy_modes(toy[s], NULL, NULL);
        printf("%s: loss over the last steps %.4f\n", long_name[s], train(&m[s], &data, &df, steps, lr, T, &rng, set_name[s]));
        printf("%-5s %-22s %5s %4s %10s %10s%s\n", "set", "sampler", "steps", "eta", "to data", "from data",
               K ? "    modes     hq %" : "");
        res[s][0] = score_points(held.x, N, &data, toy[s]);
        print_row(set_name[s], "held-out data", 0, 0, res[s][0], K);
        for (k = 0; k < n_list; k++)
            for (e = 0; e <= 1; e++) {          /* eta = 0 and 1; ancestral sampling keeps its trace */
                int r = e == 1 && list[k] == T_steps ? 1 : e == 0 && list[k] == S ? 2 : 0;  /* res[s][r] */
                score sc;
                gm_diffusion_sample(&df, denoise, &m[s], T, gm_shape2(N, 2), list[k], (float)e, x, r == 1 ? anc : NULL, &rng);
                sc = score_points(x, N, &data, toy[s]);
                print_row(set_name[s], e ? "ancestral (eta = 1)" : "DDIM (eta = 0)", list[k], e, sc, K);
                if (r) {
                    res[s][r] = sc;
                    memcpy(out + (size_t)(2 * s + r - 1) * N * 2, x, sizeof(float) * 2 * (size_t)N);
                }
            }
        printf("\n");
        for (k = 0; k < 2; k++) {              /* the ancestral run from t = T, and from t = T/5 */
            char file[64];
            snprintf(file, sizeof file, "%s_reverse%s.png", set_name[s], k ? "_end" : "");
            save_frames(&d, file, &df, anc, k ? T_steps / 5 : T_steps, N);
        }
        for (e = 0; e < 2; e++) {
            char title[96];
            snprintf(title, sizeof title, "%s: %s, %d steps", long_name[s], e ? "DDIM" : "ancestral", e ? S : T_steps);
            pics[2 * s + e] = gm_plot_new(title, NULL, NULL);
            scatter(pics[2 * s + e], "data", data.x, N);
            scatter(pics[2 * s + e], "samples", out + (size_t)(2 * s + e) * N * 2, N);
            gm_plot_equal_aspect(pics[2 * s + e], 1);
        }
        gm_dataset_free(&data); gm_dataset_free(&held);
    }
    demo_check(&d, gm_plot_save_row(pics, 4, demo_path(&d, "samples.png"), 360, 360), "saving samples.png");
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), out, 3, shape), "saving samples.npy");
    for (s = 0; s < 2; s++)
        for (k = 0; k < 3; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s_%s", set_name[s], which[k]);
            demo_result(key, res[s][k].to_data);
            snprintf(key, sizeof key, "%s_cover_%s", set_name[s], which[k]);
            demo_result(key, res[s][k].from_data);
        }
    for (k = 0; k < 3; k++) {
        char key[64];
        snprintf(key, sizeof key, "ring_modes_%s", which[k]);
        demo_result(key, res[1][k].modes.captured);
        snprintf(key, sizeof key, "ring_hq_%s", which[k]);
        demo_result(key, res[1][k].modes.hq);
    }
    for (k = 0; k < 4; k++) gm_plot_free(pics[k]);
    for (s = 0; s < 2; s++) gm_params_free(&m[s].P);
    free(anc); free(x); free(out);
    gm_tape_free(T);
    gm_diffusion_free(&df);
    demo_done(&d);
    return 0;
}
