/* tests/fuzz/fuzz_idx_labels.c - an IDX labels file, plain or gzip (the input is the file),
 * read two ways: by the labels parser alone (fz_idx_labels, any count) and by
 * gm_load_idx beside a fixed, valid images file of 3 images.
 * Must hold: the parser accepts exactly 8 + n bytes with magic 0x801 and n >= 1, every
 * label is its byte, nclass = largest + 1; gm_load_idx succeeds exactly when the parser
 * does with n = 3, and then holds the same labels; every failure names the labels file
 * and leaves the data set untouched. */
#include <stdlib.h>
#include <string.h>
#include "../../genmod.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char images3[16 + 12] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                                     0, 1, 2, 3, 64, 65, 66, 67, 252, 253, 254, 255 };
    static const char *images;
    const char *path;
    gm_dataset ds, before;
    unsigned char *b;
    size_t len;
    int ok, n = -1, nclass = -1, *y = NULL, i, largest = 0;
    if (!images) images = fz_write("images", images3, sizeof images3);
    path = fz_write("labels", data, size);

    fz_clear_error();
    ok = fz_idx_labels(path, &n, &y, &nclass);
    FZ_CHECK(ok == 0 || ok == 1);
    if (ok) {
        FZ_CHECK(fz_read_data(path, &b, &len) == 1);
        FZ_CHECK(n >= 1 && len == 8 + (size_t)n && fz_be32(b) == 0x801 && fz_be32(b + 4) == (uint32_t)n);
        for (i = 0; i < n; i++) {
            FZ_CHECK(y[i] == b[8 + i]);
            if (y[i] > largest) largest = y[i];
        }
        FZ_CHECK(nclass == largest + 1);
        fz_free(b);
    } else {
        fz_check_error(path);
        FZ_CHECK(n == -1 && nclass == -1 && y == NULL);
    }

    memset(&ds, 0xA5, sizeof ds);
    memcpy(&before, &ds, sizeof ds);
    fz_clear_error();
    FZ_CHECK(gm_load_idx(&ds, images, path) == (ok && n == 3));
    if (ok && n == 3) {
        FZ_CHECK(ds.n == 3 && ds.h == 2 && ds.w == 2 && ds.nclass == nclass && ds.y != NULL);
        for (i = 0; i < 3; i++) FZ_CHECK(ds.y[i] == y[i] && ds.x[4 * i + 1] == images3[16 + 4 * i + 1] / 255.0f);
        gm_dataset_free(&ds);
    } else {
        fz_check_error(path);
        FZ_CHECK(memcmp(&ds, &before, sizeof ds) == 0);
    }
    fz_free(y);
    return 0;
}
