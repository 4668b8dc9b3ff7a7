// >>output
/* Section 10: image grids, .npy arrays, plots and the progress bar. */
#include <errno.h>
#include <limits.h>
#if defined(_WIN32)
#  include <io.h>          /* _isatty, _fileno */
#elif defined(__unix__) || defined(__APPLE__)
#  include <unistd.h>      /* isatty; declared by glibc and BSD libcs even in strict C99 */
#endif

/* stb_easy_font: a public-domain font made of little bars, all of it static functions. */
#if defined(__GNUC__) || defined(__clang__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wmissing-braces"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__) || defined(__clang__)
#  pragma GCC diagnostic pop
#endif

// >>output-files
/* Every file goes to "<path>.tmp" first and is renamed over <path> only when all of it
 * was written, so a failure (full disk, missing folder, a crash) never leaves half a file
 * and never destroys the file that was there before. */
typedef struct gm__outfile {
    FILE *f;
    char *tmp;      /* "<path>.tmp" */
    int err;        /* errno of the first failure, 0 while all is well */
} gm__outfile;

static int gm__out_open(gm__outfile *o, const char *path)
{
    size_t len = strlen(path);
    o->f = NULL;
    o->err = 0;
    o->tmp = (char *)GM_MALLOC(len + 5);
    if (!o->tmp) return gm__error("%s: out of memory", path);
    memcpy(o->tmp, path, len);
    memcpy(o->tmp + len, ".tmp", 5);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        int e = errno;
        GM_FREE(o->tmp);
        o->tmp = NULL;
        return gm__error("%s: cannot write: %s", path, strerror(e));
    }
    return 1;
}

static void gm__out_write(gm__outfile *o, const void *data, size_t size)
{
    if (!o->err && size && fwrite(data, 1, size, o->f) != size) o->err = errno ? errno : EIO;
}

/* The shape stb_image_write wants for its output callback. */
static void gm__out_stbi(void *ctx, void *data, int size)
{
    gm__outfile *o = (gm__outfile *)ctx;
    gm__out_write(o, data, (size_t)size);
}

/* Close, then publish with rename() if everything went well, else delete the temporary. */
static int gm__out_close(gm__outfile *o, const char *path)
{
    int e = o->err;
    if (fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
#if defined(_WIN32)
    if (!e) remove(path);   /* Windows rename() does not replace an existing file */
#endif
    if (!e && rename(o->tmp, path) != 0) e = errno ? errno : EIO;
    if (e) remove(o->tmp);
    GM_FREE(o->tmp);
    o->tmp = NULL;
    if (e) return gm__error("%s: cannot write: %s", path, strerror(e));
    return 1;
}

/* Write an RGB or grey image as PNG through the temporary file. */
static int gm__write_png(const char *path, const unsigned char *px, int w, int h, int comp)
{
    gm__outfile o;
    if (!gm__out_open(&o, path)) return 0;
    if (!stbi_write_png_to_func(gm__out_stbi, &o, w, h, comp, px, w * comp) && !o.err)
        o.err = ENOMEM;    /* the encoder's only failure is running out of memory */
    return gm__out_close(&o, path);
}

// >>output-grid
/* v in [lo, hi] -> 0..255; NaN and everything below lo -> 0. */
static unsigned char gm__byte(float v, double lo, double scale)
{
    double t = ((double)v - lo) * scale;
    if (!(t > 0.0)) return 0;
    if (t >= 255.0) return 255;
    return (unsigned char)(t + 0.5);
}

GMDEF int gm_save_image_grid(const char *path, const float *x, int n, int c, int h, int w,
                             int ncols, float lo, float hi)
{
    long long gw, gh;   /* grid size before magnification */
    int rows, s, W, H, i, ch, r, col, X, Y, ok;
    size_t plane = (size_t)h * (size_t)w;
    double scale;
    unsigned char *grid, *big;

    if (!x || n <= 0 || (c != 1 && c != 3) || h <= 0 || w <= 0)
        return gm__error("%s: cannot make an image grid of n=%d images (C=%d, H=%d, W=%d): "
                         "need n, H, W > 0, C = 1 or 3 and x not NULL", path, n, c, h, w);
    /* rows x ncols cells; ncols <= 0 asks for a square-ish grid */
    if (ncols <= 0) ncols = (int)ceil(sqrt((double)n));
    if (ncols > n) ncols = n;
    rows = (n - 1) / ncols + 1;
    gw = (long long)ncols * ((long long)w + 1) + 1;
    gh = (long long)rows * ((long long)h + 1) + 1;
    /* stb_image_write takes int sizes; a quarter gigapixel is beyond any sensible grid */
    if (gw > 32768 || gh > 32768 || gw * gh > (1 << 28))
        return gm__error("%s: a grid of %lld x %lld pixels is too large for a PNG", path, gw, gh);

    /* lo == hi asks for the data's own range */
    if (lo == hi) {
        size_t k, total = (size_t)n * (size_t)c * plane;
        int seen = 0;
        for (k = 0; k < total; k++) {
            if (!(x[k] - x[k] == 0)) continue;     /* NaN or infinite */
            if (!seen || x[k] < lo) lo = x[k];
            if (!seen || x[k] > hi) hi = x[k];
            seen = 1;
        }
        if (lo == hi) hi = lo + 1.0f;              /* a constant image shows as black */
    }
    scale = 255.0 / ((double)hi - (double)lo);   /* hi < lo is allowed: a negative image */

    /* the smallest integer magnification that brings the longer side to 400 px */
    for (s = 1; s < 8 && s * (gw > gh ? gw : gh) < 400; s++) {}
    W = (int)gw * s;
    H = (int)gh * s;
    grid = (unsigned char *)GM_MALLOC((size_t)(gw * gh) * (size_t)c);
    big = (unsigned char *)GM_MALLOC((size_t)W * (size_t)H * (size_t)c);
    if (!grid || !big) {
        GM_FREE(grid);
        GM_FREE(big);
        return gm__error("%s: out of memory for a %d x %d image", path, W, H);
    }
    memset(grid, 128, (size_t)(gw * gh) * (size_t)c);   /* grey border everywhere first */

    /* image i goes to cell (row r, column col); its pixel (y, x) to grid pixel
     * (1 + r (H+1) + y, 1 + col (W+1) + x); NCHW planes become interleaved RGB */
    for (i = 0; i < n; i++) {
        r = i / ncols;
        col = i % ncols;
        for (ch = 0; ch < c; ch++) {
            const float *src = x + ((size_t)i * (size_t)c + (size_t)ch) * plane;
            for (Y = 0; Y < h; Y++) {
                unsigned char *dst = grid + ((size_t)(1 + r * (h + 1) + Y) * (size_t)gw
                                             + (size_t)(1 + col * (w + 1))) * (size_t)c + (size_t)ch;
                for (X = 0; X < w; X++)
                    dst[(size_t)X * (size_t)c] = gm__byte(src[Y * w + X], lo, scale);
            }
        }
    }
    /* nearest-neighbour magnification: output pixel (X, Y) shows grid pixel (X/s, Y/s) */
    for (Y = 0; Y < H; Y++)
        for (X = 0; X < W; X++)
            memcpy(big + ((size_t)Y * (size_t)W + (size_t)X) * (size_t)c,
                   grid + ((size_t)(Y / s) * (size_t)gw + (size_t)(X / s)) * (size_t)c, (size_t)c);
    ok = gm__write_png(path, big, W, H, c);
    GM_FREE(grid);
    GM_FREE(big);
    return ok;
}

// >>output-npy
/* .npy format 1.0: the 6 bytes "\x93NUMPY", version 1 0, a little-endian uint16 header
 * length, then the header (a Python dict literal padded with spaces, ending in '\n') so
 * the data start at a multiple of 64 bytes, then the values in C order. Bytes are put
 * together explicitly, so the files are little-endian on any host. */
GMDEF int gm_save_npy(const char *path, const float *x, int ndim, const int *shape)
{
    char head[256];
    unsigned char buf[4096];
    size_t count = 1, k, used = 0;
    int i, len;
    gm__outfile o;

    if (ndim < 0 || ndim > 4 || (ndim > 0 && !shape))
        return gm__error("%s: cannot save an array of %d dimensions (0 to 4)", path, ndim);
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0) return gm__error("%s: dimension %d of the shape is %d", path, i, shape[i]);
        if (shape[i] > 0 && count > (size_t)-1 / 4 / (size_t)shape[i])
            return gm__error("%s: an array of that shape does not fit in memory", path);
        count *= (size_t)shape[i];
    }
    if (count > 0 && !x) return gm__error("%s: no values to save (x is NULL)", path);

    /* the header as numpy writes it: a 1-D shape needs its trailing comma, (7,) */
    len = sprintf(head + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (i = 0; i < ndim; i++)
        len += sprintf(head + 10 + len, i + 1 < ndim ? "%d, " : ndim == 1 ? "%d," : "%d", shape[i]);
    len += sprintf(head + 10 + len, "), }");
    while ((10 + len + 1) % 64 != 0) head[10 + len++] = ' ';   /* 64-byte aligned data */
    head[10 + len++] = '\n';
    /* magic, version 1.0, header length as little-endian uint16 */
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (char)(len & 255);
    head[9] = (char)(len >> 8);

    /* values go out in blocks of 1024, each float's bits least significant byte first */
    if (!gm__out_open(&o, path)) return 0;
    gm__out_write(&o, head, (size_t)(10 + len));
    for (k = 0; k < count; k++) {
        uint32_t u;
        memcpy(&u, &x[k], 4);
        buf[used++] = (unsigned char)(u & 255);          /* least significant byte first */
        buf[used++] = (unsigned char)((u >> 8) & 255);
        buf[used++] = (unsigned char)((u >> 16) & 255);
        buf[used++] = (unsigned char)(u >> 24);
        if (used == sizeof buf) { gm__out_write(&o, buf, used); used = 0; }
    }
    gm__out_write(&o, buf, used);
    return gm__out_close(&o, path);
}

/* What the header dict says. */
typedef struct gm__npy_head {
    char descr[16];
    int fortran;
    int ndim;
    long long shape[32];
    int have;           /* bits: 1 descr, 2 fortran_order, 4 shape */
} gm__npy_head;

/* The header parser reads only what numpy writes: strings, True/False, tuples of ints. */
static const char *gm__skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return s;
}

/* A quoted Python string ('...' or "...") into buf; returns what follows, NULL if malformed. */
static const char *gm__npy_string(const char *s, char *buf, size_t cap)
{
    char q = *s;
    size_t n = 0;
    if (q != '\'' && q != '"') return NULL;
    for (s++; *s && *s != q; s++)
        if (n + 1 < cap) buf[n++] = *s;
    buf[n] = 0;
    return *s == q ? s + 1 : NULL;
}

/* The header is a dict literal like {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * Returns 1 if it has the three keys and nothing else, 0 if malformed. */
static int gm__npy_parse(const char *s, gm__npy_head *hd)
{
    memset(hd, 0, sizeof *hd);
    s = gm__skip_space(s);
    if (*s != '{') return 0;    /* test before stepping: never step over the final NUL */
    s++;
    for (;;) {
        char key[32];
        s = gm__skip_space(s);
        if (*s == '}') break;
        if (!(s = gm__npy_string(s, key, sizeof key))) return 0;
        s = gm__skip_space(s);
        if (*s != ':') return 0;
        s = gm__skip_space(s + 1);
        if (strcmp(key, "descr") == 0) {
            if (!(s = gm__npy_string(s, hd->descr, sizeof hd->descr))) return 0;
            hd->have |= 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (strncmp(s, "True", 4) == 0) { hd->fortran = 1; s += 4; }
            else if (strncmp(s, "False", 5) == 0) { hd->fortran = 0; s += 5; }
            else return 0;
            hd->have |= 2;
        } else if (strcmp(key, "shape") == 0) {
            if (*s != '(') return 0;
            for (s++;;) {
                long long v = 0;
                s = gm__skip_space(s);
                if (*s == ')') { s++; break; }
                if (*s < '0' || *s > '9' || hd->ndim == 32) return 0;
                for (; *s >= '0' && *s <= '9'; s++)
                    if ((v = v * 10 + (*s - '0')) > INT_MAX) v = (long long)INT_MAX + 1;  /* saturate */
                if (*s == 'L') s++;                  /* Python 2 wrote longs as 3L */
                hd->shape[hd->ndim++] = v;
                s = gm__skip_space(s);
                if (*s == ',') s++;
                else if (*s != ')') return 0;
            }
            hd->have |= 4;
        } else {
            return 0;
        }
        s = gm__skip_space(s);
        if (*s == ',') s++;
        else if (*s != '}') return 0;
    }
    return hd->have == 7;
}

/* The reading itself: header checks first, then values. Returns 1 with *out the values
 * (GM_MALLOC'd) and hd the header, or 0 with the reason in gm_last_error(). */
static int gm__npy_read(FILE *f, const char *path, gm__npy_head *hd, float **out)
{
    unsigned char pre[10], buf[4096];
    char text[4096];    /* a float32 header is about 120 bytes */
    size_t hlen, count = 1, k, got;
    long start, end;
    float *x;
    int i;

    got = fread(pre, 1, 8, f);
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return gm__error("%s: not a .npy file (bad magic)", path);
    if (got < 8) return gm__error("%s: truncated .npy header", path);
    /* version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one */
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) return gm__error("%s: truncated .npy header", path);
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 6, 1, 4, f) != 4) return gm__error("%s: truncated .npy header", path);
        hlen = (size_t)pre[6] | (size_t)pre[7] << 8 | (size_t)pre[8] << 16 | (size_t)pre[9] << 24;
    } else {
        return gm__error("%s: .npy format version %d.%d is not supported", path, pre[6], pre[7]);
    }
    if (hlen >= sizeof text)
        return gm__error("%s: .npy header of %lu bytes is absurd for a float32 array",
                         path, (unsigned long)hlen);
    if (fread(text, 1, hlen, f) != hlen) return gm__error("%s: truncated .npy header", path);
    text[hlen] = 0;

    if (!gm__npy_parse(text, hd)) return gm__error("%s: malformed .npy header: %.80s", path, text);
    if (strcmp(hd->descr, "<f4") != 0)
        return gm__error("%s: dtype is '%s', genmod reads only little-endian float32 '<f4' "
                         "(convert with a.astype('<f4'))", path, hd->descr);
    if (hd->fortran)
        return gm__error("%s: array is in Fortran order; save np.ascontiguousarray(a) instead", path);
    if (hd->ndim > 4)
        return gm__error("%s: array has %d dimensions, genmod reads at most 4", path, hd->ndim);
    for (i = 0; i < hd->ndim; i++) {
        /* count stays <= INT_MAX, so count * 4 fits a size_t and every index an int */
        long long d = hd->shape[i];
        if (d > INT_MAX || (d > 0 && count > (size_t)INT_MAX / (size_t)d))
            return gm__error("%s: shape is absurd (more than %d values)", path, INT_MAX);
        count *= (size_t)d;
    }

    /* the data must fill the rest of the file exactly: fewer bytes is a truncated file,
     * more means the header lies; checked before allocating what the header asks for */
    start = ftell(f);
    if (start >= 0 && fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= start) {
        if ((size_t)(end - start) != count * 4)
            return gm__error("%s: %s: the shape needs %lu bytes of data, the file has %ld", path,
                             (size_t)(end - start) < count * 4 ? "truncated" : "trailing bytes",
                             (unsigned long)(count * 4), end - start);
        fseek(f, start, SEEK_SET);
    }
    if (!(x = (float *)GM_MALLOC(count ? count * 4 : 4))) return gm__error("%s: out of memory", path);
    for (k = 0; k < count; k += got / 4) {
        size_t want = (count - k) * 4 < sizeof buf ? (count - k) * 4 : sizeof buf, j;
        if ((got = fread(buf, 1, want, f)) != want) {
            GM_FREE(x);
            return gm__error("%s: truncated .npy data", path);
        }
        for (j = 0; j < got; j += 4) {   /* little-endian bytes -> float, on any host */
            uint32_t u = (uint32_t)buf[j] | (uint32_t)buf[j + 1] << 8
                       | (uint32_t)buf[j + 2] << 16 | (uint32_t)buf[j + 3] << 24;
            memcpy(&x[k + j / 4], &u, 4);
        }
    }
    *out = x;
    return 1;
}

GMDEF float *gm_load_npy(const char *path, int *ndim, int shape[4])
{
    gm__npy_head hd;
    float *x = NULL;
    int i, ok;
    FILE *f = fopen(path, "rb");
    if (!f) { gm__error("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    ok = gm__npy_read(f, path, &hd, &x);
    fclose(f);
    if (!ok) return NULL;
    *ndim = hd.ndim;    /* the caller's variables change only on success */
    for (i = 0; i < hd.ndim; i++) shape[i] = (int)hd.shape[i];
    return x;
}

GMDEF void gm_npy_free(float *x) { GM_FREE(x); }

// >>output-canvas
/* An RGB canvas with a clip rectangle [cx0, cx1) x [cy0, cy1); colours are 0xRRGGBB and
 * drawing blends with a coverage a in [0, 1], which is also how edges get anti-aliased. */
typedef struct gm__canvas {
    unsigned char *px;
    int w, h;
    int cx0, cy0, cx1, cy1;
} gm__canvas;

static void gm__clip(gm__canvas *cv, int x0, int y0, int x1, int y1)
{
    cv->cx0 = x0 < 0 ? 0 : x0;
    cv->cy0 = y0 < 0 ? 0 : y0;
    cv->cx1 = x1 > cv->w ? cv->w : x1;
    cv->cy1 = y1 > cv->h ? cv->h : y1;
}

/* pixel <- pixel + a (colour - pixel) */
static void gm__blend(gm__canvas *cv, int x, int y, unsigned rgb, float a)
{
    unsigned char *p;
    int k;
    if (x < cv->cx0 || x >= cv->cx1 || y < cv->cy0 || y >= cv->cy1) return;
    p = cv->px + ((size_t)y * (size_t)cv->w + (size_t)x) * 3;
    for (k = 0; k < 3; k++) {
        float c = (float)((rgb >> (16 - 8 * k)) & 255);
        p[k] = (unsigned char)(p[k] + a * (c - p[k]) + 0.5f);
    }
}

/* Cut the pixel box [x0,x1) x [y0,y1) to the canvas's clip rectangle. */
static void gm__clip_box(const gm__canvas *cv, int *x0, int *y0, int *x1, int *y1)
{
    if (*x0 < cv->cx0) *x0 = cv->cx0;
    if (*y0 < cv->cy0) *y0 = cv->cy0;
    if (*x1 > cv->cx1) *x1 = cv->cx1;
    if (*y1 > cv->cy1) *y1 = cv->cy1;
}

static void gm__rect(gm__canvas *cv, int x0, int y0, int x1, int y1, unsigned rgb, float a)
{
    int x, y;
    gm__clip_box(cv, &x0, &y0, &x1, &y1);
    for (y = y0; y < y1; y++)
        for (x = x0; x < x1; x++) gm__blend(cv, x, y, rgb, a);
}

/* A segment from a to b, width px wide: each pixel near it is covered by
 * clamp(width/2 + 1/2 - distance to the segment, 0, 1), an anti-aliased line. */
static void gm__segment(gm__canvas *cv, float ax, float ay, float bx, float by, float width,
                         unsigned rgb)
{
    float r = 0.5f * width + 0.5f, dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    int x0 = (int)floor((ax < bx ? ax : bx) - r), x1 = (int)ceil((ax > bx ? ax : bx) + r);
    int y0 = (int)floor((ay < by ? ay : by) - r), y1 = (int)ceil((ay > by ? ay : by) + r);
    int x, y;
    gm__clip_box(cv, &x0, &y0, &x1, &y1);
    for (y = y0; y < y1; y++)
        for (x = x0; x < x1; x++) {
            float px = (float)x + 0.5f - ax, py = (float)y + 0.5f - ay;   /* pixel centre - a */
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0.0f, ex, ey, cover;
            t = t < 0 ? 0 : t > 1 ? 1 : t;           /* the nearest point is a + t (b - a) */
            ex = px - t * dx;
            ey = py - t * dy;
            cover = r - (float)sqrt(ex * ex + ey * ey);
            if (cover > 0) gm__blend(cv, x, y, rgb, cover > 1 ? 1 : cover);
        }
}

/* A filled disc of radius rad around (cx, cy) with opacity a, anti-aliased like the lines. */
static void gm__disc(gm__canvas *cv, float cx, float cy, float rad, unsigned rgb, float a)
{
    int x, y;
    for (y = (int)floor(cy - rad - 1); y <= (int)ceil(cy + rad + 1); y++)
        for (x = (int)floor(cx - rad - 1); x <= (int)ceil(cx + rad + 1); x++) {
            float ex = (float)x + 0.5f - cx, ey = (float)y + 0.5f - cy;
            float cover = rad + 0.5f - (float)sqrt(ex * ex + ey * ey);
            if (cover > 0) gm__blend(cv, x, y, rgb, a * (cover > 1 ? 1 : cover));
        }
}

// >>output-text
/* stb_easy_font glyphs are axis-aligned bars on a grid of font units: capitals 7 units
 * high, descenders to 10, about 6 units of advance. We paint each bar as an s x s scaled
 * rectangle. GM__TEXT_H is the height a line of text takes, in font units. */
#define GM__TEXT_H 10

/* Width in pixels: the sum of the glyphs' advances, drawn one glyph at a time below. */
static int gm__text_width(const char *str, int s)
{
    char one[2] = {0, 0};
    int w = 0;
    for (; *str; str++) {
        one[0] = (*str >= 32 && *str <= 126) ? *str : '?';    /* the font is plain ASCII */
        w += stb_easy_font_width(one);
    }
    return w * s;
}

/* Text with its top-left corner at (x, y), s pixels per font unit. vertical != 0 turns it
 * a quarter turn counter-clockwise (read from bottom to top); (x, y) is then the corner at
 * the bottom-left, where reading starts. */
static void gm__text(gm__canvas *cv, int x, int y, const char *str, int s, unsigned rgb, int vertical)
{
    float quads[256];    /* one glyph: at most 11 bars x 4 vertices x (x, y, z, colour) */
    char one[2] = {0, 0};
    int pen = 0, q, nq;
    for (; *str; str++) {
        one[0] = (*str >= 32 && *str <= 126) ? *str : '?';
        nq = stb_easy_font_print((float)pen, 0.0f, one, NULL, quads, (int)sizeof quads);
        for (q = 0; q < nq; q++) {
            /* vertex 0 is the bar's top-left (u0, v0), vertex 2 its bottom-right (u1, v1) */
            int u0 = (int)quads[q * 16 + 0] * s, v0 = (int)quads[q * 16 + 1] * s;
            int u1 = (int)quads[q * 16 + 8] * s, v1 = (int)quads[q * 16 + 9] * s;
            if (vertical) gm__rect(cv, x + v0, y - u1, x + v1, y - u0, rgb, 1.0f);
            else          gm__rect(cv, x + u0, y + v0, x + u1, y + v1, rgb, 1.0f);
        }
        pen += stb_easy_font_width(one);
    }
}

// >>output-plot
enum { GM__LINE, GM__SCATTER };

typedef struct gm__series {
    int kind;           /* GM__LINE or GM__SCATTER */
    char label[40];     /* "" keeps it out of the legend */
    int n;
    float *x, *y;       /* our own copies */
    int *cls;           /* labelled scatter: class of each point, 0..nclass-1; else NULL */
    int nclass;
    int colour;         /* palette index of a one-colour series */
} gm__series;

struct gm_plot {
    char title[96], xlabel[64], ylabel[64];
    gm__series *s;
    int ns, cap, ncolour;   /* series, room for, one-colour series so far */
    float *heat;            /* the heatmap layer (rows, cols), or NULL */
    int rows, cols;
    float hx0, hx1, hy0, hy1;
    int logy;
    char error[200];        /* the first thing that went wrong, reported by gm_plot_save */
};

/* Colour-blind-safe colours: the Okabe-Ito set (without its yellow, too pale on white)
 * followed by dark tones from Paul Tol's palettes, so ten classes stay distinguishable. */
static const unsigned gm__palette[10] = {
    0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7, 0xE69F00,
    0x56B4E9, 0x332288, 0x999933, 0x882255, 0x555555
};

#define GM__INK   0x222222   /* text */
#define GM__FRAME 0x444444   /* axes box and ticks */
#define GM__GRID  0xEBEBEB   /* light grid lines at the ticks */

/* A viridis-like map from t in [0, 1] to colour: dark purple, blue, teal, green, yellow,
 * linear in between. Lightness rises steadily, so it reads right in grey and for
 * colour-blind eyes. */
static unsigned gm__colormap(float t)
{
    static const unsigned char stops[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}
    };
    float f;
    int i, k;
    unsigned rgb = 0;
    if (!(t >= 0)) t = 0;   /* also NaN */
    if (t > 1) t = 1;
    f = t * 4;
    i = f >= 4 ? 3 : (int)f;
    f -= (float)i;
    for (k = 0; k < 3; k++)
        rgb = rgb << 8 | (unsigned)(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]) + 0.5f);
    return rgb;
}

/* Copy a caller's string into a fixed buffer, cut if too long; NULL becomes "". */
static void gm__copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = 0;
}

/* Remember the first failure; later calls keep going harmlessly. */
static void gm__plot_fail(gm_plot *p, const char *fmt, ...)
{
    va_list ap;
    if (p->error[0]) return;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
}

GMDEF gm_plot *gm_plot_new(const char *title, const char *xlabel, const char *ylabel)
{
    gm_plot *p = (gm_plot *)gm__calloc(1, sizeof *p);
    if (!p) return NULL;
    gm__copy_text(p->title, sizeof p->title, title);
    gm__copy_text(p->xlabel, sizeof p->xlabel, xlabel);
    gm__copy_text(p->ylabel, sizeof p->ylabel, ylabel);
    return p;
}

/* A new series of n points with x and y arrays allocated; NULL after recording a failure. */
static gm__series *gm__plot_push(gm_plot *p, int kind, const char *label, int n, const char *fn)
{
    gm__series *s;
    if (n < 0) { gm__plot_fail(p, "%s: n is %d", fn, n); return NULL; }
    if (p->ns == p->cap) {
        int cap = p->cap ? 2 * p->cap : 8;
        gm__series *more = (gm__series *)GM_REALLOC(p->s, (size_t)cap * sizeof *more);
        if (!more) { gm__plot_fail(p, "%s: out of memory", fn); return NULL; }
        p->s = more;
        p->cap = cap;
    }
    s = &p->s[p->ns];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n = n;
    gm__copy_text(s->label, sizeof s->label, label);
    s->x = (float *)gm__calloc((size_t)n, sizeof(float));
    s->y = (float *)gm__calloc((size_t)n, sizeof(float));
    if (!s->x || !s->y) {
        GM_FREE(s->x);
        GM_FREE(s->y);
        gm__plot_fail(p, "%s: out of memory for %d points", fn, n);
        return NULL;
    }
    p->ns++;
    return s;
}

/* Lines and one-colour scatters: copy, x defaulting to 0, 1, 2, ... */
static void gm__plot_xy(gm_plot *p, int kind, const char *label, const float *x, const float *y,
                        int n, const char *fn)
{
    gm__series *s;
    int i;
    if (!p) return;
    if (n > 0 && !y) { gm__plot_fail(p, "%s: y is NULL", fn); return; }
    if (!(s = gm__plot_push(p, kind, label, n, fn))) return;
    for (i = 0; i < n; i++) {
        s->x[i] = x ? x[i] : (float)i;
        s->y[i] = y[i];
    }
    s->colour = p->ncolour++ % 10;
}

GMDEF void gm_plot_line(gm_plot *p, const char *label, const float *x, const float *y, int n)
{
    gm__plot_xy(p, GM__LINE, label, x, y, n, "gm_plot_line");
}

GMDEF void gm_plot_scatter(gm_plot *p, const char *label, const float *x, const float *y, int n)
{
    gm__plot_xy(p, GM__SCATTER, label, x, y, n, "gm_plot_scatter");
}

GMDEF void gm_plot_scatter_labeled(gm_plot *p, const float *xy, const int *labels, int n, int nclass)
{
    gm__series *s;
    int i;
    if (!p) return;
    if (nclass <= 0) { gm__plot_fail(p, "gm_plot_scatter_labeled: nclass is %d", nclass); return; }
    if (n > 0 && (!xy || !labels)) {
        gm__plot_fail(p, "gm_plot_scatter_labeled: xy or labels is NULL");
        return;
    }
    for (i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= nclass) {
            gm__plot_fail(p, "gm_plot_scatter_labeled: labels[%d] is %d, not in 0..%d",
                          i, labels[i], nclass - 1);
            return;
        }
    /* one series with a class per point: drawn in the caller's order, so no class is
     * painted over all the others just because it came last */
    if (!(s = gm__plot_push(p, GM__SCATTER, "", n, "gm_plot_scatter_labeled"))) return;
    if (!(s->cls = (int *)gm__calloc((size_t)n, sizeof(int)))) {
        GM_FREE(s->x);
        GM_FREE(s->y);
        p->ns--;
        gm__plot_fail(p, "gm_plot_scatter_labeled: out of memory for %d points", n);
        return;
    }
    for (i = 0; i < n; i++) {
        s->x[i] = xy[2 * i];
        s->y[i] = xy[2 * i + 1];
        s->cls[i] = labels[i];
    }
    s->nclass = nclass;
}

GMDEF void gm_plot_heatmap(gm_plot *p, const float *v, int rows, int cols,
                           float x0, float x1, float y0, float y1)
{
    float *copy;
    if (!p) return;
    if (!v || rows <= 0 || cols <= 0 || !(x0 < x1) || !(y0 < y1)) {
        gm__plot_fail(p, "gm_plot_heatmap: need v, rows, cols > 0, x0 < x1 and y0 < y1 "
                         "(got rows=%d cols=%d x %g..%g y %g..%g)", rows, cols, x0, x1, y0, y1);
        return;
    }
    if (!(copy = (float *)gm__calloc((size_t)rows * (size_t)cols, sizeof(float)))) {
        gm__plot_fail(p, "gm_plot_heatmap: out of memory for %d x %d values", rows, cols);
        return;
    }
    memcpy(copy, v, (size_t)rows * (size_t)cols * sizeof(float));
    /* replace only once the copy succeeded, so a failure leaves the old layer intact */
    GM_FREE(p->heat);
    p->heat = copy;
    p->rows = rows;
    p->cols = cols;
    p->hx0 = x0; p->hx1 = x1; p->hy0 = y0; p->hy1 = y1;
}

GMDEF void gm_plot_logy(gm_plot *p, int on) { if (p) p->logy = on != 0; }

GMDEF void gm_plot_free(gm_plot *p)
{
    int i;
    if (!p) return;
    for (i = 0; i < p->ns; i++) {
        GM_FREE(p->s[i].x);
        GM_FREE(p->s[i].y);
        GM_FREE(p->s[i].cls);
    }
    GM_FREE(p->s);
    GM_FREE(p->heat);
    GM_FREE(p);
}

/* An axis maps data to pixels. In "axis space" a value is v, or log10(v) on a log axis;
 * [lo, hi] in axis space goes linearly to pixels [p0, p1] (p1 < p0 for y, which grows
 * downwards on screen). */
#define GM__MAXTICK 24
typedef struct gm__axis {
    double lo, hi;
    int log;
    double p0, p1;
    int ntick;
    double tick[GM__MAXTICK];       /* in axis space */
    char label[GM__MAXTICK][24];
} gm__axis;

static double gm__to_axis(const gm__axis *a, double v) { return a->log ? log10(v) : v; }

/* NaN when v cannot be shown (not finite, or <= 0 on a log axis) */
static double gm__to_px(const gm__axis *a, double v)
{
    if (!(v - v == 0) || (a->log && v <= 0)) return NAN;
    return a->p0 + (gm__to_axis(a, v) - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* A "nice" step for about `want` intervals over span: 1, 2 or 5 times a power of ten. */
static double gm__nice_step(double span, int want)
{
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Tick values k*step within [lo, hi], labelled with just enough decimals for the step. */
static void gm__ticks_linear(gm__axis *a, double lo, double hi, int want, int as_log)
{
    double step = gm__nice_step(hi - lo, want), big = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    double k, k0 = ceil(lo / step - 1e-9), k1 = floor(hi / step + 1e-9);
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    for (k = k0; k <= k1 && a->ntick < GM__MAXTICK; k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9) v = 0;    /* no "-0" or "1e-17" */
        if (as_log && v <= 0) continue;
        a->tick[a->ntick] = as_log ? log10(v) : v;
        if (big >= 1e6 || step < 1e-4) snprintf(a->label[a->ntick], 24, "%g", v);
        else snprintf(a->label[a->ntick], 24, "%.*f", decimals, v);
        a->ntick++;
    }
}

/* A log axis covering several decades gets ticks at powers of ten (every d-th if there
 * are many), one or two decades get 1, 2, 5 x 10^k, less than that gets linear ticks. */
static void gm__ticks(gm__axis *a, int want)
{
    double d = a->hi - a->lo, e;
    a->ntick = 0;
    if (!a->log) { gm__ticks_linear(a, a->lo, a->hi, want, 0); return; }
    if (d >= 3) {
        double stride = ceil(gm__nice_step(d, want));
        for (e = ceil(a->lo / stride) * stride; e <= a->hi + 1e-9 && a->ntick < GM__MAXTICK;
             e += stride) {
            a->tick[a->ntick] = e;
            snprintf(a->label[a->ntick++], 24, "%g", pow(10.0, e));
        }
    } else if (d >= 0.7) {
        static const double m[3] = {1, 2, 5};
        int i;
        for (e = floor(a->lo); e <= ceil(a->hi); e++)
            for (i = 0; i < 3; i++) {
                double t = e + log10(m[i]);
                if (t < a->lo - 1e-9 || t > a->hi + 1e-9 || a->ntick == GM__MAXTICK) continue;
                a->tick[a->ntick] = t;
                snprintf(a->label[a->ntick++], 24, "%g", m[i] * pow(10.0, e));
            }
    } else {
        gm__ticks_linear(a, pow(10.0, a->lo), pow(10.0, a->hi), want, 1);
    }
}

/* Pixels the widest tick label takes, to size the margin or space the ticks. */
static int gm__widest_label(const gm__axis *a, int s)
{
    int i, w = 0;
    for (i = 0; i < a->ntick; i++) {
        int lw = gm__text_width(a->label[i], s);
        if (lw > w) w = lw;
    }
    return w;
}

/* Fit [lo, hi] (axis space) to the data with a 5% margin, then stretch it to cover the
 * heatmap's extent [e0, e1] when there is one. A range of width 0 (a constant series, a
 * single point) is widened, so nothing divides by zero. */
static void gm__fit(gm__axis *a, double lo, double hi, int have, int heat, double e0, double e1)
{
    double span;
    if (!have && !heat) { lo = 0; hi = 1; }     /* nothing to show: 0..1 (1..10 on a log axis) */
    else if (have) {
        span = hi - lo;
        if (span <= 1e-12 * (fabs(lo) + fabs(hi))) {
            double pad = fabs(lo) > 0 ? 0.1 * fabs(lo) : 1;
            if (a->log) pad = 0.5;    /* half a decade either side */
            lo -= pad;
            hi += pad;
        } else {
            lo -= 0.05 * span;
            hi += 0.05 * span;
        }
    }
    if (heat) {
        /* the heatmap's edges are the axis ends unless points lie outside them */
        if (!have || lo > e0) lo = e0;
        if (!have || hi < e1) hi = e1;
    }
    a->lo = lo;
    a->hi = hi;
}

/* Legend entries: one per labelled series, or one per class of a labelled scatter. */
static int gm__legend_count(const gm_plot *p)
{
    int i, n = 0;
    for (i = 0; i < p->ns; i++) n += p->s[i].cls ? p->s[i].nclass : p->s[i].label[0] != 0;
    return n;
}

/* How many drawn points (and samples along lines, every few pixels) fall inside box b. */
static long gm__points_in(const gm_plot *p, const gm__axis *ax, const gm__axis *ay, const int b[4])
{
    long hits = 0;
    int i, j;
    for (i = 0; i < p->ns; i++) {
        const gm__series *s = &p->s[i];
        double px = NAN, py = NAN;
        for (j = 0; j < s->n; j++) {
            double qx = gm__to_px(ax, s->x[j]), qy = gm__to_px(ay, s->y[j]), t, steps = 1;
            if (qx != qx || qy != qy) { px = NAN; continue; }
            if (s->kind == GM__LINE && px == px) steps = ceil(fabs(qx - px) + fabs(qy - py)) / 4 + 1;
            for (t = 1; t <= steps; t++) {
                double sx = px == px ? px + (qx - px) * t / steps : qx;
                double sy = px == px ? py + (qy - py) * t / steps : qy;
                hits += sx >= b[0] && sx < b[2] && sy >= b[1] && sy < b[3];
            }
            px = qx;
            py = qy;
        }
    }
    return hits;
}

/* Draw one legend entry's sample: a short line or a dot. */
static void gm__legend_key(gm__canvas *cv, int kind, int x, int y, unsigned rgb)
{
    if (kind == GM__LINE) gm__segment(cv, (float)x, (float)y, (float)x + 18, (float)y, 2.0f, rgb);
    else gm__disc(cv, (float)x + 9, (float)y, 3.5f, rgb, 1.0f);
}

/* The legend box: entries stacked in columns, put in the corner of the plot area where it
 * hides the fewest points. */
static void gm__legend(const gm_plot *p, gm__canvas *cv, const gm__axis *ax, const gm__axis *ay, int ts)
{
    int n = gm__legend_count(p), i, k, e, tw = 0, lh = 12 * ts + 4, per_col, ncol, bw, bh;
    int c, pl = (int)ax->p0, pr = (int)ax->p1, pt = (int)ay->p1, pb = (int)ay->p0, b[4];
    long fewest = -1;
    char num[16];
    if (n < 2 || n > 40) return;    /* one series needs no legend; 40 would be wallpaper */
    for (i = 0; i < p->ns; i++) {
        const gm__series *s = &p->s[i];
        if (s->cls) {
            snprintf(num, sizeof num, "%d", s->nclass - 1);
            if (gm__text_width(num, ts) > tw) tw = gm__text_width(num, ts);
        } else if (gm__text_width(s->label, ts) > tw) {
            tw = gm__text_width(s->label, ts);
        }
    }
    /* entries in columns when they do not fit in the plot's height */
    per_col = (pb - pt - 30) / lh;
    if (per_col < 1) per_col = 1;
    ncol = (n - 1) / per_col + 1;
    per_col = (n - 1) / ncol + 1;
    bw = ncol * (18 + 6 + tw + 12) + 8;
    bh = per_col * lh + 10;
    /* the corner (top-right, top-left, bottom-right, bottom-left) hiding the fewest points */
    for (c = 0; c < 4; c++) {
        int x0 = (c & 1) ? pl + 8 : pr - 8 - bw, y0 = (c & 2) ? pb - 8 - bh : pt + 8;
        int box[4];
        long hits;
        box[0] = x0; box[1] = y0; box[2] = x0 + bw; box[3] = y0 + bh;
        hits = gm__points_in(p, ax, ay, box);
        if (fewest < 0 || hits < fewest) { fewest = hits; memcpy(b, box, sizeof b); }
    }
    gm__rect(cv, b[0], b[1], b[2], b[3], 0xFFFFFF, 0.85f);
    gm__rect(cv, b[0], b[1], b[2], b[1] + 1, 0xBBBBBB, 1.0f);
    gm__rect(cv, b[0], b[3] - 1, b[2], b[3], 0xBBBBBB, 1.0f);
    gm__rect(cv, b[0], b[1], b[0] + 1, b[3], 0xBBBBBB, 1.0f);
    gm__rect(cv, b[2] - 1, b[1], b[2], b[3], 0xBBBBBB, 1.0f);
    /* entry e sits in column e / per_col, row e % per_col */
    for (i = 0, e = 0; i < p->ns; i++) {
        const gm__series *s = &p->s[i];
        int m = s->cls ? s->nclass : s->label[0] != 0;
        for (k = 0; k < m; k++, e++) {
            int x = b[0] + 8 + (e / per_col) * (18 + 6 + tw + 12), y = b[1] + 5 + (e % per_col) * lh;
            const char *text = s->label;
            unsigned rgb = gm__palette[s->colour];
            if (s->cls) {
                snprintf(num, sizeof num, "%d", k);
                text = num;
                rgb = gm__palette[k % 10];
            }
            gm__legend_key(cv, s->kind, x, y + lh / 2 - 2, rgb);
            gm__text(cv, x + 24, y + (lh - 4 - 7 * ts) / 2, text, ts, GM__INK, 0);
        }
    }
}

/* Paint the heatmap into the plot area: each pixel looks up the cell under its centre. */
static void gm__draw_heat(const gm_plot *p, gm__canvas *cv, const gm__axis *ax, const gm__axis *ay,
                          float vmin, float vmax)
{
    int x, y;
    for (y = cv->cy0; y < cv->cy1; y++) {
        /* pixel -> axis space -> data, then the row counted from the top (y = y1) */
        double ya = ay->lo + ((double)y + 0.5 - ay->p0) / (ay->p1 - ay->p0) * (ay->hi - ay->lo);
        double yv = ay->log ? pow(10.0, ya) : ya;
        double rowf = ((double)p->hy1 - yv) / ((double)p->hy1 - p->hy0) * p->rows;
        if (!(rowf >= 0 && rowf < p->rows)) continue;
        for (x = cv->cx0; x < cv->cx1; x++) {
            double xv = ax->lo + ((double)x + 0.5 - ax->p0) / (ax->p1 - ax->p0) * (ax->hi - ax->lo);
            double colf = (xv - p->hx0) / ((double)p->hx1 - p->hx0) * p->cols;
            float v;
            if (!(colf >= 0 && colf < p->cols)) continue;
            v = p->heat[(size_t)rowf * (size_t)p->cols + (size_t)colf];
            gm__blend(cv, x, y, v == v ? gm__colormap((v - vmin) / (vmax - vmin)) : 0xCCCCCC, 1.0f);
        }
    }
}

/* Where everything goes on the canvas. */
typedef struct gm__layout {
    int w, h;                       /* canvas */
    int left, right, top, bottom;   /* margins around the plot area */
    int ts;                         /* pixels per font unit for labels; the title gets ts + 1 */
    float vmin, vmax;               /* heatmap value range, mapped to colours 0..1 */
    char vlo[24], vhi[24];          /* their labels on the colour bar */
} gm__layout;

/* Axis ranges from the data (skipping what cannot be drawn) and the heatmap extent. */
static void gm__plot_ranges(const gm_plot *p, gm__axis *ax, gm__axis *ay, gm__layout *L)
{
    double xmin = 0, xmax = 0, ymin = 0, ymax = 0, e0, e1;
    int have = 0, i, j;
    for (i = 0; i < p->ns; i++)
        for (j = 0; j < p->s[i].n; j++) {
            double x = p->s[i].x[j], y = p->s[i].y[j];
            if (!(x - x == 0) || !(y - y == 0) || (ay->log && y <= 0)) continue;   /* inf, NaN */
            y = gm__to_axis(ay, y);
            if (!have || x < xmin) xmin = x;
            if (!have || x > xmax) xmax = x;
            if (!have || y < ymin) ymin = y;
            if (!have || y > ymax) ymax = y;
            have = 1;
        }
    L->vmin = L->vmax = 0;
    if (p->heat) {
        size_t k, nv = (size_t)p->rows * (size_t)p->cols;
        int seen = 0;
        for (k = 0; k < nv; k++) {
            float v = p->heat[k];
            if (!(v - v == 0)) continue;
            if (!seen || v < L->vmin) L->vmin = v;
            if (!seen || v > L->vmax) L->vmax = v;
            seen = 1;
        }
        if (!(L->vmax > L->vmin)) L->vmax = L->vmin + 1;   /* a constant map: its lowest colour */
    }
    gm__fit(ax, xmin, xmax, have, p->heat != NULL, p->hx0, p->hx1);
    /* on a log axis the heatmap's y extent counts only if it is positive */
    e0 = ay->log && p->hy0 > 0 ? log10(p->hy0) : p->hy0;
    e1 = ay->log && p->hy0 > 0 ? log10(p->hy1) : p->hy1;
    gm__fit(ay, ymin, ymax, have, p->heat && !(ay->log && p->hy0 <= 0), e0, e1);
}

/* Margins and ticks. The left margin waits for the y tick labels, whose number depends on
 * the plot's height; the x ticks thin out until their labels no longer touch. */
static void gm__plot_layout(const gm_plot *p, gm__axis *ax, gm__axis *ay, gm__layout *L)
{
    int ts, want, wl, wh;
    L->ts = ts = (L->w < 1000 || L->h < 750) ? 1 : 2;
    L->top = p->title[0] ? 14 + GM__TEXT_H * (ts + 1) + 10 : 16;
    /* tick, gap, tick labels, the x label, edge */
    L->bottom = 6 + 6 + GM__TEXT_H * ts + (p->xlabel[0] ? 10 + GM__TEXT_H * ts : 0) + 12;
    L->right = 24;
    if (p->heat) {
        snprintf(L->vlo, sizeof L->vlo, "%.3g", (double)L->vmin);
        snprintf(L->vhi, sizeof L->vhi, "%.3g", (double)L->vmax);
        wl = gm__text_width(L->vlo, ts);
        wh = gm__text_width(L->vhi, ts);
        L->right = 18 + 16 + 6 + (wl > wh ? wl : wh) + 12;   /* gap, bar, gap, labels, edge */
    }
    ay->p0 = L->h - L->bottom;
    ay->p1 = L->top;
    want = (int)((ay->p0 - ay->p1) / (40 * ts)) + 1;   /* a y tick every 40 px or more */
    gm__ticks(ay, want > 10 ? 10 : want);
    /* edge, the y label turned upwards, tick labels, gap, tick */
    L->left = 12 + (p->ylabel[0] ? GM__TEXT_H * ts + 10 : 0) + gm__widest_label(ay, ts) + 6 + 6;
    ax->p0 = L->left;
    ax->p1 = L->w - L->right;
    for (want = (int)((ax->p1 - ax->p0) / (70 * ts)) + 1; ; want--) {
        if (want > 10) want = 10;
        gm__ticks(ax, want);
        if (want <= 2 || (gm__widest_label(ax, ts) + 12 * ts) * ax->ntick < ax->p1 - ax->p0) break;
    }
}

/* The pixel row or column of a tick. */
static int gm__tick_px(const gm__axis *a, int i)
{
    return (int)floor(a->p0 + (a->tick[i] - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0));
}

/* Lines and points, in the order they were added, so later series lie on top. */
static void gm__draw_series(const gm_plot *p, gm__canvas *cv, const gm__axis *ax, const gm__axis *ay)
{
    int i, j;
    for (i = 0; i < p->ns; i++) {
        const gm__series *s = &p->s[i];
        /* many points: smaller and see-through, so dense regions show as dense */
        float rad = s->n > 2000 ? 1.6f : 2.5f, alpha = s->n > 2000 ? 0.5f : s->n > 500 ? 0.8f : 1.0f;
        double px = NAN, py = NAN;      /* the previous point in pixels, NaN if none */
        for (j = 0; j < s->n; j++) {
            double qx = gm__to_px(ax, s->x[j]), qy = gm__to_px(ay, s->y[j]);
            if (qx != qx || qy != qy) { px = NAN; continue; }   /* not drawable: a gap in the line */
            if (s->kind == GM__SCATTER) {
                unsigned rgb = gm__palette[s->cls ? s->cls[j] % 10 : s->colour];
                if (p->heat && s->n <= 2000)     /* a white rim shows points on colour */
                    gm__disc(cv, (float)qx, (float)qy, rad + 1.2f, 0xFFFFFF, alpha);
                gm__disc(cv, (float)qx, (float)qy, rad, rgb, alpha);
            } else if (px == px) {
                gm__segment(cv, (float)px, (float)py, (float)qx, (float)qy, 2.0f,
                            gm__palette[s->colour]);
            } else if (j + 1 == s->n || gm__to_px(ay, s->y[j + 1]) != gm__to_px(ay, s->y[j + 1])
                       || gm__to_px(ax, s->x[j + 1]) != gm__to_px(ax, s->x[j + 1])) {
                /* a point with no drawable neighbour would vanish from a line: show a dot */
                gm__disc(cv, (float)qx, (float)qy, 1.5f, gm__palette[s->colour], 1.0f);
            }
            px = qx;
            py = qy;
        }
    }
}

/* Frame, ticks with their labels, title and axis labels (the y label reads upwards). */
static void gm__draw_axes(const gm_plot *p, gm__canvas *cv, const gm__axis *ax, const gm__axis *ay,
                          const gm__layout *L)
{
    int i, ts = L->ts, x0 = L->left, x1 = L->w - L->right, y0 = L->top, y1 = L->h - L->bottom;
    gm__rect(cv, x0 - 1, y0 - 1, x1 + 1, y0, GM__FRAME, 1.0f);
    gm__rect(cv, x0 - 1, y1, x1 + 1, y1 + 1, GM__FRAME, 1.0f);
    gm__rect(cv, x0 - 1, y0 - 1, x0, y1 + 1, GM__FRAME, 1.0f);
    gm__rect(cv, x1, y0 - 1, x1 + 1, y1 + 1, GM__FRAME, 1.0f);
    for (i = 0; i < ax->ntick; i++) {      /* x labels centred under their ticks */
        int x = gm__tick_px(ax, i), lw = gm__text_width(ax->label[i], ts);
        gm__rect(cv, x, y1 + 1, x + 1, y1 + 6, GM__FRAME, 1.0f);
        gm__text(cv, x - lw / 2, y1 + 10, ax->label[i], ts, GM__INK, 0);
    }
    for (i = 0; i < ay->ntick; i++) {      /* y labels right-aligned, capitals centred on the tick */
        int y = gm__tick_px(ay, i), lw = gm__text_width(ay->label[i], ts);
        gm__rect(cv, x0 - 6, y, x0 - 1, y + 1, GM__FRAME, 1.0f);
        gm__text(cv, x0 - 10 - lw, y - (7 * ts) / 2, ay->label[i], ts, GM__INK, 0);
    }
    if (p->title[0])
        gm__text(cv, (x0 + x1 - gm__text_width(p->title, ts + 1)) / 2, 14,
                 p->title, ts + 1, GM__INK, 0);
    if (p->xlabel[0])
        gm__text(cv, (x0 + x1 - gm__text_width(p->xlabel, ts)) / 2, L->h - 12 - GM__TEXT_H * ts,
                 p->xlabel, ts, GM__INK, 0);
    if (p->ylabel[0])
        gm__text(cv, 12, (y0 + y1 + gm__text_width(p->ylabel, ts)) / 2, p->ylabel, ts, GM__INK, 1);
}

/* The colour bar right of the plot: the map from max (top) to min (bottom), both labelled. */
static void gm__draw_colorbar(gm__canvas *cv, const gm__layout *L)
{
    int bx = L->w - L->right + 18, bt = L->top, bb = L->h - L->bottom, y;
    for (y = bt; y < bb; y++) {
        float t = (float)(bb - 1 - y) / (float)(bb - 1 - bt);   /* 1 at the top row, 0 at the bottom */
        gm__rect(cv, bx, y, bx + 16, y + 1, gm__colormap(t), 1.0f);
    }
    gm__rect(cv, bx - 1, bt - 1, bx + 17, bt, GM__FRAME, 1.0f);
    gm__rect(cv, bx - 1, bb, bx + 17, bb + 1, GM__FRAME, 1.0f);
    gm__rect(cv, bx - 1, bt - 1, bx, bb + 1, GM__FRAME, 1.0f);
    gm__rect(cv, bx + 16, bt - 1, bx + 17, bb + 1, GM__FRAME, 1.0f);
    gm__text(cv, bx + 22, bt, L->vhi, L->ts, GM__INK, 0);
    gm__text(cv, bx + 22, bb - 7 * L->ts, L->vlo, L->ts, GM__INK, 0);
}

GMDEF int gm_plot_save(gm_plot *p, const char *path, int width, int height)
{
    gm__axis ax, ay;
    gm__layout L;
    gm__canvas cv;
    int i, ok;

    if (!p) return gm__error("%s: no plot to save (did gm_plot_new fail?)", path);
    if (p->error[0]) return gm__error("%s: %s", path, p->error);
    if (width == 0) width = 640;
    if (height == 0) height = 480;
    if (width < 200 || height < 150 || width > 8192 || height > 8192)
        return gm__error("%s: plot size %d x %d is not in 200x150 .. 8192x8192", path, width, height);

    memset(&ax, 0, sizeof ax);
    memset(&ay, 0, sizeof ay);
    memset(&L, 0, sizeof L);
    ay.log = p->logy;
    L.w = width;
    L.h = height;
    gm__plot_ranges(p, &ax, &ay, &L);
    gm__plot_layout(p, &ax, &ay, &L);

    cv.w = width;
    cv.h = height;
    if (!(cv.px = (unsigned char *)GM_MALLOC((size_t)width * (size_t)height * 3)))
        return gm__error("%s: out of memory for a %d x %d plot", path, width, height);
    memset(cv.px, 255, (size_t)width * (size_t)height * 3);   /* white */

    /* inside the plot area, bottom to top: grid lines (hidden by a heatmap anyway), the
     * heatmap, the series, the legend */
    gm__clip(&cv, L.left, L.top, width - L.right, height - L.bottom);
    for (i = 0; i < ax.ntick && !p->heat; i++) {
        int x = gm__tick_px(&ax, i);
        gm__rect(&cv, x, L.top, x + 1, height - L.bottom, GM__GRID, 1.0f);
    }
    for (i = 0; i < ay.ntick && !p->heat; i++) {
        int y = gm__tick_px(&ay, i);
        gm__rect(&cv, L.left, y, width - L.right, y + 1, GM__GRID, 1.0f);
    }
    if (p->heat) gm__draw_heat(p, &cv, &ax, &ay, L.vmin, L.vmax);
    gm__draw_series(p, &cv, &ax, &ay);
    gm__legend(p, &cv, &ax, &ay, L.ts);

    /* outside it: frame, ticks, labels, colour bar */
    gm__clip(&cv, 0, 0, width, height);
    gm__draw_axes(p, &cv, &ax, &ay, &L);
    if (p->heat) gm__draw_colorbar(&cv, &L);

    ok = gm__write_png(path, cv.px, width, height, 3);
    GM_FREE(cv.px);
    return ok;
}

GMDEF int gm_save_heatmap(const char *path, const float *v, int rows, int cols,
                          float x0, float x1, float y0, float y1, const char *title)
{
    gm_plot *p = gm_plot_new(title, NULL, NULL);
    int ok;
    if (!p) return gm__error("%s: out of memory", path);
    gm_plot_heatmap(p, v, rows, cols, x0, x1, y0, y1);
    ok = gm_plot_save(p, path, 0, 0);
    gm_plot_free(p);
    return ok;
}

// >>output-progress
#if defined(_WIN32)
static int gm__stderr_is_tty(void) { return _isatty(_fileno(stderr)) != 0; }
#elif defined(__unix__) || defined(__APPLE__)
/* fd 2 is stderr; fileno() itself is hidden by strict -std=c99 */
static int gm__stderr_is_tty(void) { return isatty(2) != 0; }
#else
static int gm__stderr_is_tty(void) { return 0; }
#endif

/* Append to buf (of size cap, n used so far), never overflowing it. */
static void gm__append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (*n + 1 >= cap) return;
    va_start(ap, fmt);
    k = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0) *n += (size_t)k < cap - *n ? (size_t)k : cap - *n - 1;
}

/* Seconds as m:ss or h:mm:ss. */
static void gm__clock(char *buf, size_t cap, double sec)
{
    long s = sec > 0 && sec < 1e9 ? (long)(sec + 0.5) : 0;
    if (s >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
}

/* "what [#####...] done/total pct% | terms | rate it/s | ETA m:ss" (or "| m:ss total" when final) */
static size_t gm__progress_line(const gm_progress *p, char *buf, size_t cap, int final)
{
    /* the rate is the average since start: steady, and honest about the ETA */
    double elapsed = gm_seconds() - p->t_start, rate = elapsed > 0 ? p->done / elapsed : 0;
    char t[32];
    size_t n = 0;
    buf[0] = 0;
    if (p->what[0]) gm__append(buf, cap, &n, "%s ", p->what);
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        int i, fill = (int)(20 * (frac < 0 ? 0 : frac > 1 ? 1 : frac));
        gm__append(buf, cap, &n, "[");
        for (i = 0; i < 20; i++) gm__append(buf, cap, &n, i < fill ? "#" : ".");
        gm__append(buf, cap, &n, "] %ld/%ld %3d%%", p->done, p->total, (int)(100 * frac));
    } else {
        gm__append(buf, cap, &n, "%ld", p->done);
    }
    if (p->terms[0]) gm__append(buf, cap, &n, " | %s", p->terms);
    if (rate >= 1 || rate == 0) gm__append(buf, cap, &n, " | %.1f it/s", rate);
    else gm__append(buf, cap, &n, " | %.1f s/it", 1 / rate);   /* slow steps read better this way */
    if (final) {
        gm__clock(t, sizeof t, elapsed);
        gm__append(buf, cap, &n, " | %s total", t);
    } else if (p->total > 0 && rate > 0 && p->done < p->total) {
        gm__clock(t, sizeof t, (double)(p->total - p->done) / rate);
        gm__append(buf, cap, &n, " | ETA %s", t);
    }
    return n;
}

/* Print the status line: on a terminal over the previous one, else as a new line. */
static void gm__progress_print(gm_progress *p, int final)
{
    char line[256];
    int n = (int)gm__progress_line(p, line, sizeof line, final);
    if (p->tty) {
        /* spaces blank whatever a longer previous line left behind */
        fprintf(stderr, "\r%s%*s%s", line, p->width > n ? p->width - n : 0, "", final ? "\n" : "");
        p->width = n;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    p->t_last = gm_seconds();
}

/* Terminal or not is decided once, at start; the struct is returned by value, nothing
 * to free. */
GMDEF gm_progress gm_progress_start(const char *what, long total)
{
    gm_progress p;
    memset(&p, 0, sizeof p);
    gm__copy_text(p.what, sizeof p.what, what);
    p.total = total;
    p.t_start = p.t_last = gm_seconds();
    p.tty = gm__stderr_is_tty();
    return p;
}

GMDEF void gm_progress_update(gm_progress *p, long done, const char *fmt, ...)
{
    double now = gm_seconds();
    p->done = done;
    /* keep the caller's terms even when nothing is printed now: finish shows the last ones */
    p->terms[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->terms, sizeof p->terms, fmt, ap);
        va_end(ap);
    }
    if (p->tty) {
        /* at most 10 redraws a second, but always show the step that completes the bar */
        if (now - p->t_last < 0.1 && !(p->total > 0 && done >= p->total)) return;
    } else if (p->total > 0) {
        /* one line per new tenth; the last tenth is gm_progress_finish's line */
        int tenth = (int)(10.0 * (double)done / (double)p->total);
        if (tenth <= p->tenth || tenth >= 10) return;
        p->tenth = tenth;
    } else if (now - p->t_last < 10) {
        return;   /* unknown total: a line every 10 seconds */
    }
    gm__progress_print(p, 0);
}

/* The last line, always printed, with the total time instead of an ETA. */
GMDEF void gm_progress_finish(gm_progress *p) { gm__progress_print(p, 1); }
