// >>data
/* ======================================================================================
 * 9. data: IDX (plain or gzip), folders of images, synthetic sets, shuffle, split
 *    Every loader builds its result in locals and assigns the caller's struct only at the
 *    end, so a failure leaves it untouched. Sizes read from files are checked in 64 bits
 *    before anything is allocated.
 * ====================================================================================== */
#include <errno.h>
#ifndef _WIN32
#  include <dirent.h>     /* opendir/readdir: POSIX, for gm_load_image_folder */
#  include <sys/stat.h>
#endif

/* Files and inflated data are capped at 1 GiB: far above any teaching data set, and it
 * keeps every length inside an int (stb's inflate takes int lengths). */
#define GM__DATA_MAX_BYTES  ((uint64_t)1 << 30)
/* A data set holds at most 2^29 floats = 2 GiB. */
#define GM__DATA_MAX_FLOATS ((uint64_t)1 << 29)

// >>data-files
/* The last path component, for names and messages. */
static const char *gm__basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* a + "/" + b, allocated; NULL (with the error set) when out of memory. */
static char *gm__path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = (char *)gm__calloc(la + lb + 2, 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* Read a whole file. It grows the buffer by doubling rather than trusting a size from
 * fseek/ftell, so pipes and files that change while read are handled too. */
static int gm__read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL, *grown;
    size_t cap = 0, n = 0, got;
    if (!f) return gm__error("%s: cannot open: %s", path, strerror(errno));
    for (;;) {
        if (n == cap) {
            if (cap >= GM__DATA_MAX_BYTES) {
                GM_FREE(buf);
                fclose(f);
                return gm__error("%s: larger than the 1 GiB genmod reads", path);
            }
            cap = cap ? 2 * cap : 65536;
            grown = (unsigned char *)GM_REALLOC(buf, cap);
            if (!grown) {
                GM_FREE(buf);
                fclose(f);
                return gm__error("%s: out of memory reading %zu bytes", path, cap);
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    if (ferror(f)) {                       /* e.g. EISDIR: fopen succeeds on a folder */
        GM_FREE(buf);
        fclose(f);
        return gm__error("%s: read error (is it a folder?)", path);
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 1;
}

/* CRC-32 as gzip and PNG use it: reflected polynomial 0xEDB88320, initial value and final
 * xor 0xFFFFFFFF. The 256-entry table (the CRC of each byte value) is rebuilt per call:
 * 2048 steps, nothing next to inflating a file, and no global state. */
static uint32_t gm__crc32(const unsigned char *p, size_t n)
{
    uint32_t table[256], crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < 256; i++) {
        uint32_t c = (uint32_t)i;
        for (k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

static uint32_t gm__le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t gm__be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* gzip (RFC 1952), one member:
 *   header   1f 8b, CM = 8 (deflate), FLG, MTIME(4), XFL, OS                  10 bytes
 *   optional FEXTRA: XLEN(2) + XLEN bytes; FNAME, FCOMMENT: zero-terminated
 *            strings; FHCRC: low 16 bits of the CRC-32 of the header so far
 *   body     a raw deflate stream (RFC 1951), inflated by stb_image
 *   trailer  CRC-32 of the inflated data, ISIZE = its length mod 2^32, little-endian
 * The trailer is taken from the last 8 bytes, so a multi-member file (cat a.gz b.gz) is
 * reported as corrupt rather than half read. */
static int gm__gunzip(const char *path, const unsigned char *in, size_t inlen,
                      unsigned char **out, size_t *outlen)
{
    enum { FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16 };
    size_t pos = 10;
    uint32_t crc, isize, have_crc;
    unsigned flg;
    unsigned char *buf;
    int got;
    if (inlen < 18) return gm__error("%s: corrupt gzip: %zu bytes, less than a header and trailer", path, inlen);
    if (in[2] != 8) return gm__error("%s: corrupt gzip: compression method %d (only 8, deflate, exists)", path, in[2]);
    flg = in[3];
    if (flg & 0xE0) return gm__error("%s: corrupt gzip: reserved header flags set (0x%02x)", path, flg);
    if (flg & FEXTRA) pos += 2 + (size_t)(in[10] | in[11] << 8);
    if (flg & FNAME) { while (pos < inlen && in[pos]) pos++; pos++; }
    if (flg & FCOMMENT) { while (pos < inlen && in[pos]) pos++; pos++; }
    if (flg & FHCRC) {
        if (pos + 2 <= inlen && (gm__crc32(in, pos) & 0xFFFF) != (uint32_t)(in[pos] | in[pos + 1] << 8))
            return gm__error("%s: corrupt gzip: header CRC mismatch", path);
        pos += 2;
    }
    if (pos + 8 > inlen) return gm__error("%s: corrupt gzip: the header runs into the trailer", path);
    crc = gm__le32(in + inlen - 8);
    isize = gm__le32(in + inlen - 4);
    /* Deflate expands at most 1032:1 (a 258-byte match costs at least 2 bits), so a
     * small file claiming a huge ISIZE is corrupt, and never costs a huge allocation. */
    if (isize > (uint64_t)(inlen - pos) * 1032 + 1024)
        return gm__error("%s: corrupt gzip: the trailer says %lu bytes (ISIZE), more than deflate makes of %zu bytes",
                         path, (unsigned long)isize, inlen - pos);
    if (isize > GM__DATA_MAX_BYTES)
        return gm__error("%s: gzip trailer says %lu bytes inflated, more than the 1 GiB genmod reads",
                         path, (unsigned long)isize);
    buf = (unsigned char *)GM_MALLOC(isize ? isize : 1);
    if (!buf) return gm__error("%s: out of memory inflating %lu bytes", path, (unsigned long)isize);
    /* stb inflates into a buffer of exactly ISIZE bytes and fails if the stream wants more.
     * It is given the 8 trailer bytes too: stb_image 2.27 refuses to decode a Huffman code
     * when fewer than 16 bits are left at the end of its input, which a stream that ends
     * right at the buffer's end can hit. The stream marks its own end (BFINAL), so the
     * bytes after it are never read as data unless the stream is corrupt. */
    got = stbi_zlib_decode_noheader_buffer((char *)buf, (int)isize, (const char *)in + pos, (int)(inlen - pos));
    if (got < 0) {
        GM_FREE(buf);
        return gm__error("%s: corrupt gzip: the deflate data is invalid or inflates to more than the "
                         "%lu bytes the trailer says (ISIZE)", path, (unsigned long)isize);
    }
    if ((uint32_t)got != isize) {
        GM_FREE(buf);
        return gm__error("%s: corrupt gzip: inflates to %d bytes but the trailer says %lu (ISIZE)",
                         path, got, (unsigned long)isize);
    }
    have_crc = gm__crc32(buf, (size_t)got);
    if (have_crc != crc) {
        GM_FREE(buf);
        return gm__error("%s: corrupt gzip: CRC-32 of the data is %08lx, the trailer says %08lx",
                         path, (unsigned long)have_crc, (unsigned long)crc);
    }
    *out = buf;
    *outlen = (size_t)got;
    return 1;
}

/* A file's contents, inflated if it starts with the gzip magic 1f 8b (whatever its name). */
static int gm__read_data(const char *path, unsigned char **data, size_t *len)
{
    unsigned char *raw = NULL, *plain = NULL;
    size_t rawlen = 0, plainlen = 0;
    if (!gm__read_file(path, &raw, &rawlen)) return 0;
    if (rawlen == 0) {
        GM_FREE(raw);
        return gm__error("%s: empty file", path);
    }
    if (rawlen >= 2 && raw[0] == 0x1F && raw[1] == 0x8B) {
        int ok = gm__gunzip(path, raw, rawlen, &plain, &plainlen);
        GM_FREE(raw);
        if (!ok) return 0;
        raw = plain;
        rawlen = plainlen;
    }
    *data = raw;
    *len = rawlen;
    return 1;
}

/* order = 0, 1, ..., n-1 */
static int *gm__identity(int n)
{
    int i, *p = (int *)gm__calloc((size_t)n, sizeof(int));
    if (p) for (i = 0; i < n; i++) p[i] = i;
    return p;
}

// >>data-idx
/* IDX, the format of MNIST (LeCun et al.): a 4-byte magic 00 00 TYPE NDIM, then NDIM
 * big-endian uint32 dims, then the values row-major. TYPE 08 is unsigned byte, the only
 * type MNIST-style sets use; images are NDIM 3 (N, H, W), labels NDIM 1 (N). */
static int gm__idx_images(const char *path, int *pn, int *ph, int *pw, float **px)
{
    unsigned char *b;
    size_t len, i;
    uint32_t magic, n, h, w;
    uint64_t pixels;
    float *x;
    if (!gm__read_data(path, &b, &len)) return 0;
    if (len < 4) { GM_FREE(b); return gm__error("%s: truncated header: %zu bytes, an IDX images header has 16", path, len); }
    magic = gm__be32(b);
    if (magic != 0x803) {
        GM_FREE(b);
        return gm__error("%s: wrong magic 0x%08lx, expected 0x00000803 (IDX images: unsigned bytes, 3 dims)%s",
                         path, (unsigned long)magic, magic == 0x801 ? "; this is a labels file" : "");
    }
    if (len < 16) { GM_FREE(b); return gm__error("%s: truncated header: %zu bytes, an IDX images header has 16", path, len); }
    n = gm__be32(b + 4);
    h = gm__be32(b + 8);
    w = gm__be32(b + 12);
    /* n*h < 2^64 always; the cap is checked before the third factor can overflow. */
    pixels = (uint64_t)n * h;
    if (n == 0 || h == 0 || w == 0 || pixels > GM__DATA_MAX_FLOATS / w) {
        GM_FREE(b);
        return gm__error("%s: header says %lu images of %lux%lu: %s", path, (unsigned long)n,
                         (unsigned long)h, (unsigned long)w,
                         n && h && w ? "more than the 2^29 pixels (2 GiB as floats) genmod loads" : "no pixels");
    }
    pixels *= w;
    if (len - 16 != pixels) {
        GM_FREE(b);
        return gm__error("%s: %s: header says %lu images of %lux%lu (%llu bytes) but the file holds %llu bytes of data",
                         path, len - 16 < pixels ? "truncated" : "wrong size", (unsigned long)n, (unsigned long)h,
                         (unsigned long)w, (unsigned long long)pixels, (unsigned long long)(len - 16));
    }
    x = (float *)gm__calloc((size_t)pixels, sizeof(float));
    if (!x) { GM_FREE(b); return 0; }
    for (i = 0; i < (size_t)pixels; i++) x[i] = (float)b[16 + i] / 255.0f;   /* bytes 0..255 -> [0,1] */
    GM_FREE(b);
    *pn = (int)n; *ph = (int)h; *pw = (int)w; *px = x;
    return 1;
}

static int gm__idx_labels(const char *path, int *pn, int **py, int *pnclass)
{
    unsigned char *b;
    size_t len, i;
    uint32_t magic, n;
    int *y, maxlabel = 0;
    if (!gm__read_data(path, &b, &len)) return 0;
    if (len < 4) { GM_FREE(b); return gm__error("%s: truncated header: %zu bytes, an IDX labels header has 8", path, len); }
    magic = gm__be32(b);
    if (magic != 0x801) {
        GM_FREE(b);
        return gm__error("%s: wrong magic 0x%08lx, expected 0x00000801 (IDX labels: unsigned bytes, 1 dim)%s",
                         path, (unsigned long)magic, magic == 0x803 ? "; this is an images file" : "");
    }
    if (len < 8) { GM_FREE(b); return gm__error("%s: truncated header: %zu bytes, an IDX labels header has 8", path, len); }
    n = gm__be32(b + 4);
    if (n == 0 || n > GM__DATA_MAX_FLOATS) {
        GM_FREE(b);
        return gm__error("%s: header says %lu labels: %s", path, (unsigned long)n, n ? "more than genmod loads" : "none");
    }
    if (len - 8 != n) {
        GM_FREE(b);
        return gm__error("%s: %s: header says %lu labels but the file holds %llu bytes of data", path,
                         len - 8 < n ? "truncated" : "wrong size", (unsigned long)n, (unsigned long long)(len - 8));
    }
    y = (int *)gm__calloc(n, sizeof(int));
    if (!y) { GM_FREE(b); return 0; }
    /* labels are bytes, so always in 0..255; classes are taken to be 0..max */
    for (i = 0; i < n; i++) {
        y[i] = b[8 + i];
        if (y[i] > maxlabel) maxlabel = y[i];
    }
    GM_FREE(b);
    *pn = (int)n; *py = y; *pnclass = maxlabel + 1;
    return 1;
}

GMDEF int gm_load_idx(gm_dataset *ds, const char *images_path, const char *labels_path)
{
    gm_dataset t;
    int ny = 0;
    memset(&t, 0, sizeof t);
    /* everything goes into t; a failure frees what t holds and leaves *ds as it was */
    if (!ds || !images_path) return gm__error("gm_load_idx: ds and images_path must not be NULL");
    if (!gm__idx_images(images_path, &t.n, &t.h, &t.w, &t.x)) return 0;
    t.c = 1;
    t.d = t.h * t.w;
    if (labels_path) {
        if (!gm__idx_labels(labels_path, &ny, &t.y, &t.nclass)) { GM_FREE(t.x); return 0; }
        if (ny != t.n) {
            GM_FREE(t.x);
            GM_FREE(t.y);
            return gm__error("%s: holds %d labels but %s holds %d images", labels_path, ny, images_path, t.n);
        }
    }
    t.order = gm__identity(t.n);
    if (!t.order) { GM_FREE(t.x); GM_FREE(t.y); return 0; }
    snprintf(t.name, sizeof t.name, "%.70s (%d images)", gm__basename(images_path), t.n);
    *ds = t;
    return 1;
}

// >>data-fashion
/* dir/file.gz if it opens, else dir/file; NULL (error set) if neither does. Debian ships
 * the .gz files; a copy someone unpacked by hand has the plain names. */
static char *gm__find_gz(const char *dir, const char *file)
{
    char *gz = gm__path_join(dir, file), *plain;
    size_t len;
    FILE *f;
    if (!gz) return NULL;
    plain = (char *)gm__calloc(strlen(gz) + 1, 1);
    if (!plain) { GM_FREE(gz); return NULL; }
    strcpy(plain, gz);
    len = strlen(plain);
    if (len > 3 && strcmp(plain + len - 3, ".gz") == 0) plain[len - 3] = 0;
    if ((f = fopen(gz, "rb")) != NULL) { fclose(f); GM_FREE(plain); return gz; }
    if ((f = fopen(plain, "rb")) != NULL) { fclose(f); GM_FREE(gz); return plain; }
    gm__error("%s: cannot open (nor without .gz): %s", gz, strerror(errno));
    GM_FREE(gz);
    GM_FREE(plain);
    return NULL;
}

/* One half of Fashion-MNIST; prefix is "train" or "t10k". */
static int gm__load_fashion_part(gm_dataset *out, const char *dir, const char *prefix, const char *what)
{
    char file[64];
    char *images, *labels;
    gm_dataset t;
    int ok;
    snprintf(file, sizeof file, "%s-images-idx3-ubyte.gz", prefix);
    if (!(images = gm__find_gz(dir, file))) return 0;
    snprintf(file, sizeof file, "%s-labels-idx1-ubyte.gz", prefix);
    if (!(labels = gm__find_gz(dir, file))) { GM_FREE(images); return 0; }
    ok = gm_load_idx(&t, images, labels);
    GM_FREE(images);
    GM_FREE(labels);
    if (!ok) return 0;
    snprintf(t.name, sizeof t.name, "Fashion-MNIST %s (%d images)", what, t.n);
    *out = t;
    return 1;
}

GMDEF int gm_load_fashion_mnist(gm_dataset *train, gm_dataset *test, const char *dir)
{
    gm_dataset tr, te;
    if (!train || !test) return gm__error("gm_load_fashion_mnist: train and test must not be NULL");
    if (!dir) dir = "/usr/share/datasets/fashion-mnist";     /* Debian: dataset-fashion-mnist */
    /* both halves or nothing: the train half is freed if the test half fails */
    if (!gm__load_fashion_part(&tr, dir, "train", "train")) return 0;
    if (!gm__load_fashion_part(&te, dir, "t10k", "test")) { gm_dataset_free(&tr); return 0; }
    *train = tr;
    *test = te;
    return 1;
}

// >>data-folder
/* Resampling along one axis, from sn source pixels to dn output pixels: output pixel o is
 * sum_k wt[o*ntap + k] * src[idx[o*ntap + k]], with the weights of each o summing to 1.
 *   shrinking (dn <= sn): area average. Output pixel o covers the source interval
 *     [o*sn/dn, (o+1)*sn/dn); each source pixel weighs by the length of it inside.
 *   growing: bilinear between the two source pixels around the output pixel's centre,
 *     which sits at (o + 0.5)*sn/dn - 0.5 in source pixel coordinates.
 * An average of sn/dn pixels touches at most ceil(sn/dn) + 1 of them: that is ntap. */
static int gm__resample_ntap(int sn, int dn) { return dn <= sn ? (sn + dn - 1) / dn + 1 : 2; }

static void gm__resample_taps(int sn, int dn, int *idx, float *wt)
{
    int ntap = gm__resample_ntap(sn, dn), o, k;
    double scale = (double)sn / dn;
    for (o = 0; o < dn; o++) {
        int *ix = idx + (size_t)o * ntap;
        float *wo = wt + (size_t)o * ntap;
        double w[2], sum = 0.0;
        if (dn <= sn) {
            double a = o * scale, b = (o + 1) * scale;
            int first = (int)a;
            for (k = 0; k < ntap; k++) {
                int j = first + k;
                double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
                double overlap = hi > lo && j < sn ? hi - lo : 0.0;
                ix[k] = j < sn ? j : sn - 1;
                wo[k] = (float)overlap;
                sum += overlap;
            }
        } else {
            double s = (o + 0.5) * scale - 0.5, f;
            int j0 = (int)floor(s);
            f = s - j0;
            w[0] = 1.0 - f;
            w[1] = f;
            for (k = 0; k < 2; k++) {
                int j = j0 + k;
                ix[k] = j < 0 ? 0 : j >= sn ? sn - 1 : j;    /* clamp at the borders */
                wo[k] = (float)w[k];
                sum += w[k];
            }
        }
        for (k = 0; k < ntap; k++) wo[k] = (float)(wo[k] / sum);
    }
}

/* src: ih x iw pixels of c interleaved bytes (stb's layout, HWC). out: (C, H, W) floats in
 * [0,1]. Separable: resize every row to w (tmp is ih x w x c), then every column to h. */
static int gm__resize_image(const unsigned char *src, int iw, int ih, int c, float *out, int w, int h)
{
    int ntx = gm__resample_ntap(iw, w), nty = gm__resample_ntap(ih, h);
    int *ixx = (int *)gm__calloc((size_t)w * ntx, sizeof(int));
    int *ixy = (int *)gm__calloc((size_t)h * nty, sizeof(int));
    float *wx = (float *)gm__calloc((size_t)w * ntx, sizeof(float));
    float *wy = (float *)gm__calloc((size_t)h * nty, sizeof(float));
    float *tmp = (uint64_t)ih * w * c <= GM__DATA_MAX_FLOATS ? (float *)gm__calloc((size_t)ih * w * c, sizeof(float)) : NULL;
    int x, y, ch, k, ok = ixx && ixy && wx && wy && tmp;
    if (ok) {
        gm__resample_taps(iw, w, ixx, wx);
        gm__resample_taps(ih, h, ixy, wy);
        /* rows: tmp[y][x][ch] = sum_k wx * src[y][ixx][ch] / 255 */
        for (y = 0; y < ih; y++)
            for (x = 0; x < w; x++)
                for (ch = 0; ch < c; ch++) {
                    float s = 0.0f;
                    for (k = 0; k < ntx; k++)
                        s += wx[x * ntx + k] * (float)src[((size_t)y * iw + ixx[x * ntx + k]) * c + ch];
                    tmp[((size_t)y * w + x) * c + ch] = s / 255.0f;
                }
        /* columns, written channel-first: out[ch][y][x] = sum_k wy * tmp[ixy][x][ch] */
        for (ch = 0; ch < c; ch++)
            for (y = 0; y < h; y++)
                for (x = 0; x < w; x++) {
                    float s = 0.0f;
                    for (k = 0; k < nty; k++)
                        s += wy[y * nty + k] * tmp[((size_t)ixy[y * nty + k] * w + x) * c + ch];
                    out[((size_t)ch * h + y) * w + x] = s < 0.0f ? 0.0f : s > 1.0f ? 1.0f : s;
                }
    }
    GM_FREE(ixx); GM_FREE(ixy); GM_FREE(wx); GM_FREE(wy); GM_FREE(tmp);
    return ok;
}

typedef struct gm__entry { char *path; int isdir; } gm__entry;   /* isdir doubles as the label */

static int gm__entry_cmp(const void *a, const void *b)
{
    return strcmp(((const gm__entry *)a)->path, ((const gm__entry *)b)->path);
}

static void gm__entries_free(gm__entry *e, int n)
{
    int i;
    for (i = 0; i < n; i++) GM_FREE(e[i].path);
    GM_FREE(e);
}

/* Append to a growing array of entries (capacity doubles). */
static int gm__entries_push(gm__entry **list, int *n, int *cap, char *path, int isdir, const char *dir)
{
    if (*n == *cap) {
        int ncap = *cap ? 2 * *cap : 64;
        gm__entry *grown;
        if (*cap >= (1 << 24)) return gm__error("%s: more than 2^24 files", dir);
        grown = (gm__entry *)GM_REALLOC(*list, (size_t)ncap * sizeof **list);
        if (!grown) return gm__error("%s: out of memory listing files", dir);
        *list = grown;
        *cap = ncap;
    }
    (*list)[*n].path = path;
    (*list)[*n].isdir = isdir;
    (*n)++;
    return 1;
}

#ifndef _WIN32
/* The folders and regular files in dir as full paths, sorted by byte value (strcmp: the
 * same order in every locale). Names starting with '.' (., .., .DS_Store) are skipped. */
static int gm__list_dir(const char *dir, gm__entry **out, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    gm__entry *list = NULL;
    int n = 0, cap = 0;
    if (!d) return gm__error("%s: cannot open folder: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *path;
        if (e->d_name[0] == '.') continue;
        if (!(path = gm__path_join(dir, e->d_name))) goto fail;
        if (stat(path, &st) != 0) {
            gm__error("%s: cannot stat: %s", path, strerror(errno));
            GM_FREE(path);
            goto fail;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) { GM_FREE(path); continue; }  /* fifo, socket */
        if (!gm__entries_push(&list, &n, &cap, path, S_ISDIR(st.st_mode) ? 1 : 0, dir)) { GM_FREE(path); goto fail; }
    }
    closedir(d);
    if (n > 1) qsort(list, (size_t)n, sizeof *list, gm__entry_cmp);
    *out = list;
    *count = n;
    return 1;
fail:
    closedir(d);
    gm__entries_free(list, n);
    return 0;
}
#else
static int gm__list_dir(const char *dir, gm__entry **out, int *count)
{
    (void)out; (void)count;
    return gm__error("%s: gm_load_image_folder needs POSIX opendir/readdir, not available on Windows", dir);
}
#endif

GMDEF int gm_load_image_folder(gm_dataset *ds, const char *dir, int c, int h, int w)
{
    gm__entry *top = NULL, *files = NULL;
    int ntop = 0, nfiles = 0, cap = 0, nclass = 0, i, j;
    gm_dataset t;
    memset(&t, 0, sizeof t);
    if (!ds || !dir) return gm__error("gm_load_image_folder: ds and dir must not be NULL");
    if (c < 1 || c > 4 || h < 1 || w < 1 || h > 4096 || w > 4096)
        return gm__error("%s: gm_load_image_folder: want 1..4 channels and 1..4096 pixels a side, got c=%d h=%d w=%d",
                         dir, c, h, w);
    if (!gm__list_dir(dir, &top, &ntop)) return 0;
    /* any subfolder makes it a labelled set, one class per subfolder */
    for (i = 0; i < ntop; i++) nclass += top[i].isdir;
    /* Collect (path, label): class folders in sorted order, their files sorted within. */
    for (i = 0; i < ntop; i++) {
        if (nclass == 0) {
            if (!gm__entries_push(&files, &nfiles, &cap, top[i].path, -1, dir)) goto fail;
            top[i].path = NULL;                       /* moved into files */
        } else if (top[i].isdir) {
            gm__entry *sub = NULL;
            int nsub = 0, before = nfiles;
            if (!gm__list_dir(top[i].path, &sub, &nsub)) goto fail;
            for (j = 0; j < nsub; j++) {
                if (sub[j].isdir) continue;           /* folders inside a class folder: ignored */
                if (!gm__entries_push(&files, &nfiles, &cap, sub[j].path, t.nclass, dir)) {
                    gm__entries_free(sub, nsub);
                    goto fail;
                }
                sub[j].path = NULL;
            }
            gm__entries_free(sub, nsub);
            if (nfiles == before) { gm__error("%s: class folder holds no images", top[i].path); goto fail; }
            t.nclass++;
        }
    }
    if (nfiles == 0) { gm__error("%s: holds no images", dir); goto fail; }
    if ((uint64_t)nfiles * c * h * w > GM__DATA_MAX_FLOATS) {
        gm__error("%s: %d images of %dx%dx%d is more than the 2^29 floats genmod loads", dir, nfiles, c, h, w);
        goto fail;
    }
    /* decode each file, convert to c channels (stb does that), resize into its row of x */
    t.n = nfiles; t.c = c; t.h = h; t.w = w; t.d = c * h * w;
    t.x = (float *)gm__calloc((size_t)t.n * t.d, sizeof(float));
    t.order = gm__identity(t.n);
    if (nclass) t.y = (int *)gm__calloc((size_t)t.n, sizeof(int));
    if (!t.x || !t.order || (nclass && !t.y)) goto fail;
    for (i = 0; i < nfiles; i++) {
        int iw, ih, ic, ok;
        unsigned char *pix = stbi_load(files[i].path, &iw, &ih, &ic, c);   /* converted to c channels */
        if (!pix) {
            gm__error("%s: not an image stb_image can read (%s)", files[i].path, stbi_failure_reason());
            goto fail;
        }
        ok = gm__resize_image(pix, iw, ih, c, t.x + (size_t)i * t.d, w, h);
        stbi_image_free(pix);
        if (!ok) { gm__error("%s: out of memory resizing %dx%d to %dx%d", files[i].path, iw, ih, w, h); goto fail; }
        if (t.y) t.y[i] = files[i].isdir;
    }
    {   /* the folder's own name, also when dir ends in '/' */
        const char *end = dir + strlen(dir), *b;
        while (end > dir + 1 && end[-1] == '/') end--;
        for (b = end; b > dir && b[-1] != '/'; b--) {}
        snprintf(t.name, sizeof t.name, "%.*s (%d images%s)", (int)(end - b < 40 ? end - b : 40), b, t.n,
                 t.nclass ? ", one class per subfolder" : "");
    }
    gm__entries_free(top, ntop);
    gm__entries_free(files, nfiles);
    *ds = t;
    return 1;
fail:
    gm__entries_free(top, ntop);
    gm__entries_free(files, nfiles);
    GM_FREE(t.x); GM_FREE(t.y); GM_FREE(t.order);
    return 0;
}

// >>data-alloc
/* A fresh data set of n examples of shape (c,h,w), x zeroed, y allocated if labeled,
 * order the identity. On failure *ds is zeroed and gm_last_error() says why. */
static int gm__dataset_new(gm_dataset *ds, int n, int c, int h, int w, int labeled)
{
    memset(ds, 0, sizeof *ds);
    ds->x = (float *)gm__calloc((size_t)n, (size_t)c * h * w * sizeof(float));
    ds->y = labeled ? (int *)gm__calloc((size_t)n, sizeof(int)) : NULL;
    ds->order = gm__identity(n);
    if (!ds->x || (labeled && !ds->y) || !ds->order) {
        GM_FREE(ds->x); GM_FREE(ds->y); GM_FREE(ds->order);
        memset(ds, 0, sizeof *ds);
        return 0;
    }
    ds->n = n; ds->c = c; ds->h = h; ds->w = w; ds->d = c * h * w;
    return 1;
}

/* Labels 0..k-1 repeated (i % k), then shuffled: every class gets n/k or n/k + 1 examples
 * and they come in random order. */
static void gm__balanced_labels(int *y, int n, int k, gm_rng *rng)
{
    int i;
    for (i = 0; i < n; i++) y[i] = i % k;
    gm_rng_shuffle(rng, y, n);
}

// >>data-shapes
/* Signed distances, in pixels, from point (px, py) to a shape centred at the origin:
 * negative inside, positive outside (the 2-D distance functions of Inigo Quilez).
 * With the distance d of a pixel centre, coverage = clamp(0.5 - d, 0, 1) is the fraction
 * of a one-pixel-wide edge the shape covers: cheap anti-aliasing. */
static float gm__sd_box(float px, float py, float bx, float by)     /* half sizes bx, by */
{
    float dx = fabsf(px) - bx, dy = fabsf(py) - by;
    float ox = dx > 0.0f ? dx : 0.0f, oy = dy > 0.0f ? dy : 0.0f;
    float in = dx > dy ? dx : dy;
    return sqrtf(ox * ox + oy * oy) + (in < 0.0f ? in : 0.0f);
}

static float gm__sd_triangle(float px, float py, float r)          /* equilateral, side 2r */
{
    const float k = 1.7320508f;                                     /* sqrt(3) */
    float qx = fabsf(px) - r, qy = py + r / k, len;
    if (qx + k * qy > 0.0f) {                                       /* fold onto one edge */
        float nx = (qx - k * qy) * 0.5f, ny = (-k * qx - qy) * 0.5f;
        qx = nx;
        qy = ny;
    }
    qx -= qx < -2.0f * r ? -2.0f * r : qx > 0.0f ? 0.0f : qx;      /* clamp to the edge */
    len = sqrtf(qx * qx + qy * qy);
    return qy < 0.0f ? len : -len;
}

static float gm__sd_min(float a, float b) { return a < b ? a : b; }

/* Distance from (px, py), already in the shape's frame, to class `label` of size s
 * (about the half extent) and stroke width t. */
static float gm__sd_shape(int label, float px, float py, float s, float t)
{
    float d, bar;
    int k;
    switch (label) {
    case 0: return sqrtf(px * px + py * py) - s;                                  /* disc */
    case 1: return fabsf(sqrtf(px * px + py * py) - s) - 0.5f * t;                /* ring */
    case 2: return gm__sd_box(px, py, 0.75f * s, 0.75f * s);                      /* square */
    case 3: return fabsf(gm__sd_box(px, py, 0.8f * s, 0.8f * s)) - 0.5f * t;      /* outline */
    case 4: return gm__sd_triangle(px, py, 0.9f * s);                             /* triangle */
    case 5:                                                                       /* plus */
    case 6:                                                                       /* X: a plus turned 45 degrees */
        return gm__sd_min(gm__sd_box(px, py, s, 0.6f * t), gm__sd_box(px, py, 0.6f * t, s));
    case 7:                                                                       /* 3 horizontal bars */
    case 8:                                                                       /* 3 vertical: turned 90 */
        bar = t < 0.3f * s ? t : 0.3f * s;                                        /* keep gaps open */
        d = 1e9f;
        for (k = -1; k <= 1; k++) d = gm__sd_min(d, gm__sd_box(px, py - 0.75f * s * k, s, 0.5f * bar));
        return d;
    default:                                                                      /* 2x2 dots */
        d = 1e9f;
        for (k = 0; k < 4; k++) {
            float cx = (k & 1 ? 0.5f : -0.5f) * s, cy = (k & 2 ? 0.5f : -0.5f) * s;
            d = gm__sd_min(d, sqrtf((px - cx) * (px - cx) + (py - cy) * (py - cy)) - 0.27f * s);
        }
        return d;
    }
}

GMDEF void gm_synthetic_shapes(gm_dataset *ds, int n, uint64_t seed)
{
    /* Base rotation of each class and the jitter around it (degrees): the plus and the X,
     * and the two bar directions, stay at least 30 degrees apart. */
    static const float base[10] = { 0, 0, 0, 0, 0, 0, 45, 0, 90, 0 };
    static const float jitter[10] = { 180, 180, 30, 30, 180, 15, 15, 15, 15, 20 };
    gm_rng rng = gm_rng_new(seed);
    gm_dataset t;
    int i, px, py;
    if (!ds || n < 1) gm__fatal(__FILE__, __LINE__, "gm_synthetic_shapes", "need ds and n >= 1, got n = %d", n);
    if (!gm__dataset_new(&t, n, 1, 28, 28, 1)) { memset(ds, 0, sizeof *ds); return; }
    t.nclass = 10;
    /* the RNG order is fixed (labels, then per image 6 shape draws and 784 noise draws),
     * so a seed gives the same bytes everywhere libm's cosf/sinf agree */
    gm__balanced_labels(t.y, n, 10, &rng);
    for (i = 0; i < n; i++) {
        int label = t.y[i];
        float *img = t.x + (size_t)i * 784;
        /* per image: centre within 3 px of the middle, size, stroke, angle, brightness */
        float cx = 13.5f + 4.0f * (gm_rng_uniform(&rng) - 0.5f);
        float cy = 13.5f + 4.0f * (gm_rng_uniform(&rng) - 0.5f);
        float s = 7.0f + 3.0f * gm_rng_uniform(&rng);
        float th = 1.5f + 1.5f * gm_rng_uniform(&rng);
        float deg = base[label] + jitter[label] * (2.0f * gm_rng_uniform(&rng) - 1.0f);
        float ink = 0.75f + 0.25f * gm_rng_uniform(&rng);
        float co = cosf(deg * 0.017453293f), si = sinf(deg * 0.017453293f);
        for (py = 0; py < 28; py++)
            for (px = 0; px < 28; px++) {
                /* the pixel centre in the shape's frame: translate, then rotate by -deg */
                float dx = (float)px - cx, dy = (float)py - cy;
                float u = co * dx + si * dy, v = -si * dx + co * dy;
                float cover = 0.5f - gm__sd_shape(label, u, v, s, th);
                /* a little noise, std 0.03: the sum of four 16-bit uniforms from one draw
                 * has mean 2 and variance 4/12, close enough to Gaussian (Irwin-Hall) and
                 * much cheaper than Box-Muller for 784 pixels an image */
                uint64_t r = gm_rng_u64(&rng);
                float e = (float)((r & 0xFFFF) + (r >> 16 & 0xFFFF) + (r >> 32 & 0xFFFF) + (r >> 48)) / 65536.0f - 2.0f;
                float val = ink * (cover < 0.0f ? 0.0f : cover > 1.0f ? 1.0f : cover) + 0.052f * e;  /* 0.03 sqrt 3 */
                img[py * 28 + px] = val < 0.0f ? 0.0f : val > 1.0f ? 1.0f : val;
            }
    }
    snprintf(t.name, sizeof t.name, "synthetic shapes (%d images, 10 classes)", n);
    *ds = t;
}

// >>data-toy2d
GMDEF void gm_synthetic_2d(gm_dataset *ds, gm_toy kind, int n, uint64_t seed)
{
    static const char *names[4] = { "ring of 8 Gaussians", "grid of 25 Gaussians", "swiss roll", "two moons" };
    static const int nclass[4] = { 8, 25, 1, 2 };
    const double pi = 3.14159265358979323846;
    gm_rng rng = gm_rng_new(seed);
    gm_dataset t;
    int i;
    if (!ds || n < 1 || (int)kind < 0 || (int)kind > 3)
        gm__fatal(__FILE__, __LINE__, "gm_synthetic_2d", "need ds, a gm_toy and n >= 1, got kind %d n %d", (int)kind, n);
    if (!gm__dataset_new(&t, n, 2, 1, 1, 1)) { memset(ds, 0, sizeof *ds); return; }
    t.nclass = nclass[kind];
    /* draw the labels first, then each point from the mode or the moon its label names */
    gm__balanced_labels(t.y, n, t.nclass, &rng);
    for (i = 0; i < n; i++) {
        int k = t.y[i];
        double x, y, a;
        switch (kind) {
        case GM_RING8:        /* mode k at angle 2 pi k / 8 on the circle of radius 2, std 0.02 */
            x = 2.0 * cos(2.0 * pi * k / 8) + 0.02 * gm_rng_normal(&rng);
            y = 2.0 * sin(2.0 * pi * k / 8) + 0.02 * gm_rng_normal(&rng);
            break;
        case GM_GRID25:       /* mode k = 5*row + col at (-4 + 2 col, -4 + 2 row), std 0.05 */
            x = -4.0 + 2.0 * (k % 5) + 0.05 * gm_rng_normal(&rng);
            y = -4.0 + 2.0 * (k / 5) + 0.05 * gm_rng_normal(&rng);
            break;
        case GM_SWISS_ROLL:   /* scikit-learn's roll, 2-D: t ~ U[1.5pi, 4.5pi], (t cos t, t sin t) */
            a = 1.5 * pi * (1.0 + 2.0 * gm_rng_uniform(&rng));
            x = (a * cos(a) + 0.25 * gm_rng_normal(&rng)) / 7.0;
            y = (a * sin(a) + 0.25 * gm_rng_normal(&rng)) / 7.0;
            break;
        default:              /* moons: (cos a, sin a) and (1 - cos a, 0.5 - sin a), a ~ U[0, pi] */
            a = pi * gm_rng_uniform(&rng);
            x = (k ? 1.0 - cos(a) : cos(a)) + 0.1 * gm_rng_normal(&rng);
            y = (k ? 0.5 - sin(a) : sin(a)) + 0.1 * gm_rng_normal(&rng);
            x = 1.3 * (x - 0.5);                 /* centre [-1,2] x [-0.5,1], then scale */
            y = 1.3 * (y - 0.25);
            break;
        }
        t.x[2 * i] = (float)x;
        t.x[2 * i + 1] = (float)y;
    }
    snprintf(t.name, sizeof t.name, "%s (%d points)", names[kind], n);
    *ds = t;
}

// >>data-ops
GMDEF void gm_dataset_shuffle(gm_dataset *ds, gm_rng *rng)
{
    int i;
    if (!ds || !ds->order) return;
    /* start from the identity so the result depends on rng alone, not on earlier shuffles */
    for (i = 0; i < ds->n; i++) ds->order[i] = i;
    gm_rng_shuffle(rng, ds->order, ds->n);
}

GMDEF void gm_dataset_free(gm_dataset *ds)
{
    if (!ds) return;
    GM_FREE(ds->x);
    GM_FREE(ds->y);
    GM_FREE(ds->order);
    memset(ds, 0, sizeof *ds);
}

GMDEF int gm_dataset_split(gm_dataset *keep, gm_dataset *rest, const gm_dataset *ds,
                           const int *classes, int nclasses)
{
    gm_dataset part[2];                 /* part[1]: labels in classes[], part[0]: the others */
    gm_dataset *out[2];
    unsigned char *in;
    int count[2] = { 0, 0 }, fill[2] = { 0, 0 }, i, p;
    out[0] = rest;
    out[1] = keep;
    if (!ds || !ds->x) return gm__error("gm_dataset_split: no data set");
    if (!ds->y) return gm__error("%s: gm_dataset_split needs labels and this set has none", ds->name);
    if (!classes || nclasses < 1) return gm__error("%s: gm_dataset_split: no classes given", ds->name);
    for (i = 0; i < nclasses; i++)
        if (classes[i] < 0 || classes[i] >= ds->nclass)
            return gm__error("%s: gm_dataset_split: class %d is outside 0..%d", ds->name, classes[i], ds->nclass - 1);
    /* in[k] = 1 if class k is kept */
    /* two passes over the labels: count each part, allocate it, then copy */
    in = (unsigned char *)gm__calloc((size_t)ds->nclass, 1);
    if (!in) return 0;
    for (i = 0; i < nclasses; i++) in[classes[i]] = 1;
    for (i = 0; i < ds->n; i++) count[in[ds->y[i]]]++;
    for (p = 0; p < 2; p++) {
        memset(&part[p], 0, sizeof part[p]);
        if (out[p] && count[p] == 0) {
            gm__error("%s: gm_dataset_split: the %s part would be empty", ds->name, p ? "kept" : "rest");
            break;
        }
        if (out[p] && !gm__dataset_new(&part[p], count[p], ds->c, ds->h, ds->w, 1)) break;
    }
    if (p < 2) {                        /* stopped early: undo whatever was made */
        for (i = 0; i < p; i++) gm_dataset_free(&part[i]);
        GM_FREE(in);
        return 0;
    }
    /* copy each example, in its original order, to the part its label picks */
    for (i = 0; i < ds->n; i++) {
        int q = in[ds->y[i]];
        if (!out[q]) continue;
        memcpy(part[q].x + (size_t)fill[q] * ds->d, ds->x + (size_t)i * ds->d, (size_t)ds->d * sizeof(float));
        part[q].y[fill[q]++] = ds->y[i];
    }
    GM_FREE(in);
    for (p = 0; p < 2; p++) {
        if (!out[p]) continue;
        part[p].nclass = ds->nclass;
        snprintf(part[p].name, sizeof part[p].name, "%.60s, %s (%d)", ds->name,
                 p ? "kept classes" : "other classes", part[p].n);
    }
    /* assign last: keep or rest may be the same struct as ds */
    if (keep) *keep = part[1];
    if (rest) *rest = part[0];
    return 1;
}
