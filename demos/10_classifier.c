/* 10_classifier - the Fashion-MNIST classifier behind genmod's FID and Inception Score
 *
 * What it shows: a small conv net trained by softmax cross-entropy, -log p(y|x), reaching
 * about 91 % test accuracy in 3 epochs. Its 128 penultimate features are what genmod's
 * FID compares, and its p(y|x) what the Inception Score reads (lecture 10; the fid demo).
 * The checkpoint it saves is the one fid, dcgan and mode_collapse load (demos/classifier.h;
 * they train it themselves when it is missing). With --data builtin the same on the
 * built-in shapes, saved as classifier_builtin.ckpt.
 * Lecture: lectures/10-evaluating-samples.md
 * Run:     make build/classifier && ./build/classifier        (3 epochs, a few minutes on 2 cores)
 * Output:  out/classifier/classifier.ckpt      the trained classifier
 *          out/classifier/mistakes.png         misclassified test images, a row per true class
 *          the test accuracy of each class; result line test_accuracy
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include "classifier.h"

static const char *usage =
    "  --epochs N     passes over the training set (default 3; 1 with --quick)\n";

/* Accuracy per class, and a picture of up to 10 mistakes per class: row c holds test images
 * of class c that the classifier put elsewhere. */
static void per_class(demo *d, classifier *m, const gm_dataset *test)
{
    enum { K = CLASSIFIER_CLASSES, SHOW = 10 };
    int *pred = (int *)malloc(sizeof(int) * test->n), right[K] = {0}, total[K] = {0}, shown[K] = {0}, i, c;
    float *grid = (float *)calloc((size_t)K * SHOW * 784, sizeof(float));
    classifier_accuracy(m, test, pred);
    for (i = 0; i < test->n; i++) {
        c = test->y[i];
        total[c]++;
        right[c] += pred[i] == c;
        if (pred[i] != c && shown[c] < SHOW)
            memcpy(grid + (size_t)(c * SHOW + shown[c]++) * 784, test->x + (size_t)i * 784, 784 * sizeof(float));
    }
    printf("\ntest accuracy per class\n");
    for (c = 0; c < K; c++)
        if (total[c])
            printf("  %d %-16s %.3f  (%d images)\n", c, test->class_names ? test->class_names[c] : "",
                   (double)right[c] / total[c], total[c]);
    {
        gm_grid_labels labels = {"test images the classifier got wrong, a row per true class", NULL, NULL};
        labels.rows = test->nclass >= K ? test->class_names : NULL;   /* names of the K rows, if known */
        demo_check(d, gm_save_image_grid_labeled(demo_path(d, "mistakes.png"), grid, K * SHOW, 1, 28, 28, SHOW, 0, 1,
                                                 &labels), "saving");
    }
    free(pred); free(grid);
}

int main(int argc, char **argv)
{
    demo d = demo_start(argc, argv, "classifier", usage);
    int epochs = demo_epochs(&d, d.quick ? 1 : CLASSIFIER_EPOCHS);
    gm_dataset train, test;
    classifier m;
    double acc;
    int builtin;

    demo_images(&d, &train, &test, 3000);
    builtin = classifier_is_builtin(&train);
    classifier_new(&m, 32, d.seed);
    demo_check(&d, m.T != NULL, "making the tape");
    printf("classifier: %ld parameters, %d epochs of %d batches of 128\n", gm_params_count(&m.P), epochs,
           gm_batches(&train, 128));
    acc = classifier_train(&m, &train, &test, epochs, d.seed, 1);
    demo_check(&d, gm_save_params(&m.P, demo_path(&d, builtin ? "classifier_builtin.ckpt" : "classifier.ckpt")),
               "saving the classifier");
    per_class(&d, &m, &test);

    demo_result("test_accuracy", acc);
    classifier_free(&m);
    gm_dataset_free(&train);
    gm_dataset_free(&test);
    demo_done(&d);
    return 0;
}
