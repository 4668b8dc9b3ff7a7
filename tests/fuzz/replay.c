/* tests/fuzz/replay.c - a main for a fuzz target without libFuzzer: every file named, and
 * every file in every folder named, goes once through LLVMFuzzerTestOneInput. make test
 * builds each target with it under ASan+UBSan and replays the committed seed and
 * regression corpora; a broken check or a sanitizer report aborts with the file's name
 * printed just before. Prints "replayed N inputs" and exits 0 when all went through. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

/* As the fuzzers run (-malloc_limit_mb=256 in run.sh): one allocation of more than
 * 256 MB is an error. No input of the corpora has a reason to ask for that much. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "max_allocation_size_mb=256"; }

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL, *grown;
    size_t cap = 0, n = 0, got;
    if (!f) { perror(path); exit(2); }
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            if (!(grown = (unsigned char *)realloc(buf, cap))) { perror(path); exit(2); }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static void replay_file(const char *path)
{
    size_t len;
    unsigned char *data = read_all(path, &len);
    fprintf(stderr, "replay %s (%lu bytes)\n", path, (unsigned long)len);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files of a folder, in name order (so a run is the same on every machine). */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, **grown;
    int n = 0, cap = 0, i;
    if (!d) { perror(dir); exit(2); }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;      /* ., .., and .gitkeep-like files */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            if (!(grown = (char **)realloc(names, (size_t)cap * sizeof *names))) { perror(dir); exit(2); }
            names = grown;
        }
        if (!(names[n] = (char *)malloc(strlen(dir) + strlen(e->d_name) + 2))) { perror(dir); exit(2); }
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, by_name);
    for (i = 0; i < n; i++) {
        replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    return n;
}

int main(int argc, char **argv)
{
    int i, count = 0;
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { perror(argv[i]); return 2; }
        if (S_ISDIR(st.st_mode)) count += replay_dir(argv[i]);
        else { replay_file(argv[i]); count++; }
    }
    printf("replayed %d inputs\n", count);
    return 0;
}
