/* 09_gan_saturation.c - why the generator minimizes -log D(G(z)) and not log(1 - D(G(z))).
 *
 * What it shows
 *   Two GANs on lecture 01's two-bump mixture, identical in everything (networks, initial
 *   weights, data and noise draws, the discriminator's loss) except the generator's loss:
 *     saturating      minimize  log(1 - D(G(z)))   (GM_GAN_MINIMAX, the game as written)
 *     non-saturating  minimize -log D(G(z))        (GM_GAN_NONSATURATING)
 *   Both have the same fixed point. They differ in the gradient while D wins: with
 *   D = sigmoid(l), d/dl log(1 - D) = -D, which vanishes as D(G(z)) -> 0, while
 *   d/dl -log D = -(1 - D) stays near -1. Early in training D does win: the untrained G's
 *   samples sit near x = --start, away from the data, and D gets a head start of --pretrain
 *   steps against it and k steps per G step after.
 *   It measures the L2 norm of the generator's gradient (over G's parameters, those
 *   gm_has_grad marks) at every step, and what each G has learned after --steps steps:
 *   JS(p_data || p_g), with p_g estimated from samples.
 *   Plain SGD shows the raw gradient's size in the size of the step; Adam rescales each
 *   parameter's step by its own recent gradient size and hides much of the difference.
 * Lecture: lectures/09-gans.md
 * Run:     make build/gan_saturation && ./build/gan_saturation     (a few seconds)
 *          --quick for the tests; --optim adam for Adam instead of SGD.
 * Output (out/gan_saturation/):
 *   grad_norm.png  |grad of G's loss| per generator step, both losses (log scale)
 *   js.png         JS(p_data || p_g) over training, both losses
 *   densities.png  p_data and the two generators' densities at the end
 *   samples.npy    (2, 10000, 1) float32: samples of the saturating, then non-saturating G
 *   result lines: grad_saturating, grad_nonsaturating (mean gradient norm over the first
 *   --early steps), d_fake_saturating, d_fake_nonsaturating (mean D(G(z)) there),
 *   js_early_saturating, js_early_nonsaturating (after the first --early steps),
 *   js_saturating, js_nonsaturating (at the end)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "gan.h"

static const char *usage =
    "  --steps N     generator steps of each GAN (default 500, --quick 100)\n"
    "  --pretrain N  discriminator steps before the first generator step (default 200)\n"
    "  --start X     where the untrained generator's samples sit (default 4; the data are at +-2)\n"
    "  --k N         discriminator steps per generator step (default 5)\n"
    "  --early N     the steps averaged for the 'early' gradient norm (default 20)\n"
    "  --batch N     samples of each kind per step (default 256)\n"
    "  --lr X        step size of both networks (default 0.05, with Adam 0.001)\n"
    "  --optim O     sgd (plain SGD, default) or adam (betas 0.5, 0.999)\n";

enum { N_EST = 20000, N_SAVE = 10000, EVERY = 10 };

typedef struct run {
    float *grad;              /* |dloss_G / dtheta_G| per generator step */
    float *js;                /* JS(p_data || p_g) every EVERY steps */
    float pg[GRID];           /* p_g at the end */
    float *samples;           /* N_SAVE samples at the end */
    double grad_early, d_fake_early, js_early;
} run;

/* The L2 norm of the gradient of the latest backward over the parameters of P that got one. */
static double grad_norm(const gm_params *P)
{
    double s = 0;
    int p, i;
    for (p = 0; p < P->n; p++)
        if (gm_has_grad(P->t[p]))
            for (i = 0; i < P->t[p]->size; i++) s += (double)P->t[p]->grad[i] * P->t[p]->grad[i];
    return sqrt(s);
}

/* p_g of G, from N_EST samples (kept in s) */
static void estimate(gm_tape *T, const mlp *G, gm_rng *rng, float *s, float *pg)
{
    gm_tape_reset(T);
    memcpy(s, generate(T, G, N_EST, rng)->val, N_EST * sizeof(float));
    density_estimate(s, N_EST, pg);
}

/* One GAN from seed, its generator trained by `kind`; everything else the same. */
static void train(demo *d, gm_tape *T, gm_gan kind, int steps, int pretrain, int k, int early, int B,
                  float lr, int adam, float start, run *out)
{
    gm_rng rng = gm_rng_new(d->seed);
    gm_params PG = {0}, PD = {0};
    mlp G = mlp_new(&PG, "G", 32, &rng), D = mlp_new(&PD, "D", 32, &rng);
    G.l3.b->val[0] += start;                       /* a poor first generator: samples near x = start */
    gm_optim *opt_g = adam ? gm_adam_new(&PG, lr, 0.5f, 0.999f) : gm_sgd_new(&PG, lr, 0.0f);
    gm_optim *opt_d = adam ? gm_adam_new(&PD, lr, 0.5f, 0.999f) : gm_sgd_new(&PD, lr, 0.0f);
    float pd[GRID], *s = (float *)malloc(N_EST * sizeof(float));
    int i, j, step;
    demo_check(d, opt_g && opt_d && s, "allocation");
    for (i = 0; i < GRID; i++) pd[i] = (float)p_data(grid_x(i));
    out->grad_early = out->d_fake_early = 0;

    for (step = -pretrain; step < steps; step++) {
        /* ---- k discriminator steps (the same loss for both GANs) ------------------------ */
        for (j = 0; j < (step < 0 ? 1 : k); j++) {
            gm_tape_reset(T);
            gm_tensor *real = data_batch(T, B, &rng);
            gm_tensor *fake = gm_detach(T, generate(T, &G, B, &rng));      /* G frozen */
            gm_tensor *loss_d = gm_gan_d_loss(T, mlp_forward(T, &D, real), mlp_forward(T, &D, fake), GM_GAN_MINIMAX);
            gm_backward(T, loss_d);
            gm_optim_step(opt_d);
        }
        if (step < 0) continue;                               /* D's head start */

        /* ---- one generator step: the only line that differs --------------------------- */
        gm_tape_reset(T);
        gm_tensor *fake_logit = mlp_forward(T, &D, generate(T, &G, B, &rng));
        gm_tensor *loss_g = gm_gan_g_loss(T, fake_logit, kind);   /* log(1 - D(G(z))) or -log D(G(z)) */
        gm_backward(T, loss_g);
        out->grad[step] = (float)grad_norm(&PG);                  /* before the step uses it */
        gm_optim_step(opt_g);                                     /* G only; D sits this one out */
        if (step < early) {
            out->grad_early += out->grad[step] / early;
            out->d_fake_early += mean_prob(fake_logit) / early;
        }
        if ((step + 1) % EVERY == 0 || step + 1 == early) {
            double js;
            estimate(T, &G, &rng, s, out->pg);
            js = js_quadrature(pd, out->pg);
            if ((step + 1) % EVERY == 0) out->js[step / EVERY] = (float)js;
            if (step + 1 == early) out->js_early = js;
        }
    }
    estimate(T, &G, &rng, s, out->pg);
    memcpy(out->samples, s, N_SAVE * sizeof(float));
    free(s);
    gm_optim_free(opt_g); gm_optim_free(opt_d);
    gm_params_free(&PG); gm_params_free(&PD);
}

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "gan_saturation", usage);
    const char *optim = demo_str(&d, "--optim", "sgd");
    int adam = strcmp(optim, "adam") == 0;
    int steps = demo_int(&d, "--steps", d.quick ? 100 : 500, 100, 1000000);
    int pretrain = demo_int(&d, "--pretrain", 200, 0, 1000000);
    int k_d = demo_int(&d, "--k", 5, 1, 100);
    int early = demo_int(&d, "--early", 20, 1, steps);
    float start = demo_float(&d, "--start", 4, -5, 5);
    int B = demo_int(&d, "--batch", 256, 1, 100000);
    float lr = demo_float(&d, "--lr", adam ? 0.001f : 0.05f, 1e-6, 10);
    static const char *name[2] = { "saturating log(1 - D(G(z)))", "non-saturating -log D(G(z))" };
    static const gm_gan kind[2] = { GM_GAN_MINIMAX, GM_GAN_NONSATURATING };
    float xs[GRID], pd[GRID], *jx;
    run r[2];
    int i, k;
    if (!adam && strcmp(optim, "sgd") != 0) {
        fprintf(stderr, "gan_saturation: --optim is sgd or adam, got \"%s\"\n", optim);
        exit(2);
    }
    printf("data: built-in 1-D mixture 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2), sampled here (no data set needed)\n");
    gm_tape *T = gm_tape_new(64 << 20);
    demo_check(&d, T != NULL, "gm_tape_new");

    /* ---- the two GANs ------------------------------------------------------------------- */
    printf("\n%d discriminator steps alone, then %d generator steps after %d discriminator steps each; %s, "
           "step size %g\n", pretrain, steps, k_d, adam ? "Adam" : "plain SGD", lr);
    printf("%-30s %16s %15s %16s %16s\n", "generator loss", "|grad G| early", "D(G(z)) early", "JS early",
           "JS at the end");
    for (k = 0; k < 2; k++) {
        r[k].grad = (float *)malloc((size_t)steps * sizeof(float));
        r[k].js = (float *)malloc((size_t)(steps / EVERY) * sizeof(float));
        r[k].samples = (float *)malloc(N_SAVE * sizeof(float));
        demo_check(&d, r[k].grad && r[k].js && r[k].samples, "allocation");
        train(&d, T, kind[k], steps, pretrain, k_d, early, B, lr, adam, start, &r[k]);
        printf("%-30s %16.3g %15.4f %16.4f %16.4f\n", name[k], r[k].grad_early, r[k].d_fake_early,
               r[k].js_early, r[k].js[steps / EVERY - 1]);
    }
    printf("(early: the mean over the first %d generator steps, JS after them)\n\n", early);

    /* ---- output ------------------------------------------------------------------------- */
    gm_plot *pl = gm_plot_new("generator gradient norm per step", "generator step", "|grad|");
    for (k = 0; k < 2; k++) gm_plot_line(pl, name[k], NULL, r[k].grad, steps);
    gm_plot_logy(pl, 1);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "grad_norm.png"), 0, 0), "saving grad_norm.png");
    gm_plot_free(pl);
    jx = (float *)malloc((size_t)(steps / EVERY) * sizeof(float));
    for (i = 0; i < steps / EVERY; i++) jx[i] = (float)((i + 1) * EVERY);
    pl = gm_plot_new("JS(p_data || p_g) during training", "generator step", "nats");
    for (k = 0; k < 2; k++) gm_plot_line(pl, name[k], jx, r[k].js, steps / EVERY);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "js.png"), 0, 0), "saving js.png");
    gm_plot_free(pl);
    for (i = 0; i < GRID; i++) { xs[i] = (float)grid_x(i); pd[i] = (float)p_data(xs[i]); }
    pl = gm_plot_new("the generators' densities at the end", "x", "density");
    gm_plot_line(pl, "p_data", xs, pd, GRID);
    for (k = 0; k < 2; k++) gm_plot_line(pl, name[k], xs, r[k].pg, GRID);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "densities.png"), 0, 0), "saving densities.png");
    gm_plot_free(pl);
    {
        int shape[3] = {2, N_SAVE, 1};
        float *both = (float *)malloc(2 * N_SAVE * sizeof(float));
        for (k = 0; k < 2; k++) memcpy(both + k * N_SAVE, r[k].samples, N_SAVE * sizeof(float));
        demo_check(&d, both && gm_save_npy(demo_path(&d, "samples.npy"), both, 3, shape), "saving samples.npy");
        free(both);
    }
    demo_result("grad_saturating", r[0].grad_early);
    demo_result("grad_nonsaturating", r[1].grad_early);
    demo_result("d_fake_saturating", r[0].d_fake_early);
    demo_result("d_fake_nonsaturating", r[1].d_fake_early);
    demo_result("js_early_saturating", r[0].js_early);
    demo_result("js_early_nonsaturating", r[1].js_early);
    demo_result("js_saturating", r[0].js[steps / EVERY - 1]);
    demo_result("js_nonsaturating", r[1].js[steps / EVERY - 1]);

    /* ---- cleanup ------------------------------------------------------------------------ */
    for (k = 0; k < 2; k++) { free(r[k].grad); free(r[k].js); free(r[k].samples); }
    free(jx);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
