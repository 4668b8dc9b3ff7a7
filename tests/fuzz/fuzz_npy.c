/* tests/fuzz/fuzz_npy.c - gm_load_npy on the input as a .npy file.
 * Must hold: on failure NULL, the error names the file and ndim and shape are untouched;
 * on success the file is "\x93NUMPY", a version 1 (2-byte header length) or 2, 3 (4-byte)
 * header, and then exactly prod(shape) little-endian float32 values, which are what was
 * returned bit for bit; ndim is 0..4 and no dimension is negative. */
#include <stdlib.h>
#include <string.h>
#include "../../genmod.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("array.npy", data, size);
    int ndim = -7, shape[4] = { -7, -7, -7, -7 }, i;
    size_t count = 1, start, k;
    float *x;
    fz_clear_error();
    x = gm_load_npy(path, &ndim, shape);
    if (!x) {
        fz_check_error(path);
        FZ_CHECK(ndim == -7 && shape[0] == -7 && shape[1] == -7 && shape[2] == -7 && shape[3] == -7);
        return 0;
    }
    FZ_CHECK(ndim >= 0 && ndim <= 4);
    for (i = 0; i < ndim; i++) {
        FZ_CHECK(shape[i] >= 0);
        count *= (size_t)shape[i];
    }
    FZ_CHECK(size >= 10 && memcmp(data, "\x93NUMPY", 6) == 0 && data[6] >= 1 && data[6] <= 3);
    start = data[6] == 1 ? 10 + (size_t)(data[8] | data[9] << 8) : 12 + (size_t)fz_le32(data + 8);
    FZ_CHECK(start <= size && size - start == 4 * count);
    for (k = 0; k < count; k++) {
        uint32_t u;
        memcpy(&u, &x[k], 4);
        FZ_CHECK(u == fz_le32(data + start + 4 * k));
    }
    gm_npy_free(x);
    return 0;
}
