/* 06_aggregate_posterior - the codes the decoder was trained on vs the codes we sample
 *
 * What it shows: a VAE with a 2-D latent space, so everything can be drawn. The encoder
 * maps each test image x_n to q(z|x_n) = N(mu_n, sigma_n^2); their average is the
 * aggregate posterior q(z) = (1/N) sum_n q(z|x_n), the distribution of codes the decoder
 * actually learned to decode. Sampling draws from the prior p(z) = N(0, I) instead. The
 * KL term pulls each q(z|x) towards p(z), but the two marginals still differ: q(z) has
 * dense clumps (one per kind of garment) and "holes" where p(z) is high and q(z) is not.
 * The demo estimates q(z) as the mixture of the test set's N Gaussians (log-sum-exp),
 * measures KL(q(z) || p(z)) and KL(p(z) || q(z)) by Monte Carlo, counts how many prior
 * samples land in a hole (q(z) < p(z) / 10), and decodes prior samples from holes and from
 * dense regions: hole samples are faint, ghostly blends (little ink, and their nearest
 * training images disagree about what they are); samples of q(z) itself are not.
 * Lecture: lectures/06-using-the-latent-space.md
 * Run:     make build/aggregate_posterior && ./build/aggregate_posterior
 *                                           (5 epochs, about 19 s on 2 cores)
 * Output:  out/aggregate_posterior/aggr-latent.png     mu of the test images by class, prior circles
 *          out/aggregate_posterior/aggr-density.png    q(z) as a heatmap, prior circles
 *          out/aggregate_posterior/aggr-ratio.png      log q(z)/p(z), prior samples in holes and
 *                                                      in dense regions marked
 *          out/aggregate_posterior/aggr-marginals.png  q(z_1), q(z_2) against N(0, 1)
 *          out/aggregate_posterior/aggr-decoded.png    rows 1-2 dense-region samples, 3-4 hole samples
 *          out/aggregate_posterior/samples.npy         the decoded prior samples (M, 1, 28, 28)
 *          result lines: kl_q_p, kl_p_q, mutual_info, frac_prior_in_holes, ink_hole,
 *          ink_dense, knn_agree_hole, knn_agree_dense, knn_agree_q
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --epochs N     passes over the training set (default 5; 1 with --quick)\n"
    "  --samples M    prior samples z ~ N(0, I) to sort into holes and dense regions (default 5000)\n";

enum { D = 784, G = 80, SHOW = 16, NN_MAX = 200, KNN = 10 };
static const float LIM = 4.0f;            /* the pictures show z in [-LIM, LIM]^2 */
static const float LOG_2PI = 1.8378771f;

static float log_p(const float *z) { return -LOG_2PI - 0.5f * (z[0] * z[0] + z[1] * z[1]); }

/* How a set of decoded samples looks, in three numbers (mean over the set):
 *   ink    the mean pixel value (the demo prints the training images' for comparison);
 *   agree  the share of its KNN nearest training images (squared pixel distance) that carry
 *          their most common label: 1 when the neighbours are all one kind of garment, low
 *          when the sample is ambiguous. A poor man's classifier confidence (there is no
 *          classifier before lecture 10);
 *   dist   the mean squared pixel distance to the nearest training image.
 * The images are x[idx[i]], i < n; agree and dist look at the first NN_MAX only. */
typedef struct looks { double ink, agree, dist; } looks;

static looks judge(const float *x, const int *idx, int n, const gm_dataset *train, int r)
{
    looks L = {0, 0, 0};
    int i, k, j, c, nn = n < NN_MAX ? n : NN_MAX;
    for (i = 0; i < n; i++)
        for (j = 0; j < D; j++) L.ink += x[(size_t)idx[i] * D + j];
    for (i = 0; i < nn; i++) {
        const float *a = x + (size_t)idx[i] * D;
        float best[KNN];
        int lab[KNN], votes[64] = {0}, top = 0;
        for (j = 0; j < KNN; j++) { best[j] = INFINITY; lab[j] = 0; }
        for (k = 0; k < r; k++) {
            const float *t = train->x + (size_t)k * D;
            float s = 0;
            for (j = 0; j < D; j++) s += (a[j] - t[j]) * (a[j] - t[j]);
            for (j = KNN - 1; j > 0 && s < best[j - 1]; j--) { best[j] = best[j - 1]; lab[j] = lab[j - 1]; }
            if (s < best[j]) { best[j] = s; lab[j] = train->y[k]; }   /* insert, keep sorted */
        }
        for (j = 0; j < KNN; j++) votes[lab[j] % 64]++;
        for (c = 0; c < 64; c++) if (votes[c] > top) top = votes[c];
        L.dist += best[0] / D;
        L.agree += (double)top / KNN;
    }
    L.ink /= (double)n * D;
    L.agree /= nn;
    L.dist /= nn;
    return L;
}

/* the prior's circles |z| = 1 and |z| = 2 (39% and 86% of its mass) */
static void prior_circles(gm_plot *pl)
{
    float cx[2][65], cy[2][65];
    int r, i;
    for (r = 0; r < 2; r++) {
        for (i = 0; i <= 64; i++) {
            cx[r][i] = (r + 1) * cosf(6.2831853f * i / 64);
            cy[r][i] = (r + 1) * sinf(6.2831853f * i / 64);
        }
        gm_plot_line(pl, r ? "p(z): |z| = 2" : "p(z): |z| = 1", cx[r], cy[r], 65);
    }
    gm_plot_equal_aspect(pl, 1);                  /* circles drawn as circles */
}

static void save_plot(demo *d, gm_plot *pl, const char *file)
{
    demo_check(d, gm_plot_save(pl, demo_path(d, file), 0, 0), file);
    gm_plot_free(pl);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "aggregate_posterior", usage);
    int M = demo_int(&d, "--samples", d.quick ? 1000 : 5000, 1000, 20000), N, i, j;
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 1 : 5));
    vae_lab L;
    vae m;
    float *mu, *lv, *zp, *zq, *lq_p, *lq_q, *grid, *xp, *xq;
    int *hole, *dense, *all, n_hole = 0, n_dense = 0, R, shape[4] = {0, 1, 28, 28};
    double kl_qp = 0, kl_pq = 0, kl_avg, kl_dim[2], ink_train = 0;
    looks in_hole, in_dense, from_q;

    L = vae_lab_open(&d, 3000);
    m = vae_new(VAE_MLP, 2, &L.rng);
    printf("VAE (mlp), Z = 2, %d epochs\n", cfg.epochs);
    vae_train(&m, &L.train, &L.test, &cfg, L.T, &L.rng, "vae");

    /* ---- q(z): the mixture of the N test encodings ---- */
    vae_encode_all(L.T, &m, &L.test, &mu, &lv);
    N = L.test.n;
    kl_avg = vae_kl_per_dim(L.T, mu, lv, N, 2, kl_dim);   /* E_x KL(q(z|x) || p(z)), the ELBO's KL term */

    /* ---- Monte Carlo: KL(q || p) with z ~ q, KL(p || q) with z ~ p ---- */
    zp = (float *)malloc(sizeof(float) * 2 * M);
    zq = (float *)malloc(sizeof(float) * 2 * M);
    lq_p = (float *)malloc(sizeof(float) * M);
    lq_q = (float *)malloc(sizeof(float) * M);
    for (i = 0; i < M; i++) {
        int n = gm_rng_below(&L.rng, N);                 /* z ~ q(z): pick x_n, then z ~ q(z|x_n) */
        for (j = 0; j < 2; j++) {
            zq[2 * i + j] = mu[2 * n + j] + expf(0.5f * lv[2 * n + j]) * gm_rng_normal(&L.rng);
            zp[2 * i + j] = gm_rng_normal(&L.rng);        /* z ~ p(z) */
        }
    }
    vae_log_aggregate(L.T, mu, lv, N, 2, zq, M, lq_q);   /* log q(z) */
    vae_log_aggregate(L.T, mu, lv, N, 2, zp, M, lq_p);
    hole = (int *)malloc(sizeof(int) * M);
    dense = (int *)malloc(sizeof(int) * M);
    all = (int *)malloc(sizeof(int) * M);
    for (i = 0; i < M; i++) {
        float lp_p = log_p(zp + 2 * i), lr = lq_p[i] - lp_p;   /* log q(z)/p(z) at a prior sample */
        kl_qp += lq_q[i] - log_p(zq + 2 * i);
        kl_pq += lp_p - lq_p[i];
        if (lr < -logf(10)) hole[n_hole++] = i;                  /* q(z) < p(z)/10 */
        if (lr > 0) dense[n_dense++] = i;                        /* q(z) > p(z)    */
    }
    kl_qp /= M;
    kl_pq /= M;

    /* ---- decode the prior samples; judge holes against dense regions and against q ---- */
    xp = (float *)malloc(sizeof(float) * (size_t)M * D);
    xq = (float *)malloc(sizeof(float) * (size_t)M * D);
    vae_decode_all(L.T, &m, zp, M, xp);
    vae_decode_all(L.T, &m, zq, M, xq);
    shape[0] = M;
    demo_check(&d, gm_save_npy(demo_path(&d, "samples.npy"), xp, 4, shape), "saving samples.npy");
    for (i = 0; i < M; i++) all[i] = i;
    R = 6000 < L.train.n ? 6000 : L.train.n;           /* the reference images for judge */
    in_hole = judge(xp, hole, n_hole, &L.train, R);
    in_dense = judge(xp, dense, n_dense, &L.train, R);
    from_q = judge(xq, all, M, &L.train, R);
    printf("\nq(z) from %d test encodings; %d samples for each Monte Carlo estimate\n", N, M);
    printf("E_x KL(q(z|x) || p(z))   %7.3f nats  (the ELBO's KL term)\n", kl_avg);
    printf("KL(q(z) || p(z))         %7.3f nats  (the marginal mismatch)\n", kl_qp);
    printf("I(x; z) = difference     %7.3f nats  (at most log N = %.2f)\n", kl_avg - kl_qp, log((double)N));
    printf("KL(p(z) || q(z))         %7.3f nats  (prior mass where q is thin)\n", kl_pq);
    printf("\ndecoded samples                   share     ink   %d-NN agree   dist to nearest\n", KNN);
    printf("z ~ p(z) in a hole, q < p/10     %6.3f  %6.3f  %12.3f  %16.4f\n", (double)n_hole / M, in_hole.ink, in_hole.agree, in_hole.dist);
    printf("z ~ p(z) in a dense region, q > p %5.3f  %6.3f  %12.3f  %16.4f\n", (double)n_dense / M, in_dense.ink, in_dense.agree, in_dense.dist);
    printf("z ~ q(z), for comparison         %6s  %6.3f  %12.3f  %16.4f\n", "", from_q.ink, from_q.agree, from_q.dist);
    for (i = 0; i < L.train.n * D; i++) ink_train += L.train.x[i];
    printf("training images                  %6s  %6.3f\n\n", "", ink_train / ((double)L.train.n * D));
    demo_result("kl_q_p", kl_qp);
    demo_result("kl_p_q", kl_pq);
    demo_result("mutual_info", kl_avg - kl_qp);
    demo_result("frac_prior_in_holes", (double)n_hole / M);
    demo_result("ink_hole", in_hole.ink);
    demo_result("ink_dense", in_dense.ink);
    demo_result("knn_agree_hole", in_hole.agree);
    demo_result("knn_agree_dense", in_dense.agree);
    demo_result("knn_agree_q", from_q.agree);
    {
        float show[2 * SHOW * D];               /* the first SHOW of each kind, in sampling order */
        memset(show, 0, sizeof show);
        for (i = 0; i < SHOW && i < n_dense; i++) memcpy(show + (size_t)i * D, xp + (size_t)dense[i] * D, sizeof(float) * D);
        for (i = 0; i < SHOW && i < n_hole; i++) memcpy(show + (size_t)(SHOW + i) * D, xp + (size_t)hole[i] * D, sizeof(float) * D);
        demo_check(&d, gm_save_image_grid(demo_path(&d, "aggr-decoded.png"), show, 2 * SHOW, 1, 28, 28, 8, 0, 1),
                   "saving aggr-decoded.png");
    }

    /* ---- pictures of the latent plane ---- */
    {
        gm_plot *pl = gm_plot_new("test images: mu(x) by class, and the prior N(0, I)", "z1", "z2");
        gm_plot_scatter_labeled(pl, mu, L.test.y, N, L.test.nclass, L.test.class_names);
        prior_circles(pl);
        save_plot(&d, pl, "aggr-latent.png");
    }
    grid = (float *)malloc(sizeof(float) * G * G * 3);       /* points, then log q at them */
    {
        float *pts = grid + G * G, *dens = grid, sx[2][400], sy[2][400];
        int k, nh = 0, nd = 0;
        gm_plot *pl;
        for (i = 0; i < G; i++)                    /* row 0 at the top: z2 = +LIM */
            for (j = 0; j < G; j++) {
                pts[2 * (i * G + j)] = -LIM + 2 * LIM * (j + 0.5f) / G;
                pts[2 * (i * G + j) + 1] = LIM - 2 * LIM * (i + 0.5f) / G;
            }
        vae_log_aggregate(L.T, mu, lv, N, 2, pts, G * G, dens);
        for (i = 0; i < G * G; i++) dens[i] = expf(dens[i]);
        pl = gm_plot_new("aggregate posterior q(z) = (1/N) sum_n q(z|x_n)", "z1", "z2");
        gm_plot_heatmap(pl, dens, G, G, -LIM, LIM, -LIM, LIM);
        prior_circles(pl);
        save_plot(&d, pl, "aggr-density.png");
        for (i = 0; i < G * G; i++) {              /* log q/p, clipped to [-6, 3] for the colours */
            float r = logf(dens[i]) - log_p(pts + 2 * i);
            dens[i] = r < -6 ? -6 : r > 3 ? 3 : r;
        }
        for (k = 0; k < M && k < 2000; k++) {      /* the first 2000 prior samples, by kind */
            float lr = lq_p[k] - log_p(zp + 2 * k);
            if (lr < -logf(10) && nh < 400) { sx[0][nh] = zp[2 * k]; sy[0][nh++] = zp[2 * k + 1]; }
            if (lr > 0 && nd < 400) { sx[1][nd] = zp[2 * k]; sy[1][nd++] = zp[2 * k + 1]; }
        }
        pl = gm_plot_new("log q(z)/p(z) (clipped to [-6, 3]) and prior samples", "z1", "z2");
        gm_plot_heatmap(pl, dens, G, G, -LIM, LIM, -LIM, LIM);
        gm_plot_scatter(pl, "hole: q < p/10", sx[0], sy[0], nh);
        gm_plot_scatter(pl, "dense: q > p", sx[1], sy[1], nd);
        save_plot(&d, pl, "aggr-ratio.png");
    }
    {
        /* marginals: q(z_j = t) = (1/N) sum_n N(t; mu_nj, sigma_nj^2), against N(t; 0, 1) */
        float t[G], qm[2][G], pm[G];
        gm_plot *pl;
        int n;
        for (i = 0; i < G; i++) {
            t[i] = -LIM + 2 * LIM * i / (G - 1);
            pm[i] = expf(-0.5f * t[i] * t[i]) / sqrtf(6.2831853f);
            for (j = 0; j < 2; j++) {
                double s = 0;
                for (n = 0; n < N; n++) {
                    float dz = t[i] - mu[2 * n + j], ivar = expf(-lv[2 * n + j]);
                    s += sqrtf(ivar / 6.2831853f) * expf(-0.5f * dz * dz * ivar);
                }
                qm[j][i] = (float)(s / N);
            }
        }
        pl = gm_plot_new("marginals: q(z_j) against p(z_j) = N(0, 1)", "z_j", "density");
        gm_plot_line(pl, "q(z_1)", t, qm[0], G);
        gm_plot_line(pl, "q(z_2)", t, qm[1], G);
        gm_plot_line(pl, "p(z_j)", t, pm, G);
        save_plot(&d, pl, "aggr-marginals.png");
    }

    free(mu); free(lv); free(zp); free(zq); free(lq_p); free(lq_q); free(hole); free(dense); free(all);
    free(xp); free(xq); free(grid);
    return vae_lab_close(&d, &L, &m.P);
}
