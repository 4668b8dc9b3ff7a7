/* 01_kl_divergence.c - the KL divergence, computed three ways and used to fit a model.
 *
 * What it shows
 *   (a) KL(N(m1,s1^2) || N(m2,s2^2)) from its closed form next to a Monte Carlo estimate
 *       (1/N) sum_i [log p(x_i) - log q(x_i)], x_i ~ p: the two agree within the standard
 *       error, and swapping p and q changes the number: KL is not symmetric.
 *   (b) one Gaussian q = N(mu, sigma^2) fitted by Adam on genmod's tape to a two-mode
 *       mixture p = 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2), once per direction:
 *         forward KL(p||q) = E_p[log p - log q]   (maximum likelihood): q covers both modes;
 *         reverse KL(q||p) = E_q[log q - log p]   (reparameterized z = mu + sigma eps):
 *                                                  q settles on one mode.
 * Lecture: lectures/01-generative-models-and-kl.md
 * Run:     make build/kl_divergence && ./build/kl_divergence        (about 0.2 s)
 *          --quick for the tests; --seed N changes every random draw.
 * Output (out/kl_divergence/):
 *   fits.png    the mixture density p and the two fitted Gaussians
 *   curves.png  the KL estimate of each fit over the Adam steps
 *   fits.npy    (4, 401): x grid, p(x), q_forward(x), q_reverse(x)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include <math.h>

static const char *usage =
    "  --steps N    Adam steps of each fit (default 800, --quick 400)\n"
    "  --batch N    samples per step, from p (forward) or from q (reverse) (default 1000)\n"
    "  --mc N       Monte Carlo samples per KL estimate in part (a) (default 1000000)\n"
    "  --lr X       Adam learning rate (default 0.02)\n"
    "  --mu0 X      the mean both fits start from (default 1; sigma starts at 1)\n";

#define LOG_2PI 1.8378770664093453
#define GRID 401                        /* points of the density plot on [-6, 6] */

/* ---- the math in double, for part (a) and for exact numbers ---------------------- */

static double log_normal_d(double x, double m, double s)
{
    double u = (x - m) / s;
    return -0.5 * u * u - log(s) - 0.5 * LOG_2PI;
}

/* Closed form (Kullback & Leibler 1951; derived in the lecture):
 * KL(N(m1,s1^2) || N(m2,s2^2)) = log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2 */
static double kl_gauss(double m1, double s1, double m2, double s2)
{
    return log(s2 / s1) + (s1 * s1 + (m1 - m2) * (m1 - m2)) / (2.0 * s2 * s2) - 0.5;
}

/* The mixture p, its two modes at -/+ MODE with spread SPREAD, equal weights. */
#define MODE 2.0
#define SPREAD 0.5
static double log_mix_d(double x)
{
    double a = log_normal_d(x, -MODE, SPREAD), b = log_normal_d(x, MODE, SPREAD);
    double m = a > b ? a : b;                          /* log-sum-exp, see log_mixture */
    return m + log(0.5 * exp(a - m) + 0.5 * exp(b - m));
}

/* KL(f||g) = integral of f (log f - log g), by the midpoint rule on [-15, 15]. */
static double kl_quadrature(double (*logf_)(double, const double *), const double *fa,
                            double (*logg)(double, const double *), const double *ga)
{
    double h = 30.0 / 60000, acc = 0.0;
    int i;
    for (i = 0; i < 60000; i++) {
        double x = -15.0 + (i + 0.5) * h, lf = logf_(x, fa);
        acc += exp(lf) * (lf - logg(x, ga)) * h;
    }
    return acc;
}
static double q_dens(double x, const double *ms) { return log_normal_d(x, ms[0], ms[1]); }
static double p_dens(double x, const double *unused) { (void)unused; return log_mix_d(x); }

/* ---- the same math as genmod ops, so the tape can differentiate it ---------------- */

static gm_tensor *constant(gm_tape *T, float v) { return gm_from(T, gm_shape1(1), &v); }

/* log N(x; m, s^2) = -((x - m)/s)^2 / 2 - log s - log(2 pi)/2, elementwise over x (N);
 * m and log_s are one number each (trained parameters or constants). */
static gm_tensor *log_normal(gm_tape *T, gm_tensor *x, gm_tensor *m, gm_tensor *log_s)
{
    gm_tensor *u = gm_mul(T, gm_sub(T, x, m), gm_exp(T, gm_scale(T, log_s, -1.0f)));  /* (x-m)/s */
    gm_tensor *lp = gm_sub(T, gm_scale(T, gm_square(T, u), -0.5f), log_s);
    return gm_add(T, lp, constant(T, (float)(-0.5 * LOG_2PI)));
}

/* log p(z) = log(0.5 e^a + 0.5 e^b), a and b the log densities of the two components.
 * Far from both modes e^a and e^b underflow to 0 in float32 and the log would be -inf,
 * so subtract the larger exponent m first: log p = m + log(0.5 e^(a-m) + 0.5 e^(b-m)).
 * The identity holds for any m, so m may be a constant on the tape (no gradient). */
static gm_tensor *log_mixture(gm_tape *T, gm_tensor *z)
{
    gm_tensor *a = log_normal(T, z, constant(T, (float)-MODE), constant(T, (float)log(SPREAD)));
    gm_tensor *b = log_normal(T, z, constant(T, (float)MODE), constant(T, (float)log(SPREAD)));
    gm_tensor *m = gm_zeros(T, z->shape);
    int i;
    for (i = 0; i < m->size; i++) m->val[i] = a->val[i] > b->val[i] ? a->val[i] : b->val[i];
    return gm_add(T, m, gm_log(T, gm_add(T, gm_scale(T, gm_exp(T, gm_sub(T, a, m)), 0.5f),
                                            gm_scale(T, gm_exp(T, gm_sub(T, b, m)), 0.5f))));
}

int main(int argc, char **argv)
{
    /* ---- configuration --------------------------------------------------------------- */
    demo d = demo_start(argc, argv, "kl_divergence", usage);
    int steps = demo_int(&d, "--steps", d.quick ? 400 : 800, 1, 1000000);
    int batch = demo_int(&d, "--batch", 1000, 1, 100000);
    int n_mc = demo_int(&d, "--mc", d.quick ? 100000 : 1000000, 2, 100000000);
    float lr = demo_float(&d, "--lr", 0.02f, 1e-6, 1);
    float mu0 = demo_float(&d, "--mu0", 1.0f, -6, 6);     /* inside the plotted [-6, 6] */
    gm_rng rng = gm_rng_new(d.seed);
    /* (m1, s1, m2, s2): the pairs of part (a), each tried in both directions */
    static const double pairs[2][4] = { {0.0, 1.0, 1.0, 2.0}, {0.0, 1.0, 0.0, 0.5} };
    double kl_closed0 = 0, kl_mc0 = 0, fit[2][4];
    float *curve[2], *xs, *dens[3];
    int i, k, dir, step;
    printf("data: built-in (analytic Gaussians and a two-Gaussian mixture, sampled here; no data set needed)\n");

    /* ---- (a) closed form vs Monte Carlo -------------------------------------------------- */
    printf("\n(a) KL(p||q) = E_p[log p(x) - log q(x)], closed form vs %d samples x ~ p\n", n_mc);
    printf("    %-14s %-14s %10s %12s %10s\n", "p", "q", "closed", "Monte Carlo", "std.err");
    for (k = 0; k < 2; k++)
        for (dir = 0; dir < 2; dir++) {
            double m1 = pairs[k][dir ? 2 : 0], s1 = pairs[k][dir ? 3 : 1];
            double m2 = pairs[k][dir ? 0 : 2], s2 = pairs[k][dir ? 1 : 3];
            double kl = kl_gauss(m1, s1, m2, s2), sum = 0, sum2 = 0, mc, se;
            char ps[32], qs[32];
            for (i = 0; i < n_mc; i++) {
                double x = m1 + s1 * gm_rng_normal(&rng);           /* x ~ p */
                double r = log_normal_d(x, m1, s1) - log_normal_d(x, m2, s2);
                sum += r; sum2 += r * r;
            }
            mc = sum / n_mc;
            se = sqrt((sum2 / n_mc - mc * mc) / (n_mc - 1));        /* sd / sqrt(N) */
            snprintf(ps, sizeof ps, "N(%g, %g^2)", m1, s1);
            snprintf(qs, sizeof qs, "N(%g, %g^2)", m2, s2);
            printf("    %-14s %-14s %10.5f %12.5f %10.5f\n", ps, qs, kl, mc, se);
            if (k == 0 && dir == 0) { kl_closed0 = kl; kl_mc0 = mc; }
        }
    printf("    rows 1-2 and 3-4 swap p and q: the numbers differ, KL is not a distance.\n");

    /* ---- (b) data: samples from the mixture, the "training set" of the forward fit ---- */
    gm_tape *T = gm_tape_new(64 << 20);
    demo_check(&d, T != NULL, "gm_tape_new");
    float *data = (float *)malloc((size_t)batch * sizeof *data);
    for (i = 0; i < batch; i++)
        data[i] = (float)((gm_rng_uniform(&rng) < 0.5f ? -MODE : MODE) + SPREAD * gm_rng_normal(&rng));
    for (dir = 0; dir < 2; dir++) curve[dir] = (float *)malloc((size_t)steps * sizeof(float));

    printf("\n(b) fit q = N(mu, sigma^2) to p = 0.5 N(-%g, %g^2) + 0.5 N(%g, %g^2), %d Adam steps, "
           "start mu = %g, sigma = 1\n", MODE, SPREAD, MODE, SPREAD, steps, mu0);
    for (dir = 0; dir < 2; dir++) {
        /* ---- model: two numbers, mu and log sigma (sigma = e^log_s stays positive) ---- */
        gm_params P = {0};
        gm_tensor *mu = gm_param_new(&P, "mu", gm_shape1(1));
        gm_tensor *log_s = gm_param_new(&P, "log_sigma", gm_shape1(1));
        gm_optim *opt = gm_adam_new(&P, lr, 0.9f, 0.999f);
        gm_progress pb = gm_progress_start(dir == 0 ? "forward" : "reverse", steps);
        demo_check(&d, opt != NULL, "gm_adam_new");
        mu->val[0] = mu0; log_s->val[0] = 0.0f;

        /* ---- training ---------------------------------------------------------------- */
        for (step = 0; step < steps; step++) {
            gm_tensor *loss;
            gm_tape_reset(T);
            if (dir == 0) {
                /* forward: KL(p||q) = E_{x~p}[log p(x) - log q(x)] over the data. log p(x) is a
                 * constant here, so this is maximum likelihood: minimize -E_p[log q(x)]. */
                gm_tensor *x = gm_from(T, gm_shape1(batch), data);
                loss = gm_mean(T, gm_sub(T, log_mixture(T, x), log_normal(T, x, mu, log_s)));
            } else {
                /* reverse: KL(q||p) = E_{z~q}[log q(z) - log p(z)], z = mu + sigma eps with
                 * eps ~ N(0,1), so the sample itself depends on mu, sigma and the gradient
                 * flows through it (the reparameterization trick, lecture 05). */
                gm_tensor *eps = gm_randn(T, gm_shape1(batch), &rng);
                gm_tensor *z = gm_add(T, gm_mul(T, eps, gm_exp(T, log_s)), mu);
                loss = gm_mean(T, gm_sub(T, log_normal(T, z, mu, log_s), log_mixture(T, z)));
            }
            curve[dir][step] = gm_backward(T, loss);
            opt->lr = lr * (1.0f - (float)step / steps);    /* linear decay: a quiet finish */
            gm_optim_step(opt);
            gm_progress_update(&pb, step + 1, "KL %.4f", curve[dir][step]);
        }
        gm_progress_finish(&pb);
        fit[dir][0] = mu->val[0];
        fit[dir][1] = exp(log_s->val[0]);
        fit[dir][2] = kl_quadrature(p_dens, NULL, q_dens, fit[dir]);   /* KL(p||q) */
        fit[dir][3] = kl_quadrature(q_dens, fit[dir], p_dens, NULL);   /* KL(q||p) */
        gm_optim_free(opt);
        gm_params_free(&P);
    }
    printf("    %-22s %8s %8s %10s %10s\n", "", "mu", "sigma", "KL(p||q)", "KL(q||p)");
    for (dir = 0; dir < 2; dir++)
        printf("    %-22s %8.4f %8.4f %10.4f %10.4f\n", dir ? "reverse fit, min KL(q||p)" : "forward fit, min KL(p||q)",
               fit[dir][0], fit[dir][1], fit[dir][2], fit[dir][3]);
    printf("    (KL columns by numerical integration.) Each fit wins on its own objective:\n"
           "    forward covers both modes (mu ~ 0, sigma ~ sqrt(%g^2 + %g^2) = %.3f), reverse picks one.\n",
           MODE, SPREAD, sqrt(MODE * MODE + SPREAD * SPREAD));

    /* ---- output: the densities and the training curves --------------------------------- */
    xs = (float *)malloc(4 * GRID * sizeof(float));
    for (k = 0; k < 3; k++) dens[k] = xs + (k + 1) * GRID;
    for (i = 0; i < GRID; i++) {
        double x = -6.0 + 12.0 * i / (GRID - 1);
        xs[i] = (float)x;
        dens[0][i] = (float)exp(log_mix_d(x));
        for (dir = 0; dir < 2; dir++) dens[1 + dir][i] = (float)exp(log_normal_d(x, fit[dir][0], fit[dir][1]));
    }
    gm_plot *pl = gm_plot_new("one Gaussian fitted to a two-mode mixture", "x", "density");
    gm_plot_line(pl, "p: mixture", xs, dens[0], GRID);
    gm_plot_line(pl, "q by forward KL(p||q)", xs, dens[1], GRID);
    gm_plot_line(pl, "q by reverse KL(q||p)", xs, dens[2], GRID);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "fits.png"), 0, 0), "gm_plot_save");
    gm_plot_free(pl);
    {
        int shape[2] = {4, GRID};
        demo_check(&d, gm_save_npy(demo_path(&d, "fits.npy"), xs, 2, shape), "gm_save_npy");
    }
    pl = gm_plot_new("KL estimate per Adam step (one batch each)", "step", "KL");
    gm_plot_line(pl, "forward KL(p||q)", NULL, curve[0], steps);
    gm_plot_line(pl, "reverse KL(q||p)", NULL, curve[1], steps);
    demo_check(&d, gm_plot_save(pl, demo_path(&d, "curves.png"), 0, 0), "gm_plot_save");
    gm_plot_free(pl);

    printf("\n");
    demo_result("kl_closed", kl_closed0);
    demo_result("kl_mc", kl_mc0);
    demo_result("forward_mu", fit[0][0]);
    demo_result("forward_sigma", fit[0][1]);
    demo_result("reverse_mu", fit[1][0]);
    demo_result("reverse_sigma", fit[1][1]);

    /* ---- cleanup ----------------------------------------------------------------------- */
    free(xs); free(data); free(curve[0]); free(curve[1]);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
