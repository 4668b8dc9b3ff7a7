/* 11_flow - a normalizing flow (RealNVP) of points in the plane: the exact likelihood, the
 *           learned density, samples, and the data pushed through the flow layer by layer
 *
 * What it shows: a flow z = f(x) of K affine coupling layers with alternating masks (Dinh,
 * Sohl-Dickstein & Bengio 2017) learns two moons and lecture 10's ring of 8 Gaussians by
 * maximum likelihood. The loss is the exact negative log-likelihood by the change of
 * variables, -log p(x) = -log N(f(x); 0, I) - sum_k log |det df_k/dx|, averaged over a batch;
 * no bound, no sampling in the loss. The test NLL (nats per point, on fresh points) is the
 * cross-entropy of the data with the model, H(data) + KL(data || model). For the ring H(data)
 * is known in closed form (its modes hardly overlap): log 8 + log(2 pi e sigma^2), so the gap
 * between the two is the KL, printed beside them. Samples are f^-1(z), z ~ N(0, I).
 * The model: K couplings (default 8), each conditioner [dense H, SiLU] x 2 -> s, t heads with
 * s = a tanh(.), H = 64; 6000 steps of 256 points drawn from 10000 (--train), Adam 0.002
 * decayed linearly to 0, the gradient's norm clipped at 100.
 * Lecture: lectures/11-flows.md
 * Run:     make build/flow && ./build/flow        (under a minute on one core)
 *          --couplings K and --hidden H set the flow's size, --set ring trains one set,
 *          --train N draws more training points (a long run memorizes 10000)
 * Output:  out/flow/
 *   density.png          per set, the learned density p(x) and log p(x) on a grid
 *   samples.png          per set, samples x = f^-1(z) over the training data
 *   {moons,ring}_layers.png   test points, coloured by moon / mode, after 0, 1, ..., K couplings
 *   samples.npy          (sets, N, 2) float32 samples
 *   result lines {moons,ring}_test_nll and {moons,ring}_train_nll (nats per point);
 *   ring_floor (its differential entropy) and ring_gap = ring_test_nll - ring_floor
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"

static const char *usage =
    "  --steps N      training steps per set (default 6000)\n"
    "  --couplings K  coupling layers (default 8)\n"
    "  --hidden H     units per hidden layer of each conditioner (default 64)\n"
    "  --lr R         Adam step size, decayed linearly to 0 (default 0.002)\n"
    "  --set S        moons, ring or both (default both)\n"
    "  --train N      training points per set, 10000 or more (default 10000)\n"
    "  --samples N    points sampled for the pictures, at most 10000 (default 2000)\n";

enum { N_TEST = 5000, B = 256, GRID = 200, CHUNK = 2000, MAX_FRAMES = 9 };

/* ---- evaluation: -log p(x) of many points, in chunks, without recording backwards -------- */
static void nll_of(gm_tape *T, const gm_flow *f, const float *x, int n, float *out)
{
    int was = gm_tape_inference(T, 1), i;
    for (i = 0; i < n; i += CHUNK) {
        int m = n - i < CHUNK ? n - i : CHUNK;
        gm_tape_reset(T);
        memcpy(out + i, gm_flow_nll(T, f, gm_from(T, gm_shape2(m, 2), x + 2 * (size_t)i))->val, sizeof(float) * m);
    }
    gm_tape_reset(T);
    gm_tape_inference(T, was);
}

/* the mean of -log p(x) over a data set, and (se != NULL) its standard error */
static double mean_nll(gm_tape *T, const gm_flow *f, const gm_dataset *data, double *se)
{
    float *nll = (float *)malloc(sizeof(float) * (size_t)data->n);
    double sum = 0, sq = 0, m;
    int i;
    nll_of(T, f, data->x, data->n, nll);
    for (i = 0; i < data->n; i++) { sum += nll[i]; sq += (double)nll[i] * nll[i]; }
    free(nll);
    m = sum / data->n;
    if (se) *se = sqrt((sq / data->n - m * m) / (data->n - 1));
    return m;
}

/* ---- training: maximum likelihood, the exact NLL as the loss ------------------------------ */
static void train(const gm_flow *f, gm_params *P, gm_dataset *data, const gm_dataset *test, long steps, float lr,
                  gm_tape *T, gm_rng *rng, const char *name)
{
    gm_optim *opt = gm_adam_new(P, lr, 0.9f, 0.999f);
    gm_progress bar = gm_progress_start(name, steps);
    long step;
    double avg = 0;
    for (step = 0; step < steps; step++) {
        gm_tensor *loss;
        float l;
        if (step % gm_batches(data, B) == 0) gm_dataset_shuffle(data, rng);
        gm_tape_reset(T);
        loss = gm_mean(T, gm_flow_nll(T, f, gm_batch(T, data, step, B)));   /* -(1/B) sum log p(x) */
        opt->lr = lr * (1.0f - (float)step / steps);
        l = gm_backward(T, loss);
        gm_clip_grad_norm(P, 100.0f);
        gm_optim_step(opt);
        avg += l;
        if ((step + 1) % (steps / 5 > 0 ? steps / 5 : 1) == 0) {   /* five checkpoints */
            printf("%-5s step %6ld  train NLL (last steps) %8.4f  test NLL %8.4f\n", name, step + 1,
                   avg / (steps / 5 > 0 ? steps / 5 : 1), mean_nll(T, f, test, NULL));
            avg = 0;
        }
        gm_progress_update(&bar, step + 1, "nll %.3f", l);
    }
    gm_progress_finish(&bar);
    gm_optim_free(opt);
}

/* ---- pictures ------------------------------------------------------------------------------ */
/* the learned p(x) and log p(x) on a GRID x GRID grid over [-L, L] x [-L, L] (row 0 at the top);
 * log p is floored at its maximum minus 12 so the empty plane does not swamp the colours */
static void density(gm_tape *T, const gm_flow *f, float L, gm_plot *pd, gm_plot *pl)
{
    float *pts = (float *)malloc(sizeof(float) * 2 * GRID * GRID), *v = (float *)malloc(sizeof(float) * GRID * GRID);
    float top = -INFINITY;
    int r, c, i;
    for (r = 0; r < GRID; r++)
        for (c = 0; c < GRID; c++) {
            pts[2 * (r * GRID + c)] = -L + 2 * L * (c + 0.5f) / GRID;
            pts[2 * (r * GRID + c) + 1] = L - 2 * L * (r + 0.5f) / GRID;
        }
    nll_of(T, f, pts, GRID * GRID, v);
    for (i = 0; i < GRID * GRID; i++) { v[i] = -v[i]; if (v[i] > top) top = v[i]; }      /* log p */
    for (i = 0; i < GRID * GRID; i++) if (v[i] < top - 12) v[i] = top - 12;
    gm_plot_heatmap(pl, v, GRID, GRID, -L, L, -L, L);
    for (i = 0; i < GRID * GRID; i++) v[i] = expf(v[i]);                                   /* p */
    gm_plot_heatmap(pd, v, GRID, GRID, -L, L, -L, L);
    free(pts); free(v);
}

/* the test points after 0, 1, ..., K couplings (at most MAX_FRAMES of them, evenly spaced),
 * coloured by their moon or mode: how the flow pulls the data apart into a Gaussian */
static void layers_strip(demo *d, gm_tape *T, const gm_flow *f, const gm_dataset *test, const char *file)
{
    int F = f->K + 1 < MAX_FRAMES ? f->K + 1 : MAX_FRAMES, n = test->n < 2000 ? test->n : 2000, i, k, was;
    gm_plot *p[MAX_FRAMES];
    gm_tensor *x;
    gm_tape_reset(T);
    was = gm_tape_inference(T, 1);
    x = gm_from(T, gm_shape2(n, 2), test->x);
    for (i = 0, k = 0; i < F; i++) {
        int upto = (int)((long)i * f->K / (F - 1));          /* couplings applied in frame i */
        char title[64];
        for (; k < upto; k++) x = gm_coupling(T, &f->layer[k], x, NULL);
        snprintf(title, sizeof title, upto == 0 ? "x (data)" : upto == f->K ? "z = f(x), %d layers" : upto == 1 ? "after %d layer" : "after %d layers",
                 upto);
        p[i] = gm_plot_new(title, NULL, NULL);
        gm_plot_scatter_labeled(p[i], x->val, test->y, n, test->nclass, test->class_names);
        gm_plot_legend(p[i], i == 0);              /* the classes named once, on the data */
        gm_plot_equal_aspect(p[i], 1);
    }
    gm_tape_inference(T, was);
    gm_tape_reset(T);
    demo_check(d, gm_plot_save_row(p, F, demo_path(d, file), 260, 260), "saving the layer strip");
    for (i = 0; i < F; i++) gm_plot_free(p[i]);
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "flow", usage);
    long steps = demo_int(&d, "--steps", d.quick ? 300 : 6000, 10, 100000000);
    int K = demo_int(&d, "--couplings", 8, 1, 64);
    int H = demo_int(&d, "--hidden", 64, 1, 4096);
    float lr = demo_float(&d, "--lr", 0.002f, 1e-6, 1);
    int n_train = demo_int(&d, "--train", 10000, 10000, 10000000);
    int N = demo_int(&d, "--samples", d.quick ? 500 : 2000, 10, 10000);
    const char *which = demo_str(&d, "--set", "both");
    static const char *set_name[2] = {"moons", "ring"};
    static const gm_toy toy[2] = {GM_TWO_MOONS, GM_RING8};
    static const float half_width[2] = {2.5f, 2.6f};             /* the pictures' square */
    int first = strcmp(which, "ring") == 0, last = strcmp(which, "moons") == 0 ? 0 : 1, s, n_sets, shape[3];
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    float *out = (float *)malloc(sizeof(float) * 2 * 2 * (size_t)N);
    gm_plot *dens[4], *samp[2];
    double test_nll[2] = {0, 0}, train_nll[2] = {0, 0}, floor_ring = 0, se;
    if (strcmp(which, "both") && strcmp(which, "moons") && strcmp(which, "ring"))
        demo_stop(&d, usage, "--set wants moons, ring or both, got", which);
    demo_check(&d, T && out, "allocation");
    n_sets = last - first + 1;

    printf("data: built-in 2-D sets (gm_synthetic_2d), %d training and %d test points each%s\n", n_train, N_TEST,
           n_sets == 2 ? ": two moons and the ring of 8 Gaussians" : "");
    printf("flow: %d affine couplings, alternating masks, conditioners [dense %d, SiLU] x 2 -> s = a tanh(.), t\n",
           K, H);
    printf("training: %ld steps of %d points, Adam %g decayed linearly to 0, gradient norm clipped at 100\n\n",
           steps, B, lr);
    for (s = first; s <= last; s++) {
        gm_dataset data, test;
        gm_params P = {0};
        gm_flow f = gm_flow_new(&P, "c", 2, K, H, &rng);
        int j = s - first;
        char file[64];
        gm_synthetic_2d(&data, toy[s], n_train, d.seed);
        gm_synthetic_2d(&test, toy[s], N_TEST, d.seed + 1000);
        demo_check(&d, data.n == n_train && test.n == N_TEST, "making the data");
        if (s == first) printf("parameters per flow: %ld\n", gm_params_count(&P));

        /* ---- training and the exact likelihood ---------------------------------------- */
        train(&f, &P, &data, &test, steps, lr, T, &rng, set_name[s]);
        train_nll[s] = mean_nll(T, &f, &data, NULL);
        test_nll[s] = mean_nll(T, &f, &test, &se);
        printf("%-5s NLL per point: train %.4f, test %.4f nats (standard error %.4f)\n", set_name[s], train_nll[s],
               test_nll[s], se);
        if (toy[s] == GM_RING8) {        /* H = log K + log(2 pi e sigma^2): K equal, separate modes */
            float sigma;
            int modes = gm_toy_modes(GM_RING8, NULL, &sigma);
            double spread = log(2 * 3.14159265358979323846 * exp(1.0) * sigma * sigma);
            floor_ring = log((double)modes) + spread;
            printf("ring  entropy of the data (the floor): log %d + log(2 pi e sigma^2) = %.4f + %.4f = %.4f nats\n",
                   modes, log((double)modes), spread, floor_ring);
            printf("ring  test NLL - floor = KL(data || model) %.4f nats\n", test_nll[s] - floor_ring);
        }
        printf("\n");

        /* ---- pictures: density, samples, layers ------------------------------------------ */
        snprintf(file, sizeof file, "%s: p(x)", set_name[s]);
        dens[2 * j] = gm_plot_new(file, NULL, NULL);
        snprintf(file, sizeof file, "%s: log p(x)", set_name[s]);
        dens[2 * j + 1] = gm_plot_new(file, NULL, NULL);
        density(T, &f, half_width[s], dens[2 * j], dens[2 * j + 1]);
        gm_plot_equal_aspect(dens[2 * j], 1);         /* the plane as it is: circles stay round */
        gm_plot_equal_aspect(dens[2 * j + 1], 1);
        gm_flow_sample(T, &f, N, out + (size_t)j * N * 2, &rng);
        gm_tape_reset(T);
        snprintf(file, sizeof file, "%s: data and samples x = f^-1(z)", set_name[s]);
        samp[j] = gm_plot_new(file, NULL, NULL);
        {                      /* N training points (label 0) and the N samples (label 1) */
            static const char *names[2] = {"data", "samples"};
            float *xy = (float *)malloc(sizeof(float) * 4 * (size_t)N);
            int *lab = (int *)malloc(sizeof(int) * 2 * (size_t)N), i;
            memcpy(xy, data.x, sizeof(float) * 2 * (size_t)N);
            memcpy(xy + 2 * (size_t)N, out + (size_t)j * N * 2, sizeof(float) * 2 * (size_t)N);
            for (i = 0; i < 2 * N; i++) lab[i] = i >= N;
            gm_plot_scatter_labeled(samp[j], xy, lab, 2 * N, 2, names);
            free(xy); free(lab);
        }
        gm_plot_equal_aspect(samp[j], 1);
        snprintf(file, sizeof file, "%s_layers.png", set_name[s]);
        layers_strip(&d, T, &f, &test, file);
        gm_flow_free(&f); gm_params_free(&P);
        gm_dataset_free(&data); gm_dataset_free(&test);
    }
    demo_check(&d, gm_plot_save_row(dens, 2 * n_sets, demo_path(&d, "density.png"), 380, 320), "saving density.png");
    demo_check(&d, gm_plot_save_row(samp, n_sets, demo_path(&d, "samples.png"), 400, 400), "saving samples.png");
    shape[0] = n_sets; shape[1] = N; shape[2] = 2;
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), out, 3, shape), "saving samples.npy");

    /* ---- results ------------------------------------------------------------------------ */
    for (s = first; s <= last; s++) {
        char key[64];
        snprintf(key, sizeof key, "%s_test_nll", set_name[s]);
        demo_result(key, test_nll[s]);
        snprintf(key, sizeof key, "%s_train_nll", set_name[s]);
        demo_result(key, train_nll[s]);
    }
    if (last == 1) {
        demo_result("ring_floor", floor_ring);
        demo_result("ring_gap", test_nll[1] - floor_ring);
    }
    for (s = 0; s < 2 * n_sets; s++) gm_plot_free(dens[s]);
    for (s = 0; s < n_sets; s++) gm_plot_free(samp[s]);
    free(out);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
