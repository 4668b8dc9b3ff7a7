/* 06_conditional_generation - new images like a given x*: sample z around mu(x*)
 *
 * What it shows: a trained VAE's encoder q(z|x*) = N(mu(x*), sigma(x*)^2) marks the small
 * part of the latent space that decodes to images like x*. Decoding z ~ q(z|x*) gives
 * variations of x* (same kind of garment, small changes); decoding z ~ p(z) = N(0, I) gives
 * anything at all. Widening the spread, z = mu + s sigma eps with s = 0, 1, 2, 4, walks from
 * one to the other. A straight line between the codes of two test images decodes to a
 * path of garments, where the straight line between their pixels is a double exposure.
 * Numbers: the mean squared distance of the samples to x*, and how often a sample keeps
 * x*'s class (the class of its nearest training image, a 1-nearest-neighbour classifier).
 * Lecture: lectures/06-using-the-latent-space.md
 * Run:     make build/conditional_generation && ./build/conditional_generation
 *                                           (trains 5 epochs, about 18 s on 2 cores)
 *          ./build/vae && ./build/conditional_generation --model out/vae/vae_mlp.ckpt
 * Output:  out/conditional_generation/cond-samples.png  rows: x*, decoded mu(x*), 6 samples
 *                                       of q(z|x*), a blank, 6 samples of the prior
 *          out/conditional_generation/cond-interp.png   pairs of rows: latent interpolation,
 *                                       then the pixel cross-fade of the same two images
 *          out/conditional_generation/samples.npy       the conditional samples z ~ q(z|x*)
 *                                       of the statistics, (100*10, 1, 28, 28) in [0,1]
 *          result lines: dist_cond, dist_prior, class_kept_cond, class_kept_prior,
 *          class_kept_mu, interp_nn_dist_latent, interp_nn_dist_pixel
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --model PATH   load a VAE checkpoint (from ./build/vae) instead of training one\n"
    "  --arch A       mlp (default) or conv; must match --model\n"
    "  --latent Z     latent dimensions (default 20, as ./build/vae)\n"
    "  --epochs N     training passes without --model (default 5; 1 with --quick)\n";

enum { D = 784, NSTAR = 100, S = 10, SHOW = 6, STEPS = 8 };

/* The reference images a generated image is compared with: the first n training images,
 * stored transposed (D, n) so that all squared distances are one matrix product. */
typedef struct reference { int n; float *rt, *norm; const int *y; } reference;

static reference reference_new(const gm_dataset *train, int n)
{
    reference R;
    int i, j;
    R.n = n < train->n ? n : train->n;
    R.rt = (float *)malloc((size_t)D * R.n * sizeof(float));
    R.norm = (float *)calloc((size_t)R.n, sizeof(float));
    R.y = train->y;
    for (i = 0; i < R.n; i++)
        for (j = 0; j < D; j++) {
            float v = train->x[(size_t)i * D + j];
            R.rt[(size_t)j * R.n + i] = v;
            R.norm[i] += v * v;
        }
    return R;
}

/* For n images q (n, D): the class of the nearest reference image and the mean squared
 * pixel distance to it, from ||q - r||^2 = ||q||^2 - 2 q.r + ||r||^2. */
static void nearest(gm_tape *T, const reference *R, const float *q, int n, int *cls, float *dist)
{
    int i, b, k;
    for (i = 0; i < n; i += 500) {
        int nb = n - i < 500 ? n - i : 500;
        gm_tensor *qr;
        gm_tape_reset(T);
        qr = gm_matmul(T, gm_from(T, gm_shape2(nb, D), q + (size_t)i * D),
                       gm_from(T, gm_shape2(D, R->n), R->rt));          /* (nb, n) products */
        for (b = 0; b < nb; b++) {
            const float *x = q + (size_t)(i + b) * D, *row = qr->val + (size_t)b * R->n;
            float qq = 0, best = INFINITY;
            int arg = 0;
            for (k = 0; k < D; k++) qq += x[k] * x[k];
            for (k = 0; k < R->n; k++) {
                float d2 = qq - 2 * row[k] + R->norm[k];
                if (d2 < best) { best = d2; arg = k; }
            }
            cls[i + b] = R->y[arg];
            dist[i + b] = (best > 0 ? best : 0) / D;
        }
    }
}

/* z = mu + s sigma eps with eps ~ N(0, I) (Z values); s < 0: z ~ p(z) = N(0, I). */
static void sample_around(const float *mu, const float *logvar, int Z, float s, gm_rng *rng, float *z)
{
    int i;
    for (i = 0; i < Z; i++) {
        float eps = gm_rng_normal(rng);
        z[i] = s < 0 ? eps : mu[i] + s * expf(0.5f * logvar[i]) * eps;
    }
}

/* mu and logvar of n images x (n, D) */
static void encode(gm_tape *T, const vae *m, const float *x, int n, float *mu, float *logvar)
{
    gm_tensor *mu_b, *lv_b;
    gm_tape_reset(T);
    vae_encode(T, m, gm_from(T, gm_shape4(n, 1, 28, 28), x), &mu_b, &lv_b);
    memcpy(mu, mu_b->val, sizeof(float) * n * m->Z);
    memcpy(logvar, lv_b->val, sizeof(float) * n * m->Z);
}

/* the mean over n image pairs of the mean squared pixel difference */
static double mean_dist(const float *a, const float *b, int n)
{
    size_t j;
    double s = 0;
    for (j = 0; j < (size_t)n * D; j++) s += (double)(a[j] - b[j]) * (a[j] - b[j]);
    return s / ((double)n * D);
}

/* first[c] = index of the first test image of class c (or -1) */
static void first_of_each_class(const gm_dataset *test, int *first)
{
    int i;
    for (i = 0; i < 10; i++) first[i] = -1;
    for (i = test->n - 1; i >= 0; i--)
        if (test->y[i] < 10) first[test->y[i]] = i;
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "conditional_generation", usage);
    const char *model = demo_str(&d, "--model", NULL);
    int arch = vae_arch(&d), Z = demo_int(&d, "--latent", 20, 1, 32);   /* 32: mu[] and lv[] below */
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 1 : 5));
    vae_lab L;
    reference R;
    vae m;
    /* the statistics: NSTAR test images x*, S samples each, five ways of choosing z */
    const char *how[5] = {"z = mu(x*)", "z ~ q(z|x*)", "z = mu + 2 sigma eps", "z = mu + 4 sigma eps",
                          "z ~ p(z), the prior"};
    const float spread[5] = {0, 1, 2, 4, -1};
    float mu[NSTAR * 32], lv[NSTAR * 32], *zs, *xs, *xstar, *dist, *cond = NULL;
    int *cls, first[10], i, k, s, nstar, kept_self = 0, shape[4] = {0, 1, 28, 28};
    double dist_m[5], kept_m[5];

    L = vae_lab_open(&d, 3000);
    m = vae_new(arch, Z, &L.rng);
    if (model) {
        demo_check(&d, gm_load_params(&m.P, model), "loading --model");
        printf("model: %s (Z = %d)\n", model, Z);
    } else {
        printf("model: a new VAE, Z = %d, trained %d epochs\n", Z, cfg.epochs);
        vae_train(&m, &L.train, &L.test, &cfg, L.T, &L.rng, "vae");
    }
    R = reference_new(&L.train, 10000);
    nstar = L.test.n < NSTAR ? L.test.n : NSTAR;
    zs = (float *)malloc(sizeof(float) * nstar * S * Z);
    xs = (float *)malloc(sizeof(float) * nstar * S * D);
    xstar = (float *)malloc(sizeof(float) * nstar * S * D);   /* x*, repeated S times */
    cond = (float *)malloc(sizeof(float) * nstar * S * D);
    dist = (float *)malloc(sizeof(float) * NSTAR * S);     /* also the interpolation's 2*4*STEPS */
    cls = (int *)malloc(sizeof(int) * NSTAR * S);

    /* ---- the statistics: distance to x* and class kept, for each way of choosing z ---- */
    encode(L.T, &m, L.test.x, nstar, mu, lv);
    for (i = 0; i < nstar * S; i++) memcpy(xstar + (size_t)i * D, L.test.x + (size_t)(i / S) * D, sizeof(float) * D);
    nearest(L.T, &R, L.test.x, nstar, cls, dist);               /* the classifier on x* itself */
    for (i = 0; i < nstar; i++) kept_self += cls[i] == L.test.y[i];
    for (k = 0; k < 5; k++) {
        int kept = 0;
        for (i = 0; i < nstar; i++)
            for (s = 0; s < S; s++)
                sample_around(mu + i * Z, lv + i * Z, Z, spread[k], &L.rng, zs + (size_t)(i * S + s) * Z);
        vae_decode_all(L.T, &m, zs, nstar * S, xs);
        if (k == 1) memcpy(cond, xs, sizeof(float) * nstar * S * D);
        nearest(L.T, &R, xs, nstar * S, cls, dist);
        for (i = 0; i < nstar * S; i++) kept += cls[i] == L.test.y[i / S];
        dist_m[k] = mean_dist(xs, xstar, nstar * S);
        kept_m[k] = (double)kept / (nstar * S);
    }
    printf("\n%d test images x*, %d decoded samples each; classes by the nearest of %d training images\n",
           nstar, S, R.n);
    printf("%-24s %14s %18s\n", "samples", "dist to x*", "keep x*'s class");
    printf("%-24s %14s %18.3f\n", "x* itself", "0", (double)kept_self / nstar);
    for (k = 0; k < 5; k++) printf("%-24s %14.4f %18.3f\n", how[k], dist_m[k], kept_m[k]);
    shape[0] = nstar * S;
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), cond, 4, shape), "saving samples.npy");

    /* ---- the picture: x*, decoded mu, SHOW samples of q(z|x*), blank, SHOW of p(z) ---- */
    first_of_each_class(&L.test, first);
    {
        enum { COLS = 3 + 2 * SHOW };
        float grid[10 * COLS * D], xi[10 * D], z[SHOW * 32];
        const char *names[10];                    /* each row's class, when the data name them */
        gm_grid_labels labels = {NULL, NULL, NULL};
        int rows = 0, c;
        memset(grid, 0, sizeof grid);
        for (c = 0; c < 10; c++) {
            float *row = grid + (size_t)rows * COLS * D;
            if (first[c] < 0) continue;
            names[rows] = L.test.class_names ? L.test.class_names[c] : NULL;
            memcpy(xi, L.test.x + (size_t)first[c] * D, sizeof(float) * D);
            encode(L.T, &m, xi, 1, mu, lv);
            memcpy(row, xi, sizeof(float) * D);
            vae_decode_all(L.T, &m, mu, 1, row + D);
            for (s = 0; s < SHOW; s++) sample_around(mu, lv, Z, 1, &L.rng, z + s * Z);
            vae_decode_all(L.T, &m, z, SHOW, row + 2 * D);
            for (s = 0; s < SHOW; s++) sample_around(mu, lv, Z, -1, &L.rng, z + s * Z);
            vae_decode_all(L.T, &m, z, SHOW, row + (3 + SHOW) * D);
            rows++;
        }
        labels.rows = L.test.class_names ? names : NULL;      /* no margin for rows of numbers */
        labels.caption = "left to right: x*, the decoded mu(x*), z ~ q(z|x*) decoded, then z ~ p(z) decoded";
        demo_check(&d, gm_save_image_grid_labeled(demo_path(&d, "cond-samples.png"), grid, rows * COLS, 1, 28, 28, COLS,
                                                  0, 1, &labels), "saving cond-samples.png");
    }

    /* ---- interpolation: z_t = (1 - t) mu(x_a) + t mu(x_b), and the pixel cross-fade ---- */
    {
        enum { COLS = STEPS + 2, PAIRS = 4 };
        float grid[2 * PAIRS * COLS * D], ends[2 * D], zt[STEPS * 32], lat[PAIRS * STEPS * D], pix[PAIRS * STEPS * D];
        double nn_lat = 0, nn_pix = 0;
        int p, j, npairs = 0;
        for (p = 0; p < PAIRS; p++) {
            float *r1 = grid + (size_t)2 * npairs * COLS * D, *r2 = r1 + (size_t)COLS * D;
            if (first[p] < 0 || first[9 - p] < 0) continue;
            memcpy(ends, L.test.x + (size_t)first[p] * D, sizeof(float) * D);
            memcpy(ends + D, L.test.x + (size_t)first[9 - p] * D, sizeof(float) * D);
            encode(L.T, &m, ends, 2, mu, lv);
            for (s = 0; s < STEPS; s++) {
                float t = (float)s / (STEPS - 1);
                for (j = 0; j < Z; j++) zt[s * Z + j] = (1 - t) * mu[j] + t * mu[Z + j];
                for (j = 0; j < D; j++) pix[(size_t)(npairs * STEPS + s) * D + j] = (1 - t) * ends[j] + t * ends[D + j];
            }
            vae_decode_all(L.T, &m, zt, STEPS, lat + (size_t)npairs * STEPS * D);
            memcpy(r1, ends, sizeof(float) * D);
            memcpy(r1 + D, lat + (size_t)npairs * STEPS * D, sizeof(float) * STEPS * D);
            memcpy(r1 + (STEPS + 1) * D, ends + D, sizeof(float) * D);
            memcpy(r2, ends, sizeof(float) * D);
            memcpy(r2 + D, pix + (size_t)npairs * STEPS * D, sizeof(float) * STEPS * D);
            memcpy(r2 + (STEPS + 1) * D, ends + D, sizeof(float) * D);
            npairs++;
        }
        demo_check(&d, gm_save_image_grid(demo_path(&d, "cond-interp.png"), grid, 2 * npairs * COLS, 1, 28, 28, COLS, 0, 1),
                   "saving cond-interp.png");
        /* how far each point of the two paths is from the nearest real image */
        nearest(L.T, &R, lat, npairs * STEPS, cls, dist);
        nearest(L.T, &R, pix, npairs * STEPS, cls + npairs * STEPS, dist + npairs * STEPS);
        printf("\ninterpolation (class of the nearest training image along each path, t = 0 .. 1)\n");
        for (p = 0; p < npairs; p++) {
            printf("  latent:");
            for (s = 0; s < STEPS; s++) printf(" %d", cls[p * STEPS + s]);
            printf("   pixel:");
            for (s = 0; s < STEPS; s++) printf(" %d", cls[(npairs + p) * STEPS + s]);
            printf("\n");
        }
        for (i = 0; i < npairs * STEPS; i++) { nn_lat += dist[i]; nn_pix += dist[npairs * STEPS + i]; }
        nn_lat /= npairs * STEPS;
        nn_pix /= npairs * STEPS;
        printf("mean distance to the nearest training image: latent path %.4f, pixel path %.4f\n\n", nn_lat, nn_pix);
        demo_result("dist_cond", dist_m[1]);
        demo_result("dist_prior", dist_m[4]);
        demo_result("class_kept_mu", kept_m[0]);
        demo_result("class_kept_cond", kept_m[1]);
        demo_result("class_kept_prior", kept_m[4]);
        demo_result("interp_nn_dist_latent", nn_lat);
        demo_result("interp_nn_dist_pixel", nn_pix);
    }

    free(zs); free(xs); free(xstar); free(cond); free(dist); free(cls);
    free(R.rt); free(R.norm);
    return vae_lab_close(&d, &L, &m.P);
}
