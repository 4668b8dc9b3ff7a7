/* tests/fuzz/fuzz_idx_images.c - gm_load_idx on an images file, plain or gzip (the input is the
 * file; one that starts 1f 8b is inflated first, whatever its name).
 * Must hold: on failure the error names the file and the data set is untouched; on
 * success the header agrees with the bytes (16 + n*h*w of them after inflating), every
 * pixel is its byte / 255, there are no labels and the order is the identity. */
#include <stdlib.h>
#include <string.h>
#include "../../genmod.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("images", data, size);
    gm_dataset ds, before;
    unsigned char *b;
    size_t len, i;
    int ok;
    memset(&ds, 0xA5, sizeof ds);
    memcpy(&before, &ds, sizeof ds);
    fz_clear_error();
    ok = gm_load_idx(&ds, path, NULL);
    FZ_CHECK(ok == 0 || ok == 1);
    if (!ok) {
        fz_check_error(path);
        FZ_CHECK(memcmp(&ds, &before, sizeof ds) == 0);
        return 0;
    }
    FZ_CHECK(ds.n >= 1 && ds.c == 1 && ds.h >= 1 && ds.w >= 1 && ds.d == ds.h * ds.w);
    FZ_CHECK(ds.y == NULL && ds.nclass == 0 && ds.class_names == NULL);
    FZ_CHECK(memchr(ds.name, 0, sizeof ds.name) != NULL && ds.name[0] != 0);
    /* the bytes as the loader saw them (inflated if gzip) */
    FZ_CHECK(fz_read_data(path, &b, &len) == 1);
    FZ_CHECK(len == 16 + (size_t)ds.n * (size_t)ds.d);
    FZ_CHECK(fz_be32(b) == 0x803 && fz_be32(b + 4) == (uint32_t)ds.n &&
             fz_be32(b + 8) == (uint32_t)ds.h && fz_be32(b + 12) == (uint32_t)ds.w);
    for (i = 0; i < (size_t)ds.n * (size_t)ds.d; i++)
        FZ_CHECK(ds.x[i] == (float)b[16 + i] / 255.0f && ds.x[i] >= 0.0f && ds.x[i] <= 1.0f);
    for (i = 0; i < (size_t)ds.n; i++) FZ_CHECK(ds.order[i] == (int)i);
    fz_free(b);
    gm_dataset_free(&ds);
    return 0;
}
