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

/* The box x0, y0, x1, y1 of the dark pixels (red below 128) in rows y0..y1-1 and columns
 * x0..x1-1 of an RGB image, and how many there are (box[0] > box[2] when none). */
static long dark_box(const unsigned char *px, int w, const int area[4], int box[4])
{
    long n = 0;
    int x, y;
    box[0] = area[2]; box[1] = area[3]; box[2] = -1; box[3] = -1;
    for (y = area[1]; y < area[3]; y++)
        for (x = area[0]; x < area[2]; x++) {
            if (px[3 * ((size_t)y * w + x)] >= 128) continue;
            n++;
            if (x < box[0]) box[0] = x;
            if (y < box[1]) box[1] = y;
            if (x > box[2]) box[2] = x;
            if (y > box[3]) box[3] = y;
        }
    return n;
}

/* How many pixels of colour rgb lie in one run through (x, y): along its row (across != 0)
 * or its column. */
static int colour_run(const unsigned char *px, int w, int h, unsigned rgb, int x, int y, int across)
{
    int n = 0, dir, k;
    for (dir = -1; dir <= 1; dir += 2)
        for (k = dir < 0 ? 0 : 1; ; k++) {
            int u = across ? x + dir * k : x, v = across ? y : y + dir * k;
            const unsigned char *q;
            if (u < 0 || u >= w || v < 0 || v >= h) break;
            q = px + 3 * ((size_t)v * w + u);
            if (q[0] != rgb >> 16 || q[1] != ((rgb >> 8) & 255) || q[2] != (rgb & 255)) break;
            n++;
        }
    return n;
}

/* The first row where most of the middle half of the image is the frame's colour 0x444444. */
static int frame_top(const unsigned char *px, int w, int h)
{
    int x, y;
    for (y = 0; y < h; y++) {
        int hits = 0;
        for (x = w / 4; x < 3 * w / 4; x++) {
            const unsigned char *q = px + 3 * ((size_t)y * w + x);
            hits += q[0] == 0x44 && q[1] == 0x44 && q[2] == 0x44;
        }
        if (hits > w / 4) return y;
    }
    return -1;
}

/* A title never runs off the picture: a long one wraps onto lines and shrinks until three
 * hold it, a word wider than the picture shrinks, so all its ink lies between the edges
 * (2 px in) and above the plot's frame, on a small plot and the default one. */
static void test_plot_title_fits(void)
{
    static const char *const titles[2] = {
        "the aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of every test image against the prior "
        "p(z) = N(0, I), the ratio log q(z)/p(z) clipped to [-6, 3], and prior samples where q is "
        "below p/10, in more words than three lines at the usual size can hold",
        "an_unbreakable_identifier_much_wider_than_a_plot_four_hundred_pixels_wide" };
    static const int size[2][2] = { {400, 300}, {640, 480} };
    float x[3] = {0, 1, 2}, y[3] = {0, 1, 4};
    int k, j;
    for (k = 0; k < 2; k++)
        for (j = 0; j < 2; j++) {
            int w = size[j][0], h = size[j][1], top, area[4], box[4];
            unsigned char *px = plot_points("title-fits.png", titles[k], x, y, 3, 0, 0, w, h);
            if (!px) return;
            top = frame_top(px, w, h);
            area[0] = 0; area[1] = 0; area[2] = w; area[3] = top > 0 ? top : h;
            EXPECT(top > 10);
            EXPECT(dark_box(px, w, area, box) > 50);                 /* the title is there */
            EXPECT(box[0] >= 2 && box[2] <= w - 3 && box[3] < top - 1);
            stbi_image_free(px);
        }
}

/* With gm_plot_equal_aspect a unit takes as many pixels across as up, whatever the data's
 * ranges, the picture's shape and the colour bar: points at (0, 0), (3, 0) and (0, 2), in
 * three colours, on 800 x 300; and a heatmap of the square [-2, 2]^2 at 340 x 320 (beside its
 * colour bar) paints a square. Without it, neither holds. */
static void test_plot_equal_units(void)
{
    static const float px_[3] = {0, 3, 0}, py_[3] = {0, 0, 2};
    static float v[20 * 20];                   /* all 0: the colour map's lowest, 0x440154 */
    char path[512];
    long ink;
    int k, i, b[3][4];
    for (k = 0; k < 2; k++) {
        gm_plot *p = gm_plot_new("units", "x", "y");
        unsigned char *px;
        double ux, uy;
        for (i = 0; i < 3; i++) gm_plot_scatter(p, "", px_ + i, py_ + i, 1);
        gm_plot_equal_aspect(p, k);
        out_path(path, sizeof path, "units.png");
        EXPECT(gm_plot_save(p, path, 800, 300));
        gm_plot_free(p);
        if (!(px = load_plot(path, 800, 300, &ink))) return;
        for (i = 0; i < 3; i++) colour_box(px, 800, 300, palette[i], 0, 800, b[i]);
        ux = ((b[1][0] + b[1][2]) - (b[0][0] + b[0][2])) / 2.0 / 3;      /* pixels per unit */
        uy = ((b[0][1] + b[0][3]) - (b[2][1] + b[2][3])) / 2.0 / 2;
        if (k) EXPECT(fabs(ux / uy - 1) < 0.02);
        else EXPECT(ux / uy > 1.5);
        stbi_image_free(px);
    }
    for (k = 0; k < 2; k++) {
        gm_plot *p = gm_plot_new("density", NULL, NULL);
        unsigned char *px;
        gm_plot_heatmap(p, v, 20, 20, -2, 2, -2, 2);
        gm_plot_equal_aspect(p, k);
        out_path(path, sizeof path, "units-heat.png");
        EXPECT(gm_plot_save(p, path, 340, 320));
        gm_plot_free(p);
        if (!(px = load_plot(path, 340, 320, &ink))) return;
        {   /* the heatmap's width along row 160, its height along column 150 */
            int across = colour_run(px, 340, 320, 0x440154, 150, 160, 1);
            int up = colour_run(px, 340, 320, 0x440154, 150, 160, 0);
            EXPECT(across > 150 && up > 150);
            if (k) EXPECT(abs(across - up) <= 1);
            else EXPECT(abs(across - up) > 10);
        }
        stbi_image_free(px);
    }
}

/* A labelled grid is the unlabelled one moved by (left, top) into an RGB PNG, the margins
 * white but for the text: each row's label beside its row, the caption and the column
 * labels above; with no labels it is the very file gm_save_image_grid writes. A caption of
 * one word wider than the grid shrinks to fit between its edges. */
static void test_grid_labeled(void)
{
    enum { N = 6, H = 4, W = 5, NCOLS = 3 };
    static const char *const rows[2] = {"first", "second"}, *const cols[3] = {"a", "b", "c"};
    gm_grid_labels none = {NULL, NULL, NULL}, all = {"a caption", rows, cols};
    gm_grid_labels wide = {"one_caption_word_wider_than_the_grid", NULL, NULL};
    float x[N * H * W];
    char path[512], plain_path[512];
    unsigned char *plain, *lab, *a, *b;
    int k, i, r, w = 0, h = 0, comp = 0, lw = 0, lh = 0, lcomp = 0, left, top, same = 1, s, area[4], box[4];
    long na = 0, nb = 0;
    for (i = 0; i < N * H * W; i++) x[i] = (float)(i % 7) / 6.0f;
    out_path(plain_path, sizeof plain_path, "grid-plain.png");
    out_path(path, sizeof path, "grid-labeled.png");
    EXPECT(gm_save_image_grid(plain_path, x, N, 1, H, W, NCOLS, 0, 1));
    EXPECT(gm_save_image_grid_labeled(path, x, N, 1, H, W, NCOLS, 0, 1, &none));
    a = read_all(plain_path, &na);
    b = read_all(path, &nb);
    EXPECT(a && b && na == nb && memcmp(a, b, (size_t)na) == 0);
    free(a);
    free(b);

    EXPECT(gm_save_image_grid_labeled(path, x, N, 1, H, W, NCOLS, 0, 1, &all));
    plain = stbi_load(plain_path, &w, &h, &comp, 1);
    lab = stbi_load(path, &lw, &lh, &lcomp, 3);
    EXPECT(plain && lab && comp == 1 && lcomp == 3);
    if (!plain || !lab) return;
    left = lw - w;
    top = lh - h;
    EXPECT(left > 20 && top > 20);
    for (i = 0; i < w * h; i++)       /* plain pixel (x, y) is labelled pixel (left + x, top + y) */
        for (k = 0; k < 3; k++)
            same &= lab[3 * ((size_t)(top + i / w) * lw + left + i % w) + k] == plain[i];
    EXPECT(same);
    s = w / (NCOLS * (W + 1) + 1);
    for (r = 0; r < 2; r++) {         /* row r's label: in the left margin, its middle in row r */
        int y0 = top + s * (1 + r * (H + 1)), y1 = y0 + s * H;
        area[0] = 0; area[1] = y0 - s; area[2] = left; area[3] = y1 + s;
        EXPECT(dark_box(lab, lw, area, box) > 20);
        EXPECT((box[1] + box[3]) / 2 >= y0 && (box[1] + box[3]) / 2 < y1);
    }
    area[0] = 0; area[1] = 0; area[2] = lw; area[3] = top;
    EXPECT(dark_box(lab, lw, area, box) > 40);        /* caption and column labels */
    stbi_image_free(lab);

    EXPECT(gm_save_image_grid_labeled(path, x, N, 1, H, W, N, 0, 1, &wide));   /* one row */
    lab = stbi_load(path, &lw, &lh, &lcomp, 3);
    EXPECT(lab && lw == (N * (W + 1) + 1) * 8 && lh > (H + 2) * 8);              /* s = 8 */
    if (lab) {
        area[0] = 0; area[1] = 0; area[2] = lw; area[3] = lh - (H + 2) * 8;
        EXPECT(dark_box(lab, lw, area, box) > 20 && box[0] >= 2 && box[2] <= lw - 3);
        stbi_image_free(lab);
    }
    stbi_image_free(plain);
}

/* Labels on images too narrow for them: a caption that fits at no size is left out, column
 * labels (NULL, empty or long) over columns a pixel wide shrink to nothing; the grid is
 * still written, below its caption if any (the ASan build reads every byte of this). */
static void test_grid_labels_tiny(void)
{
    enum { N = 3, H = 300, W = 1 };
    static const char *const cols[N] = {NULL, "", "a long column label"};
    gm_grid_labels caption = {"a caption over a grid a few pixels wide", NULL, NULL}, columns = {NULL, NULL, cols};
    float x[N * H * W];
    char path[512];
    unsigned char *png;
    int i, w = 0, h = 0, comp = 0;
    for (i = 0; i < N * H * W; i++) x[i] = (float)(i % 5) / 4.0f;
    out_path(path, sizeof path, "grid-tiny.png");
    EXPECT(gm_save_image_grid_labeled(path, x, 1, 1, H, W, 1, 0, 1, &caption));
    png = stbi_load(path, &w, &h, &comp, 1);
    EXPECT(png && w == 2 * (W + 2) && h == 2 * (H + 2));   /* magnified twice; no room for a caption */
    if (png) stbi_image_free(png);
    EXPECT(gm_save_image_grid_labeled(path, x, N, 1, H, W, N, 0, 1, &columns));
    png = stbi_load(path, &w, &h, &comp, 1);
    EXPECT(png && w == 2 * (N * (W + 1) + 1) && h > 2 * (H + 2) + 10);   /* a line of column labels */
    if (png) stbi_image_free(png);
}

/* The font draws every printable ASCII character, each its own way: a grid of 95 rows
 * labelled ' ' to '~' shows ink beside every row but the space's, and no two characters
 * leave the same pixels. */
static void test_font_glyphs(void)
{
    enum { N = 95, S = 20, BAND = 16 };
    static float x[N * S * S];
    static char text[N][2];
    static unsigned char ink[N][BAND * 40];
    const char *rows[N];
    gm_grid_labels labels = {NULL, NULL, NULL};
    char path[512];
    unsigned char *px;
    int k, j, u, v, w = 0, h = 0, comp = 0, left, drawn = 1, distinct = 1;
    for (k = 0; k < N; k++) { text[k][0] = (char)(' ' + k); rows[k] = text[k]; }
    labels.rows = rows;
    out_path(path, sizeof path, "glyphs.png");
    EXPECT(gm_save_image_grid_labeled(path, x, N, 1, S, S, 1, 0, 1, &labels));
    px = stbi_load(path, &w, &h, &comp, 3);
    EXPECT(px && h == N * (S + 1) + 1);       /* magnification 1: no caption, no column labels */
    if (!px || h != N * (S + 1) + 1) { if (px) stbi_image_free(px); return; }
    left = w - (S + 2);
    EXPECT(left > 10 && left <= 40);
    if (left > 40) left = 40;                 /* what ink[] holds */
    memset(ink, 0, sizeof ink);
    for (k = 0; k < N; k++) {                 /* the band of 16 rows around row k's middle */
        long dark = 0;
        int mid = 1 + k * (S + 1) + S / 2;
        for (v = 0; v < BAND; v++)
            for (u = 0; u < left; u++) {
                unsigned char g = px[3 * ((size_t)(mid - 7 + v) * w + u)];
                ink[k][v * 40 + u] = g;
                dark += 255 - g;
            }
        drawn &= k == 0 ? dark == 0 : dark > 255;
    }
    for (k = 1; k < N; k++)
        for (j = 1; j < k; j++) distinct &= memcmp(ink[k], ink[j], sizeof ink[k]) != 0;
    EXPECT(drawn);
    EXPECT(distinct);
    stbi_image_free(px);
}

/* A title wider than the picture wraps onto more lines at its full size instead of running
 * off it: its ink, between the edges and above the frame, is more than two lines high where
 * a short title's is one line. */
static void test_plot_title_wraps(void)
{
    const char *long_title = "a title much too long for a picture four hundred pixels wide, "
                             "which must wrap at its spaces instead of being cut at the edges";
    float x[3] = {0, 1, 2}, y[3] = {0, 1, 4};
    int k;
    for (k = 0; k < 2; k++) {
        unsigned char *px = plot_points(k ? "title-long.png" : "title-short.png", k ? long_title : "short",
                                        x, y, 3, 0, 0, 400, 300);
        int top, area[4], box[4];
        if (!px) return;
        top = frame_top(px, 400, 300);
        area[0] = 0; area[1] = 0; area[2] = 400; area[3] = top > 0 ? top : 300;
        EXPECT(dark_box(px, 400, area, box) > 20 && box[0] >= 3 && box[2] < 397);
        if (k) EXPECT(box[3] - box[1] > 30);          /* 15 px a line, 18 px apart */
        else EXPECT(box[3] - box[1] < 18);
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

/* gm_plot_legend(p, 0) leaves the legend out: its names and keys no longer ink the plot. */
static void test_plot_no_legend(void)
{
    float a[20], b[20];
    long ink[2];
    char path[512];
    int i, k;
    for (i = 0; i < 20; i++) { a[i] = (float)i; b[i] = (float)(20 - i); }
    for (k = 0; k < 2; k++) {
        gm_plot *p = gm_plot_new("two series", "x", "y");
        unsigned char *px;
        gm_plot_line(p, "rising", NULL, a, 20);
        gm_plot_line(p, "falling", NULL, b, 20);
        gm_plot_legend(p, k == 0);
        out_path(path, sizeof path, k ? "no-legend.png" : "legend.png");
        EXPECT(gm_plot_save(p, path, 400, 300));
        gm_plot_free(p);
        px = load_plot(path, 400, 300, &ink[k]);
        if (px) stbi_image_free(px);
    }
    EXPECT(ink[0] > ink[1] + 200);
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
    TEST(test_plot_title_fits);
    TEST(test_plot_equal_units);
    TEST(test_grid_labeled);
    TEST(test_grid_labels_tiny);
    TEST(test_font_glyphs);
    TEST(test_plot_class_names);
    TEST(test_plot_no_legend);
    TEST(test_heatmap);
    TEST(test_plot_degenerate);
    TEST(test_plot_row);
    TEST(test_progress_plain);
}
