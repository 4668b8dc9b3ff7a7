/* tests/fuzz/fuzz_gzip.c - genmod's gzip reader: gm__gunzip on the input's bytes as they
 * are, and gm__read_data on the same bytes as a file (which inflates only what starts
 * 1f 8b), the first with fresh allocations filled 0x00, the second with 0xFF.
 * Must hold: gm__gunzip accepts only what its trailer vouches for (the output's CRC-32 and
 * length are the last 8 bytes, and the length is within deflate's 1032:1 and 1 GiB); a
 * failure names the file; gm__read_data gives gm__gunzip's answer, byte for byte, for a
 * file starting 1f 8b (so no output byte is memory the inflater never wrote), the bytes
 * themselves for any other non-empty file, and an error for an empty one. */
#include <stdlib.h>
#include <string.h>
#include "../../genmod.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("data", data, size);
    unsigned char *out = NULL, *got = NULL;
    size_t outlen = 0, gotlen = 0;
    int ok, ok2, gz = size >= 2 && data[0] == 0x1F && data[1] == 0x8B;

    fz_clear_error();
    fz_fill_byte = 0x00;
    ok = fz_gunzip(path, data, size, &out, &outlen);
    FZ_CHECK(ok == 0 || ok == 1);
    if (ok) {
        FZ_CHECK(size >= 18 && out != NULL);
        FZ_CHECK((uint32_t)outlen == fz_le32(data + size - 4) && outlen <= ((size_t)1 << 30));
        FZ_CHECK(outlen <= (uint64_t)size * 1032 + 1024);
        FZ_CHECK(fz_crc32(out, outlen) == fz_le32(data + size - 8));
    } else {
        fz_check_error(path);
        FZ_CHECK(out == NULL && outlen == 0);
    }

    fz_clear_error();
    fz_fill_byte = 0xFF;
    ok2 = fz_read_data(path, &got, &gotlen);
    FZ_CHECK(ok2 == (size == 0 ? 0 : gz ? ok : 1));
    if (ok2 && gz) FZ_CHECK(gotlen == outlen && memcmp(got, out, outlen) == 0);
    else if (ok2) FZ_CHECK(gotlen == size && memcmp(got, data, size) == 0);
    else fz_check_error(path);
    fz_free(out);
    fz_free(got);
    return 0;
}
