/* 10_fid - FID and Inception Score on genmod's own scale: what good and bad sets of images score
 *
 * What it shows: the two scores of lecture 10 for sets of images whose quality we know, each
 * held against the same reference, 10,000 training images: held-out test images (the floor:
 * as good as a model can be), test images blurred by a Gaussian (lost detail), one class
 * repeated (mode collapse), uniform noise, and the samples of trained models given by
 * --samples (the VAE of lecture 05, the DCGAN of lecture 09). FID = |mu1 - mu2|^2 +
 * Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) compares the mean and covariance of the classifier's
 * 128 features; IS = exp E_x KL(p(y|x) || p(y)) reads its class probabilities. Both come from
 * genmod's classifier (demos/classifier.h, trained first if missing), not Inception-v3, so
 * the numbers are on genmod's scale, not the papers'.
 * Lecture: lectures/10-evaluating-samples.md
 * Run:     make build/fid && ./build/fid --samples out/vae/samples.npy     (about 30 s)
 *          (./build/vae writes out/vae/samples.npy; several files: --samples a.npy,b.npy)
 * Output:  out/fid/sets.png     a row of each set: test, blurred, one class, noise, samples
 *          a table of FID and IS per set; result lines fid_<set> and is_<set> for the sets
 *          train_test (the floor), blur, one_class, noise and each samples file (named by
 *          its folder: out/vae/samples.npy is "vae"), is_train (the reference), and
 *          ordering_holds (1 when floor < every model < blurred < one class, noise)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "classifier.h"

static const char *usage =
    "  --samples FILES  samples.npy files, float32 (N,1,28,28) in [0,1], separated by commas\n"
    "  --n N          images per set (default 10000; 500 with --quick)\n"
    "  --blur S       the blur's standard deviation in pixels (default 1.5)\n"
    CLASSIFIER_USAGE;

enum { SHOW = 12, MAX_SETS = 16 };

typedef struct row { char name[64], key[40]; double fid, is; } row;

/* Blur n 28x28 images with a Gaussian of standard deviation s pixels: a 1-D kernel along
 * rows, then along columns, zero outside the image (Fashion-MNIST's background is 0). */
static void blur(float *x, int n, float s)
{
    int r = (int)ceilf(3 * s), i, u, v, k;
    float kern[64], tmp[784], sum = 0;
    for (k = -r; k <= r; k++) sum += kern[k + r] = expf(-0.5f * k * k / (s * s));
    for (k = 0; k <= 2 * r; k++) kern[k] /= sum;
    for (i = 0; i < n; i++) {
        float *im = x + (size_t)i * 784;
        for (u = 0; u < 28; u++)
            for (v = 0; v < 28; v++) {
                float a = 0;
                for (k = -r; k <= r; k++) if (v + k >= 0 && v + k < 28) a += kern[k + r] * im[u * 28 + v + k];
                tmp[u * 28 + v] = a;
            }
        for (u = 0; u < 28; u++)
            for (v = 0; v < 28; v++) {
                float a = 0;
                for (k = -r; k <= r; k++) if (u + k >= 0 && u + k < 28) a += kern[k + r] * tmp[(u + k) * 28 + v];
                im[u * 28 + v] = a;
            }
    }
}

/* A samples file, checked: float32 (N,1,28,28), N >= 2, every value in [0,1]. Keeps the
 * first n images (fewer if the file has fewer, said on stdout); stops the demo otherwise. */
static float *load_samples(demo *d, const char *path, int *n)
{
    int ndim, shape[4], i;
    float *x = gm_load_npy(path, &ndim, shape);
    if (!x) { fprintf(stderr, "%s: --samples: %s\n", d->name, gm_last_error()); exit(1); }
    if (ndim != 4 || shape[1] != 1 || shape[2] != 28 || shape[3] != 28 || shape[0] < 2) {
        fprintf(stderr, "%s: --samples %s: wants float32 (N,1,28,28) with N >= 2, got %d dims (", d->name, path, ndim);
        for (i = 0; i < ndim; i++) fprintf(stderr, i ? ",%d" : "%d", shape[i]);
        fprintf(stderr, ")\n");
        exit(1);
    }
    for (i = 0; i < shape[0] * 784; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) {
            fprintf(stderr, "%s: --samples %s: image %d holds %g; pixels must be numbers in [0,1]\n", d->name, path,
                    i / 784, x[i]);
            exit(1);
        }
    if (shape[0] < *n) printf("%s: %d images, fewer than %d: its scores use %d (FID is biased upwards for small sets)\n",
                              path, shape[0], *n, shape[0]);
    if (shape[0] < *n) *n = shape[0];
    return x;
}

/* "out/vae/samples.npy" -> "vae" (the folder's name; else the file's name without .npy),
 * with characters other than letters, digits and _ made _ so it can name a result. */
static void name_of(const char *path, char *name, size_t cap)
{
    const char *end = strrchr(path, '/'), *start;
    size_t i, len;
    if (end && strcmp(end, "/samples.npy") == 0 && end > path) {
        for (start = end; start > path && start[-1] != '/'; start--) {}
    } else {
        start = end ? end + 1 : path;
        end = strstr(start, ".npy") ? strstr(start, ".npy") : start + strlen(start);
    }
    len = (size_t)(end - start) < cap - 1 ? (size_t)(end - start) : cap - 1;
    for (i = 0; i < len; i++) {
        char c = start[i];
        name[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
    }
    name[len] = 0;
}

/* The next row of the table, named */
static row *add_row(row *rows, int *nrows, const char *name, const char *key)
{
    row *r = &rows[(*nrows)++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->key, sizeof r->key, "%s", key);
    return r;
}

/* Score a set of n images x against the reference features: FID and IS, into r. */
static void score(classifier *m, const float *x, int n, const float *ref, int n_ref, row *r)
{
    float *f = (float *)malloc(sizeof(float) * n * CLASSIFIER_FEATURES), *p = (float *)malloc(sizeof(float) * n * 10);
    classifier_embed(m, x, n, f, p);
    r->fid = gm_fid(ref, n_ref, f, n, CLASSIFIER_FEATURES);
    r->is = gm_inception_score(p, n, 10);
    free(f); free(p);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "fid", usage);
    int N = demo_int(&d, "--n", d.quick ? 500 : 10000, 130, 60000);
    float s_blur = demo_float(&d, "--blur", 1.5f, 0.3, 5);
    const char *files = demo_str(&d, "--samples", "");
    gm_dataset train, test;
    gm_rng rng = gm_rng_new(d.seed);
    classifier m;
    row rows[MAX_SETS];
    int nrows = 0, i, k, n_ref, n_test, n_one = 0, ok = 1, n_files = 0, n_samples[MAX_SETS];
    float *ref, *set, *grid, *probs, *samples[MAX_SETS];
    char path[4096], title[64], names[MAX_SETS][40];
    const char *f;

    /* ---- data: the samples files (checked before any work), the reference (training
     *      images) and the test set ---- */
    for (f = files; *f && n_files < MAX_SETS - 4; f += strcspn(f, ",") + (f[strcspn(f, ",")] == ',')) {
        snprintf(path, sizeof path, "%.*s", (int)strcspn(f, ","), f);
        n_samples[n_files] = N;
        samples[n_files] = load_samples(&d, path, &n_samples[n_files]);
        name_of(path, names[n_files++], sizeof names[0]);
    }
    demo_images(&d, &train, &test, 3000);
    classifier_get(&d, &m, classifier_is_builtin(&train));
    gm_dataset_shuffle(&train, &rng);
    n_ref = N < train.n ? N : train.n;
    n_test = N < test.n ? N : test.n;
    set = (float *)malloc(sizeof(float) * N * 784);
    ref = (float *)malloc(sizeof(float) * n_ref * CLASSIFIER_FEATURES);
    probs = (float *)malloc(sizeof(float) * n_ref * 10);
    grid = (float *)calloc((size_t)MAX_SETS * SHOW * 784, sizeof(float));
    for (i = 0; i < n_ref; i++) memcpy(set + (size_t)i * 784, train.x + (size_t)train.order[i] * 784, 784 * sizeof(float));
    classifier_embed(&m, set, n_ref, ref, probs);
    printf("reference: %d training images, their IS %.3f\n", n_ref, gm_inception_score(probs, n_ref, 10));
    demo_result("is_train", gm_inception_score(probs, n_ref, 10));

    /* ---- the sets we know the quality of ---- */
    score(&m, test.x, n_test, ref, n_ref, add_row(rows, &nrows, "test images (the floor)", "train_test"));
    memcpy(grid, test.x, sizeof(float) * SHOW * 784);
    memcpy(set, test.x, sizeof(float) * n_test * 784);
    blur(set, n_test, s_blur);
    snprintf(title, sizeof title, "test images, blurred (%.1f px)", s_blur);
    score(&m, set, n_test, ref, n_ref, add_row(rows, &nrows, title, "blur"));
    memcpy(grid + SHOW * 784, set, sizeof(float) * SHOW * 784);
    for (k = 0; k < test.n; k++)                      /* one class: class 0's test images, ... */
        if (test.y[k] == 0) memcpy(set + (size_t)n_one++ * 784, test.x + (size_t)k * 784, 784 * sizeof(float));
    for (i = n_one; i < n_test; i++) memcpy(set + (size_t)i * 784, set + (size_t)(i % n_one) * 784, 784 * sizeof(float));
    score(&m, set, n_test, ref, n_ref, add_row(rows, &nrows, "one class repeated", "one_class"));  /* ... cycled */
    memcpy(grid + 2 * SHOW * 784, set, sizeof(float) * SHOW * 784);
    for (i = 0; i < n_test * 784; i++) set[i] = gm_rng_uniform(&rng);
    score(&m, set, n_test, ref, n_ref, add_row(rows, &nrows, "uniform noise", "noise"));
    memcpy(grid + 3 * SHOW * 784, set, sizeof(float) * SHOW * 784);

    /* ---- the models' samples ---- */
    for (k = 0; k < n_files; k++) {
        int n = n_samples[k];
        snprintf(title, sizeof title, "%s samples", names[k]);
        score(&m, samples[k], n, ref, n_ref, add_row(rows, &nrows, title, names[k]));
        memcpy(grid + (size_t)(nrows - 1) * SHOW * 784, samples[k], sizeof(float) * (n < SHOW ? n : SHOW) * 784);
        gm_npy_free(samples[k]);
    }
    demo_check(&d, gm_save_image_grid(demo_path(&d, "sets.png"), grid, nrows * SHOW, 1, 28, 28, SHOW, 0, 1), "saving");

    /* ---- the table ---- */
    printf("\n%-32s %10s %8s\n", "set (against training images)", "FID", "IS");
    for (i = 0; i < nrows; i++) printf("  %-30s %10.3f %8.3f\n", rows[i].name, rows[i].fid, rows[i].is);
    for (i = 4; i < nrows; i++) ok &= rows[i].fid > rows[0].fid && rows[i].fid < rows[1].fid;
    ok &= rows[1].fid < rows[2].fid && rows[1].fid < rows[3].fid;
    printf("\nfloor < %s < blurred < one class, noise: %s\n", nrows > 4 ? "every model" : "(no samples given)",
           ok ? "holds" : "does NOT hold");
    for (i = 0; i < nrows; i++) {
        char key[64];
        snprintf(key, sizeof key, "fid_%s", rows[i].key); demo_result(key, rows[i].fid);
        snprintf(key, sizeof key, "is_%s", rows[i].key); demo_result(key, rows[i].is);
    }
    demo_result("ordering_holds", ok);

    free(set); free(ref); free(probs); free(grid);
    classifier_free(&m);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
