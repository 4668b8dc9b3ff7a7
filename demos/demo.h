/* demos/demo.h - what every demo shares: flags, the output folder, the data, result lines.
 *
 * Every demo takes
 *   --out DIR    where pictures and arrays go (default out/<demo>/)
 *   --seed N     the random seed (default 1); the same seed gives the same numbers
 *   --quick      a run of a few seconds, for the tests
 *   --data DIR   a folder of MNIST-format IDX files (default: Fashion-MNIST from the Debian
 *                package, else the built-in synthetic shapes); "--data builtin" forces the
 *                built-in shapes
 *   --help
 * plus its own flags, listed in its usage text and read with demo_int / demo_float /
 * demo_str. A flag the usage text does not mention is an error, so typos do not pass
 * silently. Its last lines on stdout are "result <key> <value>".
 *
 * Include it after genmod.h in the file that defines GENMOD_IMPLEMENTATION. */
#ifndef GENMOD_DEMO_H
#define GENMOD_DEMO_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct demo {
    const char *name;           /* "autoencoder" */
    char out[400];              /* output folder */
    char path[512];             /* the last path demo_path made */
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

static inline int demo_int(const demo *d, const char *flag, int def)
{
    const char *s = demo_arg(d, flag);
    char *end;
    long v;
    if (!s) return def;
    v = strtol(s, &end, 10);
    if (*end || end == s) { fprintf(stderr, "%s: %s wants an integer, got \"%s\"\n", d->name, flag, s); exit(2); }
    return (int)v;
}

static inline float demo_float(const demo *d, const char *flag, float def)
{
    const char *s = demo_arg(d, flag);
    char *end;
    double v;
    if (!s) return def;
    v = strtod(s, &end);
    if (*end || end == s) { fprintf(stderr, "%s: %s wants a number, got \"%s\"\n", d->name, flag, s); exit(2); }
    return (float)v;
}

static const char *demo_str(const demo *d, const char *flag, const char *def)
{
    const char *s = demo_arg(d, flag);
    return s ? s : def;
}

/* mkdir -p */
static inline int demo_mkdirs(const char *dir)
{
    char buf[400];
    size_t i, n = strlen(dir);
    if (n >= sizeof buf) return 0;
    memcpy(buf, dir, n + 1);
    for (i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return 0;
            buf[i] = c;
        }
    return 1;
}

/* Parse the common flags, check the others against the usage text, make the output folder. */
static inline demo demo_start(int argc, char **argv, const char *name, const char *usage)
{
    demo d;
    int i;
    memset(&d, 0, sizeof d);
    d.name = name; d.argc = argc; d.argv = argv; d.t0 = gm_seconds();
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        char key[64];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { demo_usage(&d, usage); exit(0); }
        if (strcmp(a, "--quick") == 0) { d.quick = 1; continue; }
        if (strncmp(a, "--", 2) != 0) continue;                   /* a flag's value */
        snprintf(key, sizeof key, "%s ", a);
        if (strcmp(a, "--out") && strcmp(a, "--seed") && strcmp(a, "--data") && !strstr(usage, key)) {
            fprintf(stderr, "%s: unknown flag %s\n", name, a);
            demo_usage(&d, usage);
            exit(2);
        }
    }
    d.seed = (uint64_t)demo_int(&d, "--seed", 1);
    d.data = demo_arg(&d, "--data");
    snprintf(d.out, sizeof d.out, "%s", demo_str(&d, "--out", ""));
    if (!d.out[0]) snprintf(d.out, sizeof d.out, "out/%s", name);
    if (!demo_mkdirs(d.out)) { fprintf(stderr, "%s: cannot create %s: %s\n", name, d.out, strerror(errno)); exit(1); }
    return d;
}

/* "<out>/<file>" (valid until the next call). */
static const char *demo_path(demo *d, const char *file)
{
    snprintf(d->path, sizeof d->path, "%s/%s", d->out, file);
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
        printf("data: %s and %s\n", train->name, test->name);
        if (d->data) {              /* any MNIST-format files: their classes are unknown, so */
            GM_FREE((void *)train->class_names); train->class_names = NULL;   /* legends show numbers */
            GM_FREE((void *)test->class_names); test->class_names = NULL;
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
