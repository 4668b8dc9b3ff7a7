/* 08_outlier_detection - explicit likelihood as an outlier score, and where it fails
 *
 * What it shows: a VAE trained on some classes only (the clothes of Fashion-MNIST: T-shirt,
 * trouser, pullover, dress, coat, shirt) gives every image a number, -log p(x), estimated
 * by -ELBO and by the importance-weighted -IWAE_k (lecture 08's importance sampling). Used as
 * an outlier score (higher = more unusual), it is judged by the AUROC against the test
 * images of the training classes, for four sets the model never saw:
 *   held out   the other Fashion-MNIST classes (sandal, sneaker, bag, ankle boot)
 *   shapes     the built-in synthetic shapes (not garments; on --data builtin the shapes
 *              ARE the data, so this set is then half inliers)
 *   noise      uniform noise images
 *   inverted   the inlier test images with black and white swapped, 1 - x
 * Likelihood catches noise and inverted images perfectly and fails on simple images: the
 * shapes get HIGHER likelihood than the garments it was trained on (AUROC below 0.5, as
 * Nalisnick et al. 2019 found), sandals and sneakers are barely told apart, and an all-black
 * image is the most likely of all. A complexity correction (Serra et al. 2020), the score
 * minus the code length of x under a generic image coder, repairs it (AUROC about 0.99).
 * Lecture: lectures/08-likelihood.md
 * Run:     make build/outlier_detection && ./build/outlier_detection   (about 33 s on 2 cores)
 * Output:  out/outlier_detection/hist.png        histograms of -log p(x) per set (IWAE_k)
 *          out/outlier_detection/hist_corrected.png  the same for the corrected score
 *          out/outlier_detection/extremes.png    rows: the inliers the model finds most and
 *                                               least likely, the most likely outliers
 *          out/outlier_detection/samples.png     64 samples of the model, z ~ N(0, I)
 *          out/outlier_detection/samples.npy     the same samples (64,1,28,28)
 *          result lines: auroc (held-out classes, -IWAE_k), auroc_<set> and
 *          auroc_<set>_elbo for each set, auroc_<set>_corrected
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "vae.h"

static const char *usage =
    "  --epochs N     training epochs (default 10; 1 with --quick)\n"
    "  --k K          importance samples per image for -IWAE_k (default 50; 10 with --quick)\n";

enum { INLIER, HELDOUT, SHAPES, NOISE, INVERTED, NSETS, NSCORES = 3 };
static const char *set_key[NSETS] = {"inlier", "heldout", "shapes", "noise", "inverted"};
static const char *score_name[NSCORES] = {"-ELBO", "-IWAE_k", "corrected"};

typedef struct image_set {
    const float *x;          /* n images (n,1,28,28) */
    int n;
    float *score[NSCORES];   /* per image: -ELBO, -IWAE_k, -IWAE_k - L(x) (nats) */
} image_set;

/* L(x): the code length of x in nats under a generic image model that knows nothing of
 * garments: pixel x_ij ~ Bernoulli(p_ij), p_ij predicted from its left, upper and upper-left
 * neighbours (a, b, c; 0 outside) by the median edge detector of LOCO-I / JPEG-LS, kept in
 * [0.01, 0.99]. Like a compressor that stores what it cannot shrink, it never charges more
 * than the flat code, p = 1/2 everywhere: 784 log 2 nats. Simple images are cheap for it,
 * as they are for the VAE. */
static float generic_nll(const float *x)
{
    double L = 0.0;
    int i, j;
    for (i = 0; i < 28; i++)
        for (j = 0; j < 28; j++) {
            float a = j ? x[i * 28 + j - 1] : 0.0f, b = i ? x[(i - 1) * 28 + j] : 0.0f;
            float c = i && j ? x[(i - 1) * 28 + j - 1] : 0.0f, v = x[i * 28 + j];
            float hi = a > b ? a : b, lo = a < b ? a : b;
            float p = c >= hi ? lo : c <= lo ? hi : a + b - c;    /* an edge above or left, or a plane */
            p = p < 0.01f ? 0.01f : p > 0.99f ? 0.99f : p;
            L -= v * log(p) + (1.0f - v) * log(1.0f - p);
        }
    return (float)(L < 784 * log(2.0) ? L : 784 * log(2.0));
}

/* The three scores of every image of s, from k draws z_s ~ q(z|x) per image:
 *   log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x)
 *   -ELBO   ~ -(1/k) sum_s log w_s             (the ELBO, averaged over k draws)
 *   -IWAE_k = -log (1/k) sum_s w_s             (gm_iwae: closer to -log p(x))
 *   corrected = -IWAE_k - L(x)                 (Serra et al.'s complexity correction) */
static void score_set(gm_tape *T, const vae *m, image_set *s, int k, gm_rng *rng)
{
    int nb = 5000 / k, i0, b, j;
    for (j = 0; j < NSCORES; j++) s->score[j] = (float *)malloc((size_t)s->n * sizeof(float));
    for (i0 = 0; i0 < s->n; i0 += nb) {
        int bn = s->n - i0 < nb ? s->n - i0 : nb;
        gm_tensor *x, *logw, *iwae;
        gm_tape_reset(T);
        x = gm_from(T, gm_shape4(bn, 1, 28, 28), s->x + (size_t)i0 * 784);
        logw = vae_log_weights(T, m, x, k, VAE_PROPOSE_Q, rng);    /* (bn k), z ~ q(z|x) */
        iwae = gm_iwae(T, logw, k);                                 /* (bn)               */
        for (b = 0; b < bn; b++) {
            double elbo = 0.0;
            for (j = 0; j < k; j++) elbo += logw->val[b * k + j] / k;
            s->score[0][i0 + b] = (float)-elbo;
            s->score[1][i0 + b] = -iwae->val[b];
            s->score[2][i0 + b] = -iwae->val[b] - generic_nll(s->x + (size_t)(i0 + b) * 784);
        }
    }
}

/* Histograms of one score per set, as lines (fraction of the set per bin) over the range
 * that holds the inliers and the held-out classes; the sets far beyond it are named in
 * the legend with their median. */
static void save_histograms(demo *d, const image_set *sets, int which, const char *file)
{
    enum { BINS = 60 };
    float lo = 1e30f, hi = -1e30f, centre[BINS], frac[BINS];
    int s, i;
    char title[80];
    gm_plot *pl;
    for (s = INLIER; s <= SHAPES; s++)
        for (i = 0; i < sets[s].n; i++) {
            float v = sets[s].score[which][i];
            if (v < lo) lo = v;
            if (v > hi && s != SHAPES) hi = v;
        }
    snprintf(title, sizeof title, "outlier score %s per image, by set", score_name[which]);
    pl = gm_plot_new(title, "nats (higher: less likely under the model)", "fraction of the set per bin");
    for (i = 0; i < BINS; i++) centre[i] = lo + (hi - lo) * (i + 0.5f) / BINS;
    for (s = 0; s < NSETS; s++) {
        char label[64];
        int inside = 0;
        memset(frac, 0, sizeof frac);
        for (i = 0; i < sets[s].n; i++) {
            float v = sets[s].score[which][i];
            int bin = (int)((v - lo) / (hi - lo) * BINS);
            if (bin >= 0 && bin < BINS) { frac[bin] += 1.0f / sets[s].n; inside++; }
        }
        if (inside * 2 > sets[s].n) {
            gm_plot_line(pl, set_key[s], centre, frac, BINS);
        } else {                                     /* mostly off the plot: say where it is */
            snprintf(label, sizeof label, "%s: %d%% beyond, off the plot", set_key[s], 100 - 100 * inside / sets[s].n);
            gm_plot_line(pl, label, centre, frac, BINS);
        }
    }
    demo_check(d, gm_plot_save(pl, demo_path(d, file), 0, 0), "saving");
    gm_plot_free(pl);
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float median(const float *v, int n)
{
    float *sorted = (float *)malloc((size_t)n * sizeof(float)), m;
    memcpy(sorted, v, (size_t)n * sizeof(float));
    qsort(sorted, (size_t)n, sizeof(float), by_value);
    m = sorted[n / 2];
    free(sorted);
    return m;
}

/* Rows of 12: the inliers with the lowest and the highest -log p(x), then the held-out and
 * the shape images with the lowest: what the model finds most and least likely. */
static void save_extremes(demo *d, const image_set *sets)
{
    enum { N = 12 };
    static const int row_set[4] = {INLIER, INLIER, HELDOUT, SHAPES}, row_sign[4] = {1, -1, 1, 1};
    float *grid = (float *)calloc(4 * N * 784, sizeof(float));
    int r, c, i;
    for (r = 0; r < 4; r++) {
        const image_set *s = &sets[row_set[r]];
        char *used = (char *)calloc((size_t)s->n, 1);
        for (c = 0; c < N && c < s->n; c++) {        /* the next lowest (or highest) score */
            int best = -1;
            for (i = 0; i < s->n; i++)
                if (!used[i] && (best < 0 || row_sign[r] * s->score[1][i] < row_sign[r] * s->score[1][best])) best = i;
            used[best] = 1;
            memcpy(grid + (size_t)(r * N + c) * 784, s->x + (size_t)best * 784, 784 * sizeof(float));
        }
        free(used);
    }
    {
        static const char *const rows[4] = {"inliers, most likely", "inliers, least likely", "held out, most likely",
                                            "shapes, most likely"};
        gm_grid_labels labels = {NULL, rows, NULL};
        demo_check(d, gm_save_image_grid_labeled(demo_path(d, "extremes.png"), grid, 4 * N, 1, 28, 28, N, 0, 1, &labels),
                   "saving");
    }
    free(grid);
}

int main(int argc, char **argv)
{
    static const int inlier_classes[] = {0, 1, 2, 3, 4, 6};   /* Fashion-MNIST: the clothes */
    demo d = demo_start(argc, argv, "outlier_detection", usage);
    vae_cfg cfg = vae_cfg_default(demo_epochs(&d, d.quick ? 1 : 10));
    int k = demo_int(&d, "--k", d.quick ? 10 : 50, 1, 5000);
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(0);
    gm_dataset train, test, in_train, in_test, out_test, shapes;
    image_set sets[NSETS], blank;
    float black[784] = {0};
    float *noise, *inverted;
    double auroc[NSETS][NSCORES];
    int s, j, i, c, n_above;
    vae m;

    demo_images(&d, &train, &test, 2000);
    demo_check(&d, gm_dataset_split(&in_train, NULL, &train, inlier_classes, 6), "splitting the training set");
    demo_check(&d, gm_dataset_split(&in_test, &out_test, &test, inlier_classes, 6), "splitting the test set");

    /* ---- the outlier sets ------------------------------------------------------------------ */
    gm_synthetic_shapes(&shapes, d.quick ? 200 : 2000, d.seed + 2000);
    noise = (float *)malloc((size_t)in_test.n / 4 * 784 * sizeof(float));
    inverted = (float *)malloc((size_t)in_test.n / 4 * 784 * sizeof(float));
    for (i = 0; i < in_test.n / 4 * 784; i++) noise[i] = gm_rng_uniform(&rng);
    for (i = 0; i < in_test.n / 4 * 784; i++) inverted[i] = 1.0f - in_test.x[i];
    sets[INLIER].x = in_test.x;    sets[INLIER].n = in_test.n;
    sets[HELDOUT].x = out_test.x;  sets[HELDOUT].n = out_test.n;
    sets[SHAPES].x = shapes.x;     sets[SHAPES].n = shapes.n;
    sets[NOISE].x = noise;         sets[NOISE].n = in_test.n / 4;
    sets[INVERTED].x = inverted;   sets[INVERTED].n = in_test.n / 4;
    blank.x = black;               blank.n = 1;
    printf("training on classes 0 1 2 3 4 6: %d images; test inliers %d, held-out classes %d, "
           "shapes %d, noise %d, inverted %d\n", in_train.n, sets[0].n, sets[1].n, sets[2].n, sets[3].n, sets[4].n);

    /* ---- the model: the VAE of lecture 05 on the inlier classes only -------------------- */
    m = vae_new(VAE_MLP, 20, &rng);
    vae_train(&m, &in_train, &in_test, &cfg, T, &rng, "vae");

    /* ---- score every set, then AUROC of each outlier set against the inliers ------------- */
    for (s = 0; s < NSETS; s++) score_set(T, &m, &sets[s], k, &rng);
    printf("\nAUROC against the %d test inliers (1 = every outlier scores above every inlier, "
           "0.5 = chance, below 0.5 = outliers look MORE likely)\n", sets[0].n);
    printf("  set          median -log p   %-9s  %-9s  %-9s\n", score_name[0], score_name[1], score_name[2]);
    for (s = 0; s < NSETS; s++) {
        printf("  %-10s %12.1f  ", set_key[s], median(sets[s].score[1], sets[s].n));
        for (j = 0; j < NSCORES && s > INLIER; j++) {
            auroc[s][j] = gm_auroc(sets[INLIER].score[j], sets[INLIER].n, sets[s].score[j], sets[s].n);
            printf("  %9.3f", auroc[s][j]);
        }
        printf("\n");
    }
    printf("held-out classes one by one (-IWAE_k):");
    for (c = 0; c < out_test.nclass; c++) {
        float *sc = (float *)malloc((size_t)out_test.n * sizeof(float));
        int n = 0;
        for (i = 0; i < out_test.n; i++) if (out_test.y[i] == c) sc[n++] = sets[HELDOUT].score[1][i];
        if (n) printf("  class %d: %.3f", c, gm_auroc(sets[INLIER].score[1], sets[INLIER].n, sc, n));
        free(sc);
    }
    score_set(T, &m, &blank, k, &rng);
    printf("\nan all-black image scores lower (looks more normal) than this share of the test inliers:");
    for (j = 0; j < NSCORES; j++) {
        for (i = n_above = 0; i < sets[INLIER].n; i++) n_above += sets[INLIER].score[j][i] > blank.score[j][0];
        printf("  %s %.1f nats, %.1f%%", score_name[j], blank.score[j][0], 100.0 * n_above / sets[INLIER].n);
    }
    printf("\n");
    save_histograms(&d, sets, 1, "hist.png");
    save_histograms(&d, sets, 2, "hist_corrected.png");
    save_extremes(&d, sets);
    vae_save_samples(&d, T, &m, 64, 64, "samples.png", &rng);

    demo_result("auroc", auroc[HELDOUT][1]);
    for (s = HELDOUT; s < NSETS; s++) {
        char key[48];
        snprintf(key, sizeof key, "auroc_%s", set_key[s]);
        demo_result(key, auroc[s][1]);
        snprintf(key, sizeof key, "auroc_%s_elbo", set_key[s]);
        demo_result(key, auroc[s][0]);
        snprintf(key, sizeof key, "auroc_%s_corrected", set_key[s]);
        demo_result(key, auroc[s][2]);
    }

    for (j = 0; j < NSCORES; j++) {
        for (s = 0; s < NSETS; s++) free(sets[s].score[j]);
        free(blank.score[j]);
    }
    free(noise); free(inverted);
    gm_params_free(&m.P);
    gm_tape_free(T);
    gm_dataset_free(&train); gm_dataset_free(&test);
    gm_dataset_free(&in_train); gm_dataset_free(&in_test); gm_dataset_free(&out_test);
    gm_dataset_free(&shapes);
    demo_done(&d);
    return 0;
}
