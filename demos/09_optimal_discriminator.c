/* 09_optimal_discriminator.c - the best discriminator against a fixed generator, and the
 * Jensen-Shannon divergence hidden in the GAN's value.
 *
 * What it shows
 *   The generator is frozen at G(z) = MU_G + SIGMA_G z, so p_g = N(MU_G, SIGMA_G^2) is known in
 *   closed form; p_data is lecture 01's two-bump mixture. A discriminator D (an MLP) is
 *   trained to convergence on fresh samples of both, by the discriminator's half of the
 *   minimax game: maximize V(D, G) = E_{p_data} log D(x) + E_{p_g} log(1 - D(x)).
 *   Lecture 09 derives that the maximizer is D*(x) = p_data(x) / (p_data(x) + p_g(x)) and
 *   that V(D*, G) = 2 JS(p_data || p_g) - log 4. The demo checks both:
 *     - the trained D against D* on a grid, and their distance;
 *     - JS by quadrature of the two densities (js_numeric) against (V + log 4) / 2, with V
 *       the integral over the grid of p_data log D + p_g log(1 - D) for the trained D
 *       (js_from_v) and for the closed-form D* (js_from_v_closed, which is the identity
 *       itself and agrees to rounding). V(D, G) <= V(D*, G) for any D, so js_from_v can
 *       only fall short of js_numeric.
 * Lecture: lectures/09-gans.md
 * Run:     make build/optimal_discriminator && ./build/optimal_discriminator     (a few seconds)
 *          --quick for the tests; --mu-g 2 moves p_g onto one bump.
 * Output (out/optimal_discriminator/):
 *   d_star.png   p_data, p_g, the closed-form D* and the trained D
 *   value.png    the minibatch estimate of V(D, G) per step, rising to V(D*, G) = 2 JS - log 4
 *   result lines: js_numeric, js_from_v, js_from_v_closed, js_rel_error (of js_from_v),
 *   v_trained, v_star, d_gap (mean |D - D*| over real and generated samples)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "gan.h"

static const char *usage =
    "  --steps N    discriminator steps (default 4000, --quick 1000)\n"
    "  --batch N    samples of each kind per step (default 512)\n"
    "  --hidden N   units in each of D's two hidden layers (default 64)\n"
    "  --lr X       Adam step size, falling linearly to 0 (default 0.002)\n"
    "  --mu-g X     mean of the fixed generator's Gaussian (default 0.5)\n"
    "  --sigma-g X  its standard deviation (default 1.2)\n";

#define LOG4 1.3862943611198906

/* log(1 + e^l) without overflow: log D = -softplus(-l), log(1 - D) = -softplus(l) */
static double softplus(double l) { return l > 0 ? l + log1p(exp(-l)) : log1p(exp(l)); }

int main(int argc, char **argv)
{
    /* ---- configuration ------------------------------------------------------------------ */
    demo d = demo_start(argc, argv, "optimal_discriminator", usage);
    int steps = demo_int(&d, "--steps", d.quick ? 1000 : 4000, 1, 1000000);
    int B = demo_int(&d, "--batch", 512, 1, 100000);
    int hidden = demo_int(&d, "--hidden", 64, 1, 4096);
    float lr = demo_float(&d, "--lr", 0.002f, 1e-6, 1);
    float mu_g = demo_float(&d, "--mu-g", 0.5f, -3, 3);
    float sigma_g = demo_float(&d, "--sigma-g", 1.2f, 0.2, 2);
    gm_rng rng = gm_rng_new(d.seed);
    float pd[GRID], pg[GRID], ds[GRID], dx[GRID], logit[GRID], xs[GRID], *v_curve;
    double v_star = 0, v_trained = 0, js, gap;
    int i, step;
    printf("data: built-in 1-D mixture 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2) against a fixed generator "
           "N(%g, %g^2), both sampled here (no data set needed)\n", mu_g, sigma_g);
    for (i = 0; i < GRID; i++) {
        xs[i] = (float)grid_x(i);
        pd[i] = (float)p_data(xs[i]);
        pg[i] = (float)normal_pdf(xs[i], mu_g, sigma_g);
    }

    /* ---- model: D alone; G is the fixed map z -> MU_G + SIGMA_G z ----------------------- */
    gm_params PD = {0};
    mlp D = mlp_new(&PD, "D", hidden, &rng);
    gm_optim *opt = gm_adam_new(&PD, lr, 0.5f, 0.999f);
    gm_tape *T = gm_tape_new(64 << 20);
    v_curve = (float *)malloc((size_t)steps * sizeof(float));
    demo_check(&d, opt && T && v_curve, "allocation");

    /* ---- training: D ascends V(D, G), i.e. descends the minimax D loss = -V ------------- */
    gm_progress pb = gm_progress_start("train D", steps);
    for (step = 0; step < steps; step++) {
        gm_tape_reset(T);
        gm_tensor *real = data_batch(T, B, &rng);
        gm_tensor *fake = gm_add(T, gm_scale(T, gm_randn(T, gm_shape2(B, 1), &rng), sigma_g),
                                 gm_from(T, gm_shape1(1), &mu_g));             /* G(z), fixed */
        gm_tensor *loss = gm_gan_d_loss(T, mlp_forward(T, &D, real), mlp_forward(T, &D, fake), GM_GAN_MINIMAX);
        v_curve[step] = -gm_backward(T, loss);               /* minibatch estimate of V(D, G) */
        opt->lr = lr * (1.0f - (float)step / steps);         /* to 0: D settles at its optimum */
        gm_optim_step(opt);
        gm_progress_update(&pb, step + 1, "V %.4f", v_curve[step]);
    }
    gm_progress_finish(&pb);

    /* ---- D against D*, and V by quadrature for both --------------------------------------- */
    gm_tape_reset(T);
    d_on_grid(T, &D, dx, logit);
    d_star(pd, pg, ds);
    gap = d_gap(dx, ds, pd, pg);
    js = js_quadrature(pd, pg);
    for (i = 0; i < GRID; i++) {
        /* V = integral of p_data log D + p_g log(1 - D); for D* in logs of the densities */
        double m = log(pd[i] + pg[i]);
        if (pd[i] > 0) v_star += pd[i] * (log(pd[i]) - m) * GRID_H;
        if (pg[i] > 0) v_star += pg[i] * (log(pg[i]) - m) * GRID_H;
        v_trained += (-pd[i] * softplus(-logit[i]) - pg[i] * softplus(logit[i])) * GRID_H;
    }
    printf("\n%-44s %10s\n", "", "nats");
    printf("%-44s %10.5f\n", "JS(p_data || p_g) by quadrature", js);
    printf("%-44s %10.5f\n", "V(D*, G), closed-form D*", v_star);
    printf("%-44s %10.5f\n", "V(D, G), trained D", v_trained);
    printf("%-44s %10.5f\n", "(V(D*, G) + log 4) / 2", (v_star + LOG4) / 2);
    printf("%-44s %10.5f\n", "(V(D, G) + log 4) / 2", (v_trained + LOG4) / 2);
    printf("%-44s %10.5f\n", "mean |D - D*| over real and generated x", gap);
    printf("(V by quadrature over [%g, %g]; the minibatch V of the last step was %.5f)\n\n", X_LO, X_HI,
           v_curve[steps - 1]);

    /* ---- output ------------------------------------------------------------------------- */
    gm_plot *pl = gm_plot_new("a trained D against D* = p_data / (p_data + p_g)", "x", NULL);
    gm_plot_line(pl, "p_data", xs, pd, GRID);
    gm_plot_line(pl, "p_g (fixed)", xs, pg, GRID);
    gm_plot_line(pl, "D* (closed form)", xs, ds, GRID);
    gm_plot_line(pl, "D (trained)", xs, dx, GRID);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "d_star.png"), 0, 0), "saving d_star.png");
    gm_plot_free(pl);
    {
        float line[2], at[2] = {0, (float)(steps - 1)}, *avg = (float *)malloc((size_t)steps * sizeof(float));
        double run = v_curve[0];
        line[0] = line[1] = (float)(2 * js - LOG4);
        for (step = 0; step < steps; step++) avg[step] = (float)(run += 0.02 * (v_curve[step] - run));
        pl = gm_plot_new("V(D, G) per minibatch while D trains", "step", "nats");
        gm_plot_line(pl, "V(D, G), minibatch", NULL, v_curve, steps);
        gm_plot_line(pl, "its running mean (last ~50 steps)", NULL, avg, steps);
        gm_plot_line(pl, "2 JS - log 4", at, line, 2);
        free(avg);
        demo_check(&d, gm_plot_save(pl, demo_path(&d, "value.png"), 0, 0), "saving value.png");
        gm_plot_free(pl);
    }
    demo_result("js_numeric", js);
    demo_result("js_from_v", (v_trained + LOG4) / 2);
    demo_result("js_from_v_closed", (v_star + LOG4) / 2);
    demo_result("js_rel_error", fabs((v_trained + LOG4) / 2 - js) / js);
    demo_result("v_trained", v_trained);
    demo_result("v_star", v_star);
    demo_result("d_gap", gap);

    /* ---- cleanup ------------------------------------------------------------------------ */
    free(v_curve);
    gm_optim_free(opt);
    gm_params_free(&PD);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
