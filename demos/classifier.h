/* demos/classifier.h - genmod's own Fashion-MNIST classifier, whose features and class
 * probabilities define genmod's FID and Inception Score (lecture 10).
 *
 *   conv 1->32 k3 p1, batch norm, ReLU, avgpool 2x2     (B,32,14,14)
 *   conv 32->64 k3 p1, batch norm, ReLU, avgpool 2x2    (B,64,7,7)
 *   dense 3136->128, ReLU                               the features, (B, CLASSIFIER_FEATURES)
 *   dense 128->10                                       logits; p(y|x) = softmax(logits)
 * trained by softmax cross-entropy (gm_cross_entropy), Adam with a learning rate falling
 * linearly from 1e-3 to 1e-4, batches of 128, CLASSIFIER_EPOCHS epochs.
 * --quick uses a narrower one (8 and 16 channels), trained for seconds, never saved.
 *
 * classifier_get loads the checkpoint (--classifier PATH, default
 * out/classifier/classifier.ckpt, or out/classifier/classifier_builtin.ckpt on the built-in
 * shapes); when the file is missing it trains the classifier first, saying so, and saves it
 * there (the classifier demo, 10_classifier.c, makes the same file). A demo that calls it
 * puts CLASSIFIER_USAGE in its usage text. classifier_embed turns images into features and
 * probabilities. Include after demo.h. */
#ifndef GENMOD_DEMO_CLASSIFIER_H
#define GENMOD_DEMO_CLASSIFIER_H

#define CLASSIFIER_FEATURES 128
#define CLASSIFIER_CLASSES 10
#define CLASSIFIER_EPOCHS 3
#define CLASSIFIER_USAGE \
    "  --classifier PATH  the classifier for FID and IS (default out/classifier/classifier.ckpt,\n" \
    "                 classifier_builtin.ckpt on the built-in shapes, trained first if missing)\n"

typedef struct classifier {
    gm_params P;
    gm_conv2d c1, c2;
    gm_batchnorm n1, n2;
    gm_dense d1, d2;
    gm_tape *T;                 /* for classifier_embed */
} classifier;

/* The network, c channels in the first conv (32; 8 for the quick one), 2c in the second. */
static inline void classifier_new(classifier *m, int c, uint64_t seed)
{
    gm_rng rng = gm_rng_new(seed);
    memset(m, 0, sizeof *m);
    m->c1 = gm_conv2d_new(&m->P, "cls_conv1", 1, c, 3, 1, 1, &rng);
    m->n1 = gm_batchnorm_new(&m->P, "cls_bn1", c);
    m->c2 = gm_conv2d_new(&m->P, "cls_conv2", c, 2 * c, 3, 1, 1, &rng);
    m->n2 = gm_batchnorm_new(&m->P, "cls_bn2", 2 * c);
    m->d1 = gm_dense_new(&m->P, "cls_features", 2 * c * 7 * 7, CLASSIFIER_FEATURES, &rng);
    m->d2 = gm_dense_new(&m->P, "cls_logits", CLASSIFIER_FEATURES, CLASSIFIER_CLASSES, &rng);
    m->T = gm_tape_new(0);
}

/* x (B,1,28,28) -> logits (B,10); *features (B,128) if features is not NULL. mode: GM_TRAIN
 * (batch statistics in batch norm) or GM_EVAL (running statistics: each image on its own) */
static inline gm_tensor *classifier_forward(gm_tape *T, const classifier *m, gm_tensor *x, int mode, gm_tensor **features)
{
    gm_tensor *h = gm_avgpool2x2(T, gm_relu(T, gm_batchnorm(T, &m->n1, gm_conv2d(T, &m->c1, x), mode)));
    h = gm_avgpool2x2(T, gm_relu(T, gm_batchnorm(T, &m->n2, gm_conv2d(T, &m->c2, h), mode)));
    h = gm_relu(T, gm_dense(T, &m->d1, gm_flatten(T, h)));
    if (features) *features = h;
    return gm_dense(T, &m->d2, h);
}

/* The most probable class of one row of CLASSIFIER_CLASSES logits or probabilities (the
 * first one on a tie). */
static inline int classifier_top(const float *row)
{
    int k, best = 0;
    for (k = 1; k < CLASSIFIER_CLASSES; k++) if (row[k] > row[best]) best = k;
    return best;
}

/* counts[k] = how many of the n rows of p (n, CLASSIFIER_CLASSES) have k most probable */
static inline void classifier_count_top(const float *p, int n, int *counts)
{
    int i, k;
    for (k = 0; k < CLASSIFIER_CLASSES; k++) counts[k] = 0;
    for (i = 0; i < n; i++) counts[classifier_top(p + (size_t)i * CLASSIFIER_CLASSES)]++;
}

/* The share of ds's images whose most probable class is their label; pred (ds->n), if not
 * NULL, receives each image's predicted class. */
static inline double classifier_accuracy(classifier *m, const gm_dataset *ds, int *pred)
{
    int i, b, right = 0, nb = gm_batches(ds, 500);
    for (i = 0; i < nb; i++) {
        gm_tensor *logits;
        const int *y;
        gm_tape_reset(m->T);
        logits = classifier_forward(m->T, m, gm_batch(m->T, ds, i, 500), GM_EVAL, NULL);
        y = gm_batch_labels(m->T, ds, i, 500);
        for (b = 0; b < logits->shape.d[0]; b++) {
            int best = classifier_top(logits->val + b * CLASSIFIER_CLASSES);
            right += best == y[b];
            if (pred) pred[i * 500 + b] = best;
        }
    }
    return (double)right / ds->n;
}

/* Train by cross-entropy for `epochs`, shuffling each epoch; returns the test accuracy.
 * verbose: a line per epoch with the mean training loss and the test accuracy. */
static inline double classifier_train(classifier *m, gm_dataset *train, const gm_dataset *test, int epochs,
                                      uint64_t seed, int verbose)
{
    gm_optim *opt = gm_adam_new(&m->P, 1e-3f, 0.9f, 0.999f);
    gm_rng rng = gm_rng_new(seed);
    int e, B = 128, steps = gm_batches(train, B);
    double acc = 0.0;
    for (e = 0; e < epochs; e++) {
        gm_progress bar = gm_progress_start("classifier", steps);
        double sum = 0.0;
        int i;
        gm_dataset_shuffle(train, &rng);
        for (i = 0; i < steps; i++) {
            gm_tape *T = m->T;
            gm_tensor *x, *logits, *loss;
            opt->lr = 1e-3f * (1.0f - 0.9f * (float)(e * steps + i) / ((float)epochs * steps));   /* 1e-3 -> 1e-4 */
            gm_tape_reset(T);
            x = gm_batch(T, train, i, B);
            logits = classifier_forward(T, m, x, GM_TRAIN, NULL);
            loss = gm_mean(T, gm_cross_entropy(T, logits, gm_batch_labels(T, train, i, B)));  /* -log p(y|x) */
            sum += gm_backward(T, loss) * x->shape.d[0];
            gm_optim_step(opt);
            gm_progress_update(&bar, i + 1, "loss %.3f", gm_item(loss));
        }
        gm_progress_finish(&bar);
        acc = classifier_accuracy(m, test, NULL);
        if (verbose)
            printf("epoch %d   train loss %.4f   test accuracy %.4f\n", e + 1, sum / train->n, acc);
    }
    gm_optim_free(opt);
    return acc;
}

/* 1 when ds is genmod's built-in shapes rather than Fashion-MNIST (or --data files). */
static inline int classifier_is_builtin(const gm_dataset *ds) { return strncmp(ds->name, "synthetic shapes", 16) == 0; }

/* An explicit --classifier must name a file: stop the demo if it does not (exit 2). Call it
 * before any work; classifier_get checks again. */
static inline void classifier_need_file(const demo *d)
{
    const char *given = demo_arg(d, "--classifier");
    struct stat st;
    if (given && stat(given, &st) != 0) {
        fprintf(stderr, "%s: --classifier %s: %s (./build/classifier --out DIR makes DIR/classifier.ckpt)\n", d->name,
                given, strerror(errno));
        exit(2);
    }
}

/* Load the classifier: --classifier PATH, which must exist, or by default
 * out/classifier/classifier.ckpt (out/classifier/classifier_builtin.ckpt on the built-in
 * shapes), which is trained first when missing (saying so) and saved there. --quick
 * without --classifier trains a small one on 3000 images in memory, never touching the
 * file. Stops the demo on a file it cannot load. */
static inline void classifier_get(demo *d, classifier *m, int builtin)
{
    const char *given = demo_arg(d, "--classifier");
    const char *path = given ? given : builtin ? "out/classifier/classifier_builtin.ckpt" : "out/classifier/classifier.ckpt";
    int quick = d->quick && !given, epochs = quick ? 1 : CLASSIFIER_EPOCHS;
    gm_dataset train, test;
    struct stat st;
    classifier_need_file(d);
    classifier_new(m, quick ? 8 : 32, 1);
    demo_check(d, m->T != NULL, "making the classifier's tape");
    if (!quick && stat(path, &st) == 0) {
        demo_check(d, gm_load_params(&m->P, path), "loading the classifier");
        printf("classifier: %s\n", path);
        return;
    }
    if (builtin) {                      /* the same sets as demo_images with the default seed */
        gm_synthetic_shapes(&train, 20000, 1);
        gm_synthetic_shapes(&test, 4000, 1 + 1000);
    } else {
        demo_check(d, gm_load_fashion_mnist(&train, &test, d->data), "loading the classifier's training data");
    }
    if (quick) { train.n = train.n < 3000 ? train.n : 3000; test.n = test.n < 600 ? test.n : 600; }
    if (quick) printf("classifier: --quick: a small one in memory, 1 epoch on %d images\n", train.n);
    else printf("classifier: %s not found: training it first (%d epochs on %d images)\n", path, epochs, train.n);
    printf("classifier: test accuracy %.4f\n", classifier_train(m, &train, &test, epochs, 1, 0));
    if (!quick) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        if (strrchr(dir, '/')) { *strrchr(dir, '/') = 0; demo_mkdirs(dir); }
        demo_check(d, gm_save_params(&m->P, path), "saving the classifier");
        printf("classifier: saved %s\n", path);
    }
    gm_dataset_free(&train);
    gm_dataset_free(&test);
}

/* n images x (n,1,28,28) in [0,1] -> features (n, CLASSIFIER_FEATURES) and p(y|x) = softmax
 * of the logits (n, 10); either output may be NULL. */
static inline void classifier_embed(classifier *m, const float *x, int n, float *features, float *probs)
{
    int i, b, k;
    for (i = 0; i < n; i += 500) {
        int nb = n - i < 500 ? n - i : 500;
        gm_tensor *f, *logits, *lse;
        gm_tape_reset(m->T);
        logits = classifier_forward(m->T, m, gm_from(m->T, gm_shape4(nb, 1, 28, 28), x + (size_t)i * 784), GM_EVAL, &f);
        if (features) memcpy(features + (size_t)i * CLASSIFIER_FEATURES, f->val, sizeof(float) * f->size);
        if (!probs) continue;
        lse = gm_logsumexp(m->T, logits);                   /* p_k = e^(l_k - log sum_j e^l_j) */
        for (b = 0; b < nb; b++)
            for (k = 0; k < CLASSIFIER_CLASSES; k++)
                probs[(size_t)(i + b) * CLASSIFIER_CLASSES + k] = expf(logits->val[b * CLASSIFIER_CLASSES + k] - lse->val[b]);
    }
}

static inline void classifier_free(classifier *m)
{
    gm_params_free(&m->P);
    gm_tape_free(m->T);
}

/* genmod's FID and Inception Score (lecture 10) of n samples (n,1,28,28) in [0,1]: their
 * features against those of the test images, and their class probabilities; prints how the
 * samples spread over the classes the classifier sees in them, and both scores. */
static inline void classifier_score(demo *d, const float *samples, int n, const gm_dataset *test, int builtin,
                                    double *fid, double *is)
{
    enum { F = CLASSIFIER_FEATURES, K = CLASSIFIER_CLASSES };
    float *f_test = (float *)malloc(sizeof(float) * test->n * F), *f = (float *)malloc(sizeof(float) * n * F);
    float *p = (float *)malloc(sizeof(float) * n * K);
    int count[K], k;
    classifier c;
    classifier_get(d, &c, builtin);
    classifier_embed(&c, test->x, test->n, f_test, NULL);
    classifier_embed(&c, samples, n, f, p);
    *fid = gm_fid(f_test, test->n, f, n, F);
    *is = gm_inception_score(p, n, K);
    classifier_count_top(p, n, count);
    printf("\nthe %d samples by the classifier's most probable class:\n", n);
    for (k = 0; k < K; k++)
        if (test->class_names) printf("  %-12s %5d\n", test->class_names[k], count[k]);
        else printf("  class %d      %5d\n", k, count[k]);
    printf("FID against the %d test images %.2f, Inception Score %.2f (genmod's classifier)\n", test->n, *fid, *is);
    classifier_free(&c);
    free(f_test); free(f); free(p);
}

#endif
