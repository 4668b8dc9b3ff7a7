/* tests/fuzz/fuzz_image_folder.c - gm_load_image_folder on a private folder holding one file,
 * the input (stb_image tells the format from the bytes: PNG, JPG, BMP, TGA, GIF, PSD, HDR,
 * PIC, PNM), resized to 5 x 7 with 1 + size % 4 channels (so the minimizer and the
 * mutator see every channel count).
 * Must hold: on failure the error names the folder or the file and the data set is
 * untouched; on success one unlabelled example of the asked shape whose values are all
 * finite and in [0, 1], and the same values when every allocation starts out 0x00 as
 * when it starts out 0xFF (no pixel comes from memory the decoder never wrote). */
#include <stdlib.h>
#include <string.h>
#include "../../genmod.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir;
    int c = 1 + (int)(size % 4), h = 5, w = 7, ok, i;
    gm_dataset ds, before, again;
    fz_write("images/input", data, size);
    dir = fz_path("images");
    memset(&ds, 0xA5, sizeof ds);
    memcpy(&before, &ds, sizeof ds);
    fz_clear_error();
    fz_fill_byte = 0x00;
    ok = gm_load_image_folder(&ds, dir, c, h, w);
    FZ_CHECK(ok == 0 || ok == 1);
    if (!ok) {
        fz_check_error(dir);
        FZ_CHECK(memcmp(&ds, &before, sizeof ds) == 0);
        return 0;
    }
    FZ_CHECK(ds.n == 1 && ds.c == c && ds.h == h && ds.w == w && ds.d == c * h * w);
    FZ_CHECK(ds.y == NULL && ds.nclass == 0 && ds.class_names == NULL && ds.order[0] == 0);
    FZ_CHECK(memchr(ds.name, 0, sizeof ds.name) != NULL && ds.name[0] != 0);
    for (i = 0; i < ds.d; i++) FZ_CHECK(ds.x[i] >= 0.0f && ds.x[i] <= 1.0f);   /* false for NaN */
    fz_fill_byte = 0xFF;
    FZ_CHECK(gm_load_image_folder(&again, dir, c, h, w) == 1);
    FZ_CHECK(again.d == ds.d && memcmp(again.x, ds.x, (size_t)ds.d * sizeof *ds.x) == 0);
    gm_dataset_free(&again);
    gm_dataset_free(&ds);
    return 0;
}
