/* tests/fuzz/common.c - genmod for the fuzz targets, and what they share (fuzz.h): a
 * private folder, file writes, the checks of a failure, some of genmod's private functions,
 * and an allocator that fills fresh memory with a byte the target chooses. */
#define _POSIX_C_SOURCE 200809L      /* lstat, kill, access: before the first system header */
#include <stddef.h>
void *fz_malloc(size_t n);
/* genmod's and stb_image's allocations: malloc, then filled with fz_fill_byte */
#define GM_MALLOC(n)         fz_malloc(n)
#define GM_REALLOC(p, n)     realloc(p, n)
#define GM_FREE(p)           free(p)
#define STBI_MALLOC(n)       fz_malloc(n)
#define STBI_REALLOC(p, n)   realloc(p, n)
#define STBI_FREE(p)         free(p)
#define GENMOD_IMPLEMENTATION
#include "../../genmod.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>          /* kill(pid, 0): is that process still there? */
#include <sys/stat.h>
#include <unistd.h>
#include "fuzz.h"

unsigned char fz_fill_byte = 0xA5;

void *fz_malloc(size_t n)
{
    void *p = malloc(n);
    if (p && n) memset(p, fz_fill_byte, n);
    return p;
}

static char fz_dir[256];
static char fz_paths[8][320];       /* the paths handed out, so that each stays where it is */
static int fz_npaths;

void fz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n  gm_last_error: \"%s\"\n", file, line, what, gm_last_error());
    fflush(stderr);
    abort();
}

/* Remove path, and everything in it if it is a folder (not one a symlink points at). */
static void fz_remove_tree(const char *path)
{
    struct stat st;
    struct dirent *e;
    char sub[640];
    DIR *d;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode) || !(d = opendir(path))) { remove(path); return; }
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        fz_remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static void fz_cleanup(void) { fz_remove_tree(fz_dir); }

/* A run that crashed never got to fz_cleanup: remove the folders of processes that are
 * gone (this user's only), so crashes and minimizing do not pile them up. */
static void fz_remove_stale(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    struct stat st;
    char path[320], end;
    long pid;
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (sscanf(e->d_name, "genmod-fuzz-%ld%c", &pid, &end) != 1 || pid <= 0) continue;
        snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
            kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            fz_remove_tree(path);
    }
    closedir(d);
}

const char *fz_path(const char *name)
{
    char path[320];
    int i;
    if (!fz_dir[0]) {                 /* <tmp>/genmod-fuzz-<pid> */
        const char *tmp = getenv("TMPDIR");
        if (access("/dev/shm", W_OK) == 0) tmp = "/dev/shm";     /* memory: no disk writes */
        else if (!tmp || !tmp[0]) tmp = "/tmp";
        fz_remove_stale(tmp);
        snprintf(fz_dir, sizeof fz_dir, "%s/genmod-fuzz-%ld", tmp, (long)getpid());
        fz_remove_tree(fz_dir);
        if (mkdir(fz_dir, 0700) != 0) { perror(fz_dir); abort(); }
        atexit(fz_cleanup);
    }
    snprintf(path, sizeof path, "%s/%s", fz_dir, name);
    for (i = 0; i < fz_npaths; i++) if (strcmp(fz_paths[i], path) == 0) return fz_paths[i];
    if (fz_npaths == 8) { fprintf(stderr, "fuzz: more than 8 scratch paths\n"); abort(); }
    memcpy(fz_paths[fz_npaths], path, sizeof path);
    return fz_paths[fz_npaths++];
}

const char *fz_write(const char *name, const void *data, size_t size)
{
    const char *slash = strrchr(name, '/'), *path;
    FILE *f;
    if (slash) {                      /* "sub/file": its folder first */
        char sub[320];
        snprintf(sub, sizeof sub, "%.*s", (int)(slash - name), name);
        path = fz_path(sub);
        if (mkdir(path, 0700) != 0 && access(path, W_OK) != 0) { perror(path); abort(); }
    }
    path = fz_path(name);
    if (!(f = fopen(path, "wb")) || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

void fz_check_error(const char *path)
{
    const char *err = gm_last_error();
    FZ_CHECK(err != NULL && err[0] != 0);
    FZ_CHECK(strstr(err, path) != NULL);
}

void fz_checkpoint_model(gm_params *P)
{
    int i, k;
    if (!P->n) {
        gm_param_new(P, "enc.w", gm_shape2(3, 2));
        gm_param_new(P, "enc.b", gm_shape1(2));
        gm_buffer_new(P, "bn.mean", gm_shape4(1, 2, 1, 2));
    }
    for (i = 0; i < P->n; i++)
        for (k = 0; k < P->t[i]->size; k++) P->t[i]->val[k] = (float)i + (float)k / 4.0f;
}

void fz_clear_error(void) { gm__error_text[0] = 0; }
int fz_read_data(const char *path, unsigned char **data, size_t *len) { return gm__read_data(path, data, len); }
int fz_gunzip(const char *path, const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    return gm__gunzip(path, in, inlen, out, outlen);
}
int fz_idx_labels(const char *path, int *n, int **y, int *nclass) { return gm__idx_labels(path, n, y, nclass); }
uint32_t fz_crc32(const unsigned char *p, size_t n) { return gm__crc32(p, n); }
void fz_free(void *p) { GM_FREE(p); }
uint32_t fz_le32(const unsigned char *p) { return gm__le32(p); }
uint32_t fz_be32(const unsigned char *p) { return gm__be32(p); }
