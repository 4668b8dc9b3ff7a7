/* 09_gan_1d.c - a GAN in one dimension, watched as it trains.
 *
 * What it shows
 *   A generator G (an MLP from z ~ N(0,1) to x) and a discriminator D (an MLP from x to a
 *   logit, D(x) = sigmoid of it) play the minimax game of Goodfellow et al. (2014) on lecture
 *   01's two-bump mixture p_data = 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2). Each iteration is the
 *   textbook one: k steps of D on real samples and detached fakes, then one step of G
 *   through a frozen D (the non-saturating loss -log D(G(z))).
 *   Twenty times during training it estimates the generator's density p_g from 20000
 *   samples, computes the best discriminator against this G, D*(x) = p_data / (p_data + p_g),
 *   and prints how far D is from it (the mean of |D - D*| over real and generated samples)
 *   and JS(p_data || p_g); six of those times it draws a frame of p_data, p_g, D and D*.
 *   With k = 5 D stays close to D* all along, and as p_g approaches p_data both flatten
 *   towards 1/2. G's step size falls linearly to 0, so D catches up at the end.
 * Lecture: lectures/09-gans.md
 * Run:     make build/gan_1d && ./build/gan_1d        (about 10 s)
 *          --quick for the tests; --k 1 for one D step per G step.
 * Output (out/gan_1d/):
 *   frames.png   the frames side by side, training step in each title
 *   samples.npy  (10000, 1) float32: x = G(z) after training
 *   result lines: d_gap_start, d_gap_early, d_gap_late (|D - D*| at step 0, at the first
 *   row, at the end), js_start, js_early, js_late, d_fake_late (mean D(G(z)) at the end)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "gan.h"

static const char *usage =
    "  --steps N    generator steps (default 10000, --quick 1000)\n"
    "  --k N        discriminator steps per generator step (default 5)\n"
    "  --batch N    samples of each kind per step (default 256)\n"
    "  --hidden N   units in each of the two hidden layers of G and of D (default 32)\n"
    "  --lr X       Adam step size of both networks (default 0.001)\n";

enum { ROWS = 20, FRAMES = 6, N_EST = 20000, N_SAVE = 10000 };

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "gan_1d", usage);
    int steps = demo_int(&d, "--steps", d.quick ? 1000 : 10000, ROWS, 1000000);
    int k = demo_int(&d, "--k", 5, 1, 100);
    int B = demo_int(&d, "--batch", 256, 1, 100000);
    int hidden = demo_int(&d, "--hidden", 32, 1, 4096);
    float lr = demo_float(&d, "--lr", 0.001f, 1e-6, 1);
    /* a table row at every ROWS-th of training, a frame at these rows (0: untrained) */
    static const int at[FRAMES] = { 0, 1, 3, 8, 12, ROWS };
    gm_rng rng = gm_rng_new(d.seed);
    gm_plot *frame[FRAMES];
    float pd[GRID], pg[GRID], dx[GRID], ds[GRID], xs[GRID], *s = (float *)malloc(N_EST * sizeof(float));
    double gap[ROWS + 1], js[ROWS + 1], d_fake = 0;
    float loss_d = 0, loss_g = 0;
    int i, j, f = 0, r = 0, step, last = steps < 100 ? steps : 100;
    printf("data: built-in 1-D mixture 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2), sampled here (no data set needed)\n");
    for (i = 0; i < GRID; i++) { xs[i] = (float)grid_x(i); pd[i] = (float)p_data(xs[i]); }

    /* ---- model: G and D in two parameter lists, one optimizer each ---------------------- */
    gm_params PG = {0}, PD = {0};
    mlp G = mlp_new(&PG, "G", hidden, &rng), D = mlp_new(&PD, "D", hidden, &rng);
    gm_optim *opt_g = gm_adam_new(&PG, lr, 0.5f, 0.999f), *opt_d = gm_adam_new(&PD, lr, 0.5f, 0.999f);
    gm_tape *T = gm_tape_new(64 << 20);
    demo_check(&d, opt_g && opt_d && T && s, "allocation");

    printf("\n%6s %8s %8s %12s %18s\n", "step", "loss_D", "loss_G", "|D - D*|", "JS(p_data||p_g)");
    for (step = 0; step <= steps; step++) {
        /* ---- a row: p_g from samples, D and D* on the grid; some rows are frames ------- */
        if (step == (long)r * steps / ROWS) {
            gm_tape_reset(T);
            memcpy(s, generate(T, &G, N_EST, &rng)->val, N_EST * sizeof(float));
            density_estimate(s, N_EST, pg);
            d_on_grid(T, &D, dx, NULL);
            d_star(pd, pg, ds);
            gap[r] = d_gap(dx, ds, pd, pg);
            js[r] = js_quadrature(pd, pg);
            printf("%6d %8.4f %8.4f %12.4f %18.4f\n", step, loss_d, loss_g, gap[r], js[r]);
            if (f < FRAMES && r == at[f]) {
                char title[64];
                snprintf(title, sizeof title, "step %d", step);
                for (i = 0; i < GRID; i++)       /* D* only where there is mass: 0/0 elsewhere */
                    if (pd[i] + pg[i] < 1e-3f) ds[i] = NAN;
                frame[f] = gm_plot_new(title, "x", NULL);
                gm_plot_line(frame[f], "p_data", xs, pd, GRID);
                gm_plot_line(frame[f], "p_g", xs, pg, GRID);
                gm_plot_line(frame[f], "D(x)", xs, dx, GRID);
                gm_plot_line(frame[f], "D*(x)", xs, ds, GRID);
                f++;
            }
            r++;
        }
        if (step == steps) break;

        opt_g->lr = lr * (1.0f - (float)step / steps);   /* G slows to a stop; D keeps up with it */
        /* ---- k discriminator steps: maximize log D(x) + log(1 - D(G(z))) ---------------- */
        for (j = 0; j < k; j++) {
            gm_tape_reset(T);
            gm_tensor *real = data_batch(T, B, &rng);
            gm_tensor *fake = gm_detach(T, generate(T, &G, B, &rng));   /* G frozen: no gradient */
            gm_tensor *ld = gm_gan_d_loss(T, mlp_forward(T, &D, real), mlp_forward(T, &D, fake), GM_GAN_MINIMAX);
            loss_d = gm_backward(T, ld);
            gm_optim_step(opt_d);                   /* G's parameters have no gradient: untouched */
        }
        /* ---- one generator step through a frozen D: minimize -log D(G(z)) --------------- */
        gm_tape_reset(T);
        gm_tensor *fake_logit = mlp_forward(T, &D, generate(T, &G, B, &rng));
        gm_tensor *lg = gm_gan_g_loss(T, fake_logit, GM_GAN_NONSATURATING);
        loss_g = gm_backward(T, lg);
        gm_optim_step(opt_g);                       /* steps G only; D's gradients go unused */
        if (step >= steps - last)                   /* mean D(G(z)) over the last steps */
            d_fake += mean_prob(fake_logit) / last;
    }

    /* ---- output ------------------------------------------------------------------------- */
    demo_check(&d, gm_plot_save_row(frame, FRAMES, demo_path(&d, "frames.png"), 420, 320), "saving frames.png");
    {
        int shape[2] = {N_SAVE, 1};
        gm_tape_reset(T);
        demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), generate(T, &G, N_SAVE, &rng)->val, 2, shape),
                   "saving samples.npy");
    }
    printf("\n(D* is computed from the estimate of p_g; over the last %d steps D(G(z)) averaged %.3f,\n"
           " 1/2 at the game's fixed point p_g = p_data, where D* = 1/2 everywhere)\n\n", last, d_fake);
    demo_result("d_gap_start", gap[0]);
    demo_result("d_gap_early", gap[1]);
    demo_result("d_gap_late", gap[ROWS]);
    demo_result("js_start", js[0]);
    demo_result("js_early", js[1]);
    demo_result("js_late", js[ROWS]);
    demo_result("d_fake_late", d_fake);

    /* ---- cleanup ------------------------------------------------------------------------ */
    for (f = 0; f < FRAMES; f++) gm_plot_free(frame[f]);
    free(s);
    gm_optim_free(opt_g); gm_optim_free(opt_d);
    gm_params_free(&PG); gm_params_free(&PD);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
