/* tests/test_data.c - section 9, data: IDX round trips (plain, hand-made gzip, real gzip),
 * Fashion-MNIST when installed, bad files, image folders, the synthetic sets, shuffle, split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>    /* mkdir (POSIX) */
#include "../genmod.h"
#include "test.h"

#include <stb_image_write.h>     /* implemented in tests/stb_impl.c */

/* ---------------------------------------------------------------------------------------
 * helpers: paths, files, IDX and gzip writers
 * --------------------------------------------------------------------------------------- */
static char *td_path(char *buf, const char *name)
{
    snprintf(buf, 512, "%s/%s", gm_test_dir, name);
    return buf;
}

static void td_mkdir(const char *name)
{
    char p[512];
    mkdir(td_path(p, name), 0777);           /* fails harmlessly if it exists */
}

static int td_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    size_t put;
    if (!f) return 0;
    put = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && put == len;
}

static unsigned char *td_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (unsigned char *)malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void td_put32be(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

static void td_put32le(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;         p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

/* CRC-32 (gzip's), written independently of the library's: bit by bit, no table. */
static unsigned td_crc32(const unsigned char *p, size_t n)
{
    unsigned crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return crc ^ 0xFFFFFFFFu;
}

/* The test pair: 7 images of H=5 x W=3 with known bytes, and 7 labels (nclass 10). */
enum { TD_N = 7, TD_H = 5, TD_W = 3 };
static const unsigned char td_labels[TD_N] = { 3, 1, 4, 1, 5, 9, 2 };
static unsigned char td_pixel(int i, int j)          /* covers 0 and 255 */
{
    return (unsigned char)(i == TD_N - 1 && j == TD_H * TD_W - 1 ? 255 : (i * 37 + j * 11) % 256);
}

/* An IDX images file: magic 0x803, dims n, h, w, then n*h*w bytes (ndata may differ). */
static size_t td_idx_images(unsigned char *buf, unsigned magic, unsigned n, unsigned h, unsigned w, size_t ndata)
{
    size_t i;
    td_put32be(buf, magic);
    td_put32be(buf + 4, n);
    td_put32be(buf + 8, h);
    td_put32be(buf + 12, w);
    for (i = 0; i < ndata; i++) buf[16 + i] = td_pixel((int)(i / (TD_H * TD_W)), (int)(i % (TD_H * TD_W)));
    return 16 + ndata;
}

static size_t td_idx_labels(unsigned char *buf, unsigned magic, unsigned n, size_t ndata)
{
    size_t i;
    td_put32be(buf, magic);
    td_put32be(buf + 4, n);
    for (i = 0; i < ndata; i++) buf[8 + i] = td_labels[i % TD_N];
    return 8 + ndata;
}

/* Write the good pair as <stem>-images / <stem>-labels into gm_test_dir. */
static void td_write_pair(const char *stem)
{
    unsigned char buf[256];
    char p[512], name[128];
    snprintf(name, sizeof name, "%s-images", stem);
    td_write(td_path(p, name), buf, td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, TD_N * TD_H * TD_W));
    snprintf(name, sizeof name, "%s-labels", stem);
    td_write(td_path(p, name), buf, td_idx_labels(buf, 0x801, TD_N, TD_N));
}

/* A gzip file (RFC 1952) around a deflate stream of "stored" blocks (BTYPE 00): each block
 * is one header byte (BFINAL in bit 0), then LEN and NLEN = ~LEN, little-endian, then LEN
 * raw bytes. flags picks the optional header fields to include. Returns malloc'd bytes. */
static unsigned char *td_gzip_stored(const unsigned char *in, size_t len, int flags, size_t block, size_t *outlen)
{
    size_t cap = 64 + len + 5 * (len / block + 1), o = 0, done = 0;
    unsigned char *out = (unsigned char *)malloc(cap);
    out[o++] = 0x1F; out[o++] = 0x8B; out[o++] = 8; out[o++] = (unsigned char)flags;
    td_put32le(out + o, 0); o += 4;                      /* MTIME */
    out[o++] = 0; out[o++] = 255;                         /* XFL, OS unknown */
    if (flags & 4) { out[o++] = 4; out[o++] = 0; memcpy(out + o, "Ab\2\0", 4); o += 4; }   /* FEXTRA */
    if (flags & 8) { memcpy(out + o, "data.idx", 9); o += 9; }                              /* FNAME */
    if (flags & 16) { memcpy(out + o, "a comment", 10); o += 10; }                          /* FCOMMENT */
    if (flags & 2) { unsigned c = td_crc32(out, o); out[o++] = (unsigned char)c; out[o++] = (unsigned char)(c >> 8); }
    do {
        size_t k = len - done < block ? len - done : block;
        out[o++] = (unsigned char)(done + k == len);      /* BFINAL, BTYPE 00 */
        out[o++] = (unsigned char)k; out[o++] = (unsigned char)(k >> 8);
        out[o++] = (unsigned char)~k; out[o++] = (unsigned char)(~k >> 8);
        memcpy(out + o, in + done, k);
        o += k;
        done += k;
    } while (done < len);
    td_put32le(out + o, td_crc32(in, len)); o += 4;
    td_put32le(out + o, (unsigned)len); o += 4;
    *outlen = o;
    return out;
}

/* gzip a file of gm_test_dir into <name>.gz with the stored-block writer. */
static void td_gzip_file(const char *name, const char *gzname, int flags, size_t block)
{
    char p[512];
    size_t len, glen;
    unsigned char *raw = td_read(td_path(p, name), &len), *gz;
    if (!raw) return;
    gz = td_gzip_stored(raw, len, flags, block, &glen);
    td_write(td_path(p, gzname), gz, glen);
    free(raw);
    free(gz);
}

/* The loaded pair must hold exactly the bytes written. */
static void td_check_pair(const gm_dataset *ds, int labeled)
{
    int i, j, ok = 1;
    EXPECT(ds->n == TD_N && ds->c == 1 && ds->h == TD_H && ds->w == TD_W && ds->d == TD_H * TD_W);
    if (ds->n != TD_N || !ds->x) return;
    for (i = 0; i < TD_N; i++)
        for (j = 0; j < TD_H * TD_W; j++)
            if (ds->x[i * TD_H * TD_W + j] != (float)td_pixel(i, j) / 255.0f) ok = 0;
    EXPECT(ok);
    for (i = 0; i < TD_N; i++) EXPECT(ds->order[i] == i);
    if (labeled) {
        EXPECT(ds->y != NULL && ds->nclass == 10);
        if (ds->y) for (i = 0; i < TD_N; i++) EXPECT(ds->y[i] == td_labels[i]);
    } else {
        EXPECT(ds->y == NULL && ds->nclass == 0);
    }
}

/* The loader must fail, name `mention` in the message, and leave ds byte for byte as it was. */
static void td_expect_fail(const char *images, const char *labels, const char *mention)
{
    gm_dataset ds, before;
    char pi[512], pl[512];
    int ok;
    memset(&ds, 0x5A, sizeof ds);
    before = ds;
    ok = gm_load_idx(&ds, td_path(pi, images), labels ? td_path(pl, labels) : NULL);
    EXPECT(ok == 0);
    EXPECT(memcmp(&ds, &before, sizeof ds) == 0);
    EXPECT(strstr(gm_last_error(), mention) != NULL);
    if (ok || !strstr(gm_last_error(), mention)) printf("  (%s: \"%s\")\n", images, gm_last_error());
}

/* A zeroed data set (C++ warns about "= { 0 }" on a struct). */
static gm_dataset td_empty(void)
{
    gm_dataset d;
    memset(&d, 0, sizeof d);
    return d;
}

static int td_have_gzip(void) { return system("gzip --version >/dev/null 2>&1") == 0; }

/* ---------------------------------------------------------------------------------------
 * IDX
 * --------------------------------------------------------------------------------------- */
static void test_idx_plain_round_trip(void)
{
    gm_dataset ds = td_empty();
    char pi[512], pl[512];
    td_write_pair("plain");
    EXPECT(gm_load_idx(&ds, td_path(pi, "plain-images"), td_path(pl, "plain-labels")) == 1);
    td_check_pair(&ds, 1);
    EXPECT(strstr(ds.name, "plain-images (7 images)") != NULL);
    gm_dataset_free(&ds);
    EXPECT(ds.x == NULL && ds.n == 0);
    /* no labels file: y = NULL, nclass 0 */
    EXPECT(gm_load_idx(&ds, td_path(pi, "plain-images"), NULL) == 1);
    td_check_pair(&ds, 0);
    gm_dataset_free(&ds);
}

static void test_idx_gzip_stored_blocks(void)
{
    /* every combination of header extras; 64-byte blocks so the stream has several */
    static const int flags[4] = { 0, 8, 4 | 8 | 16, 2 | 4 | 8 | 16 };
    gm_dataset ds = td_empty();
    char pi[512], pl[512];
    int f;
    td_write_pair("plain");
    for (f = 0; f < 4; f++) {
        /* no .gz in the names: gzip is told by its magic bytes */
        td_gzip_file("plain-images", "gzs-images", flags[f], 64);
        td_gzip_file("plain-labels", "gzs-labels", flags[f], 64);
        EXPECT(gm_load_idx(&ds, td_path(pi, "gzs-images"), td_path(pl, "gzs-labels")) == 1);
        td_check_pair(&ds, 1);
        gm_dataset_free(&ds);
    }
    /* a payload larger than one 65535-byte stored block: 200 images of 28x28 */
    {
        size_t n = 200 * 784, glen, i;
        unsigned char *raw = (unsigned char *)malloc(16 + n), *gz;
        int ok = 1;
        td_put32be(raw, 0x803); td_put32be(raw + 4, 200); td_put32be(raw + 8, 28); td_put32be(raw + 12, 28);
        for (i = 0; i < n; i++) raw[16 + i] = (unsigned char)(i * 7 + (i >> 8));
        gz = td_gzip_stored(raw, 16 + n, 8, 65535, &glen);
        td_write(td_path(pi, "big.gz"), gz, glen);
        EXPECT(gm_load_idx(&ds, pi, NULL) == 1);
        EXPECT(ds.n == 200 && ds.h == 28 && ds.w == 28);
        for (i = 0; ds.x && i < n; i++) if (ds.x[i] != (float)raw[16 + i] / 255.0f) ok = 0;
        EXPECT(ok);
        gm_dataset_free(&ds);
        free(raw);
        free(gz);
    }
}

static void test_idx_gzip_real(void)
{
    gm_dataset ds = td_empty();
    char cmd[1200], pi[512], pl[512];
    if (!td_have_gzip()) { printf("  note: gzip not installed, real-gzip round trip skipped\n"); return; }
    td_write_pair("plain");
    /* gzip stores the file name (FNAME) and compresses with Huffman blocks */
    snprintf(cmd, sizeof cmd, "gzip -c -9 '%s' > '%s'", td_path(pi, "plain-images"), td_path(pl, "real-images.gz"));
    EXPECT(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s'", td_path(pi, "plain-labels"), td_path(pl, "real-labels.gz"));
    EXPECT(system(cmd) == 0);
    EXPECT(gm_load_idx(&ds, td_path(pi, "real-images.gz"), td_path(pl, "real-labels.gz")) == 1);
    td_check_pair(&ds, 1);
    gm_dataset_free(&ds);
}

static void test_fashion_mnist(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char p[512];
    gm_dataset tr = td_empty(), te = td_empty(), before;
    FILE *f;
    int i, ok = 1, count[10] = { 0 };
    /* the fallback to names without .gz, with the small pair laid out as Fashion-MNIST */
    {
        unsigned char buf[256];
        td_mkdir("fmnist");
        td_write(td_path(p, "fmnist/train-images-idx3-ubyte"), buf, td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, TD_N * TD_H * TD_W));
        td_write(td_path(p, "fmnist/t10k-images-idx3-ubyte"), buf, td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, TD_N * TD_H * TD_W));
        td_write(td_path(p, "fmnist/train-labels-idx1-ubyte"), buf, td_idx_labels(buf, 0x801, TD_N, TD_N));
        td_write(td_path(p, "fmnist/t10k-labels-idx1-ubyte"), buf, td_idx_labels(buf, 0x801, TD_N, TD_N));
        EXPECT(gm_load_fashion_mnist(&tr, &te, td_path(p, "fmnist")) == 1);
        td_check_pair(&tr, 1);
        td_check_pair(&te, 1);
        EXPECT(strcmp(tr.name, "Fashion-MNIST train (7 images)") == 0);
        gm_dataset_free(&tr);
        gm_dataset_free(&te);
        /* test labels broken: fails, and the train half already loaded is not handed out */
        td_write(td_path(p, "fmnist/t10k-labels-idx1-ubyte"), buf, td_idx_labels(buf, 0x801, TD_N - 1, TD_N - 1));
        memset(&tr, 0x11, sizeof tr);
        memset(&te, 0x22, sizeof te);
        before = tr;
        EXPECT(gm_load_fashion_mnist(&tr, &te, td_path(p, "fmnist")) == 0);
        EXPECT(memcmp(&tr, &before, sizeof tr) == 0);
        memset(&before, 0x22, sizeof before);
        EXPECT(memcmp(&te, &before, sizeof te) == 0);
        EXPECT(strstr(gm_last_error(), "t10k-labels-idx1-ubyte") != NULL);
        /* a missing folder names the file it looked for */
        EXPECT(gm_load_fashion_mnist(&tr, &te, td_path(p, "no-such-folder")) == 0);
        EXPECT(strstr(gm_last_error(), "no-such-folder/train-images-idx3-ubyte.gz") != NULL);
        memset(&tr, 0, sizeof tr);
        memset(&te, 0, sizeof te);
    }
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    if (!(f = fopen(p, "rb"))) { printf("  note: %s not installed, Fashion-MNIST test skipped\n", dir); return; }
    fclose(f);
    EXPECT(gm_load_fashion_mnist(&tr, &te, NULL) == 1);
    EXPECT(tr.n == 60000 && te.n == 10000);
    EXPECT(tr.c == 1 && tr.h == 28 && tr.w == 28 && tr.d == 784 && te.d == 784);
    EXPECT(tr.nclass == 10 && te.nclass == 10);
    EXPECT(strcmp(tr.name, "Fashion-MNIST train (60000 images)") == 0);
    EXPECT(tr.class_names && te.class_names && strcmp(tr.class_names[0], "T-shirt/top") == 0 &&
           strcmp(te.class_names[9], "ankle boot") == 0);
    if (tr.n == 60000 && te.n == 10000) {
        for (i = 0; i < 60000 * 784; i++) if (!(tr.x[i] >= 0.0f && tr.x[i] <= 1.0f)) ok = 0;
        for (i = 0; i < 10000 * 784; i++) if (!(te.x[i] >= 0.0f && te.x[i] <= 1.0f)) ok = 0;
        EXPECT(ok);
        for (i = 0; i < 60000; i++) count[tr.y[i]]++;
        for (i = 0; i < 10; i++) EXPECT(count[i] == 6000);    /* the set is balanced */
        EXPECT(tr.y[0] == 9 && te.y[0] == 9);                  /* both start with an ankle boot */
    }
    gm_dataset_free(&tr);
    gm_dataset_free(&te);
}

static void test_idx_bad_files(void)
{
    unsigned char buf[512];
    char p[512];
    size_t len, glen;
    unsigned char *gz;
    td_write_pair("plain");

    td_expect_fail("does-not-exist", NULL, "does-not-exist");
    td_write(td_path(p, "bad-empty"), buf, 0);
    td_expect_fail("bad-empty", NULL, "bad-empty");
    len = td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, 0);
    td_write(td_path(p, "bad-header"), buf, 10);                               /* 10 of 16 header bytes */
    td_expect_fail("bad-header", NULL, "bad-header: truncated header");
    len = td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, 50);                      /* needs 105 bytes */
    td_write(td_path(p, "bad-trunc"), buf, len);
    td_expect_fail("bad-trunc", NULL, "bad-trunc: truncated");
    len = td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, TD_N * TD_H * TD_W + 3);  /* 3 bytes too many */
    td_write(td_path(p, "bad-long"), buf, len);
    td_expect_fail("bad-long", NULL, "bad-long: wrong size");
    len = td_idx_images(buf, 0x802, TD_N, TD_H, TD_W, TD_N * TD_H * TD_W);
    td_write(td_path(p, "bad-magic"), buf, len);
    td_expect_fail("bad-magic", NULL, "bad-magic: wrong magic");
    td_expect_fail("plain-labels", NULL, "labels file");                        /* swapped arguments */
    len = td_idx_images(buf, 0x803, 0x80000000u, 0x10000u, 0x10000u, 0);        /* 2^31 of 2^16 x 2^16 */
    td_write(td_path(p, "bad-absurd"), buf, len);
    td_expect_fail("bad-absurd", NULL, "bad-absurd");
    len = td_idx_images(buf, 0x803, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0);  /* the product overflows 64 bits */
    td_write(td_path(p, "bad-huge"), buf, len);
    td_expect_fail("bad-huge", NULL, "bad-huge");
    len = td_idx_images(buf, 0x803, 0, TD_H, TD_W, 0);
    td_write(td_path(p, "bad-zero"), buf, len);
    td_expect_fail("bad-zero", NULL, "bad-zero");
    len = td_idx_labels(buf, 0x801, TD_N - 1, TD_N - 1);                        /* 6 labels for 7 images */
    td_write(td_path(p, "bad-count"), buf, len);
    td_expect_fail("plain-images", "bad-count", "bad-count");
    len = td_idx_labels(buf, 0x803, TD_N, TD_N);                                /* labels with the images magic */
    td_write(td_path(p, "bad-lmagic"), buf, len);
    td_expect_fail("plain-images", "bad-lmagic", "bad-lmagic: wrong magic");
    len = td_idx_labels(buf, 0x801, TD_N, TD_N - 2);
    td_write(td_path(p, "bad-ltrunc"), buf, len);
    td_expect_fail("plain-images", "bad-ltrunc", "bad-ltrunc: truncated");
    td_expect_fail("plain-images", "no-labels-here", "no-labels-here");
    td_mkdir("a-folder");
    td_expect_fail("a-folder", NULL, "a-folder");

    /* gzip damage, on the stored-block gzip of the good images file */
    len = td_idx_images(buf, 0x803, TD_N, TD_H, TD_W, TD_N * TD_H * TD_W);
    gz = td_gzip_stored(buf, len, 0, 1000, &glen);
    gz[10 + 5 + 20] ^= 0x40;                                   /* a data byte: CRC mismatch */
    td_write(td_path(p, "bad-gz-data.gz"), gz, glen);
    td_expect_fail("bad-gz-data.gz", NULL, "bad-gz-data.gz: corrupt gzip");
    gz[10 + 5 + 20] ^= 0x40;
    gz[10 + 3] ^= 0x01;                                        /* NLEN no longer ~LEN: bad stream */
    td_write(td_path(p, "bad-gz-nlen.gz"), gz, glen);
    td_expect_fail("bad-gz-nlen.gz", NULL, "bad-gz-nlen.gz: corrupt gzip");
    gz[10 + 3] ^= 0x01;
    gz[glen - 7] ^= 0x01;                                      /* the CRC in the trailer */
    td_write(td_path(p, "bad-gz-crc.gz"), gz, glen);
    td_expect_fail("bad-gz-crc.gz", NULL, "bad-gz-crc.gz: corrupt gzip");
    gz[glen - 7] ^= 0x01;
    gz[glen - 4] += 1;                                         /* ISIZE one too big */
    td_write(td_path(p, "bad-gz-isize.gz"), gz, glen);
    td_expect_fail("bad-gz-isize.gz", NULL, "bad-gz-isize.gz: corrupt gzip");
    gz[glen - 4] -= 2;                                         /* ISIZE one too small */
    td_write(td_path(p, "bad-gz-isize2.gz"), gz, glen);
    td_expect_fail("bad-gz-isize2.gz", NULL, "bad-gz-isize2.gz: corrupt gzip");
    gz[glen - 4] += 1;
    gz[glen - 1] = 0x7F;                                       /* ISIZE 2 GiB: refused before allocating */
    td_write(td_path(p, "bad-gz-huge.gz"), gz, glen);
    td_expect_fail("bad-gz-huge.gz", NULL, "bad-gz-huge.gz: corrupt gzip");
    gz[glen - 1] = 0;
    gz[2] = 7;                                                 /* compression method 7 */
    td_write(td_path(p, "bad-gz-cm.gz"), gz, glen);
    td_expect_fail("bad-gz-cm.gz", NULL, "bad-gz-cm.gz: corrupt gzip");
    gz[2] = 8;
    td_write(td_path(p, "bad-gz-cut.gz"), gz, glen / 2);       /* cut in half */
    td_expect_fail("bad-gz-cut.gz", NULL, "bad-gz-cut.gz: corrupt gzip");
    td_write(td_path(p, "bad-gz-tiny.gz"), gz, 12);            /* less than header + trailer */
    td_expect_fail("bad-gz-tiny.gz", NULL, "bad-gz-tiny.gz: corrupt gzip");
    gz[3] = 8;                                                 /* FNAME with no terminating zero ... */
    memset(gz + 10, 'a', glen - 10);                           /* ... runs to the end of the file */
    td_write(td_path(p, "bad-gz-name.gz"), gz, glen);
    td_expect_fail("bad-gz-name.gz", NULL, "bad-gz-name.gz: corrupt gzip");
    free(gz);

    /* a byte flipped inside a real (Huffman-coded) gzip stream */
    if (td_have_gzip()) {
        char cmd[1200], q[512];
        unsigned char *real;
        size_t rlen;
        snprintf(cmd, sizeof cmd, "gzip -c -n '%s' > '%s'", td_path(p, "plain-images"), td_path(q, "real-flip.gz"));
        EXPECT(system(cmd) == 0);
        real = td_read(q, &rlen);
        if (real && rlen > 30) {
            real[10 + (rlen - 18) / 2] ^= 0x10;                /* the middle of the deflate data */
            td_write(q, real, rlen);
            td_expect_fail("real-flip.gz", NULL, "real-flip.gz: corrupt gzip");
        }
        free(real);
    }
}

/* ---------------------------------------------------------------------------------------
 * image folders
 * --------------------------------------------------------------------------------------- */
/* a.png: 16x16 grey made of 2x2 blocks, block (bx, by) = 10 + 30 bx + 3 by: shrinking to
 * 8x8 by area averaging must give back exactly the block values. */
static void td_write_blocks(const char *name)
{
    unsigned char img[16 * 16];
    char p[512];
    int x, y;
    for (y = 0; y < 16; y++)
        for (x = 0; x < 16; x++) img[y * 16 + x] = (unsigned char)(10 + 30 * (x / 2) + 3 * (y / 2));
    stbi_write_png(td_path(p, name), 16, 16, 1, img, 16);
}

/* A w x h image of one colour with n channels. */
static void td_write_uniform(const char *name, int w, int h, int n, const unsigned char *colour)
{
    unsigned char img[64 * 64 * 4];
    char p[512];
    int i, k;
    for (i = 0; i < w * h; i++)
        for (k = 0; k < n; k++) img[i * n + k] = colour[k];
    stbi_write_png(td_path(p, name), w, h, n, img, w * n);
}

static void test_image_folder(void)
{
    static const unsigned char rgb[3] = { 200, 100, 50 }, grey[1] = { 77 };
    gm_dataset ds = td_empty();
    char p[512];
    int i, x, y, ok = 1;
    td_mkdir("imgs");
    td_write_blocks("imgs/a.png");
    td_write_uniform("imgs/b.png", 20, 12, 3, rgb);     /* shrinks, unevenly in x */
    td_write_uniform("imgs/c.png", 3, 5, 1, grey);      /* grows: bilinear */
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgs"), 1, 8, 8) == 1);
    EXPECT(ds.n == 3 && ds.c == 1 && ds.h == 8 && ds.w == 8 && ds.d == 64);
    EXPECT(ds.y == NULL && ds.nclass == 0);
    EXPECT(strstr(ds.name, "imgs (3 images)") != NULL);
    if (ds.n == 3) {
        for (i = 0; i < 3 * 64; i++) if (!(ds.x[i] >= 0.0f && ds.x[i] <= 1.0f)) ok = 0;
        EXPECT(ok);
        for (y = 0; y < 8; y++)                          /* sorted: a.png first */
            for (x = 0; x < 8; x++) EXPECT_NEAR(ds.x[y * 8 + x], (10 + 30 * x + 3 * y) / 255.0, 1e-6);
        for (i = 0; i < 64; i++) {
            /* stb converts RGB to grey with its own weights; one colour stays one grey */
            EXPECT_NEAR(ds.x[64 + i], ds.x[64], 1e-6);
            EXPECT_NEAR(ds.x[128 + i], 77 / 255.0, 1e-6);
        }
        EXPECT_NEAR(ds.x[64], (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255.0, 2.0 / 255.0);
    }
    gm_dataset_free(&ds);
    /* as RGB: (C, H, W) with each channel of b.png its own constant */
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgs"), 3, 5, 7) == 1);
    EXPECT(ds.n == 3 && ds.c == 3 && ds.h == 5 && ds.w == 7 && ds.d == 105);
    if (ds.n == 3)
        for (i = 0; i < 35; i++) {
            EXPECT_NEAR(ds.x[105 + i], 200 / 255.0, 1e-6);
            EXPECT_NEAR(ds.x[105 + 35 + i], 100 / 255.0, 1e-6);
            EXPECT_NEAR(ds.x[105 + 70 + i], 50 / 255.0, 1e-6);
            EXPECT_NEAR(ds.x[210 + 35 + i], 77 / 255.0, 1e-6);   /* grey -> R = G = B */
        }
    gm_dataset_free(&ds);
}

static void test_image_folder_classes(void)
{
    static const unsigned char dark[1] = { 20 }, light[1] = { 230 };
    gm_dataset ds = td_empty();
    char p[512];
    int i;
    td_mkdir("imgcls");
    td_mkdir("imgcls/cat");
    td_mkdir("imgcls/dog");
    td_write_uniform("imgcls/cat/b.png", 9, 9, 1, dark);
    td_write_uniform("imgcls/cat/a.png", 4, 6, 1, dark);
    td_write_uniform("imgcls/dog/c.png", 10, 7, 1, light);
    td_write(td_path(p, "imgcls/README.txt"), "not an image", 12);    /* beside the classes: ignored */
    snprintf(p + strlen(td_path(p, "imgcls")), 8, "/");             /* a trailing slash is fine */
    EXPECT(gm_load_image_folder(&ds, p, 1, 6, 6) == 1);
    EXPECT(strncmp(ds.name, "imgcls (3 images", 16) == 0);
    EXPECT(ds.n == 3 && ds.nclass == 2 && ds.y != NULL);
    EXPECT(ds.class_names && strcmp(ds.class_names[0], "cat") == 0 && strcmp(ds.class_names[1], "dog") == 0);
    if (ds.n == 3 && ds.y) {
        EXPECT(ds.y[0] == 0 && ds.y[1] == 0 && ds.y[2] == 1);
        for (i = 0; i < 36; i++) {
            EXPECT_NEAR(ds.x[i], 20 / 255.0, 1e-6);
            EXPECT_NEAR(ds.x[72 + i], 230 / 255.0, 1e-6);
        }
    }
    gm_dataset_free(&ds);
}

static void test_image_folder_bad(void)
{
    static const unsigned char grey[1] = { 128 };
    gm_dataset ds, before;
    char p[512];
    memset(&ds, 0x5A, sizeof ds);
    before = ds;
    /* a file that is not an image */
    td_mkdir("imgbad");
    td_write_uniform("imgbad/a.png", 4, 4, 1, grey);
    td_write(td_path(p, "imgbad/notes.txt"), "hello", 5);
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgbad"), 1, 8, 8) == 0);
    EXPECT(strstr(gm_last_error(), "imgbad/notes.txt") != NULL);
    EXPECT(memcmp(&ds, &before, sizeof ds) == 0);
    /* a missing folder */
    EXPECT(gm_load_image_folder(&ds, td_path(p, "no-such-imgs"), 1, 8, 8) == 0);
    EXPECT(strstr(gm_last_error(), "no-such-imgs") != NULL);
    EXPECT(memcmp(&ds, &before, sizeof ds) == 0);
    /* an empty folder, and an empty class folder */
    td_mkdir("imgempty");
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgempty"), 1, 8, 8) == 0);
    EXPECT(strstr(gm_last_error(), "imgempty") != NULL);
    td_mkdir("imgcls2");
    td_mkdir("imgcls2/full");
    td_mkdir("imgcls2/void");
    td_write_uniform("imgcls2/full/a.png", 4, 4, 1, grey);
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgcls2"), 1, 8, 8) == 0);
    EXPECT(strstr(gm_last_error(), "imgcls2/void") != NULL);
    /* absurd sizes */
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgcls2/full"), 1, 0, 8) == 0);
    EXPECT(gm_load_image_folder(&ds, td_path(p, "imgcls2/full"), 5, 8, 8) == 0);
    EXPECT(memcmp(&ds, &before, sizeof ds) == 0);
}

/* ---------------------------------------------------------------------------------------
 * image files checked before decoding: zero sides, truncation, oversized headers
 * --------------------------------------------------------------------------------------- */
/* A test image of TD_IW x TD_IH pixels with c interleaved channels, every byte different
 * enough to catch a wrong row, column or channel. */
enum { TD_IW = 6, TD_IH = 5 };
static void td_pattern(unsigned char *img, int c)
{
    int i;
    for (i = 0; i < TD_IW * TD_IH * c; i++)
        img[i] = (unsigned char)(17 + 40 * (i / c % TD_IW) + 29 * (i / c / TD_IW) + 61 * (i % c));
}

/* stb_image_write's output, collected in memory (the test images take a few hundred bytes). */
typedef struct td_bytes { unsigned char b[4096]; size_t n; } td_bytes;
static void td_collect(void *ctx, void *data, int size)
{
    td_bytes *t = (td_bytes *)ctx;
    if (t->n + (size_t)size > sizeof t->b) return;
    memcpy(t->b + t->n, data, (size_t)size);
    t->n += (size_t)size;
}

/* The test pattern (3 channels) as a baseline JPEG: cjpeg -optimize -sample 1x1 -qslots 0
 * -quality 95 of it as a PPM, without the JFIF segment; its scan data holds stuffed FF 00
 * bytes. (stb_image_write's JPEG encoder shifts signed ints out of range, which stops
 * the sanitizer build.) */
static const char td_jpeg_hex[] =
    "ffd8ffdb0043000201010101010201010102020202020403020202020504040304060506060605060606070908060709"
    "070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a0affc00011080005000603011100021100031100ffc400140001"
    "00000000000000000000000000000004ffc4001e10000104020301000000000000000000000201030406051307081411"
    "ffc4001501010100000000000000000000000000000506ffc40020110001040202030100000000000000000003010204"
    "050607111208131422ffda000c03010002110311003f000f63e9efc6e428bd70a7674f0f5ba8e31b0f184365e6e5cbd1"
    "1dff0052818fc42d7351a443d8a3a8940811e7016934862557bc76de79b6368c1893eca05dccc7697e60381f155c3b09"
    "40183b2395cf7388121defe53b38ea9c75189188d5e799df85be2cebbd9fa36e20d7e45b365dbc8b6bd3540a44a8f121"
    "90006421a9fd83689c473ccf568dae72b448abc0ff005fffd9";

static size_t td_unhex(unsigned char *out, const char *hex)
{
    size_t n = 0;
    unsigned v;
    for (; hex[0] && hex[1] && sscanf(hex, "%2x", &v) == 1; hex += 2) out[n++] = (unsigned char)v;
    return n;
}

/* stb_image_write's zlib compressor (defined in tests/stb_impl.c; its header does not
 * declare it). */
unsigned char *stbi_zlib_compress(unsigned char *data, int data_len, int *out_len, int quality);

/* A PNG chunk: length, type, data, then the CRC-32 of type and data. */
static size_t td_png_chunk(unsigned char *out, const char *type, const unsigned char *data, size_t n)
{
    td_put32be(out, (unsigned)n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    td_put32be(out + 8 + n, td_crc32(out + 4, n + 4));
    return n + 12;
}

/* An 8-bit grey PNG of w x h pixels, Adam7-interlaced or not, whose zlib stream holds
 * the rows (filter byte 0, then the pixels) and `extra` zero bytes more. Adam7 sends seven
 * sub-images: pass k holds the pixels x = x0 + i dx, y = y0 + j dy. */
static size_t td_png_grey(unsigned char *out, const unsigned char *pix, int w, int h, int interlaced, size_t extra)
{
    static const int pass[8][4] = { { 0, 0, 1, 1 },                             /* x0 y0 dx dy: all */
        { 0, 0, 8, 8 }, { 4, 0, 8, 8 }, { 0, 4, 4, 8 }, { 2, 0, 4, 4 }, { 0, 2, 2, 4 }, { 1, 0, 2, 2 }, { 0, 1, 1, 2 } };
    unsigned char ihdr[13] = { 0 }, *raw = (unsigned char *)calloc((size_t)(w + 1) * h * 2 + extra, 1), *z;
    size_t n = 0, len = 8;
    int k, x, y, zlen;
    for (k = interlaced ? 1 : 0; k <= (interlaced ? 7 : 0); k++)
        for (y = pass[k][1]; y < h && pass[k][0] < w; y += pass[k][3]) {
            raw[n++] = 0;
            for (x = pass[k][0]; x < w; x += pass[k][2]) raw[n++] = pix[y * w + x];
        }
    z = stbi_zlib_compress(raw, (int)(n + extra), &zlen, 8);
    memcpy(out, "\x89PNG\r\n\x1A\n", 8);
    td_put32be(ihdr, (unsigned)w);
    td_put32be(ihdr + 4, (unsigned)h);
    ihdr[8] = 8;                                         /* bits a sample; colour type 0: grey */
    ihdr[12] = (unsigned char)interlaced;
    len += td_png_chunk(out + len, "IHDR", ihdr, 13);
    len += td_png_chunk(out + len, "IDAT", z, (size_t)zlen);
    len += td_png_chunk(out + len, "IEND", NULL, 0);
    free(z);
    free(raw);
    return len;
}

/* A Windows BMP (40-byte info header) of w x h indices of bpp bits (1, 4 or 8) into a
 * palette of n greys (entry i is 60 i); rows stored top-down (a negative height) or
 * bottom-up. idx holds the indices, top row first. */
static size_t td_bmp_palette(unsigned char *buf, int w, int h, int bpp, int n, int topdown, const unsigned char *idx)
{
    int row = (w * bpp + 31) / 32 * 4, offset = 54 + 4 * n, i, x, y;
    size_t len = (size_t)offset + (size_t)row * h;
    memset(buf, 0, len);
    buf[0] = 'B'; buf[1] = 'M';
    td_put32le(buf + 2, (unsigned)len);
    td_put32le(buf + 10, (unsigned)offset);
    td_put32le(buf + 14, 40);
    td_put32le(buf + 18, (unsigned)w);
    td_put32le(buf + 22, topdown ? 0u - (unsigned)h : (unsigned)h);
    buf[26] = 1;                                         /* one plane */
    buf[28] = (unsigned char)bpp;
    for (i = 0; i < n; i++) buf[54 + 4 * i] = buf[55 + 4 * i] = buf[56 + 4 * i] = (unsigned char)(60 * i);
    for (y = 0; y < h; y++) {
        unsigned char *r = buf + offset + (size_t)row * (topdown ? y : h - 1 - y);
        for (x = 0; x < w; x++) r[x * bpp / 8] |= (unsigned char)(idx[y * w + x] << (8 - bpp - x * bpp % 8));
    }
    return len;
}

/* Load the folder <dir> holding only the file <dir>/<name> = data, as c channels at the
 * image's own size w x h (no resampling: every value comes back exactly). */
static int td_load_file(gm_dataset *ds, const char *dir, const char *name, const void *data, size_t len,
                        int c, int w, int h)
{
    char p[512], file[256];
    td_mkdir(dir);
    snprintf(file, sizeof file, "%s/%s", dir, name);
    td_write(td_path(p, file), data, len);
    return gm_load_image_folder(ds, td_path(p, dir), c, h, w);
}

/* 1 if the file is refused with an error that names it and contains `mention`, and ds is
 * left as it was; otherwise 0, saying why unless quiet. */
static int td_refused(const char *dir, const char *name, const void *data, size_t len, const char *mention, int quiet)
{
    gm_dataset ds, before;
    int good;
    memset(&ds, 0x5A, sizeof ds);
    before = ds;
    if (td_load_file(&ds, dir, name, data, len, 1, 4, 4)) {
        if (!quiet) printf("  %s/%s (%zu bytes) loaded\n", dir, name, len);
        gm_dataset_free(&ds);
        return 0;
    }
    good = strstr(gm_last_error(), name) && strstr(gm_last_error(), mention) && memcmp(&ds, &before, sizeof ds) == 0;
    if (!good && !quiet) printf("  %s (%zu bytes): \"%s\" lacks \"%s\"\n", name, len, gm_last_error(), mention);
    return good;
}

static void td_expect_refused(const char *dir, const char *name, const void *data, size_t len, const char *mention)
{
    EXPECT(td_refused(dir, name, data, len, mention, 0));
}

/* The file must load as one w x h image of c channels equal to want (HWC bytes) within tol. */
static void td_expect_pixels(const char *dir, const char *name, const void *data, size_t len, int c, int w, int h,
                             const unsigned char *want, int tol)
{
    gm_dataset ds = td_empty();
    int x, y, ch, worst = 0;
    EXPECT(td_load_file(&ds, dir, name, data, len, c, w, h) == 1);
    if (ds.n != 1) { printf("  %s: %s\n", name, gm_last_error()); return; }
    for (ch = 0; ch < c; ch++)
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++) {
                int got = (int)lround(ds.x[((size_t)ch * h + y) * w + x] * 255.0), d = abs(got - want[(y * w + x) * c + ch]);
                if (d > worst) worst = d;
            }
    EXPECT(worst <= tol);
    if (worst > tol) printf("  %s: a value is %d off\n", name, worst);
    gm_dataset_free(&ds);
}

/* Every cut of the file to 1 .. upto-1 bytes is refused, naming the file. */
static void td_expect_cuts_refused(const char *dir, const char *name, const unsigned char *data, size_t upto)
{
    size_t k, bad = 0, first = 0;
    for (k = 1; k < upto; k++)
        if (!td_refused(dir, name, data, k, name, 1) && bad++ == 0) first = k;
    EXPECT(bad == 0);
    if (bad) printf("  %s/%s: %zu of its %zu cuts not refused, the first at %zu bytes\n", dir, name, bad, upto - 1, first);
}

/* Bug A: a side of 0 reached the resampler, which read outside the pixels. */
static void test_image_zero_side(void)
{
    unsigned char bmp[256], idx[6] = { 0, 1, 1, 0, 1, 0 };
    td_expect_refused("img0-pgm60", "a.pgm", "P5\n6 0\n255\n", 11, "6x0 pixels");
    td_expect_refused("img0-pgm06", "a.pgm", "P5\n0 6\n255\n", 11, "0x6 pixels");
    td_expect_refused("img0-bmp06", "a.bmp", bmp, td_bmp_palette(bmp, 0, 6, 8, 2, 0, idx), "0x6 pixels");
    td_expect_refused("img0-bmp60", "a.bmp", bmp, td_bmp_palette(bmp, 6, 0, 8, 2, 0, idx), "6x0 pixels");
}

/* Bug B, truncation: each format loads with the right pixels, and every cut of it is
 * refused (PNG and JPEG were already refused by stb: these guard that they stay so). */
static void test_image_formats_truncated(void)
{
    static const int bpps[3] = { 1, 4, 8 };
    unsigned char rgb[TD_IW * TD_IH * 3], rgba[TD_IW * TD_IH * 4], grey[TD_IW * TD_IH], buf[512];
    unsigned char idx[TD_IW * TD_IH], greys[TD_IW * TD_IH];
    td_bytes f;
    size_t n, i;
    int k;
    td_pattern(rgb, 3);
    td_pattern(rgba, 4);
    td_pattern(grey, 1);
    /* PGM and PPM (with a comment in the header) */
    n = (size_t)sprintf((char *)buf, "P5\n%d %d\n255\n", TD_IW, TD_IH);
    memcpy(buf + n, grey, sizeof grey);
    td_expect_pixels("imgt-pgm", "a.pgm", buf, n + sizeof grey, 1, TD_IW, TD_IH, grey, 0);
    td_expect_cuts_refused("imgt-pgm", "a.pgm", buf, n + sizeof grey);
    td_expect_refused("imgt-pgm", "a.pgm", buf, n + 10, "truncated PGM");
    n = (size_t)sprintf((char *)buf, "P6\n# made by genmod's tests\n%d %d\n255\n", TD_IW, TD_IH);
    memcpy(buf + n, rgb, sizeof rgb);
    td_expect_pixels("imgt-ppm", "a.ppm", buf, n + sizeof rgb, 3, TD_IW, TD_IH, rgb, 0);
    td_expect_cuts_refused("imgt-ppm", "a.ppm", buf, n + sizeof rgb);
    td_expect_refused("imgt-ppm", "a.ppm", buf, n + 30, "truncated PPM");
    /* BMP: 24 bits (stb's writer, rows padded from 18 to 20 bytes), 32 bits with alpha,
     * palettes of 1, 4 and 8 bits an index (the last with its rows stored top-down) */
    f.n = 0;
    stbi_write_bmp_to_func(td_collect, &f, TD_IW, TD_IH, 3, rgb);
    td_expect_pixels("imgt-bmp", "a.bmp", f.b, f.n, 3, TD_IW, TD_IH, rgb, 0);
    td_expect_cuts_refused("imgt-bmp", "a.bmp", f.b, f.n);
    td_expect_refused("imgt-bmp", "a.bmp", f.b, f.n - 25, "truncated BMP");
    f.n = 0;
    stbi_write_bmp_to_func(td_collect, &f, TD_IW, TD_IH, 4, rgba);      /* 32 bits, bit fields */
    td_expect_pixels("imgt-bmp32", "a.bmp", f.b, f.n, 4, TD_IW, TD_IH, rgba, 0);
    td_expect_cuts_refused("imgt-bmp32", "a.bmp", f.b, f.n);
    for (k = 0; k < 3; k++) {
        int bpp = bpps[k], entries = bpp == 1 ? 2 : 4;
        char dir[32];
        for (i = 0; i < TD_IW * TD_IH; i++) {
            idx[i] = (unsigned char)(i * 7 % entries);
            greys[i] = (unsigned char)(60 * idx[i]);
        }
        n = td_bmp_palette(buf, TD_IW, TD_IH, bpp, entries, bpp == 8, idx);
        snprintf(dir, sizeof dir, "imgt-bmp%d", bpp);
        td_expect_pixels(dir, "a.bmp", buf, n, 1, TD_IW, TD_IH, greys, 0);
        td_expect_cuts_refused(dir, "a.bmp", buf, n);
    }
    /* TGA, run-length encoded (stb's default) and stored */
    f.n = 0;
    stbi_write_tga_to_func(td_collect, &f, TD_IW, TD_IH, 3, rgb);
    EXPECT(f.b[2] == 10);
    td_expect_pixels("imgt-tgarle", "a.tga", f.b, f.n, 3, TD_IW, TD_IH, rgb, 0);
    td_expect_cuts_refused("imgt-tgarle", "a.tga", f.b, f.n);
    td_expect_refused("imgt-tgarle", "a.tga", f.b, f.n - 4, "truncated TGA");
    stbi_write_tga_with_rle = 0;
    f.n = 0;
    stbi_write_tga_to_func(td_collect, &f, TD_IW, TD_IH, 3, rgb);
    stbi_write_tga_with_rle = 1;
    EXPECT(f.b[2] == 2);
    td_expect_pixels("imgt-tga", "a.tga", f.b, f.n, 3, TD_IW, TD_IH, rgb, 0);
    td_expect_cuts_refused("imgt-tga", "a.tga", f.b, f.n);
    td_expect_refused("imgt-tga", "a.tga", f.b, f.n - 4, "truncated TGA");
    /* PNG, and Adam7-interlaced */
    f.n = 0;
    stbi_write_png_to_func(td_collect, &f, TD_IW, TD_IH, 3, rgb, TD_IW * 3);
    td_expect_pixels("imgt-png", "a.png", f.b, f.n, 3, TD_IW, TD_IH, rgb, 0);
    td_expect_cuts_refused("imgt-png", "a.png", f.b, f.n);
    td_expect_refused("imgt-png", "a.png", f.b, f.n - 20, "truncated PNG");
    f.n = td_png_grey(f.b, grey, TD_IW, TD_IH, 1, 0);                /* Adam7-interlaced */
    td_expect_pixels("imgt-png7", "a.png", f.b, f.n, 1, TD_IW, TD_IH, grey, 0);
    td_expect_cuts_refused("imgt-png7", "a.png", f.b, f.n);
    /* JPEG (lossy: a few levels off) */
    f.n = td_unhex(f.b, td_jpeg_hex);
    td_expect_pixels("imgt-jpg", "a.jpg", f.b, f.n, 3, TD_IW, TD_IH, rgb, 10);
    td_expect_cuts_refused("imgt-jpg", "a.jpg", f.b, f.n);
    td_expect_refused("imgt-jpg", "a.jpg", f.b, f.n - 1, "truncated JPEG");
    td_expect_refused("imgt-jpg", "a.jpg", f.b, f.n - 40, "truncated JPEG");
}

/* Bug B, headers: huge images promised by a few bytes are refused before decoding, and
 * so are files stb would read wrongly or that genmod does not check. */
static void test_image_headers_refused(void)
{
    static const unsigned char tga[18] = { 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0x10, 0x27, 0xA0, 0x0F, 8, 0 };     /* 10000 x 4000 grey, RLE */
    unsigned char big[140], bmp[256], idx[TD_IW * TD_IH];
    td_bytes f;
    size_t i, n, sos;
    /* 19 bytes that claimed 900 MB, and 140 bytes of run-length packets for 40 M pixels */
    td_expect_refused("imgh-pgm", "huge.pgm", "P5\n30000 30000\n255\n", 19, "30000x30000 pixels");
    td_expect_refused("imgh-pgm", "huge.pgm", "P5\n30000 30000\n255\n", 19, "1 to 4096 pixels a side");
    memcpy(big, tga, sizeof tga);
    for (i = sizeof tga; i < sizeof big; i += 2) { big[i] = 0xFF; big[i + 1] = 0x80; }
    td_expect_refused("imgh-tga", "huge.tga", big, sizeof big, "10000x4000 pixels");
    td_expect_refused("imgh-pgm99", "a.pgm", "P5\n99999999999999999999 1\n255\n0", 31, "corrupt PGM header");
    /* stb ignores maxval and reads 2-byte samples in the wrong order */
    td_expect_refused("imgh-pgm16", "a.pgm", "P5\n2 1\n65535\n\x12\x34\xAB\xCD", 17, "maxval 65535");
    td_expect_refused("imgh-pgm15", "a.pgm", "P5\n2 1\n15\n\x0F\x07", 12, "maxval 15");
    /* a palette index past the palette: stb would read an uninitialised entry */
    for (i = 0; i < TD_IW * TD_IH; i++) idx[i] = (unsigned char)(i == 17 ? 7 : i % 2);
    td_expect_refused("imgh-bmppal", "a.bmp", bmp, td_bmp_palette(bmp, TD_IW, TD_IH, 8, 2, 0, idx), "palette entry 7");
    /* a JPEG whose scan is gone, and one with an empty scan of Y only: stb would decode the
     * components no scan fills from uninitialised memory */
    f.n = td_unhex(f.b, td_jpeg_hex);
    for (sos = 2; sos + 1 < f.n && !(f.b[sos] == 0xFF && f.b[sos + 1] == 0xDA); sos++) {}
    {
        static const unsigned char y_only[10] = { 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0 };
        unsigned char jpg[4096];
        memcpy(jpg, f.b, sos);
        memcpy(jpg + sos, f.b + f.n - 2, 2);                           /* FF D9 right after the tables */
        td_expect_refused("imgh-jpg0", "a.jpg", jpg, sos + 2, "every colour component");
        memcpy(jpg + sos, y_only, sizeof y_only);
        memcpy(jpg + sos + sizeof y_only, f.b + f.n - 2, 2);
        td_expect_refused("imgh-jpgy", "a.jpg", jpg, sos + sizeof y_only + 2, "every colour component");
        /* Huffman tables: counts adding up to more than 256 codes (stb 2.27 writes past
         * its tables), and none at all (stb would decode with uninitialised ones) */
        memcpy(jpg, f.b, f.n);
        for (i = 2; i + 1 < sos && !(jpg[i] == 0xFF && jpg[i + 1] == 0xC4); i++) {}
        memset(jpg + i + 5, 0x20, 16);
        td_expect_refused("imgh-jpgdht", "a.jpg", jpg, f.n, "Huffman table");
        for (i = 2, n = 2; i < sos; i += 2 + (size_t)(f.b[i + 2] << 8 | f.b[i + 3]))      /* keep all but DHT */
            if (f.b[i + 1] != 0xC4) {
                memcpy(jpg + n, f.b + i, 2 + (size_t)(f.b[i + 2] << 8 | f.b[i + 3]));
                n += 2 + (size_t)(f.b[i + 2] << 8 | f.b[i + 3]);
            }
        memcpy(jpg + n, f.b + sos, f.n - sos);
        td_expect_refused("imgh-jpgnodht", "a.jpg", jpg, n + f.n - sos, "does not define");
    }
    /* a PNG of 6x5 pixels whose zlib stream holds 200 kB more than their 35 bytes, which
     * stb would inflate; and one whose first IDAT chunk is empty (stb 2.27 adds 0 to a
     * null pointer for it) */
    f.n = td_png_grey(f.b, idx, TD_IW, TD_IH, 0, 200000);
    td_expect_refused("imgh-pngbomb", "a.png", f.b, f.n, "at most the 35 bytes");
    f.n = 0;
    stbi_write_png_to_func(td_collect, &f, TD_IW, TD_IH, 1, idx, TD_IW);
    {
        static const unsigned char empty_idat[12] = { 0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E };
        unsigned char png[4096];
        memcpy(png, f.b, 33);                                         /* signature and IHDR */
        memcpy(png + 33, empty_idat, 12);
        memcpy(png + 45, f.b + 33, f.n - 33);
        td_expect_refused("imgh-pngidat", "a.png", png, f.n + 12, "IDAT");
    }
    /* formats stb reads that genmod does not check, and a text file */
    td_expect_refused("imgh-gif", "a.gif", "GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14, "GIF file");
    td_expect_refused("imgh-txt", "a.txt", "hello", 5, "PNG, JPEG, BMP, TGA");
}

/* ---------------------------------------------------------------------------------------
 * synthetic sets
 * --------------------------------------------------------------------------------------- */
/* Class means of a shapes set: mean[k*784 + j]. */
static void td_class_means(const gm_dataset *ds, double *mean, int *count)
{
    int i, j;
    memset(mean, 0, 10 * 784 * sizeof *mean);
    memset(count, 0, 10 * sizeof *count);
    for (i = 0; i < ds->n; i++) {
        count[ds->y[i]]++;
        for (j = 0; j < 784; j++) mean[ds->y[i] * 784 + j] += ds->x[i * 784 + j];
    }
    for (i = 0; i < 10; i++)
        for (j = 0; j < 784; j++) mean[i * 784 + j] /= count[i] ? count[i] : 1;
}

static void test_synthetic_shapes(void)
{
    static double mean[10 * 784];
    gm_dataset a = td_empty(), b = td_empty(), c = td_empty();
    int count[10], i, j, k, ok = 1, right = 0;
    double mind = 1e9, halfd = 0.0, spread = 0.0;
    gm_synthetic_shapes(&a, 2000, 7);
    gm_synthetic_shapes(&b, 2000, 7);
    gm_synthetic_shapes(&c, 2000, 8);
    EXPECT(a.n == 2000 && a.c == 1 && a.h == 28 && a.w == 28 && a.d == 784 && a.nclass == 10);
    EXPECT(strcmp(a.name, "synthetic shapes (2000 images, 10 classes)") == 0);
    EXPECT(a.class_names && strcmp(a.class_names[0], "disc") == 0 && strcmp(a.class_names[9], "dots") == 0);
    EXPECT(memcmp(a.x, b.x, 2000 * 784 * sizeof(float)) == 0);     /* same seed: same bytes */
    EXPECT(memcmp(a.y, b.y, 2000 * sizeof(int)) == 0);
    EXPECT(memcmp(a.x, c.x, 2000 * 784 * sizeof(float)) != 0);     /* another seed: other data */
    for (i = 0; i < 2000 * 784; i++) if (!(a.x[i] >= 0.0f && a.x[i] <= 1.0f)) ok = 0;
    EXPECT(ok);
    td_class_means(&a, mean, count);
    for (k = 0; k < 10; k++) EXPECT(count[k] == 200);               /* balanced */
    /* Class means far apart. The yardstick is sampling noise: the means of two halves of
     * one class (100 images each) lie up to ~1.0 apart; the closest two classes (ring and
     * square outline) measured ~2.1, every other pair above 2.8. */
    for (i = 0; i < 10; i++)
        for (k = i + 1; k < 10; k++) {
            double d2 = 0.0;
            for (j = 0; j < 784; j++) d2 += (mean[i * 784 + j] - mean[k * 784 + j]) * (mean[i * 784 + j] - mean[k * 784 + j]);
            if (sqrt(d2) < mind) mind = sqrt(d2);
        }
    for (k = 0; k < 10; k++) {
        double half[2][784], d2 = 0.0;
        int nh[2] = { 0, 0 };
        memset(half, 0, sizeof half);
        for (i = 0; i < a.n; i++) {
            if (a.y[i] != k) continue;
            for (j = 0; j < 784; j++) half[nh[0] > nh[1]][j] += a.x[i * 784 + j];
            nh[nh[0] > nh[1]]++;
        }
        for (j = 0; j < 784; j++) d2 += (half[0][j] / nh[0] - half[1][j] / nh[1]) * (half[0][j] / nh[0] - half[1][j] / nh[1]);
        if (sqrt(d2) > halfd) halfd = sqrt(d2);
    }
    printf("  shapes: closest class means %.2f apart, halves of one class up to %.2f\n", mind, halfd);
    EXPECT(mind > 1.5 * halfd);
    /* A small classifier tells them apart: nearest neighbour in pixel space, the 2000
     * images of seed 7 as the training set, 300 of seed 8 as the test (measured 0.99;
     * chance is 0.1). */
    for (i = 0; i < 300; i++) {
        int best = 0;
        double bestd = 1e30;
        for (k = 0; k < a.n; k++) {
            double d2 = 0.0;
            for (j = 0; j < 784; j++) d2 += (c.x[i * 784 + j] - a.x[k * 784 + j]) * (c.x[i * 784 + j] - a.x[k * 784 + j]);
            if (d2 < bestd) { bestd = d2; best = a.y[k]; }
        }
        right += best == c.y[i];
    }
    printf("  shapes: nearest-neighbour accuracy %.3f\n", right / 300.0);
    EXPECT(right > 300 * 9 / 10);
    /* Varied within a class: an image lies on average ~5.5 from its class mean, far more
     * than the pixel noise alone would put it (0.03 * sqrt(784) = 0.84). */
    for (i = 0; i < a.n; i++) {
        double d2 = 0.0;
        for (j = 0; j < 784; j++) d2 += (a.x[i * 784 + j] - mean[a.y[i] * 784 + j]) * (a.x[i * 784 + j] - mean[a.y[i] * 784 + j]);
        spread += sqrt(d2) / a.n;
    }
    printf("  shapes: mean distance to the class mean %.2f\n", spread);
    EXPECT(spread > 3.0);
    gm_dataset_free(&a);
    gm_dataset_free(&b);
    gm_dataset_free(&c);
}

static void test_synthetic_2d(void)
{
    const double pi = 3.14159265358979323846;
    gm_dataset ds = td_empty(), again = td_empty();
    int i, k, ok = 1, count[25] = { 0 };
    double mean_y[2] = { 0, 0 };
    /* ring: radius 2 +- a few std, the angle picks the mode named by the label */
    gm_synthetic_2d(&ds, GM_RING8, 4000, 3);
    EXPECT(ds.n == 4000 && ds.c == 2 && ds.h == 1 && ds.w == 1 && ds.d == 2 && ds.nclass == 8);
    for (i = 0; i < ds.n; i++) {
        double x = ds.x[2 * i], y = ds.x[2 * i + 1], r = sqrt(x * x + y * y);
        int mode = (int)floor(atan2(y, x) / (2 * pi / 8) + 0.5 + 8) % 8;
        if (fabs(r - 2.0) > 0.12 || mode != ds.y[i]) ok = 0;
        count[ds.y[i]]++;
    }
    EXPECT(ok);
    for (k = 0; k < 8; k++) EXPECT(count[k] == 500);
    /* a mode's class name is its centre, for legends */
    EXPECT(ds.class_names && strcmp(ds.class_names[0], "(2, 0)") == 0 && strcmp(ds.class_names[3], "(-1.4, 1.4)") == 0);
    gm_synthetic_2d(&again, GM_RING8, 4000, 3);
    EXPECT(memcmp(ds.x, again.x, 8000 * sizeof(float)) == 0 && memcmp(ds.y, again.y, 4000 * sizeof(int)) == 0);
    gm_dataset_free(&again);
    gm_synthetic_2d(&again, GM_RING8, 4000, 4);
    EXPECT(memcmp(ds.x, again.x, 8000 * sizeof(float)) != 0);
    gm_dataset_free(&again);
    gm_dataset_free(&ds);
    /* grid: within 6 std of the centre (-4 + 2 col, -4 + 2 row) of mode 5 row + col */
    gm_synthetic_2d(&ds, GM_GRID25, 5000, 3);
    EXPECT(ds.nclass == 25);
    memset(count, 0, sizeof count);
    for (i = 0, ok = 1; i < ds.n; i++) {
        double dx = ds.x[2 * i] - (-4.0 + 2.0 * (ds.y[i] % 5)), dy = ds.x[2 * i + 1] - (-4.0 + 2.0 * (ds.y[i] / 5));
        if (sqrt(dx * dx + dy * dy) > 0.3) ok = 0;
        count[ds.y[i]]++;
    }
    EXPECT(ok);
    for (k = 0; k < 25; k++) EXPECT(count[k] == 200);
    EXPECT(ds.class_names && strcmp(ds.class_names[0], "(-4, -4)") == 0 && strcmp(ds.class_names[7], "(0, -2)") == 0);
    gm_dataset_free(&ds);
    /* two moons: labels 0/1 balanced, inside about [-2,2] x [-1,1], moon 0 on top */
    gm_synthetic_2d(&ds, GM_TWO_MOONS, 3000, 3);
    EXPECT(ds.nclass == 2);
    memset(count, 0, sizeof count);
    for (i = 0, ok = 1; i < ds.n; i++) {
        if (ds.y[i] != 0 && ds.y[i] != 1) { ok = 0; continue; }
        if (fabs(ds.x[2 * i]) > 2.5 || fabs(ds.x[2 * i + 1]) > 1.6) ok = 0;
        count[ds.y[i]]++;
        mean_y[ds.y[i]] += ds.x[2 * i + 1] / 1500.0;
    }
    EXPECT(ok && count[0] == 1500 && count[1] == 1500);
    EXPECT(mean_y[0] > mean_y[1] + 0.5);
    EXPECT(ds.class_names && strcmp(ds.class_names[0], "upper moon") == 0 && strcmp(ds.class_names[1], "lower moon") == 0);
    gm_dataset_free(&ds);
    /* swiss roll: one class, inside about [-2,2]^2, radius |(x,y)| * 7 = t in [1.5pi, 4.5pi] */
    gm_synthetic_2d(&ds, GM_SWISS_ROLL, 3000, 3);
    EXPECT(ds.nclass == 1);
    for (i = 0, ok = 1; i < ds.n; i++) {
        double x = ds.x[2 * i], y = ds.x[2 * i + 1], t = 7.0 * sqrt(x * x + y * y);
        if (ds.y[i] != 0 || fabs(x) > 2.5 || fabs(y) > 2.5 || t < 1.5 * pi - 1.0 || t > 4.5 * pi + 1.0) ok = 0;
    }
    EXPECT(ok);
    gm_dataset_free(&ds);
}

static void test_shuffle_split(void)
{
    static const int keep_classes[2] = { 1, 3 };
    gm_dataset ds = td_empty(), keep, rest, before;
    gm_rng r1 = gm_rng_new(5), r2 = gm_rng_new(5);
    int seen[1000], i, moved = 0, ok = 1, kept_i = 0;
    int *first;
    gm_synthetic_shapes(&ds, 1000, 11);
    gm_dataset_shuffle(&ds, &r1);
    memset(seen, 0, sizeof seen);
    for (i = 0; i < 1000; i++) {
        if (ds.order[i] >= 0 && ds.order[i] < 1000) seen[ds.order[i]]++;
        moved += ds.order[i] != i;
    }
    for (i = 0; i < 1000; i++) if (seen[i] != 1) ok = 0;
    EXPECT(ok);                                      /* a permutation */
    EXPECT(moved > 900);                             /* and not the identity */
    first = (int *)malloc(1000 * sizeof(int));
    memcpy(first, ds.order, 1000 * sizeof(int));
    gm_dataset_shuffle(&ds, &r2);                    /* same rng state: same order */
    EXPECT(memcmp(first, ds.order, 1000 * sizeof(int)) == 0);
    free(first);

    EXPECT(gm_dataset_split(&keep, &rest, &ds, keep_classes, 2) == 1);
    EXPECT(keep.n + rest.n == 1000 && keep.n == 200);
    EXPECT(keep.d == 784 && rest.d == 784 && keep.nclass == 10 && rest.nclass == 10);
    EXPECT(keep.class_names && rest.class_names && keep.class_names != ds.class_names &&   /* copies */
           strcmp(keep.class_names[3], ds.class_names[3]) == 0 && strcmp(rest.class_names[1], "ring") == 0);
    for (i = 0, ok = 1; i < keep.n; i++) if (keep.y[i] != 1 && keep.y[i] != 3) ok = 0;
    for (i = 0; i < rest.n; i++) if (rest.y[i] == 1 || rest.y[i] == 3) ok = 0;
    EXPECT(ok);
    while (ds.y[kept_i] != 1 && ds.y[kept_i] != 3) kept_i++;   /* the first kept example, copied */
    EXPECT(memcmp(keep.x, ds.x + kept_i * 784, 784 * sizeof(float)) == 0);
    EXPECT(keep.order[keep.n - 1] == keep.n - 1);
    gm_dataset_free(&keep);
    gm_dataset_free(&rest);
    EXPECT(gm_dataset_split(&keep, NULL, &ds, keep_classes, 1) == 1 && keep.n == 100);
    gm_dataset_free(&keep);

    /* failures leave both outputs alone */
    memset(&keep, 0x33, sizeof keep);
    before = keep;
    rest = keep;
    EXPECT(gm_dataset_split(&keep, &rest, &ds, NULL, 0) == 0);
    i = 10;
    EXPECT(gm_dataset_split(&keep, &rest, &ds, &i, 1) == 0);        /* class 10 of 0..9 */
    EXPECT(strstr(gm_last_error(), "class 10") != NULL);
    gm_dataset_free(&ds);
    gm_synthetic_2d(&ds, GM_SWISS_ROLL, 100, 1);                     /* one class: rest empty */
    i = 0;
    EXPECT(gm_dataset_split(&keep, &rest, &ds, &i, 1) == 0);
    EXPECT(gm_dataset_split(&keep, NULL, &ds, &i, 1) == 1 && keep.n == 100);
    gm_dataset_free(&keep);
    memset(&keep, 0x33, sizeof keep);
    free(ds.y);                                                      /* no labels */
    ds.y = NULL;
    EXPECT(gm_dataset_split(&keep, &rest, &ds, &i, 1) == 0);
    EXPECT(strstr(gm_last_error(), "needs labels") != NULL);
    EXPECT(memcmp(&keep, &before, sizeof keep) == 0 && memcmp(&rest, &before, sizeof rest) == 0);
    gm_dataset_free(&ds);
}

void tests_data(void)
{
    TEST(test_idx_plain_round_trip);
    TEST(test_idx_gzip_stored_blocks);
    TEST(test_idx_gzip_real);
    TEST(test_fashion_mnist);
    TEST(test_idx_bad_files);
    TEST(test_image_folder);
    TEST(test_image_folder_classes);
    TEST(test_image_folder_bad);
    TEST(test_image_zero_side);
    TEST(test_image_formats_truncated);
    TEST(test_image_headers_refused);
    TEST(test_synthetic_shapes);
    TEST(test_synthetic_2d);
    TEST(test_shuffle_split);
}
