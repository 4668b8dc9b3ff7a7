/* tests/fuzz/seeds.c - writes the seed corpus of every fuzz target into DIR/<target>/:
 * a few small valid files of each kind, made by genmod (gm_save_npy, gm_save_params) and
 * by stb_image_write, and the edge cases next to them (empty, truncated, wrong magic,
 * other versions and flags). `sh tests/fuzz/run.sh seeds` builds and runs it; the output
 * is committed as tests/fuzz/corpus/ (same bytes on every run).
 *     seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../../genmod.h"
#include "fuzz.h"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__) || defined(__clang__)
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image_write.h>

static char dir[512];

/* DIR/target/name */
static const char *at(const char *target, const char *name)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    return path;
}

static void put(const char *target, const char *name, const void *data, size_t n)
{
    FILE *f = fopen(at(target, name), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(at(target, name)); exit(1); }
}

static void put32(unsigned char *p, uint32_t v, int big)
{
    int k;
    for (k = 0; k < 4; k++) p[big ? 3 - k : k] = (unsigned char)(v >> 8 * k);
}

/* gzip of data: header with the flags flg (FEXTRA, FNAME, FCOMMENT, FHCRC fields filled
 * in), then stored blocks (fixed = 0) or stb's fixed-Huffman deflate (fixed = 1), then
 * the CRC-32 and length. Returns the length; out must hold n + 128. */
static size_t gzip(unsigned char *out, const unsigned char *data, size_t n, unsigned flg, int fixed)
{
    size_t len = 10, k;
    memcpy(out, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
    out[3] = (unsigned char)flg;
    if (flg & 4) { memcpy(out + len, "\x04\x00" "ab\x00\x00", 6); len += 6; }  /* XLEN 4: one empty subfield */
    if (flg & 8) { memcpy(out + len, "seed", 5); len += 5; }                      /* FNAME */
    if (flg & 16) { memcpy(out + len, "made by seeds.c", 16); len += 16; }        /* FCOMMENT */
    if (flg & 2) {                                                                /* FHCRC */
        uint32_t crc = fz_crc32(out, len);
        out[len++] = (unsigned char)crc;
        out[len++] = (unsigned char)(crc >> 8);
    }
    if (fixed) {
        int zlen;
        unsigned char *z = stbi_zlib_compress((unsigned char *)data, (int)n, &zlen, 8);
        memcpy(out + len, z + 2, (size_t)zlen - 6);        /* without zlib's header and Adler-32 */
        len += (size_t)zlen - 6;
        STBIW_FREE(z);
    } else {
        for (k = 0; k == 0 || k < n; k += 65535) {           /* BFINAL, BTYPE 00, LEN, NLEN */
            size_t b = n - k < 65535 ? n - k : 65535;
            out[len++] = k + b == n;
            out[len++] = (unsigned char)b; out[len++] = (unsigned char)(b >> 8);
            out[len++] = (unsigned char)~b; out[len++] = (unsigned char)(~b >> 8);
            memcpy(out + len, data + k, b);
            len += b;
        }
    }
    put32(out + len, fz_crc32(data, n), 0);
    put32(out + len + 4, (uint32_t)n, 0);
    return len + 8;
}

/* An IDX file: magic 0x000008 NDIM, big-endian dims, then the bytes 0, 37, 74, ... */
static size_t idx(unsigned char *out, int ndim, const uint32_t *dims, size_t nbytes)
{
    size_t len = 4, k;
    int i;
    put32(out, 0x800u + (uint32_t)ndim, 1);
    for (i = 0; i < ndim; i++, len += 4) put32(out + len, dims[i], 1);
    for (k = 0; k < nbytes; k++) out[len++] = (unsigned char)(37 * k);
    return len;
}

static void idx_seeds(void)
{
    static unsigned char b[2048], z[2048 + 128];
    uint32_t two[3] = { 2, 3, 2 }, one[3] = { 1, 1, 1 }, big[3] = { 1, 28, 28 }, zero[3] = { 0, 28, 28 };
    uint32_t three = 3, ten = 10;
    gm_dataset shape;
    size_t n, k;
    n = idx(b, 3, two, 12);
    put("idx_images", "two-3x2.idx", b, n);
    put("idx_images", "two-3x2-stored.idx.gz", z, gzip(z, b, n, 8, 0));
    put("idx_images", "truncated.idx", b, n - 5);
    put("idx_images", "one-1x1.idx", b, idx(b, 3, one, 1));
    put("idx_images", "zero-images.idx", b, idx(b, 3, zero, 0));
    put("idx_images", "labels.idx", b, idx(b, 1, &three, 3));
    put("idx_images", "empty", b, 0);
    gm_synthetic_shapes(&shape, 1, 1);                 /* a 28x28 picture: deflate finds matches */
    n = idx(b, 3, big, 0);
    for (k = 0; k < 784; k++) b[n++] = (unsigned char)(255.0f * shape.x[k] + 0.5f);
    gm_dataset_free(&shape);
    put("idx_images", "shape-28x28.idx", b, n);
    put("idx_images", "shape-28x28-fixed.idx.gz", z, gzip(z, b, n, 0, 1));

    n = idx(b, 1, &three, 3);
    b[8] = 0; b[9] = 9; b[10] = 4;
    put("idx_labels", "three.idx", b, n);
    put("idx_labels", "three-fixed.idx.gz", z, gzip(z, b, n, 0, 1));
    put("idx_labels", "three-stored.idx.gz", z, gzip(z, b, n, 0, 0));
    put("idx_labels", "truncated.idx", b, n - 1);
    b[10] = 255;
    put("idx_labels", "label-255.idx", b, n);
    put("idx_labels", "ten.idx", b, idx(b, 1, &ten, 10));
    put("idx_labels", "images.idx", b, idx(b, 3, two, 12));
    put("idx_labels", "empty", b, 0);
}

static void gzip_seeds(void)
{
    static unsigned char text[1000], z[70000 + 128 * 2];
    size_t n, k;
    for (k = 0; k < sizeof text; k++) text[k] = "the quick brown fox "[k % 20] ^ (k % 97 == 0);
    put("gzip", "stored.gz", z, gzip(z, text, 100, 0, 0));
    put("gzip", "fixed.gz", z, gzip(z, text, sizeof text, 0, 1));
    put("gzip", "all-flags.gz", z, gzip(z, text, 50, 2 | 4 | 8 | 16, 1));
    put("gzip", "empty-content.gz", z, gzip(z, text, 0, 0, 0));
    n = gzip(z, text, 20, 8, 1);
    n += gzip(z + n, text, 20, 0, 0);
    put("gzip", "two-members.gz", z, n);
    n = gzip(z, text, 40, 0, 1);
    z[n - 1] ^= 1;                                      /* ISIZE off */
    put("gzip", "bad-isize.gz", z, n);
    put("gzip", "not-gzip.txt", text, 40);
}

/* A .npy written by hand: magic, version, the header length (2 bytes for version 1, else
 * 4), the dict padded with spaces and a newline to a multiple of 64, then n data bytes. */
static void npy(const char *name, int version, const char *dict, const void *data, size_t n)
{
    unsigned char b[256];
    size_t pre = version == 1 ? 10 : 12, len = strlen(dict), end = (pre + len + 1 + 63) / 64 * 64;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    b[7] = 0;
    put32(b + 8, (uint32_t)(end - pre), 0);             /* version 1 keeps the low 2 bytes */
    memcpy(b + pre, dict, len);
    memset(b + pre + len, ' ', end - pre - len - 1);
    b[end - 1] = '\n';
    memcpy(b + end, data, n);
    put("npy", name, b, end + n);
}

static void npy_seeds(void)
{
    static const float x[12] = { 0.0f, 1.0f, -2.5f, 0.125f, 1e-38f, 3e38f, -0.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f };
    int three = 3, zero = 0, matrix[2] = { 2, 3 }, four[4] = { 1, 2, 1, 2 };
    gm_save_npy(at("npy", "scalar.npy"), x, 0, NULL);
    gm_save_npy(at("npy", "vector-3.npy"), x, 1, &three);
    gm_save_npy(at("npy", "empty-0.npy"), x, 1, &zero);
    gm_save_npy(at("npy", "matrix-2x3.npy"), x, 2, matrix);
    gm_save_npy(at("npy", "4d-1x2x1x2.npy"), x, 4, four);
    npy("version-2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", x, 12);
    npy("python2-long.npy", 1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 1L)}", x, 8);
    npy("big-endian-f8-fortran.npy", 3, "{'descr': '>f8', 'fortran_order': True, 'shape': (1,), }", x, 8);
    npy("five-dims.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", x, 4);
    npy("truncated.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", x, 12);
    put("npy", "empty", x, 0);
}

static void checkpoint_seeds(void)
{
    gm_params P = { 0 }, rev = { 0 }, more = { 0 }, other = { 0 };
    unsigned char b[512];
    FILE *f;
    size_t n;
    int i;
    fz_checkpoint_model(&P);
    gm_save_params(&P, at("checkpoint", "model.ckpt"));
    /* the same tensors in reverse order: loading matches by name */
    rev.n = rev.cap = P.n;
    rev.t = (gm_tensor **)malloc((size_t)P.n * sizeof *rev.t);
    for (i = 0; i < P.n; i++) rev.t[i] = P.t[P.n - 1 - i];
    gm_save_params(&rev, at("checkpoint", "reversed.ckpt"));
    free(rev.t);
    /* one tensor more; one shape different */
    fz_checkpoint_model(&more);
    gm_param_new(&more, "dec.w", gm_shape3(1, 1, 2));
    gm_save_params(&more, at("checkpoint", "extra-tensor.ckpt"));
    gm_param_new(&other, "enc.w", gm_shape2(2, 3));
    gm_param_new(&other, "enc.b", gm_shape1(2));
    gm_param_new(&other, "bn.mean", gm_shape4(1, 2, 1, 2));
    gm_save_params(&other, at("checkpoint", "other-shape.ckpt"));
    /* a version 2 header (the harness fixes the checksum); a file with no tensors */
    f = fopen(at("checkpoint", "model.ckpt"), "rb");
    n = fread(b, 1, sizeof b, f);
    fclose(f);
    b[8] = 2;
    put("checkpoint", "version-2.ckpt", b, n);
    put("checkpoint", "no-tensors.ckpt", "GMCKPT\r\n\x01\0\0\0\0\0\0\0\0\0\0\0", 20);
    put("checkpoint", "empty", b, 0);
    gm_params_free(&P);
    gm_params_free(&more);
    gm_params_free(&other);
}

static void image_seeds(void)
{
    static unsigned char px[40 * 30 * 4], b[256];
    static const unsigned char gif[] = {     /* 2x2 pixels 0 1 / 1 0 of a 2-colour table */
        'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
        0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0,
        2, 3, 0x44, 0x02, 0x05, 0,           /* LZW codes clear 0 1 1 0 end, 3 then 4 bits */
        0x3B };
    float hdr[2 * 2 * 3] = { 0.0f, 0.5f, 1.0f, 2.0f, 0.25f, 0.75f, 1.5f, 0.1f, 0.2f, 0.3f, 0.4f, 0.6f };
    size_t k, n;
    for (k = 0; k < sizeof px; k++) px[k] = (unsigned char)(k * 7 + k / 13);
    stbi_write_png(at("image_folder", "grey-3x2.png"), 3, 2, 1, px, 3);
    stbi_write_png(at("image_folder", "rgb-40x30.png"), 40, 30, 3, px, 120);
    stbi_write_png(at("image_folder", "grey-alpha-2x2.png"), 2, 2, 2, px, 4);
    stbi_write_png(at("image_folder", "rgba-1x1.png"), 1, 1, 4, px, 4);
    stbi_write_bmp(at("image_folder", "rgb-3x3.bmp"), 3, 3, 3, px);
    stbi_write_bmp(at("image_folder", "rgba-2x2.bmp"), 2, 2, 4, px);
    stbi_write_tga_with_rle = 0;
    stbi_write_tga(at("image_folder", "rgb-3x2.tga"), 3, 2, 3, px);
    stbi_write_tga_with_rle = 1;
    stbi_write_tga(at("image_folder", "grey-rle-4x2.tga"), 4, 2, 1, px);
    stbi_write_jpg(at("image_folder", "rgb-8x8.jpg"), 8, 8, 3, px, 90);
    stbi_write_hdr(at("image_folder", "rgb-2x2.hdr"), 2, 2, 3, hdr);
    n = (size_t)sprintf((char *)b, "P5\n3 2\n255\n");
    memcpy(b + n, px, 6);
    put("image_folder", "grey-3x2.pgm", b, n + 6);
    n = (size_t)sprintf((char *)b, "P6\n# a comment\n2 2\n255\n");
    memcpy(b + n, px, 12);
    put("image_folder", "rgb-2x2.ppm", b, n + 12);
    put("image_folder", "grey-2x2.gif", gif, sizeof gif);
    /* PSD: signature, version 1, 6 reserved, 3 channels, height 2, width 2, depth 8, RGB (3),
     * empty colour/resource/layer sections, compression 0 (raw), then 3 planes of 4 bytes */
    memcpy(b, "8BPS\0\1\0\0\0\0\0\0\0\3\0\0\0\2\0\0\0\2\0\x08\0\3\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 40);
    memcpy(b + 40, px, 12);
    put("image_folder", "rgb-2x2.psd", b, 52);
    put("image_folder", "not-an-image.txt", "hello", 5);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: seeds DIR\n"); return 2; }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mkdir(dir, 0777);
    idx_seeds();
    gzip_seeds();
    npy_seeds();
    checkpoint_seeds();
    image_seeds();
    return 0;
}
