/* genmod.h - deep generative models taught in one C header.   v0.1.0
 *
 *   A minimal reverse-mode autodiff tape, dense / conv / transposed-conv layers,
 *   optimizers and the objectives of generative modelling, in one stb-style file.
 *
 * USING IT
 *   In exactly one C or C++ file of your program write
 *       #define GENMOD_IMPLEMENTATION
 *       #include "genmod.h"
 *   and include "genmod.h" plainly everywhere else. Build with
 *       cc -O2 -march=native prog.c $(pkg-config --cflags stb) -lm      (add -fopenmp for threads)
 *   stb_image.h and stb_image_write.h (Debian: libstb-dev) must be on the include path;
 *   genmod compiles their implementations privately (static), so they never clash with
 *   your own copy. Define GENMOD_EXTERNAL_STB to link your own instead (e.g. -lstb).
 *
 * QUICK START: an autoencoder of the two-moons points (tests/quickstart.c runs this)
 *       gm_rng rng = gm_rng_new(1);
 *       gm_dataset data;
 *       gm_synthetic_2d(&data, GM_TWO_MOONS, 1000, 1);
 *       gm_params P = {0};                                    // the model: its parameters
 *       gm_dense l1 = gm_dense_new(&P, "l1", 2, 64, &rng), l2 = gm_dense_new(&P, "l2", 64, 2, &rng);
 *       gm_optim *opt = gm_adam_new(&P, 1e-2f, 0.9f, 0.999f);
 *       gm_tape *T = gm_tape_new(0);                          // 0: the default arena size
 *       for (long step = 0; step < 500; step++) {
 *           gm_tape_reset(T);                                 // forget the last step's tensors
 *           gm_tensor *x = gm_batch(T, &data, step, 64);      // (B, 2)
 *           gm_tensor *y = gm_dense(T, &l2, gm_tanh(T, gm_dense(T, &l1, x)));
 *           gm_tensor *loss = gm_mean(T, gm_mse(T, y, x));    // reconstruct x
 *           gm_backward(T, loss);                             // p->grad = dloss/dp
 *           gm_optim_step(opt);
 *       }
 *       gm_optim_free(opt); gm_tape_free(T); gm_params_free(&P); gm_dataset_free(&data);
 *
 * CONFIGURATION MACROS (define before the implementation include)
 *   GM_MALLOC(n), GM_REALLOC(p, n), GM_FREE(p)   allocator; define all or none (default: libc)
 *   GM_ABORT()          what a programming error does after printing its line (default: abort())
 *   GM_STATIC           make every function static to the including file
 *   GENMOD_EXTERNAL_STB do not compile stb_image / stb_image_write in; link your own
 *   GENMOD_CBLAS        route the one matrix multiply through cblas_sgemm (link a BLAS)
 *   -fopenmp            (a compiler flag) spread matrix products over cores
 *
 * DIMENSION LEGEND (used in code, comments and lectures alike)
 *   B batch   C channels   H W height width   D data/feature dim   Z latent dim
 *   K kernel size   S stride   P padding   M N K (in a matrix product) rows, cols, inner
 *   T diffusion steps (the tape is written T in code; the context always tells)
 *   Tensors are float32, row-major, NCHW: a batch of images is (B, C, H, W), a batch of
 *   vectors is (B, D). A per-feature or per-channel vector is (D) or (C).
 *
 * ERRORS
 *   Programming errors (wrong shapes, a tensor from a reset tape, calling gm_backward twice)
 *   print one line "file:line: gm_op: what is wrong" naming the caller, and call GM_ABORT().
 *   They are checked in every build, NDEBUG or not.
 *   Recoverable errors (files, memory) return 0 / NULL and leave the reason in
 *   gm_last_error(); nothing the caller passed in is changed.
 *   The library never calls exit() and never prints to stdout.
 *
 * RECENT CHANGES
 *   0.1.0  first release: tape, ops, layers, optimizers, data, plots, checkpoints.
 *
 * License: see the end of the file.
 */
/* The implementation reads a monotonic clock and lists folders, which strict C99 hides
 * unless POSIX is asked for before the first system header: so include genmod.h first in
 * the file that defines GENMOD_IMPLEMENTATION (or build in gnu99/gnu11 mode). */
#if defined(GENMOD_IMPLEMENTATION) && !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L
#endif

#ifndef GENMOD_H
#define GENMOD_H

#define GENMOD_VERSION "0.1.0"

#include <stddef.h>
#include <stdint.h>

/* ======================================================================================
 * 1. config and platform
 * ====================================================================================== */
#ifdef GM_STATIC
#  if defined(__GNUC__) || defined(__clang__)
#    define GMDEF static __attribute__((unused))
#  else
#    define GMDEF static
#  endif
#else
#  define GMDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The reason the last recoverable call failed ("" if none). Per thread. */
GMDEF const char *gm_last_error(void);

/* Seconds on a monotonic clock (for progress bars and benchmarks). */
GMDEF double gm_seconds(void);

/* ======================================================================================
 * 2. random numbers
 *    splitmix64: one 64-bit state, every draw derived from integer arithmetic, so a seed
 *    gives the same stream on every machine.
 * ====================================================================================== */
typedef struct gm_rng {
    uint64_t state;
    int has_spare;      /* the Box-Muller transform makes normals in pairs */
    float spare;
} gm_rng;

GMDEF gm_rng   gm_rng_new(uint64_t seed);
GMDEF uint64_t gm_rng_u64(gm_rng *r);
GMDEF float    gm_rng_uniform(gm_rng *r);              /* u ~ U[0, 1)             */
GMDEF float    gm_rng_normal(gm_rng *r);               /* e ~ N(0, 1)             */
GMDEF int      gm_rng_below(gm_rng *r, int n);         /* k ~ U{0, ..., n-1}      */
GMDEF void     gm_rng_shuffle(gm_rng *r, int *a, int n); /* uniform permutation in place */

#include "parts/core_api.h"
#include "parts/data_api.h"
#include "parts/batch_api.h"
#include "parts/output_api.h"
#include "parts/ckpt_api.h"

#ifdef __cplusplus
}
#endif
#endif /* GENMOD_H */

/* ======================================================================================
 * IMPLEMENTATION
 * ====================================================================================== */
#ifdef GENMOD_IMPLEMENTATION
#ifndef GENMOD_IMPLEMENTATION_DONE
#define GENMOD_IMPLEMENTATION_DONE

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// >>config
#if defined(GM_MALLOC) && defined(GM_REALLOC) && defined(GM_FREE)
#elif !defined(GM_MALLOC) && !defined(GM_REALLOC) && !defined(GM_FREE)
#  define GM_MALLOC(n)     malloc(n)
#  define GM_REALLOC(p, n) realloc(p, n)
#  define GM_FREE(p)       free(p)
#else
#  error "genmod.h: define all of GM_MALLOC, GM_REALLOC and GM_FREE, or none"
#endif
#ifndef GM_ABORT
#  define GM_ABORT() abort()
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#  define GM__THREAD thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#  define GM__THREAD _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#  define GM__THREAD __thread
#elif defined(_MSC_VER)
#  define GM__THREAD __declspec(thread)
#else
#  define GM__THREAD
#endif

/* OpenMP is optional: without -fopenmp these pragmas vanish (and do not warn). */
#ifdef _OPENMP
#  include <omp.h>
#  define GM__OMP(x) _Pragma(#x)
#else
#  define GM__OMP(x)
#endif

#ifdef __cplusplus
extern "C" {
#endif

static GM__THREAD char gm__error_text[512];

/* Record why a recoverable call failed; returns 0 so callers can `return gm__error(...)`. */
static int gm__error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gm__error_text, sizeof gm__error_text, fmt, ap);
    va_end(ap);
    return 0;
}

GMDEF const char *gm_last_error(void) { return gm__error_text; }

/* A programming error: one line naming the caller, then stop. Never returns. */
static void gm__fatal(const char *file, int line, const char *op, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: %s: ", file, line, op);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    GM_ABORT();
}

/* malloc that zeroes and reports failure through gm_last_error. */
static void *gm__calloc(size_t n, size_t size)
{
    void *p;
    if (size && n > (size_t)-1 / size) { gm__error("out of memory: %zu x %zu bytes", n, size); return NULL; }
    p = GM_MALLOC(n * size > 0 ? n * size : 1);
    if (!p) { gm__error("out of memory: %zu bytes", n * size); return NULL; }
    memset(p, 0, n * size);
    return p;
}

#if defined(_WIN32)
#  include <windows.h>
GMDEF double gm_seconds(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
#else
#  include <time.h>
GMDEF double gm_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

// >>rng
GMDEF gm_rng gm_rng_new(uint64_t seed)
{
    gm_rng r;
    r.state = seed;
    r.has_spare = 0;
    r.spare = 0.0f;
    return r;
}

/* splitmix64 (Steele, Lea, Flood 2014): add a constant, then mix the bits. */
GMDEF uint64_t gm_rng_u64(gm_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The top 24 bits make a float in [0, 1) exactly. */
GMDEF float gm_rng_uniform(gm_rng *r) { return (float)(gm_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

/* Box-Muller: two uniforms u1 in (0,1], u2 give two independent normals
 * sqrt(-2 log u1) cos(2 pi u2) and sqrt(-2 log u1) sin(2 pi u2). */
GMDEF float gm_rng_normal(gm_rng *r)
{
    double u1, u2, rad;
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    u1 = ((double)(gm_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    u2 = (double)(gm_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    rad = sqrt(-2.0 * log(u1));
    r->spare = (float)(rad * sin(6.283185307179586 * u2));
    r->has_spare = 1;
    return (float)(rad * cos(6.283185307179586 * u2));
}

/* Lemire's multiply-shift maps 32 random bits onto [0, n) without division. */
GMDEF int gm_rng_below(gm_rng *r, int n)
{
    return (int)(((gm_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

/* Fisher-Yates. */
GMDEF void gm_rng_shuffle(gm_rng *r, int *a, int n)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = gm_rng_below(r, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* stb_image (reading PNG/JPG, and its inflate for .gz) and stb_image_write (PNG). */
#ifndef GENMOD_EXTERNAL_STB
#  define STB_IMAGE_STATIC
#  define STB_IMAGE_IMPLEMENTATION
#  define STB_IMAGE_WRITE_STATIC
#  define STB_IMAGE_WRITE_IMPLEMENTATION
#  if defined(__GNUC__) || defined(__clang__)
#    pragma GCC diagnostic push
#    pragma GCC diagnostic ignored "-Wunused-function"
#    pragma GCC diagnostic ignored "-Wsign-compare"
#    pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  endif
/* Some stb_image versions declare this function but define it under another name; as a
 * static declaration that would warn "declared but never defined", so point it at its
 * twin, a harmless redeclaration. */
#  define stbi_set_unpremultiply_on_load_thread stbi_set_unpremultiply_on_load
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#undef stbi_set_unpremultiply_on_load_thread
#ifndef GENMOD_EXTERNAL_STB
#  if defined(__GNUC__) || defined(__clang__)
#    pragma GCC diagnostic pop
#  endif
#endif

#include "parts/core_impl.h"
#include "parts/data_impl.h"
#include "parts/batch_impl.h"
#include "parts/output_impl.h"
#include "parts/ckpt_impl.h"

#ifdef __cplusplus
}
#endif
#endif /* GENMOD_IMPLEMENTATION_DONE */
#endif /* GENMOD_IMPLEMENTATION */

/*
 * LICENSE
 * genmod is released under the MIT License.
 * Copyright (c) 2026 the genmod developers.
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this
 * software and associated documentation files (the "Software"), to deal in the Software
 * without restriction, including without limitation the rights to use, copy, modify,
 * merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
 * permit persons to whom the Software is furnished to do so, subject to the following
 * conditions: The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS",
 * WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
 */
