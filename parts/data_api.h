/* ======================================================================================
 * 9. data
 *    A data set is n examples of d = C*H*W floats in one array, optional integer labels,
 *    and a permutation `order` that batching walks through. Loaders for MNIST-format IDX
 *    files (plain or gzip), for folders of images, and built-in synthetic sets so every
 *    demo runs with nothing installed.
 *    Loaders return 1 on success, or 0 with gm_last_error() naming the file and what is
 *    wrong; on failure the output struct is not touched. On success it is overwritten
 *    (free what it held first). Every loaded set is freed with gm_dataset_free.
 * ====================================================================================== */
typedef struct gm_dataset {
    int n;           /* number of examples */
    int c, h, w;     /* shape of one example: images (C,H,W); a set of D-dim vectors has c = D, h = w = 1 */
    int d;           /* floats per example = c*h*w */
    float *x;        /* n*d values, example i at x + i*d, images CHW and scaled to [0,1] */
    int *y;          /* n labels in [0, nclass), or NULL */
    int nclass;      /* number of classes (0 when unlabeled) */
    int *order;      /* a permutation of 0..n-1 used by batching; identity after loading */
    char name[96];   /* where it came from, for the demos' first line, e.g. "Fashion-MNIST train (60000 images)" */
} gm_dataset;

/* MNIST-format IDX: images magic 0x00000803 (unsigned bytes, 3 dims N,H,W), labels magic
 * 0x00000801 (unsigned bytes, 1 dim N), big-endian dims. Plain or gzip (told by the 1f 8b
 * magic, not the name). labels_path may be NULL (then y = NULL). x = pixel / 255, C = 1,
 * nclass = max label + 1. The label count must equal the image count. */
GMDEF int  gm_load_idx(gm_dataset *ds, const char *images_path, const char *labels_path);

/* Fashion-MNIST from dir (NULL: "/usr/share/datasets/fashion-mnist", Debian package
 * dataset-fashion-mnist): train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 * t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, or the same names without .gz.
 * 60000 + 10000 images (1,28,28), 10 classes. On failure neither output is changed. */
GMDEF int  gm_load_fashion_mnist(gm_dataset *train, gm_dataset *test, const char *dir);

/* Every image stb_image reads (PNG, JPG, BMP, TGA, GIF, PSD, HDR, PNM) in dir, sorted by
 * file name, converted to c channels (1 grey, 3 RGB; 2 and 4 add alpha) and resized to
 * h x w (area average when shrinking, bilinear when growing). If dir has subfolders,
 * each subfolder (sorted by name) is one class and labels its images, as torchvision's
 * ImageFolder does (plain files beside the class folders are then ignored); otherwise
 * y = NULL. Names starting with '.' are skipped. A file that is not a readable image is
 * an error naming it. POSIX only (opendir/readdir); on Windows it returns an error. */
GMDEF int  gm_load_image_folder(gm_dataset *ds, const char *dir, int c, int h, int w);

/* The embedded default image set: n grey 28x28 images of 10 classes drawn procedurally
 * with anti-aliased edges, random position, size, stroke width and rotation, and a
 * little Gaussian noise; values in [0,1]. Labels 0..9, balanced (n/10 each, shuffled):
 *   0 filled disc   1 ring   2 filled square   3 square outline   4 filled triangle
 *   5 plus          6 X      7 three horizontal bars   8 three vertical bars   9 2x2 dots
 * Same seed, same bytes. n must be >= 1; if memory runs out *ds is zeroed (n = 0) and
 * gm_last_error() says so. */
GMDEF void gm_synthetic_shapes(gm_dataset *ds, int n, uint64_t seed);

/* Toy 2-D sets for GANs and flows: c = 2 (the D of a vector set), h = w = 1.
 *   GM_RING8      8 Gaussians on a circle of radius 2, std 0.02; label = mode 0..7
 *   GM_GRID25     25 Gaussians at {-4,-2,0,2,4}^2, std 0.05; label = mode 0..24 (row-major)
 *   GM_SWISS_ROLL t ~ U[1.5pi, 4.5pi], (t cos t, t sin t) + N(0, 0.25^2), all / 7 so it
 *                 fills about [-2,2]^2; label 0, nclass 1
 *   GM_TWO_MOONS  scikit-learn's two moons with noise 0.1, centred and scaled by 1.3 to
 *                 about [-2,2] x [-1,1]; label = the moon, 0 (upper) or 1 (lower)
 * Labels are balanced (i % K, shuffled). Same seed, same bytes. */
typedef enum gm_toy { GM_RING8, GM_GRID25, GM_SWISS_ROLL, GM_TWO_MOONS } gm_toy;
GMDEF void gm_synthetic_2d(gm_dataset *ds, gm_toy kind, int n, uint64_t seed);

/* order = a uniform random permutation of 0..n-1 (it depends on rng only). */
GMDEF void gm_dataset_shuffle(gm_dataset *ds, gm_rng *rng);

/* Free x, y and order and zero the struct (safe on a zeroed struct). */
GMDEF void gm_dataset_free(gm_dataset *ds);

/* Copy the examples whose label is one of classes[0..nclasses) into keep and all others
 * into rest (either may be NULL), in their original order; labels keep their values and
 * nclass. Used for outlier detection: train on keep, score rest. Returns 0 with an error
 * if ds has no labels, a class is out of range, or a requested output would be empty. */
GMDEF int  gm_dataset_split(gm_dataset *keep, gm_dataset *rest, const gm_dataset *ds,
                            const int *classes, int nclasses);
