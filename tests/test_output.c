/* tests/test_output.c - image grids, .npy files, plots and the progress bar:
 * round trips through the files, bad files, failed writes, degenerate plots. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L    /* dup, dup2, getpid, setrlimit under strict -std=c99 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#  include <fcntl.h>
#  include <signal.h>
#  include <sys/resource.h>
#  include <unistd.h>
#endif
#include "../genmod.h"
#include "test.h"

#include <stb_image.h>           /* implemented in tests/stb_impl.c */

static void out_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", gm_test_dir, name);
}

/* The whole file in a malloc'd buffer (size in *n), or NULL. */
static unsigned char *read_all(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (unsigned char *)malloc((size_t)*n + 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) { free(b); b = NULL; }
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Pixels that are not pure white, and how many of the palette-like colours in want[]
 * appear exactly somewhere. */
static long count_ink(const unsigned char *px, int w, int h)
{
    long i, n = 0;
    for (i = 0; i < (long)w * h; i++)
        n += !(px[3 * i] == 255 && px[3 * i + 1] == 255 && px[3 * i + 2] == 255);
    return n;
}

static int colours_present(const unsigned char *px, int w, int h, const unsigned *want, int nwant)
{
    int k, found = 0;
    long i;
    for (k = 0; k < nwant; k++)
        for (i = 0; i < (long)w * h; i++)
            if (px[3 * i] == (want[k] >> 16) && px[3 * i + 1] == ((want[k] >> 8) & 255)
                && px[3 * i + 2] == (want[k] & 255)) { found++; break; }
    return found;
}

/* ---- image grids ---- */

/* 6 grey images (C=1, H=4, W=5) with constant values -1 + 0.4 k, 3 to a row, mapped from
 * [-1, 1]: cell k must read round(255 (0.4 k) / 2) = 51 k. */
static void test_grid_png(void)
{
    enum { N = 6, H = 4, W = 5, NCOLS = 3 };
    float x[N * H * W];
    char path[512];
    int k, i, w = 0, h = 0, comp = 0, s, gw, gh;
    unsigned char *px;

    for (k = 0; k < N; k++)
        for (i = 0; i < H * W; i++) x[k * H * W + i] = -1.0f + 0.4f * (float)k;
    x[5 * H * W] = (float)NAN;     /* image 5, pixel (0, 0): NaN -> 0 */
    x[4 * H * W] = 5.0f;           /* image 4, pixel (0, 0): above hi -> 255 */
    out_path(path, sizeof path, "grid.png");
    EXPECT(gm_save_image_grid(path, x, N, 1, H, W, NCOLS, -1.0f, 1.0f));

    /* the documented layout: 2 rows, 1 px borders, then magnified by s */
    gw = NCOLS * (W + 1) + 1;
    gh = 2 * (H + 1) + 1;
    for (s = 1; s < 8 && s * (gw > gh ? gw : gh) < 400; s++) {}
    px = stbi_load(path, &w, &h, &comp, 0);
    EXPECT(px != NULL);
    if (!px) return;
    EXPECT(w == gw * s && h == gh * s && comp == 1);
    for (k = 0; k < N; k++) {
        int gx = 1 + (k % NCOLS) * (W + 1) + 2, gy = 1 + (k / NCOLS) * (H + 1) + 2;  /* pixel (2, 2) */
        EXPECT(px[(gy * s + s / 2) * w + gx * s + s / 2] == 51 * k);
    }
    EXPECT(px[(2 * s) * w + (2 * s)] == 0);                               /* image 0 */
    EXPECT(px[(1 + H + 1) * s * w + (1 + 2 * (W + 1)) * s] == 0);         /* NaN      */
    EXPECT(px[(1 + H + 1) * s * w + (1 + 1 * (W + 1)) * s] == 255);       /* clamped  */
    EXPECT(px[0] == 128 && px[(s * (H + 1)) * w + s / 2] == 128);         /* border   */
    stbi_image_free(px);
}

/* Colour images are NCHW: planes R, G, B become interleaved RGB. lo == hi takes the range
 * from the data. */
static void test_grid_rgb(void)
{
    float x[2 * 3 * 2 * 2];
    char path[512];
    int i, w = 0, h = 0, comp = 0, pass;
    unsigned char *px;
    for (i = 0; i < 2 * 3 * 4; i++) x[i] = (float)((i / 4) % 3) * 0.5f;   /* R 0, G 0.5, B 1 */
    out_path(path, sizeof path, "grid_rgb.png");
    for (pass = 0; pass < 2; pass++) {
        EXPECT(gm_save_image_grid(path, x, 2, 3, 2, 2, 0, 0.0f, pass ? 0.0f : 1.0f));
        px = stbi_load(path, &w, &h, &comp, 0);
        EXPECT(px != NULL && comp == 3 && w > h);      /* ncols 0: two images side by side */
        if (!px) return;
        {
            int s = w / (2 * 3 + 1), at = ((1 * s + s / 2) * w + (1 * s + s / 2)) * 3;
            EXPECT(px[at] == 0 && px[at + 1] == 128 && px[at + 2] == 255);
        }
        stbi_image_free(px);
    }
}

/* Writing into a missing folder fails naming the path; a failed write leaves the old file
 * as it was and no temporary behind. */
static void test_write_failures(void)
{
    float x[4] = {0, 1, 0, 1};
    int shape[1] = {4};
    char bad[512], keep[512];
    unsigned char *before, *after;
    long nb = 0, na = 0;
    gm_plot *p;

    out_path(bad, sizeof bad, "no/such/folder/a.png");
    EXPECT(!gm_save_image_grid(bad, x, 1, 1, 2, 2, 1, 0, 1));
    EXPECT(strstr(gm_last_error(), bad) != NULL);
    EXPECT(!gm_save_npy(bad, x, 1, shape));
    EXPECT(strstr(gm_last_error(), bad) != NULL);
    p = gm_plot_new("t", "x", "y");
    gm_plot_line(p, "a", NULL, x, 4);
    EXPECT(!gm_plot_save(p, bad, 0, 0));
    EXPECT(strstr(gm_last_error(), bad) != NULL);
    gm_plot_free(p);

    out_path(keep, sizeof keep, "keep.png");
    EXPECT(gm_save_image_grid(keep, x, 1, 1, 2, 2, 1, 0, 1));
    before = read_all(keep, &nb);
    EXPECT(before != NULL);
    /* bad arguments: nothing is touched */
    EXPECT(!gm_save_image_grid(keep, x, 0, 1, 2, 2, 1, 0, 1));
    EXPECT(strstr(gm_last_error(), keep) != NULL);
#if !defined(_WIN32)
    {   /* a file-size limit of 16 bytes makes the write itself fail (EFBIG, SIGXFSZ ignored) */
        struct rlimit lim, small;
        char tmp[600];
        void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &lim);
        small = lim;
        small.rlim_cur = 16;
        EXPECT(setrlimit(RLIMIT_FSIZE, &small) == 0);
        EXPECT(!gm_save_image_grid(keep, x, 1, 1, 2, 2, 1, 1, 0));
        setrlimit(RLIMIT_FSIZE, &lim);
        signal(SIGXFSZ, old);
        EXPECT(strstr(gm_last_error(), keep) != NULL);
        snprintf(tmp, sizeof tmp, "%s.%ld.0.tmp", keep, (long)getpid());   /* its temporary */
        EXPECT(!file_exists(tmp));
    }
#endif
    after = read_all(keep, &na);
    EXPECT(after != NULL && na == nb && before && memcmp(before, after, (size_t)nb) == 0);
    free(before);
    free(after);
}

/* ---- .npy ---- */

static void test_npy_roundtrip(void)
{
    static const int shapes[3][4] = {{7}, {3, 5}, {2, 3, 4, 5}};
    static const int ndims[3] = {1, 2, 4};
    static const char *tuples[3] = {"(7,)", "(3, 5)", "(2, 3, 4, 5)"};
    float x[120], *y;
    char path[512];
    int t, i, ndim, shape[4];
    for (i = 0; i < 120; i++) x[i] = 0.25f * (float)i - 3.0f;
    x[1] = -0.0f;
    x[2] = 1e-40f;       /* a denormal */
    x[3] = (float)INFINITY;
    out_path(path, sizeof path, "a.npy");
    for (t = 0; t < 3; t++) {
        long n = 0, count = 1;
        unsigned char *raw;
        int hlen;
        for (i = 0; i < ndims[t]; i++) count *= shapes[t][i];
        EXPECT(gm_save_npy(path, x, ndims[t], shapes[t]));
        raw = read_all(path, &n);
        EXPECT(raw != NULL);
        if (!raw) return;
        hlen = raw[8] | raw[9] << 8;
        raw[10 + hlen - 1] = 0;              /* the header's final '\n' */
        EXPECT(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0);
        EXPECT((10 + hlen) % 64 == 0);
        EXPECT(n == 10 + hlen + 4 * count);
        EXPECT(strstr((char *)raw + 10, "'descr': '<f4'") != NULL);
        EXPECT(strstr((char *)raw + 10, tuples[t]) != NULL);
        EXPECT(raw[10 + hlen + 4 * 4] == 0x00 && raw[10 + hlen + 4 * 4 + 3] == 0xC0);  /* -2.0f, little-endian */
        free(raw);

        y = gm_load_npy(path, &ndim, shape);
        EXPECT(y != NULL);
        if (!y) return;
        EXPECT(ndim == ndims[t]);
        for (i = 0; i < ndim; i++) EXPECT(shape[i] == shapes[t][i]);
        EXPECT(memcmp(x, y, (size_t)count * 4) == 0);
        gm_npy_free(y);
    }
}

/* Hand-made headers for the bad cases: each load fails, names the file, says why, and
 * leaves the caller's ndim and shape alone. */
static void write_npy_header(const char *path, const char *dict, const void *data, size_t ndata)
{
    unsigned char buf[512];
    size_t len = strlen(dict);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(len & 255);
    buf[9] = (unsigned char)(len >> 8);
    memcpy(buf + 10, dict, len);
    memcpy(buf + 10 + len, data, ndata);
    write_all(path, buf, 10 + len + ndata);
}

static void expect_load_fails(const char *path, const char *why)
{
    int ndim = -7, shape[4] = {-7, -7, -7, -7};
    float *y = gm_load_npy(path, &ndim, shape);
    EXPECT(y == NULL);
    gm_npy_free(y);
    EXPECT(strstr(gm_last_error(), path) != NULL);
    EXPECT(strstr(gm_last_error(), why) != NULL);
    if (!strstr(gm_last_error(), why)) printf("  (error was: %s)\n", gm_last_error());
    EXPECT(ndim == -7 && shape[0] == -7);
}

static void test_npy_bad(void)
{
    float data[6] = {1, 2, 3, 4, 5, 6};
    int shape[2] = {2, 3};
    char path[512], good[512];
    unsigned char *raw;
    long n = 0;

    out_path(path, sizeof path, "bad.npy");
    remove(path);
    expect_load_fails(path, "cannot open");                 /* missing */
    write_all(path, "hello, world, this is text\n", 27);
    expect_load_fails(path, "bad magic");
    write_all(path, "\x93NUMPY\x01", 7);
    expect_load_fails(path, "truncated");
    write_all(path, "\x93NUMPY\x01\x00\xff\xff{'descr'", 17);
    expect_load_fails(path, "absurd");

    out_path(good, sizeof good, "good.npy");
    EXPECT(gm_save_npy(good, data, 2, shape));
    raw = read_all(good, &n);
    EXPECT(raw != NULL);
    if (!raw) return;
    write_all(path, raw, (size_t)n - 5);                    /* cut inside the data */
    expect_load_fails(path, "truncated");
    write_all(path, raw, 40);                               /* cut inside the header */
    expect_load_fails(path, "truncated");
    free(raw);

    {   /* headers that are well formed but describe what genmod does not read, or lie */
        static const char *bad[][2] = {
            {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", "'<f8'"},
            {"{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }\n", "'>f4'"},
            {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", "Fortran"},
            {"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }\n", "absurd"},
            {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 6), }\n", "at most 4"},
            {"{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }\n", "truncated"},
            {"{'descr': '<f4', 'shape': (6,) }\n", "malformed"},
        };
        int k;
        for (k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
            write_npy_header(path, bad[k][0], data, 24);
            expect_load_fails(path, bad[k][1]);
        }
    }
    /* what numpy itself writes for np.zeros(6, np.float32) loads: "6L" from Python 2 too */
    write_npy_header(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (6L,), }          \n", data, 24);
    {
        int nd = 0, sh[4] = {0, 0, 0, 0};
        float *y = gm_load_npy(path, &nd, sh);
        EXPECT(y != NULL && nd == 1 && sh[0] == 6 && y && y[5] == 6.0f);
        gm_npy_free(y);
    }
}

/* ---- plots ---- */

/* Read a plot back: the requested size and the number of non-white pixels. */
static unsigned char *load_plot(const char *path, int width, int height, long *ink)
{
    int w = 0, h = 0, comp = 0;
    unsigned char *px = stbi_load(path, &w, &h, &comp, 3);
    EXPECT(px != NULL);
    if (!px) return NULL;
    EXPECT(w == width && h == height);
    *ink = count_ink(px, w, h);
    return px;
}

static const unsigned palette[10] = {
    0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7, 0xE69F00, 0x56B4E9, 0x332288, 0x999933, 0x882255, 0x555555
};

/* Two loss curves on a log axis, with a legend: both series colours appear. */
static void test_plot_lines(void)
{
    float train[300], test[30], tx[30];
    char path[512];
    long ink = 0;
    int i;
    unsigned char *px;
    gm_plot *p = gm_plot_new("VAE loss", "step", "-ELBO (nats)");
    for (i = 0; i < 300; i++) train[i] = 90.0f + 400.0f * (float)exp(-i / 40.0) + 3.0f * (float)sin(i * 0.7);
    for (i = 0; i < 30; i++) { tx[i] = (float)(10 * i); test[i] = 95.0f + 380.0f * (float)exp(-tx[i] / 45.0); }
    gm_plot_line(p, "train", NULL, train, 300);
    gm_plot_line(p, "test", tx, test, 30);
    gm_plot_logy(p, 1);
    out_path(path, sizeof path, "plot_lines.png");
    EXPECT(gm_plot_save(p, path, 0, 0));
    gm_plot_free(p);
    px = load_plot(path, 640, 480, &ink);
    if (!px) return;
    EXPECT(ink > 3000 && ink < 640 * 480 / 2);
    EXPECT(colours_present(px, 640, 480, palette, 2) == 2);
    stbi_image_free(px);
}

/* A latent space: 3000 points in 10 clusters coloured by class, legend 0..9. */
static void test_plot_scatter_labeled(void)
{
    enum { N = 3000 };
    static float xy[2 * N];
    static int lab[N];
    char path[512];
    long ink = 0;
    int i;
    unsigned char *px;
    gm_rng rng = gm_rng_new(7);
    gm_plot *p = gm_plot_new("latent space", "z1", "z2");
    for (i = 0; i < N; i++) {
        lab[i] = gm_rng_below(&rng, 10);
        xy[2 * i] = 3.0f * (float)cos(lab[i] * 0.628) + 0.6f * gm_rng_normal(&rng);
        xy[2 * i + 1] = 3.0f * (float)sin(lab[i] * 0.628) + 0.6f * gm_rng_normal(&rng);
    }
    gm_plot_scatter_labeled(p, xy, lab, N, 10, NULL);
    out_path(path, sizeof path, "plot_scatter.png");
    EXPECT(gm_plot_save(p, path, 500, 400));
    gm_plot_free(p);
    px = load_plot(path, 500, 400, &ink);
    if (!px) return;
    EXPECT(ink > 20000);
    EXPECT(colours_present(px, 500, 400, palette, 10) == 10);   /* every class in the legend */
    stbi_image_free(px);
}

/* Save a plot of `title` with one scatter series (x, y) and the options asked for; read it back. */
static unsigned char *plot_points(const char *file, const char *title, const float *x, const float *y, int n,
                                  int equal, int ydown, int w, int h)
{
    char path[512];
    long ink;
    gm_plot *p = gm_plot_new(title, "x", "y");
    gm_plot_scatter(p, "points", x, y, n);
    gm_plot_equal_aspect(p, equal);
    gm_plot_ydown(p, ydown);
    out_path(path, sizeof path, file);
    EXPECT(gm_plot_save(p, path, w, h));
    gm_plot_free(p);
    return load_plot(path, w, h, &ink);
}

/* The box x0, y0, x1, y1 of the pixels of one colour in columns xlo..xhi-1. */
static void colour_box(const unsigned char *px, int w, int h, unsigned rgb, int xlo, int xhi, int box[4])
{
    int x, y;
    box[0] = w; box[1] = h; box[2] = -1; box[3] = -1;
    for (y = 0; y < h; y++)
        for (x = xlo; x < xhi; x++) {
            const unsigned char *q = px + 3 * ((size_t)y * w + x);
            if (q[0] != rgb >> 16 || q[1] != ((rgb >> 8) & 255) || q[2] != (rgb & 255)) continue;
            if (x < box[0]) box[0] = x;
            if (y < box[1]) box[1] = y;
            if (x > box[2]) box[2] = x;
            if (y > box[3]) box[3] = y;
        }
}

/* A circle stays round with gm_plot_equal_aspect, and is an ellipse on a 640x480 canvas
 * without it. */
static void test_plot_equal_aspect(void)
{
    float x[200], y[200];
    int i, b[4], k;
    for (i = 0; i < 200; i++) { x[i] = 2 * (float)cos(i * 0.0314159); y[i] = 2 * (float)sin(i * 0.0314159); }
    for (k = 0; k < 2; k++) {
        unsigned char *px = plot_points(k ? "equal.png" : "unequal.png", "circle", x, y, 200, k, 0, 640, 480);
        double ratio;
        if (!px) return;
        colour_box(px, 640, 480, palette[0], 0, 640, b);
        ratio = (double)(b[2] - b[0]) / (b[3] - b[1]);
        if (k) EXPECT(fabs(ratio - 1) < 0.03);
        else EXPECT(ratio > 1.2);
        stbi_image_free(px);
    }
}

/* gm_plot_ydown puts small y at the top: of the points (0, 0) and (1, 10), the left one is
 * above the right one with it, below without. */
static void test_plot_ydown(void)
{
    float x[2] = {0, 1}, y[2] = {0, 10};
    int k, left[4], right[4];
    for (k = 0; k < 2; k++) {
        unsigned char *px = plot_points(k ? "ydown.png" : "yup.png", "", x, y, 2, 0, k, 400, 300);
        if (!px) return;
        colour_box(px, 400, 300, palette[0], 0, 200, left);
        colour_box(px, 400, 300, palette[0], 200, 400, right);
        EXPECT(left[2] >= 0 && right[2] >= 0);
        if (k) EXPECT(left[1] + 100 < right[1]);
        else EXPECT(left[1] > right[1] + 100);
        {   /* and the y axis keeps its tick labels: ink between the y label and the frame */
            long ink = 0;
            int x, y, frame = 24, dark;
            for (; frame < 200; frame++) {          /* the frame: the first dark column */
                for (y = 100, dark = 1; y < 200 && dark; y++) dark = px[3 * (y * 400 + frame)] < 128;
                if (dark) break;
            }
            for (y = 20; y < 280; y++)
                for (x = 24; x < frame - 3; x++) ink += px[3 * (y * 400 + x)] < 128;
            EXPECT(ink > 30);
        }
        stbi_image_free(px);
    }
}

/* A title wider than the picture wraps onto a second line instead of running off it. */
static void test_plot_title_wraps(void)
{
    const char *long_title = "a title much too long for a picture four hundred pixels wide, "
                             "which must wrap at its spaces instead of being cut at the edges";
    float x[3] = {0, 1, 2}, y[3] = {0, 1, 4};
    int k;
    for (k = 0; k < 2; k++) {
        unsigned char *px = plot_points(k ? "title-long.png" : "title-short.png", k ? long_title : "short",
                                        x, y, 3, 0, 0, 400, 300);
        long edge = 0, second = 0;
        int r, c;
        if (!px) return;
        for (r = 0; r < 60; r++)
            for (c = 0; c < 400; c++) {
                const unsigned char *q = px + 3 * ((size_t)r * 400 + c);
                int dark = q[0] < 128;
                if (dark && (c < 3 || c >= 397)) edge++;
                if (dark && r >= 35 && r <= 41) second++;     /* where a second title line is */
            }
        EXPECT(edge == 0);
        if (k) EXPECT(second > 20);
        else EXPECT(second == 0);
        stbi_image_free(px);
    }
}

/* Class names in the legend instead of numbers. */
static void test_plot_class_names(void)
{
    static const char *const names[3] = { "T-shirt/top", "trouser", "pullover" };
    float xy[6] = {0, 0, 1, 1, 2, 0};
    int lab[3] = {0, 1, 2}, k;
    long ink[2];
    char path[512];
    for (k = 0; k < 2; k++) {
        gm_plot *p = gm_plot_new("classes", "z1", "z2");
        unsigned char *px;
        gm_plot_scatter_labeled(p, xy, lab, 3, 3, k ? names : NULL);
        out_path(path, sizeof path, k ? "names.png" : "numbers.png");
        EXPECT(gm_plot_save(p, path, 400, 300));
        gm_plot_free(p);
        px = load_plot(path, 400, 300, &ink[k]);
        if (px) stbi_image_free(px);
    }
    EXPECT(ink[1] > ink[0] + 150);          /* the names' letters */
}

/* A density as a heatmap, alone and with points on top. */
static void test_heatmap(void)
{
    enum { R = 40, C = 60 };
    static float v[R * C];
    float px_[2] = {0.5f, -0.5f}, py_[2] = {0.5f, 0.8f};
    char path[512];
    long ink = 0, i, coloured = 0;
    int r, c;
    unsigned char *px;
    gm_plot *p;
    for (r = 0; r < R; r++)
        for (c = 0; c < C; c++) {
            double x = -2 + 4.0 * (c + 0.5) / C, y = 1.5 - 3.0 * (r + 0.5) / R;   /* row 0 on top */
            v[r * C + c] = (float)exp(-(x * x + 4 * y * y) / 2);
        }
    out_path(path, sizeof path, "heatmap.png");
    EXPECT(gm_save_heatmap(path, v, R, C, -2, 2, -1.5f, 1.5f, "p(x) of a Gaussian"));
    px = load_plot(path, 640, 480, &ink);
    if (!px) return;
    for (i = 0; i < 640 * 480; i++)      /* not grey: a colour-map pixel */
        coloured += px[3 * i] != px[3 * i + 1] || px[3 * i + 1] != px[3 * i + 2];
    EXPECT(coloured > 640 * 480 / 2);
    EXPECT(colours_present(px, 640, 480, palette, 1) == 0);
    stbi_image_free(px);

    p = gm_plot_new("samples over the density", "x1", "x2");
    gm_plot_heatmap(p, v, R, C, -2, 2, -1.5f, 1.5f);
    gm_plot_scatter(p, "samples", px_, py_, 2);
    out_path(path, sizeof path, "heatmap_points.png");
    EXPECT(gm_plot_save(p, path, 400, 300));
    gm_plot_free(p);
    px = load_plot(path, 400, 300, &ink);
    if (!px) return;
    EXPECT(colours_present(px, 400, 300, palette, 1) == 1);
    stbi_image_free(px);
}

/* Degenerate data never divides by zero: a constant line, a single point, an empty plot,
 * values a log axis cannot show, NaNs. Bad arguments are reported by gm_plot_save. */
static void test_plot_degenerate(void)
{
    float flat[5] = {3, 3, 3, 3, 3}, one = 2.5f, zero = 0.0f;
    float mixed[6] = {1, 0, -2, (float)NAN, 100, (float)INFINITY};
    char path[512];
    long ink = 0;
    unsigned char *px;
    gm_plot *p;
    int k;
    out_path(path, sizeof path, "plot_degenerate.png");
    for (k = 0; k < 5; k++) {
        p = gm_plot_new(k == 3 ? NULL : "degenerate", NULL, NULL);
        if (k == 0) gm_plot_line(p, "flat", NULL, flat, 5);
        if (k == 1) gm_plot_scatter(p, "one", &one, &one, 1);
        if (k == 2) gm_plot_scatter(p, "origin", &zero, &zero, 1);
        if (k == 4) gm_plot_line(p, "mixed", NULL, mixed, 6);
        gm_plot_logy(p, k >= 3);      /* k == 3: an empty log plot */
        EXPECT(gm_plot_save(p, path, 320, 240));
        gm_plot_free(p);
        px = load_plot(path, 320, 240, &ink);
        if (!px) return;
        EXPECT(ink > 1000);           /* at least the frame, ticks and labels */
        if (k < 3) EXPECT(colours_present(px, 320, 240, palette, 1) == 1);
        stbi_image_free(px);
    }
    p = gm_plot_new("bad", NULL, NULL);
    gm_plot_line(p, "negative n", NULL, flat, -1);
    EXPECT(!gm_plot_save(p, path, 0, 0));
    EXPECT(strstr(gm_last_error(), "gm_plot_line") && strstr(gm_last_error(), path));
    gm_plot_free(p);
    EXPECT(!gm_plot_save(NULL, path, 0, 0));
}

/* A row of plots is each plot as gm_plot_save draws it, side by side; a bad one fails the row. */
static void test_plot_row(void)
{
    float y[3][50];
    char path[512], one[512];
    long ink;
    int i, k, w = 0, h = 0, comp = 0, same = 1;
    unsigned char *row, *px;
    gm_plot *p[3];
    for (k = 0; k < 3; k++) {
        p[k] = gm_plot_new("frame", "x", NULL);
        for (i = 0; i < 50; i++) y[k][i] = (float)sin(0.1 * i * (k + 1));
        gm_plot_line(p[k], "sine", NULL, y[k], 50);
    }
    out_path(path, sizeof path, "plot_row.png");
    EXPECT(gm_plot_save_row(p, 3, path, 300, 200));
    row = stbi_load(path, &w, &h, &comp, 3);
    EXPECT(row && w == 900 && h == 200);
    for (k = 0; k < 3 && row && w == 900 && h == 200; k++) {
        out_path(one, sizeof one, "plot_row_one.png");
        EXPECT(gm_plot_save(p[k], one, 300, 200));
        if (!(px = load_plot(one, 300, 200, &ink))) break;
        for (i = 0; i < 300 * 200; i++)         /* pixel (x, y) of plot k is (300 k + x, y) */
            same &= memcmp(px + 3 * i, row + 3 * ((i / 300) * 900 + 300 * k + i % 300), 3) == 0;
        stbi_image_free(px);
    }
    EXPECT(same);
    if (row) stbi_image_free(row);
    gm_plot_line(p[1], "negative n", NULL, y[1], -1);
    EXPECT(!gm_plot_save_row(p, 3, path, 300, 200));
    EXPECT(strstr(gm_last_error(), "gm_plot_line") != NULL);
    EXPECT(!gm_plot_save_row(p, 30, path, 300, 200));
    for (k = 0; k < 3; k++) gm_plot_free(p[k]);
}

/* ---- progress bar ---- */

/* With stderr sent to a file (not a terminal), 1000 updates make one line per tenth and a
 * final line with the total, the last loss terms and the total time. */
static void test_progress_plain(void)
{
#if !defined(_WIN32)
    char path[512], *text, *line;
    long n = 0, i;
    int saved, fd, lines = 0;
    gm_progress pb;
    out_path(path, sizeof path, "progress.txt");
    fflush(stderr);
    saved = dup(2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT(saved >= 0 && fd >= 0);
    if (saved < 0 || fd < 0) return;
    dup2(fd, 2);
    close(fd);
    pb = gm_progress_start("train", 1000);
    for (i = 1; i <= 1000; i++) gm_progress_update(&pb, i, "loss %.3f", 1.0 / (double)i);
    gm_progress_finish(&pb);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    EXPECT(pb.tty == 0);
    text = (char *)read_all(path, &n);
    EXPECT(text != NULL);
    if (!text) return;
    text[n] = 0;
    for (i = 0; i < n; i++) lines += text[i] == '\n';
    EXPECT(lines >= 2 && lines <= 11);
    EXPECT(strchr(text, '\r') == NULL);
    line = text + n - 1;                          /* the last line */
    while (line > text && line[-1] != '\n') line--;
    EXPECT(strncmp(line, "train [####################] 1000/1000 100% |", 45) == 0);
    EXPECT(strstr(line, "loss 0.001") && strstr(line, "it/s") && strstr(line, "total"));
    free(text);
#endif
}

void tests_output(void)
{
    TEST(test_grid_png);
    TEST(test_grid_rgb);
    TEST(test_write_failures);
    TEST(test_npy_roundtrip);
    TEST(test_npy_bad);
    TEST(test_plot_lines);
    TEST(test_plot_scatter_labeled);
    TEST(test_plot_equal_aspect);
    TEST(test_plot_ydown);
    TEST(test_plot_title_wraps);
    TEST(test_plot_class_names);
    TEST(test_heatmap);
    TEST(test_plot_degenerate);
    TEST(test_plot_row);
    TEST(test_progress_plain);
}
