/* demos/demo.h - what every demo shares: flags, the output folder, the data, result lines.
 *
 * Every demo takes
 *   --out DIR    where pictures and arrays go (default out/<demo>/); in a folder of your
 *                own the demo names each file it replaces
 *   --seed N     the random seed, 0 to 2^64 - 1 (default 1); the same seed gives the same numbers
 *                (with the same build on the same CPU; see README)
 *   --quick      a run of a few seconds, for the tests
 *   --data DIR   a folder of MNIST-format IDX files, 28x28 images, 100 or more in each half
 *                (default: Fashion-MNIST from the Debian package, else the built-in synthetic
 *                shapes); "--data builtin" forces the built-in shapes
 *   --help
 * plus its own flags, listed in its usage text and read with demo_int / demo_float /
 * demo_str, each number with the range it may take. What a user types is checked before
 * any work: an unknown flag (one the usage text does not mention), a flag given twice, a
 * stray word, a number outside its range or its type, an --out folder where no file can
 * be made stop the demo with a message naming the flag, and exit code 2.
 * Its last lines on stdout are "result <key> <value>".
 *
 * Include it after genmod.h in the file that defines GENMOD_IMPLEMENTATION. */
#ifndef GENMOD_DEMO_H
#define GENMOD_DEMO_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef struct demo {
    const char *name;           /* "autoencoder" */
    char out[4096];             /* output folder (PATH_MAX on Linux) */
    char path[4096 + 64];       /* the last path demo_path made */
    int own_out;                /* out is the default out/<demo>, the demo's own folder */
    time_t started;
    uint64_t seed;
    int quick;
    const char *data;           /* --data, or NULL */
    int argc;
    char **argv;
    double t0;
} demo;

static inline void demo_usage(const demo *d, const char *usage)
{
    fprintf(stderr, "usage: %s [--out DIR] [--seed N] [--quick] [--data DIR]\n%s", d->name, usage);
}

/* The value after `flag`, or NULL when the flag is absent. */
static const char *demo_arg(const demo *d, const char *flag)
{
    int i;
    for (i = 1; i < d->argc; i++)
        if (strcmp(d->argv[i], flag) == 0) {
            if (i + 1 >= d->argc) { fprintf(stderr, "%s: %s needs a value\n", d->name, flag); exit(2); }
            return d->argv[i + 1];
        }
    return NULL;
}

/* The integer after `flag` (def when absent), which must lie in lo..hi. */
static inline int demo_int(const demo *d, const char *flag, int def, int lo, int hi)
{
    const char *s = demo_arg(d, flag);
    char *end;
    long v;
    if (!s) return def;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end || end == s || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants an integer in %d..%d, got \"%s\"\n", d->name, flag, lo, hi, s);
        exit(2);
    }
    return (int)v;
}

/* --epochs, the same range in every demo */
static inline int demo_epochs(const demo *d, int def) { return demo_int(d, "--epochs", def, 1, 1000); }

/* The number after `flag` (def when absent), which must lie in lo..hi (so not NaN or Inf). */
static inline float demo_float(const demo *d, const char *flag, float def, double lo, double hi)
{
    const char *s = demo_arg(d, flag);
    char *end;
    double v;
    if (!s) return def;
    v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s wants a number in %g..%g, got \"%s\"\n", d->name, flag, lo, hi, s);
        exit(2);
    }
    return (float)v;
}

static const char *demo_str(const demo *d, const char *flag, const char *def)
{
    const char *s = demo_arg(d, flag);
    return s ? s : def;
}

/* --seed: any 64-bit unsigned integer, the random generators' seed (default 1) */
static inline uint64_t demo_seed(const demo *d)
{
    const char *s = demo_arg(d, "--seed");
    char *end;
    unsigned long long v;
    if (!s) return 1;
    errno = 0;
    v = strtoull(s, &end, 10);                        /* (it reads "-1" as 2^64 - 1) */
    if (*end || end == s || errno == ERANGE || strchr(s, '-')) {
        fprintf(stderr, "%s: --seed wants an integer in 0..%llu, got \"%s\"\n", d->name, (unsigned long long)-1, s);
        exit(2);
    }
    return (uint64_t)v;
}

/* mkdir -p */
static inline int demo_mkdirs(char *dir)
{
    size_t i, n = strlen(dir);
    for (i = 1; i <= n; i++)
        if (dir[i] == '/' || dir[i] == 0) {
            char c = dir[i];
            int ok;
            dir[i] = 0;
            ok = mkdir(dir, 0755) == 0 || errno == EEXIST;
            dir[i] = c;
            if (!ok) return 0;
        }
    return 1;
}

/* Can files be made in dir? Make one and remove it: permission bits do not tell (root
 * writes anywhere, except on a read-only file system). */
static inline int demo_writable(const char *dir)
{
    char probe[4096 + 64];
    FILE *f;
    snprintf(probe, sizeof probe, "%s/.write-test-%ld", dir, (long)getpid());
    if (!(f = fopen(probe, "wx"))) return 0;
    fclose(f);
    return remove(probe) == 0;
}

static inline void demo_stop(const demo *d, const char *usage, const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s %s\n", d->name, what, arg);
    demo_usage(d, usage);
    exit(2);
}

/* Parse the common flags, check the others against the usage text, make the output folder
 * and check that files can be written there. */
static inline demo demo_start(int argc, char **argv, const char *name, const char *usage)
{
    demo d;
    const char *out;
    int i, j, value = 0;                  /* value: argv[i] may be the value of a flag */
    memset(&d, 0, sizeof d);
    d.name = name; d.argc = argc; d.argv = argv; d.t0 = gm_seconds(); d.started = time(NULL);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        char key[64];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { demo_usage(&d, usage); exit(0); }
        if (strncmp(a, "--", 2) != 0) {                           /* a flag's value */
            if (!value) demo_stop(&d, usage, "unexpected argument", a);
            value = 0;
            continue;
        }
        for (j = 1; j < i; j++) if (strcmp(argv[j], a) == 0) demo_stop(&d, usage, "given twice:", a);
        if (strcmp(a, "--quick") == 0) { d.quick = 1; value = 0; continue; }
        value = 1;
        snprintf(key, sizeof key, "%s ", a);
        if (strcmp(a, "--out") && strcmp(a, "--seed") && strcmp(a, "--data") && !strstr(usage, key))
            demo_stop(&d, usage, "unknown flag", a);
    }
    d.seed = demo_seed(&d);
    d.data = demo_arg(&d, "--data");
    snprintf(d.path, sizeof d.path, "out/%s", name);           /* the default, the demo's own */
    out = demo_str(&d, "--out", d.path);
    if (!out[0] || strlen(out) >= sizeof d.out) {
        fprintf(stderr, "%s: --out is %zu characters long, not 1 to %zu\n", name, strlen(out), sizeof d.out - 1);
        exit(2);
    }
    snprintf(d.out, sizeof d.out, "%s", out);
    d.own_out = strcmp(d.out, d.path) == 0;
    if (!demo_mkdirs(d.out) || !demo_writable(d.out)) {
        fprintf(stderr, "%s: cannot write in --out %s: %s\n", name, d.out, strerror(errno));
        exit(2);
    }
    return d;
}

/* "<out>/<file>" (valid until the next call). In a folder given by --out, say which files
 * were there before the demo started and are now replaced. */
static const char *demo_path(demo *d, const char *file)
{
    struct stat st;
    snprintf(d->path, sizeof d->path, "%s/%s", d->out, file);
    if (!d->own_out && stat(d->path, &st) == 0 && st.st_mtime < d->started)
        fprintf(stderr, "%s: replacing %s\n", d->name, d->path);
    return d->path;
}

/* Stop the demo over a failed genmod call, with genmod's reason. */
static inline void demo_check(const demo *d, int ok, const char *what)
{
    if (ok) return;
    fprintf(stderr, "%s: %s failed: %s\n", d->name, what, gm_last_error());
    exit(1);
}

/* The image data: Fashion-MNIST (or --data), else the built-in shapes, and say which on
 * the first line. --quick keeps n_quick training and n_quick/5 test images. */
static inline void demo_images(demo *d, gm_dataset *train, gm_dataset *test, int n_quick)
{
    int builtin = d->data && strcmp(d->data, "builtin") == 0;
    if (!builtin && gm_load_fashion_mnist(train, test, d->data)) {
        if (train->h != 28 || train->w != 28 || test->h != 28 || test->w != 28 || train->n < 100 || test->n < 100) {
            fprintf(stderr, "%s: --data %s: %d training images of %dx%d and %d test images of %dx%d; the demos "
                    "need 28x28 images, 100 or more of each\n", d->name, d->data ? d->data : "", train->n,
                    train->h, train->w, test->n, test->h, test->w);
            exit(2);
        }
        printf("data: %s and %s\n", train->name, test->name);
        /* any MNIST-format files: their classes are unknown, so legends show numbers (the
         * names go with free(): the demos leave genmod's GM_FREE at its default, libc's) */
        if (d->data) {
            free((void *)train->class_names); train->class_names = NULL;
            free((void *)test->class_names); test->class_names = NULL;
        }
    } else {
        if (d->data && !builtin) { fprintf(stderr, "%s: %s\n", d->name, gm_last_error()); exit(1); }
        gm_synthetic_shapes(train, 20000, d->seed);
        gm_synthetic_shapes(test, 4000, d->seed + 1000);
        printf("data: built-in synthetic shapes, the embedded default (%s)\n",
               builtin ? "--data builtin" : "Fashion-MNIST not found: apt-get install dataset-fashion-mnist");
    }
    if (d->quick) {                       /* the first examples, in order */
        if (train->n > n_quick) train->n = n_quick;
        if (test->n > n_quick / 5) test->n = n_quick / 5;
    }
}

static inline void demo_result(const char *key, double value) { printf("result %s %.6g\n", key, value); }

static inline void demo_done(demo *d)
{
    fprintf(stderr, "%s: done in %.1f s, pictures in %s/\n", d->name, gm_seconds() - d->t0, d->out);
}

#endif
