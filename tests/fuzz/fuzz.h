/* tests/fuzz/fuzz.h - what the fuzz targets share, and how they are used.
 *
 * One target per loader that reads outside bytes: fuzz_T.c for T in idx_images,
 * idx_labels, gzip, npy, checkpoint, image_folder. Each is one LLVMFuzzerTestOneInput that
 * hands its input to genmod and checks what must hold afterwards (its header says what):
 * the loader returned 0 or 1; on 0, gm_last_error() names the file and the caller's
 * variables are untouched; on 1, what was loaded agrees with the bytes. A broken promise
 * aborts through FZ_CHECK, which libFuzzer reports like a crash.
 * Per target T:
 *     tests/fuzz/corpus/T    the seeds: small valid files and edge cases (run.sh seeds)
 *     tests/fuzz/regress/T   every input that ever crashed or failed a check, minimized,
 *                            named after what it shows (A-*, B-*: issue 10's bugs A, B;
 *                            stb-*: a stb_image 2.27 bug genmod has to keep out)
 *     tests/fuzz/known/T     inputs that trip a stb 2.27 defect genmod cannot check for;
 *                            only the fuzzers read them, ignoring that one check
 *                            (tests/fuzz/stb.ignorelist)
 *     build/fuzz/corpus/T    what the fuzzer found since (not in git); build/fuzz/crashes/T
 * make test replays corpus/ and regress/ through every target built with replay.c as its
 * main under ASan+UBSan (gcc is enough), then fuzzes each target for 30 s when clang has
 * libFuzzer; make fuzz fuzzes each for FUZZ_SECONDS (180). When a crash turns up,
 * `sh tests/fuzz/run.sh minimize T FILE` saves it, minimized, into regress/T: fix the bug,
 * and make test replays the file from then on.
 * genmod is compiled once, in common.c, which exports the few private functions the
 * checks need under fz_ names. */
#ifndef GM_FUZZ_H
#define GM_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include "../../genmod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with "file:line: check failed: cond" and the loader's last error, then abort(). */
#define FZ_CHECK(cond) ((cond) ? (void)0 : fz_fail(__FILE__, __LINE__, #cond))
void fz_fail(const char *file, int line, const char *what);

/* A folder private to this process, genmod-fuzz-<pid> under /dev/shm, else $TMPDIR or
 * /tmp (made at first use, removed at exit, and by a later run if this one crashed), and
 * the path of `name` inside it. */
const char *fz_path(const char *name);
/* Write size bytes to fz_path(name) and return that path; the same name is reused on
 * every call, so a run makes no more files than it has names. */
const char *fz_write(const char *name, const void *data, size_t size);
/* After a loader failed on path: gm_last_error() must be set and name it. */
void fz_check_error(const char *path);

/* Every block genmod and stb_image allocate with malloc comes filled with this byte
 * (0xA5 unless a target sets it): loading the same file with two fills and comparing
 * finds values read from memory nobody wrote, which ASan alone does not see. */
extern unsigned char fz_fill_byte;

/* The checkpoint target's model: "enc.w" (3,2), "enc.b" (2) and the buffer "bn.mean"
 * (1,2,1,2), made at the first call (P zeroed); every call sets value k of tensor i to
 * i + k/4. tests/fuzz/seeds.c saves it for the seed corpus. */
void fz_checkpoint_model(gm_params *P);

/* genmod's own private functions (common.c compiles the implementation) */
void fz_clear_error(void);                                        /* gm_last_error() = "" */
int fz_read_data(const char *path, unsigned char **data, size_t *len);       /* gm__read_data */
int fz_gunzip(const char *path, const unsigned char *in, size_t inlen,
              unsigned char **out, size_t *outlen);                          /* gm__gunzip */
int fz_idx_labels(const char *path, int *n, int **y, int *nclass);           /* gm__idx_labels */
uint32_t fz_crc32(const unsigned char *p, size_t n);                         /* gm__crc32 */
void fz_free(void *p);                                                       /* GM_FREE */
/* 4 bytes as an unsigned integer, little- and big-endian */
uint32_t fz_le32(const unsigned char *p);
uint32_t fz_be32(const unsigned char *p);
#endif
