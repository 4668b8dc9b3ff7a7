/* tests/fuzz/fuzz_checkpoint.c - gm_load_params into a small fixed model (fz_checkpoint_model:
 * a (3,2) weight, a (2) bias, a (1,2,1,2) buffer). The input's last 4 bytes are replaced
 * by the CRC-32 of the rest before it is written, so the parser behind the checksum is
 * what gets fuzzed.
 * Must hold: on failure the error names the file and every value of the model is as it
 * was, bit for bit; on success the file is the header and then one record per model
 * tensor, in any order, each with the tensor's name and shape, and each tensor now holds
 * its record's values bit for bit. (The layout is the one >>checkpoints describes, read
 * here again independently: "GMCKPT\r\n", version 1, count, then per tensor name_len, name,
 * ndim, dims, values, all little-endian u32 / float32, then the CRC-32.) */
#include <stdlib.h>
#include <string.h>
#include "../../genmod.h"
#include "fuzz.h"

static gm_params fz_model;

/* keep = 1: remember the model's values; keep = 0: does it still hold them, bit for bit? */
static int fz_model_values(int keep)
{
    static float kept[64];
    int i, n = 0;
    for (i = 0; i < fz_model.n; n += fz_model.t[i++]->size) {
        size_t bytes = 4 * (size_t)fz_model.t[i]->size;
        FZ_CHECK(n + fz_model.t[i]->size <= 64);
        if (keep) memcpy(kept + n, fz_model.t[i]->val, bytes);
        else if (memcmp(kept + n, fz_model.t[i]->val, bytes) != 0) return 0;
    }
    return 1;
}

/* Walk the records of a file the loader accepted, checking each against the model. */
static void fz_check_records(const unsigned char *buf, size_t len)
{
    const unsigned char *p = buf + 16, *end = buf + len - 4;
    uint32_t r, k;
    FZ_CHECK(len >= 20 && memcmp(buf, "GMCKPT\r\n", 8) == 0 && fz_le32(buf + 8) == 1);
    FZ_CHECK(fz_le32(buf + 12) == (uint32_t)fz_model.n);
    for (r = 0; r < (uint32_t)fz_model.n; r++) {
        uint32_t nlen, ndim;
        gm_tensor *t = NULL;
        int i;
        FZ_CHECK(end - p >= 4);
        nlen = fz_le32(p);
        FZ_CHECK(nlen <= (size_t)(end - p - 4));
        for (i = 0; i < fz_model.n; i++)
            if (strlen(fz_model.t[i]->name) == nlen && memcmp(fz_model.t[i]->name, p + 4, nlen) == 0) t = fz_model.t[i];
        FZ_CHECK(t != NULL);
        p += 4 + nlen;
        FZ_CHECK(end - p >= 4);
        ndim = fz_le32(p);
        FZ_CHECK(ndim == (uint32_t)t->shape.ndim);
        FZ_CHECK((size_t)(end - p) >= 4 + 4 * (size_t)ndim + 4 * (size_t)t->size);
        for (k = 0; k < ndim; k++) FZ_CHECK(fz_le32(p + 4 + 4 * k) == (uint32_t)t->shape.d[k]);
        p += 4 + 4 * ndim;
        for (k = 0; k < (uint32_t)t->size; k++) {
            uint32_t u;
            memcpy(&u, &t->val[k], 4);
            FZ_CHECK(u == fz_le32(p + 4 * k));
        }
        p += 4 * (size_t)t->size;
    }
    FZ_CHECK(p == end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = (unsigned char *)malloc(size ? size : 1);
    const char *path;
    int ok;
    FZ_CHECK(buf != NULL);
    if (size) memcpy(buf, data, size);
    if (size >= 4) {              /* the checksum the saver would have written, little-endian */
        uint32_t crc = fz_crc32(buf, size - 4);
        int k;
        for (k = 0; k < 4; k++) buf[size - 4 + k] = (unsigned char)(crc >> 8 * k);
    }
    path = fz_write("model.ckpt", buf, size);
    if (!fz_model.n) {
        fz_checkpoint_model(&fz_model);
        fz_model_values(1);
    }
    fz_clear_error();
    ok = gm_load_params(&fz_model, path);
    FZ_CHECK(ok == 0 || ok == 1);
    if (ok) {
        fz_check_records(buf, size);
        fz_checkpoint_model(&fz_model);          /* the values again, for the next input */
    } else {
        fz_check_error(path);
        FZ_CHECK(fz_model_values(0));
    }
    free(buf);
    return 0;
}
