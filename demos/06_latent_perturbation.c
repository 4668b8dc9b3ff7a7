/* 06_latent_perturbation - walk along one latent coordinate at a time (and the beta-VAE)
 *
 * What it shows: a VAE with Z = 10 trained by rec + beta KL. Then a picture of latent
 * traversals: the code mu(x*) of one test image x* is the starting point, and each row
 * changes one coordinate z_j over [-3, 3] while the others stay at mu(x*). Rows come
 * in order of the dimension's KL, the most informative first. The table lists, for every
 * dimension, its KL(q(z_j|x) || N(0,1)) averaged over the test set, its activity
 * A_j = Var_x(mu_j(x)) (active when > 0.01, Burda et al. 2016) and how much the picture
 * changes along the row. With --beta > 1 (the beta-VAE, Higgins et al. 2017) the KL
 * squeezes harder: fewer dimensions stay active, and each row tends to change one thing.
 * Lecture: lectures/06-latent-space-regularization.md
 * Run:     make build/latent_perturbation && ./build/latent_perturbation
 *          (8 epochs: about 24 s on 2 cores)
 *          ./build/latent_perturbation --beta 4 --out out/latent_perturbation_beta4
 * Output:  out/latent_perturbation/traversal.png  a row per z_j: x*, then z_j = -3 .. 3
 *          out/latent_perturbation/samples.png    64 samples, z ~ N(0, I)
 *          out/latent_perturbation/samples.npy    10000 samples (10000,1,28,28) in [0,1]
 *          result lines: active_units, kl_total (nats per test image, the sum over j),
 *          test_rec, test_neg_elbo (rec + KL, the beta = 1 bound, whatever beta trained)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"
#include <math.h>

static const char *usage =
    "  --beta B       weight of the KL term (default 1: the ELBO; > 1: beta-VAE)\n"
    "  --epochs N     passes over the training set (default 8; 1 with --quick)\n"
    "  --latent Z     latent dimensions (default 10)\n"
    "  --image I      the test image whose code the traversals start from (default 0)\n";

enum { STEPS = 11 };      /* values of z_j along a row: -3, -2.4, ..., 3 */

/* dims 0..Z-1 sorted by KL, largest first (insertion sort: Z is small) */
static void sort_by_kl(const double *kl, int Z, int *order)
{
    int i, k;
    for (i = 0; i < Z; i++) {
        for (k = i; k > 0 && kl[order[k - 1]] < kl[i]; k--) order[k] = order[k - 1];
        order[k] = i;
    }
}

/* Row r: x* then the decoder's means at z = mu(x*) with z_{order[r]} set to -3 .. 3.
 * change[j] = mean |x(z_j = 3) - x(z_j = -3)| over pixels: how much moving z_j does. */
static void save_traversal(demo *d, gm_tape *T, const vae *m, const float *x_star, const float *mu_star,
                           const int *order, double *change)
{
    int Z = m->Z, cols = STEPS + 1, r, c, p;
    float *z = (float *)malloc((size_t)Z * STEPS * Z * sizeof(float));
    float *dec = (float *)malloc((size_t)Z * STEPS * 784 * sizeof(float));
    float *grid = (float *)malloc((size_t)Z * cols * 784 * sizeof(float));
    for (r = 0; r < Z; r++)
        for (c = 0; c < STEPS; c++) {
            float *zc = z + (size_t)(r * STEPS + c) * Z;
            memcpy(zc, mu_star, (size_t)Z * sizeof(float));
            zc[order[r]] = -3 + 6.0f * c / (STEPS - 1);        /* perturb one coordinate */
        }
    vae_decode_all(T, m, z, Z * STEPS, dec);
    for (r = 0; r < Z; r++) {
        const float *lo = dec + (size_t)r * STEPS * 784, *hi = lo + (size_t)(STEPS - 1) * 784;
        memcpy(grid + (size_t)r * cols * 784, x_star, 784 * sizeof(float));
        memcpy(grid + (size_t)(r * cols + 1) * 784, lo, (size_t)STEPS * 784 * sizeof(float));
        change[order[r]] = 0;
        for (p = 0; p < 784; p++) change[order[r]] += fabsf(hi[p] - lo[p]) / 784.0;
    }
    demo_check(d, gm_save_image_grid(demo_path(d, "traversal.png"), grid, Z * cols, 1, 28, 28, cols, 0, 1),
               "saving the traversal");
    free(z); free(dec); free(grid);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "latent_perturbation", usage);
    float beta = demo_float(&d, "--beta", 1.0f, 0, 1000);
    int Z = demo_int(&d, "--latent", 10, 1, 784), image = demo_int(&d, "--image", 0, 0, 1000000);
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 1 : 8));
    vae_lab L;
    vae m;
    vae_score s;
    float *mu, *logvar, *A = (float *)malloc((size_t)Z * sizeof(float));
    double *kl = (double *)malloc((size_t)Z * sizeof(double)), *change = (double *)malloc((size_t)Z * sizeof(double));
    double kl_total;
    int *order = (int *)malloc((size_t)Z * sizeof(int)), active, r;

    L = vae_lab_open(&d, 3000);
    if (image < 0 || image >= L.test.n) { fprintf(stderr, "latent_perturbation: --image is 0..%d\n", L.test.n - 1); exit(2); }
    m = vae_new(VAE_MLP, Z, &L.rng);
    printf("VAE (mlp), Z = %d, beta = %g, %d epochs of %d batches of %d\n", Z, beta, cfg.epochs,
           gm_batches(&L.train, cfg.B), cfg.B);
    /* the objective: E_q[-log p(x|z)] + beta KL(q(z|x) || N(0,I)), see vae_loss */
    cfg.beta = beta;
    s = vae_train(&m, &L.train, &L.test, &cfg, L.T, &L.rng, "vae");

    /* the code of every test image, then what each dimension carries */
    vae_encode_all(L.T, &m, &L.test, &mu, &logvar);
    kl_total = vae_kl_per_dim(L.T, mu, logvar, L.test.n, Z, kl);
    active = gm_active_units(mu, L.test.n, Z, 0.01f, A);
    sort_by_kl(kl, Z, order);
    save_traversal(&d, L.T, &m, L.test.x + (size_t)image * 784, mu + (size_t)image * Z, order, change);
    vae_save_samples(&d, L.T, &m, 10000, 64, "samples.png", &L.rng);

    printf("\nper latent dimension, test set (%d images), in the order of the traversal rows:\n", L.test.n);
    printf("  row  dim   KL (nats)   A_j = Var(mu_j)   active   change along row\n");
    for (r = 0; r < Z; r++) {
        int j = order[r];
        printf("  %3d  %3d   %9.3f   %15.4f   %6s   %16.4f\n", r, j, kl[j], A[j], A[j] > 0.01f ? "yes" : "no",
               change[j]);
    }
    printf("\nactive units %d of %d; KL %.2f nats = the sum of the column; test rec %.2f\n", active, Z, kl_total, s.rec);
    demo_result("active_units", active);
    demo_result("kl_total", kl_total);
    demo_result("test_rec", s.rec);
    demo_result("test_neg_elbo", s.neg_elbo);

    free(mu); free(logvar); free(A); free(kl); free(change); free(order);
    return vae_lab_close(&d, &L, &m.P);
}
