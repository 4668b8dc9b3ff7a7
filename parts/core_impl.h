// >>tape
GMDEF gm_shape gm_shape1(int d0) { gm_shape s = {1, {d0, 1, 1, 1}}; return s; }
GMDEF gm_shape gm_shape2(int d0, int d1) { gm_shape s = {2, {d0, d1, 1, 1}}; return s; }
GMDEF gm_shape gm_shape3(int d0, int d1, int d2) { gm_shape s = {3, {d0, d1, d2, 1}}; return s; }
GMDEF gm_shape gm_shape4(int d0, int d1, int d2, int d3) { gm_shape s = {4, {d0, d1, d2, d3}}; return s; }

/* "(4,3)" for error messages; buf holds at least 64 chars. */
static const char *gm__shape_str(gm_shape s, char *buf)
{
    int i, n = 0;
    n += sprintf(buf + n, "(");
    for (i = 0; i < s.ndim; i++) n += sprintf(buf + n, i ? ",%d" : "%d", s.d[i]);
    sprintf(buf + n, ")");
    return buf;
}

static int gm__shape_size(gm_shape s, const char *op, GM__SITE)
{
    long long n = 1;
    int i;
    char b[64];
    if (s.ndim < 1 || s.ndim > 4) gm__fatal(file, line, op, "a shape has 1 to 4 dims, got %d", s.ndim);
    for (i = 0; i < s.ndim; i++) {
        if (s.d[i] < 1) gm__fatal(file, line, op, "shape %s has a dim < 1", gm__shape_str(s, b));
        n *= s.d[i];
        if (n > 0x7fffffff) gm__fatal(file, line, op, "shape %s has more than 2^31 values", gm__shape_str(s, b));
    }
    return (int)n;
}

static int gm__same_shape(gm_shape a, gm_shape b)
{
    int i;
    if (a.ndim != b.ndim) return 0;
    for (i = 0; i < a.ndim; i++) if (a.d[i] != b.d[i]) return 0;
    return 1;
}

/* Private flag bits of gm_tensor.flags. */
enum { GM__NEEDS_GRAD = 16, GM__REACHED = 32 };

/* The arena. Values and scratch memory come from `data`, a bump allocator. Tensor headers
 * come from one of two pools, alternating by step: the headers of the previous step stay
 * intact for a whole step, so a tensor kept past gm_tape_reset is recognized (its step no
 * longer matches) instead of silently aliasing a new tensor. */
struct gm_tape {
    char *data;  size_t cap, used, peak;
    char *heads[2]; size_t heads_cap, heads_used;
    gm_tensor *last;            /* the newest tensor: the tape walks back from here */
    unsigned long step;         /* how many resets so far */
    int backward_done;
};

#define GM__ALIGN 64

GMDEF gm_tape *gm_tape_new(size_t bytes)
{
    gm_tape *T = (gm_tape *)gm__calloc(1, sizeof *T);
    if (!T) return NULL;
    T->cap = bytes ? bytes : (size_t)512 << 20;
    T->heads_cap = T->cap / 32 > 4096 ? T->cap / 32 : 4096;
    T->data = (char *)GM_MALLOC(T->cap + GM__ALIGN);
    T->heads[0] = (char *)GM_MALLOC(T->heads_cap);
    T->heads[1] = (char *)GM_MALLOC(T->heads_cap);
    if (!T->data || !T->heads[0] || !T->heads[1]) {
        gm_tape_free(T);
        gm__error("gm_tape_new: out of memory for a %zu-byte arena", bytes);
        return NULL;
    }
    return T;
}

GMDEF void gm_tape_free(gm_tape *T)
{
    if (!T) return;
    GM_FREE(T->data);
    GM_FREE(T->heads[0]);
    GM_FREE(T->heads[1]);
    GM_FREE(T);
}

GMDEF void gm_tape_reset(gm_tape *T)
{
    T->used = 0;
    T->heads_used = 0;
    T->last = NULL;
    T->step++;
    T->backward_done = 0;
}

GMDEF size_t gm_tape_peak(const gm_tape *T) { return T->peak; }

/* Bump allocation, 64-byte aligned (a cache line, and any SIMD width). */
static void *gm__arena(gm_tape *T, size_t bytes, const char *op, GM__SITE)
{
    char *base = (char *)(((uintptr_t)T->data + GM__ALIGN - 1) & ~(uintptr_t)(GM__ALIGN - 1));
    size_t at = T->used;
    if (bytes > T->cap - at)
        gm__fatal(file, line, op, "tape arena full: this step has used %.1f MiB of %.1f MiB and needs "
                  "%.1f MiB more; make it larger with gm_tape_new(%zu)", at / 1048576.0, T->cap / 1048576.0,
                  bytes / 1048576.0, (size_t)((at + bytes) * 2));
    T->used = at + ((bytes + GM__ALIGN - 1) & ~(size_t)(GM__ALIGN - 1));
    if (T->used > T->peak) T->peak = T->used;
    return base + at;
}

GMDEF void *gm_tape_alloc(gm_tape *T, size_t bytes) { return gm__arena(T, bytes, "gm_tape_alloc", GM__HERE); }

static float *gm__floats(gm_tape *T, int n, const char *op, GM__SITE)
{
    return (float *)gm__arena(T, (size_t)n * sizeof(float), op, file, line);
}

static void gm__check_input(gm_tape *T, const gm_tensor *x, const char *op, GM__SITE)
{
    if (!x) gm__fatal(file, line, op, "an input is NULL");
    if (!x->tape) return;                               /* a parameter or constant: lives on */
    if (x->tape != T) gm__fatal(file, line, op, "an input (made by %s at %s:%d) belongs to another tape",
                                x->op, x->file, x->line);
    if (x->step != T->step)
        gm__fatal(file, line, op, "an input (made by %s at %s:%d) is from before gm_tape_reset; "
                  "tape tensors live for one step", x->op, x->file, x->line);
}

/* Make the output of an op: header, uninitialized values, inputs and backward recorded.
 * It needs a gradient when any input does and the op has a backward. */
static gm_tensor *gm__node(gm_tape *T, gm_shape s, const char *op, gm_kernel backward,
                           gm_tensor *a, gm_tensor *b, gm_tensor *c, GM__SITE)
{
    gm_tensor *y, *in[3];
    int i, k;
    if (!T) gm__fatal(file, line, op, "the tape is NULL");
    k = (int)(T->step & 1);                     /* this step's header pool */
    in[0] = a; in[1] = b; in[2] = c;
    if (T->heads_used + sizeof(gm_tensor) > T->heads_cap)
        gm__fatal(file, line, op, "tape full: more than %zu tensors in one step; make it larger with "
                  "gm_tape_new(%zu)", T->heads_cap / sizeof(gm_tensor), T->cap * 2);
    y = (gm_tensor *)(T->heads[k] + T->heads_used);
    T->heads_used += sizeof(gm_tensor);
    memset(y, 0, sizeof *y);
    y->shape = s;
    y->size = gm__shape_size(s, op, file, line);
    y->val = gm__floats(T, y->size, op, file, line);
    y->op = op; y->file = file; y->line = line;
    y->tape = T; y->step = T->step;
    y->prev = T->last;
    T->last = y;
    for (i = 0; i < 3; i++) {
        if (!in[i]) continue;
        gm__check_input(T, in[i], op, file, line);
        y->in[i] = in[i];
        if (backward && (in[i]->flags & (GM_PARAM | GM__NEEDS_GRAD))) y->flags |= GM__NEEDS_GRAD;
    }
    if (y->flags & GM__NEEDS_GRAD) y->backward = backward;
    return y;
}

GMDEF gm_tensor *gm_zeros_at(gm_tape *T, gm_shape s, GM__SITE)
{
    gm_tensor *y = gm__node(T, s, "gm_zeros", NULL, NULL, NULL, NULL, file, line);
    memset(y->val, 0, (size_t)y->size * sizeof(float));
    return y;
}

GMDEF gm_tensor *gm_from_at(gm_tape *T, gm_shape s, const float *data, GM__SITE)
{
    gm_tensor *y = gm__node(T, s, "gm_from", NULL, NULL, NULL, NULL, file, line);
    memcpy(y->val, data, (size_t)y->size * sizeof(float));
    return y;
}

GMDEF gm_tensor *gm_randn_at(gm_tape *T, gm_shape s, gm_rng *rng, GM__SITE)
{
    gm_tensor *y = gm__node(T, s, "gm_randn", NULL, NULL, NULL, NULL, file, line);
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = gm_rng_normal(rng);
    return y;
}

GMDEF float gm_item(const gm_tensor *x) { return x->val[0]; }

/* The walk behind gm_backward, seeded with dL/dy = seed (for the gradient check, any y).
 * 1. from y back to the start of the tape, mark what y depends on; give those tape tensors
 *    a zeroed grad and zero the grads of the parameters reached;
 * 2. walk again, calling each reached tensor's backward (reverse creation order means every
 *    consumer of a tensor has added its share before that tensor's backward runs);
 * 3. clear the marks on parameters. */
static void gm__backprop(gm_tape *T, gm_tensor *y, const float *seed, GM__SITE)
{
    gm_tensor *t;
    int i;
    if (T->backward_done)
        gm__fatal(file, line, "gm_backward", "called twice in one step; call gm_tape_reset, then run "
                  "the forward again");
    gm__check_input(T, y, "gm_backward", file, line);
    T->backward_done = 1;
    y->flags |= GM__REACHED;
    for (t = y; t; t = t->prev) {
        if (!(t->flags & GM__REACHED)) continue;
        if (t->flags & GM__NEEDS_GRAD) {
            t->grad = gm__floats(T, t->size, "gm_backward", file, line);
            memset(t->grad, 0, (size_t)t->size * sizeof(float));
        }
        for (i = 0; i < 3; i++) {
            gm_tensor *x = t->in[i];
            if (!x || (x->flags & GM__REACHED)) continue;
            x->flags |= GM__REACHED;
            if (x->flags & GM_PARAM) memset(x->grad, 0, (size_t)x->size * sizeof(float));
        }
    }
    if (y->grad) memcpy(y->grad, seed, (size_t)y->size * sizeof(float));
    for (t = y; t; t = t->prev)
        if ((t->flags & GM__REACHED) && t->backward) t->backward(t);
    for (t = y; t; t = t->prev)
        for (i = 0; i < 3; i++)
            if (t->in[i] && !t->in[i]->tape) t->in[i]->flags &= ~GM__REACHED;
}

GMDEF float gm_backward_at(gm_tape *T, gm_tensor *loss, GM__SITE)
{
    float one = 1.0f;
    char b[64];
    if (loss->size != 1)
        gm__fatal(file, line, "gm_backward", "the loss must be one number, got shape %s; "
                  "reduce it with gm_mean or gm_sum", gm__shape_str(loss->shape, b));
    if (!isfinite(loss->val[0]))
        gm__fatal(file, line, "gm_backward", "training diverged at step %lu: the loss is %f (made by %s "
                  "at %s:%d)", T->step, loss->val[0], loss->op ? loss->op : "?", loss->file, loss->line);
    gm__backprop(T, loss, &one, file, line);
    return loss->val[0];
}

// >>params
static gm_tensor *gm__param(gm_params *P, const char *name, gm_shape s, int flags)
{
    gm_tensor *t;
    size_t n;
    char b[64];
    int i;
    for (i = 0; i < P->n; i++)
        if (strcmp(P->t[i]->name, name) == 0)
            gm__fatal(__FILE__, __LINE__, "gm_param_new", "two parameters are named \"%s\"", name);
    t = (gm_tensor *)gm__calloc(1, sizeof *t);
    if (!t) gm__fatal(__FILE__, __LINE__, "gm_param_new", "out of memory");
    t->shape = s;
    t->size = gm__shape_size(s, "gm_param_new", __FILE__, __LINE__);
    t->flags = flags;
    n = strlen(name) + 1;
    t->name = (char *)GM_MALLOC(n);
    t->val = (float *)gm__calloc((size_t)t->size, sizeof(float));
    t->grad = flags & GM_PARAM ? (float *)gm__calloc((size_t)t->size, sizeof(float)) : NULL;
    if (P->n == P->cap) {
        P->cap = P->cap ? 2 * P->cap : 16;
        P->t = (gm_tensor **)GM_REALLOC(P->t, (size_t)P->cap * sizeof *P->t);
    }
    if (!t->name || !t->val || ((flags & GM_PARAM) && !t->grad) || !P->t)
        gm__fatal(__FILE__, __LINE__, "gm_param_new", "out of memory for \"%s\" %s", name, gm__shape_str(s, b));
    memcpy(t->name, name, n);
    P->t[P->n++] = t;
    return t;
}

GMDEF gm_tensor *gm_param_new(gm_params *P, const char *name, gm_shape s) { return gm__param(P, name, s, GM_PARAM); }
GMDEF gm_tensor *gm_buffer_new(gm_params *P, const char *name, gm_shape s) { return gm__param(P, name, s, GM_BUFFER); }

GMDEF long gm_params_count(const gm_params *P)
{
    long n = 0;
    int i;
    for (i = 0; i < P->n; i++) if (P->t[i]->flags & GM_PARAM) n += P->t[i]->size;
    return n;
}

GMDEF void gm_params_free(gm_params *P)
{
    int i;
    for (i = 0; i < P->n; i++) {
        GM_FREE(P->t[i]->name);
        GM_FREE(P->t[i]->val);
        GM_FREE(P->t[i]->grad);
        GM_FREE(P->t[i]);
    }
    GM_FREE(P->t);
    memset(P, 0, sizeof *P);
}

// >>matmul
/* The one matrix product every dense, conv and conv-transpose layer goes through:
 *     C (M,N) = alpha op(A) op(B) + beta C,      op(X) = X or X^T,  all row-major.
 * The structure of the classic high-performance kernels (Goto & van de Geijn 2008):
 *   - blocks of GM__KC steps of the inner dimension K, so the operands in use fit in cache;
 *   - op(A) packed into panels of GM__MR rows and op(B) into panels of GM__NR columns, each
 *     stored k-major and zero-padded: this is where the transposes are absorbed, and it
 *     makes every read of the micro-kernel contiguous;
 *   - the micro-kernel keeps an MR x NR block of C in local accumulators (registers) for a
 *     whole K block: per step k it reads MR numbers of A and NR of B and does MR*NR
 *     multiply-adds. Its loops have fixed trip counts, so the compiler vectorizes them for
 *     the machine it builds for (-march=native: AVX2/AVX-512 on x86, NEON on ARM).
 * Tiles of C are split among OpenMP threads; each C value is summed by one thread in a
 * fixed order, so results do not depend on the thread count. */
#define GM__MR 4
#define GM__NR 16
#define GM__KC 256
#define GM__NC 1024

/* Pack alpha op(A)[0:M, k0:k0+kc] as ceil(M/MR) panels of (kc x MR). */
static void gm__pack_a(float *dst, const float *A, int lda, int tA, int M, int k0, int kc, float alpha)
{
    int i0, i, k;
    for (i0 = 0; i0 < M; i0 += GM__MR)
        for (k = 0; k < kc; k++)
            for (i = 0; i < GM__MR; i++, dst++) {
                int r = i0 + i;
                *dst = r >= M ? 0.0f : alpha * (tA ? A[(size_t)(k0 + k) * lda + r] : A[(size_t)r * lda + k0 + k]);
            }
}

/* Pack op(B)[k0:k0+kc, j0:j0+nc] as ceil(nc/NR) panels of (kc x NR). */
static void gm__pack_b(float *dst, const float *B, int ldb, int tB, int k0, int kc, int j0, int nc)
{
    int jp, j, k;
    for (jp = 0; jp < nc; jp += GM__NR)
        for (k = 0; k < kc; k++)
            for (j = 0; j < GM__NR; j++, dst++) {
                int c = j0 + jp + j;
                *dst = jp + j >= nc ? 0.0f : (tB ? B[(size_t)c * ldb + k0 + k] : B[(size_t)(k0 + k) * ldb + c]);
            }
}

/* C[0:mr, 0:nr] += Ap (kc x MR) * Bp (kc x NR), accumulated in registers first. */
static void gm__micro(int kc, const float *Ap, const float *Bp, float *C, int ldc, int mr, int nr)
{
    float acc[GM__MR][GM__NR];
    int i, j, k;
    memset(acc, 0, sizeof acc);
    for (k = 0; k < kc; k++)
        for (i = 0; i < GM__MR; i++)
            for (j = 0; j < GM__NR; j++) acc[i][j] += Ap[k * GM__MR + i] * Bp[k * GM__NR + j];
    for (i = 0; i < mr; i++)
        for (j = 0; j < nr; j++) C[(size_t)i * ldc + j] += acc[i][j];
}

#ifdef GENMOD_CBLAS
#include <cblas.h>
static void gm__gemm(gm_tape *T, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)T;
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#else
static void gm__gemm(gm_tape *T, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    size_t mark = T->used;                      /* the packed panels are scratch: give them back */
    int mp = (M + GM__MR - 1) / GM__MR, kmax = K < GM__KC ? K : GM__KC, nmax = N < GM__NC ? N : GM__NC;
    float *Ap = gm__floats(T, mp * GM__MR * kmax, "gm_matmul", GM__HERE);
    float *Bp = gm__floats(T, kmax * ((nmax + GM__NR - 1) / GM__NR) * GM__NR, "gm_matmul", GM__HERE);
    int i, j, k0, j0;
    for (i = 0; i < M; i++)                     /* C = beta C, then accumulate */
        for (j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    for (k0 = 0; k0 < K; k0 += GM__KC) {
        int kc = K - k0 < GM__KC ? K - k0 : GM__KC;
        gm__pack_a(Ap, A, lda, tA, M, k0, kc, alpha);
        for (j0 = 0; j0 < N; j0 += GM__NC) {
            int nc = N - j0 < GM__NC ? N - j0 : GM__NC, np = (nc + GM__NR - 1) / GM__NR, t;
            gm__pack_b(Bp, B, ldb, tB, k0, kc, j0, nc);
            /* tile t covers rows (t / np) * MR and columns j0 + (t % np) * NR */
            GM__OMP(omp parallel for schedule(static) if ((double)M * nc * kc > 4e6))
            for (t = 0; t < mp * np; t++) {
                int i0 = (t / np) * GM__MR, jj = (t % np) * GM__NR;
                gm__micro(kc, Ap + (size_t)(t / np) * GM__MR * kc, Bp + (size_t)(t % np) * GM__NR * kc,
                          C + (size_t)i0 * ldc + j0 + jj, ldc,
                          M - i0 < GM__MR ? M - i0 : GM__MR, nc - jj < GM__NR ? nc - jj : GM__NR);
            }
        }
    }
    T->used = mark;
}
#endif

// >>ops-binary
/* Broadcasting for add, sub, mul: view a as (outer, F, inner) with F = a.d[1]; b is the
 * same shape (mode 0), one number (mode 1), or a vector of F (mode 2). */
static int gm__bcast(const gm_tensor *a, const gm_tensor *b, const char *op, GM__SITE)
{
    char sa[64], sb[64];
    if (gm__same_shape(a->shape, b->shape)) return 0;
    if (b->size == 1) return 1;
    if (a->shape.ndim >= 2 && b->shape.ndim == 1 && b->size == a->shape.d[1]) return 2;
    gm__fatal(file, line, op, "shapes do not broadcast: a is %s, b is %s (b must match a, be one number, "
              "or be a vector the size of a's dim 1)", gm__shape_str(a->shape, sa), gm__shape_str(b->shape, sb));
    return -1;
}

/* The index into b of a's element i. */
static int gm__bidx(const gm_tensor *y, int i)
{
    int inner;
    if (y->iarg[0] == 0) return i;
    if (y->iarg[0] == 1) return 0;
    inner = y->size / (y->shape.d[0] * y->shape.d[1]);
    return (i / inner) % y->shape.d[1];
}

/* y = a + b;  da = dy, db = dy (summed over broadcast copies) */
static void gm__add_bwd(gm_tensor *y)
{
    gm_tensor *a = y->in[0], *b = y->in[1];
    int i;
    if (a->grad) for (i = 0; i < y->size; i++) a->grad[i] += y->grad[i];
    if (b->grad) for (i = 0; i < y->size; i++) b->grad[gm__bidx(y, i)] += y->grad[i];
}

GMDEF gm_tensor *gm_add_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE)
{
    int mode = gm__bcast(a, b, "gm_add", file, line), i;
    gm_tensor *y = gm__node(T, a->shape, "gm_add", gm__add_bwd, a, b, NULL, file, line);
    y->iarg[0] = mode;
    for (i = 0; i < y->size; i++) y->val[i] = a->val[i] + b->val[gm__bidx(y, i)];
    return y;
}

/* y = a - b;  da = dy, db = -dy */
static void gm__sub_bwd(gm_tensor *y)
{
    gm_tensor *a = y->in[0], *b = y->in[1];
    int i;
    if (a->grad) for (i = 0; i < y->size; i++) a->grad[i] += y->grad[i];
    if (b->grad) for (i = 0; i < y->size; i++) b->grad[gm__bidx(y, i)] -= y->grad[i];
}

GMDEF gm_tensor *gm_sub_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE)
{
    int mode = gm__bcast(a, b, "gm_sub", file, line), i;
    gm_tensor *y = gm__node(T, a->shape, "gm_sub", gm__sub_bwd, a, b, NULL, file, line);
    y->iarg[0] = mode;
    for (i = 0; i < y->size; i++) y->val[i] = a->val[i] - b->val[gm__bidx(y, i)];
    return y;
}

/* y = a * b;  da = dy b, db = dy a */
static void gm__mul_bwd(gm_tensor *y)
{
    gm_tensor *a = y->in[0], *b = y->in[1];
    int i;
    if (a->grad) for (i = 0; i < y->size; i++) a->grad[i] += y->grad[i] * b->val[gm__bidx(y, i)];
    if (b->grad) for (i = 0; i < y->size; i++) b->grad[gm__bidx(y, i)] += y->grad[i] * a->val[i];
}

GMDEF gm_tensor *gm_mul_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE)
{
    int mode = gm__bcast(a, b, "gm_mul", file, line), i;
    gm_tensor *y = gm__node(T, a->shape, "gm_mul", gm__mul_bwd, a, b, NULL, file, line);
    y->iarg[0] = mode;
    for (i = 0; i < y->size; i++) y->val[i] = a->val[i] * b->val[gm__bidx(y, i)];
    return y;
}

/* y = s x;  dx = s dy */
static void gm__scale_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->farg[0] * y->grad[i];
}

GMDEF gm_tensor *gm_scale_at(gm_tape *T, gm_tensor *x, float s, GM__SITE)
{
    gm_tensor *y = gm__node(T, x->shape, "gm_scale", gm__scale_bwd, x, NULL, NULL, file, line);
    int i;
    y->farg[0] = s;
    for (i = 0; i < y->size; i++) y->val[i] = s * x->val[i];
    return y;
}

/* Y = A B,  A (M,K), B (K,N);  dA = dY B^T,  dB = A^T dY */
static void gm__matmul_bwd(gm_tensor *y)
{
    gm_tensor *a = y->in[0], *b = y->in[1];
    int M = a->shape.d[0], K = a->shape.d[1], N = b->shape.d[1];
    if (a->grad) gm__gemm(y->tape, 0, 1, M, K, N, 1.0f, y->grad, N, b->val, N, 1.0f, a->grad, K);
    if (b->grad) gm__gemm(y->tape, 1, 0, K, N, M, 1.0f, a->val, K, y->grad, N, 1.0f, b->grad, N);
}

GMDEF gm_tensor *gm_matmul_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE)
{
    char sa[64], sb[64];
    gm_tensor *y;
    if (a->shape.ndim != 2 || b->shape.ndim != 2 || a->shape.d[1] != b->shape.d[0])
        gm__fatal(file, line, "gm_matmul", "needs (M,K) and (K,N): a is %s, b is %s",
                  gm__shape_str(a->shape, sa), gm__shape_str(b->shape, sb));
    y = gm__node(T, gm_shape2(a->shape.d[0], b->shape.d[1]), "gm_matmul", gm__matmul_bwd, a, b, NULL, file, line);
    gm__gemm(T, 0, 0, a->shape.d[0], b->shape.d[1], a->shape.d[1], 1.0f, a->val, a->shape.d[1],
             b->val, b->shape.d[1], 0.0f, y->val, b->shape.d[1]);
    return y;
}

// >>ops-unary
/* An elementwise op is a forward kernel y = f(x) and a backward kernel dx += dy f'(x),
 * both given the output y (whose in[0] is x). gm__unary builds the node and runs the
 * forward; farg is the op's one number, if any (the leaky ReLU slope). */
static gm_tensor *gm__unary(gm_tape *T, gm_tensor *x, const char *op, gm_kernel fwd, gm_kernel bwd,
                            float farg, GM__SITE)
{
    gm_tensor *y = gm__node(T, x->shape, op, bwd, x, NULL, NULL, file, line);
    y->farg[0] = farg;
    fwd(y);
    return y;
}

/* y = max(0, x);  dx = dy [x > 0] */
static void gm__relu_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void gm__relu_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += x->val[i] > 0.0f ? y->grad[i] : 0.0f;
}
GMDEF gm_tensor *gm_relu_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_relu", gm__relu_fwd, gm__relu_bwd, 0.0f, file, line);
}

/* y = x if x > 0 else a x;  dx = dy (1 or a) */
static void gm__leaky_relu_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = x[i] > 0.0f ? x[i] : y->farg[0] * x[i];
}
static void gm__leaky_relu_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += x->val[i] > 0.0f ? y->grad[i] : y->farg[0] * y->grad[i];
}
GMDEF gm_tensor *gm_leaky_relu_at(gm_tape *T, gm_tensor *x, float slope, GM__SITE)
{
    return gm__unary(T, x, "gm_leaky_relu", gm__leaky_relu_fwd, gm__leaky_relu_bwd, slope, file, line);
}

/* y = 1/(1+e^-x);  dx = dy y (1-y).  Written so e^(large) never overflows. */
static float gm__sigmoidf(float x)
{
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    return expf(x) / (1.0f + expf(x));
}
static void gm__sigmoid_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = gm__sigmoidf(x[i]);
}
static void gm__sigmoid_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->grad[i] * y->val[i] * (1.0f - y->val[i]);
}
GMDEF gm_tensor *gm_sigmoid_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_sigmoid", gm__sigmoid_fwd, gm__sigmoid_bwd, 0.0f, file, line);
}

/* y = tanh x;  dx = dy (1 - y^2) */
static void gm__tanh_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = tanhf(x[i]);
}
static void gm__tanh_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->grad[i] * (1.0f - y->val[i] * y->val[i]);
}
GMDEF gm_tensor *gm_tanh_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_tanh", gm__tanh_fwd, gm__tanh_bwd, 0.0f, file, line);
}

/* y = log(1 + e^x) = max(x,0) + log(1 + e^-|x|)  (stable);  dx = dy sigmoid(x) */
static float gm__softplusf(float x) { return (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x))); }
static void gm__softplus_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = gm__softplusf(x[i]);
}
static void gm__softplus_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->grad[i] * gm__sigmoidf(x->val[i]);
}
GMDEF gm_tensor *gm_softplus_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_softplus", gm__softplus_fwd, gm__softplus_bwd, 0.0f, file, line);
}

/* y = x s(x), s = sigmoid;  dx = dy (s + x s (1 - s)) */
static void gm__silu_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = x[i] * gm__sigmoidf(x[i]);
}
static void gm__silu_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) {
        float s = gm__sigmoidf(x->val[i]);
        x->grad[i] += y->grad[i] * (s + x->val[i] * s * (1.0f - s));
    }
}
GMDEF gm_tensor *gm_silu_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_silu", gm__silu_fwd, gm__silu_bwd, 0.0f, file, line);
}

/* y = e^x;  dx = dy y */
static void gm__exp_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = expf(x[i]);
}
static void gm__exp_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->grad[i] * y->val[i];
}
GMDEF gm_tensor *gm_exp_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_exp", gm__exp_fwd, gm__exp_bwd, 0.0f, file, line);
}

/* y = log x;  dx = dy / x */
static void gm__log_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = logf(x[i]);
}
static void gm__log_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->grad[i] / x->val[i];
}
GMDEF gm_tensor *gm_log_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_log", gm__log_fwd, gm__log_bwd, 0.0f, file, line);
}

/* y = x^2;  dx = 2 x dy */
static void gm__square_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = x[i] * x[i];
}
static void gm__square_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += 2.0f * x->val[i] * y->grad[i];
}
GMDEF gm_tensor *gm_square_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "gm_square", gm__square_fwd, gm__square_bwd, 0.0f, file, line);
}

// >>ops-reduce
/* Reductions over groups of n consecutive values: y_g = s sum_{i in g} x_i with s = 1 (sum)
 * or 1/n (mean); dx_i = s dy_g. One group is everything; per example, a group is one row. */
static void gm__reduce_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int n = x->size / y->size, g, i;
    for (g = 0; g < y->size; g++)
        for (i = 0; i < n; i++) x->grad[g * n + i] += y->farg[0] * y->grad[g];
}

static gm_tensor *gm__reduce(gm_tape *T, gm_tensor *x, int per_example, int mean, const char *op, GM__SITE)
{
    gm_shape s = per_example ? gm_shape1(x->shape.d[0]) : gm_shape1(1);
    gm_tensor *y = gm__node(T, s, op, gm__reduce_bwd, x, NULL, NULL, file, line);
    int n = x->size / y->size, g, i;
    y->farg[0] = mean ? 1.0f / (float)n : 1.0f;
    for (g = 0; g < y->size; g++) {
        double acc = 0.0;                       /* double: a sum of 10^5 floats stays exact enough */
        for (i = 0; i < n; i++) acc += x->val[(size_t)g * n + i];
        y->val[g] = (float)(acc * y->farg[0]);
    }
    return y;
}

GMDEF gm_tensor *gm_sum_at(gm_tape *T, gm_tensor *x, GM__SITE) { return gm__reduce(T, x, 0, 0, "gm_sum", file, line); }
GMDEF gm_tensor *gm_mean_at(gm_tape *T, gm_tensor *x, GM__SITE) { return gm__reduce(T, x, 0, 1, "gm_mean", file, line); }
GMDEF gm_tensor *gm_sum_per_example_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__reduce(T, x, 1, 0, "gm_sum_per_example", file, line);
}
GMDEF gm_tensor *gm_mean_per_example_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__reduce(T, x, 1, 1, "gm_mean_per_example", file, line);
}

// >>ops-shape
/* Same values, new shape: y shares x's values; dx += dy. */
static void gm__copy_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) x->grad[i] += y->grad[i];
}

GMDEF gm_tensor *gm_reshape_at(gm_tape *T, gm_tensor *x, gm_shape s, GM__SITE)
{
    char sx[64], ss[64];
    gm_tensor *y;
    if (gm__shape_size(s, "gm_reshape", file, line) != x->size)
        gm__fatal(file, line, "gm_reshape", "x is %s, which does not fit in %s",
                  gm__shape_str(x->shape, sx), gm__shape_str(s, ss));
    y = gm__node(T, s, "gm_reshape", gm__copy_bwd, x, NULL, NULL, file, line);
    T->used -= ((size_t)y->size * sizeof(float) + GM__ALIGN - 1) & ~(size_t)(GM__ALIGN - 1);
    y->val = x->val;                            /* a view: give back the values gm__node made */
    return y;
}

GMDEF gm_tensor *gm_flatten_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm_reshape_at(T, x, gm_shape2(x->shape.d[0], x->size / x->shape.d[0]), file, line);
}

/* y = x with no history: gradients stop here (the GAN's fake images in the D step). */
GMDEF gm_tensor *gm_detach_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    gm_tensor *y = gm__node(T, x->shape, "gm_detach", NULL, x, NULL, NULL, file, line);
    memcpy(y->val, x->val, (size_t)y->size * sizeof(float));
    return y;
}

/* Concatenate along dim 1: a (B,Ca,...) and b (B,Cb,...) -> (B,Ca+Cb,...). Per example,
 * y's row is a's row followed by b's row; the backward splits dy the same way. */
static void gm__concat_bwd(gm_tensor *y)
{
    gm_tensor *a = y->in[0], *b = y->in[1];
    int B = y->shape.d[0], na = a->size / B, nb = b->size / B, n, i;
    for (n = 0; n < B; n++) {
        const float *g = y->grad + (size_t)n * (na + nb);
        if (a->grad) for (i = 0; i < na; i++) a->grad[(size_t)n * na + i] += g[i];
        if (b->grad) for (i = 0; i < nb; i++) b->grad[(size_t)n * nb + i] += g[na + i];
    }
}

GMDEF gm_tensor *gm_concat_at(gm_tape *T, gm_tensor *a, gm_tensor *b, GM__SITE)
{
    char sa[64], sb[64];
    gm_shape s = a->shape;
    gm_tensor *y;
    int B = a->shape.d[0], na = a->size / B, nb = b->size / B, n, k, ok = a->shape.ndim == b->shape.ndim && a->shape.ndim >= 2;
    for (k = 0; ok && k < a->shape.ndim; k++) ok = k == 1 || a->shape.d[k] == b->shape.d[k];
    if (!ok) gm__fatal(file, line, "gm_concat", "shapes differ outside dim 1: a is %s, b is %s",
                       gm__shape_str(a->shape, sa), gm__shape_str(b->shape, sb));
    s.d[1] += b->shape.d[1];
    y = gm__node(T, s, "gm_concat", gm__concat_bwd, a, b, NULL, file, line);
    for (n = 0; n < B; n++) {
        memcpy(y->val + (size_t)n * (na + nb), a->val + (size_t)n * na, (size_t)na * sizeof(float));
        memcpy(y->val + (size_t)n * (na + nb) + na, b->val + (size_t)n * nb, (size_t)nb * sizeof(float));
    }
    return y;
}

static void gm__need4(const gm_tensor *x, const char *op, GM__SITE)
{
    char s[64];
    if (x->shape.ndim != 4) gm__fatal(file, line, op, "needs images (B,C,H,W), got %s", gm__shape_str(x->shape, s));
}

/* Nearest-neighbour upsampling: y[.., i, j] = x[.., i/2, j/2];  dx sums the 2x2 block of dy. */
static void gm__upsample2x_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int H = x->shape.d[2], W = x->shape.d[3], planes = x->size / (H * W), p, i, j;
    for (p = 0; p < planes; p++)
        for (i = 0; i < 2 * H; i++)
            for (j = 0; j < 2 * W; j++)
                x->grad[((size_t)p * H + i / 2) * W + j / 2] += y->grad[((size_t)p * 2 * H + i) * 2 * W + j];
}

GMDEF gm_tensor *gm_upsample2x_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    gm_tensor *y;
    int H, W, planes, p, i, j;
    gm__need4(x, "gm_upsample2x", file, line);
    H = x->shape.d[2]; W = x->shape.d[3]; planes = x->size / (H * W);
    y = gm__node(T, gm_shape4(x->shape.d[0], x->shape.d[1], 2 * H, 2 * W), "gm_upsample2x",
                 gm__upsample2x_bwd, x, NULL, NULL, file, line);
    for (p = 0; p < planes; p++)
        for (i = 0; i < 2 * H; i++)
            for (j = 0; j < 2 * W; j++)
                y->val[((size_t)p * 2 * H + i) * 2 * W + j] = x->val[((size_t)p * H + i / 2) * W + j / 2];
    return y;
}

/* 2x2 average pooling: y[.., i, j] = mean of x[.., 2i:2i+2, 2j:2j+2];  dx = dy / 4 on the block. */
static void gm__avgpool2x2_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int H = y->shape.d[2], W = y->shape.d[3], planes = y->size / (H * W), p, i, j;
    for (p = 0; p < planes; p++)
        for (i = 0; i < 2 * H; i++)
            for (j = 0; j < 2 * W; j++)
                x->grad[((size_t)p * 2 * H + i) * 2 * W + j] += 0.25f * y->grad[((size_t)p * H + i / 2) * W + j / 2];
}

GMDEF gm_tensor *gm_avgpool2x2_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    char s[64];
    gm_tensor *y;
    int H, W, planes, p, i, j;
    gm__need4(x, "gm_avgpool2x2", file, line);
    if (x->shape.d[2] % 2 || x->shape.d[3] % 2)
        gm__fatal(file, line, "gm_avgpool2x2", "H and W must be even, x is %s", gm__shape_str(x->shape, s));
    H = x->shape.d[2] / 2; W = x->shape.d[3] / 2; planes = x->size / (4 * H * W);
    y = gm__node(T, gm_shape4(x->shape.d[0], x->shape.d[1], H, W), "gm_avgpool2x2",
                 gm__avgpool2x2_bwd, x, NULL, NULL, file, line);
    memset(y->val, 0, (size_t)y->size * sizeof(float));
    for (p = 0; p < planes; p++)
        for (i = 0; i < 2 * H; i++)
            for (j = 0; j < 2 * W; j++)
                y->val[((size_t)p * H + i / 2) * W + j / 2] += 0.25f * x->val[((size_t)p * 2 * H + i) * 2 * W + j];
    return y;
}

// >>losses
static void gm__need_same(const gm_tensor *a, const gm_tensor *b, const char *op, GM__SITE)
{
    char sa[64], sb[64];
    if (!gm__same_shape(a->shape, b->shape))
        gm__fatal(file, line, op, "shapes differ: %s vs %s", gm__shape_str(a->shape, sa), gm__shape_str(b->shape, sb));
}

/* y_b = (1/D) sum_d (p_bd - t_bd)^2;  dp = 2 (p - t) dy / D,  dt = -dp */
static void gm__mse_bwd(gm_tensor *y)
{
    gm_tensor *p = y->in[0], *t = y->in[1];
    int D = p->size / y->size, b, d;
    for (b = 0; b < y->size; b++)
        for (d = 0; d < D; d++) {
            size_t i = (size_t)b * D + d;
            float g = 2.0f * (p->val[i] - t->val[i]) * y->grad[b] / (float)D;
            if (p->grad) p->grad[i] += g;
            if (t->grad) t->grad[i] -= g;
        }
}

GMDEF gm_tensor *gm_mse_at(gm_tape *T, gm_tensor *pred, gm_tensor *target, GM__SITE)
{
    gm_tensor *y;
    int D, b, d;
    gm__need_same(pred, target, "gm_mse", file, line);
    y = gm__node(T, gm_shape1(pred->shape.d[0]), "gm_mse", gm__mse_bwd, pred, target, NULL, file, line);
    D = pred->size / y->size;
    for (b = 0; b < y->size; b++) {
        double acc = 0.0;
        for (d = 0; d < D; d++) {
            double e = pred->val[(size_t)b * D + d] - target->val[(size_t)b * D + d];
            acc += e * e;
        }
        y->val[b] = (float)(acc / D);
    }
    return y;
}

/* y_b = sum_d softplus(l_bd) - x_bd l_bd   (= -log Bernoulli(x | sigmoid(l)), stable for any l)
 * dl = dy (sigmoid(l) - x),   dx = -dy l */
static void gm__bernoulli_nll_bwd(gm_tensor *y)
{
    gm_tensor *l = y->in[0], *x = y->in[1];
    int D = l->size / y->size, b, d;
    for (b = 0; b < y->size; b++)
        for (d = 0; d < D; d++) {
            size_t i = (size_t)b * D + d;
            if (l->grad) l->grad[i] += y->grad[b] * (gm__sigmoidf(l->val[i]) - x->val[i]);
            if (x->grad) x->grad[i] -= y->grad[b] * l->val[i];
        }
}

GMDEF gm_tensor *gm_bernoulli_nll_at(gm_tape *T, gm_tensor *logits, gm_tensor *x, GM__SITE)
{
    gm_tensor *y;
    int D, b, d;
    gm__need_same(logits, x, "gm_bernoulli_nll", file, line);
    y = gm__node(T, gm_shape1(x->shape.d[0]), "gm_bernoulli_nll", gm__bernoulli_nll_bwd, logits, x, NULL, file, line);
    D = x->size / y->size;
    for (b = 0; b < y->size; b++) {
        double acc = 0.0;
        for (d = 0; d < D; d++) {
            float l = logits->val[(size_t)b * D + d];
            acc += gm__softplusf(l) - x->val[(size_t)b * D + d] * l;
        }
        y->val[b] = (float)acc;
    }
    return y;
}

/* y_b = (1/2) sum_d log 2pi + v_bd + (x_bd - m_bd)^2 e^-v_bd,   v = log variance
 * dm = -dy (x - m) e^-v,   dv = dy (1 - (x - m)^2 e^-v) / 2,   dx = -dm */
static void gm__gaussian_nll_bwd(gm_tensor *y)
{
    gm_tensor *m = y->in[0], *v = y->in[1], *x = y->in[2];
    int D = m->size / y->size, b, d;
    for (b = 0; b < y->size; b++)
        for (d = 0; d < D; d++) {
            size_t i = (size_t)b * D + d;
            float e = x->val[i] - m->val[i], iv = expf(-v->val[i]);
            if (m->grad) m->grad[i] -= y->grad[b] * e * iv;
            if (x->grad) x->grad[i] += y->grad[b] * e * iv;
            if (v->grad) v->grad[i] += 0.5f * y->grad[b] * (1.0f - e * e * iv);
        }
}

GMDEF gm_tensor *gm_gaussian_nll_at(gm_tape *T, gm_tensor *mean, gm_tensor *logvar, gm_tensor *x, GM__SITE)
{
    gm_tensor *y;
    int D, b, d;
    gm__need_same(mean, x, "gm_gaussian_nll", file, line);
    gm__need_same(logvar, x, "gm_gaussian_nll", file, line);
    y = gm__node(T, gm_shape1(x->shape.d[0]), "gm_gaussian_nll", gm__gaussian_nll_bwd, mean, logvar, x, file, line);
    D = x->size / y->size;
    for (b = 0; b < y->size; b++) {
        double acc = 0.0;
        for (d = 0; d < D; d++) {
            size_t i = (size_t)b * D + d;
            double e = x->val[i] - mean->val[i];
            acc += 1.8378770664093453 + logvar->val[i] + e * e * exp(-(double)logvar->val[i]);  /* log 2pi */
        }
        y->val[b] = (float)(0.5 * acc);
    }
    return y;
}

// >>layers
GMDEF void gm_init_uniform(gm_tensor *t, float lo, float hi, gm_rng *rng)
{
    int i;
    for (i = 0; i < t->size; i++) t->val[i] = lo + (hi - lo) * gm_rng_uniform(rng);
}

GMDEF void gm_init_normal(gm_tensor *t, float mean, float std, gm_rng *rng)
{
    int i;
    for (i = 0; i < t->size; i++) t->val[i] = mean + std * gm_rng_normal(rng);
}

/* "<prefix>.<suffix>" into buf (names longer than the buffer are cut, never overflow). */
static const char *gm__pname(char *buf, size_t n, const char *prefix, const char *suffix)
{
    snprintf(buf, n, "%s.%s", prefix, suffix);
    return buf;
}

/* Weights and bias drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default. */
static void gm__init_fan_in(gm_tensor *w, gm_tensor *b, int fan_in, gm_rng *rng)
{
    float bound = 1.0f / sqrtf((float)fan_in);
    gm_init_uniform(w, -bound, bound, rng);
    gm_init_uniform(b, -bound, bound, rng);
}

GMDEF gm_dense gm_dense_new(gm_params *P, const char *name, int in, int out, gm_rng *rng)
{
    gm_dense l;
    char buf[128];
    l.in = in; l.out = out;
    l.w = gm_param_new(P, gm__pname(buf, sizeof buf, name, "w"), gm_shape2(out, in));
    l.b = gm_param_new(P, gm__pname(buf, sizeof buf, name, "b"), gm_shape1(out));
    gm__init_fan_in(l.w, l.b, in, rng);
    return l;
}

/* Y = X W^T + b,  X (B,in), W (out,in);  dX = dY W,  dW = dY^T X,  db = sum_B dY */
static void gm__dense_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0], *w = y->in[1], *b = y->in[2];
    int B = x->shape.d[0], in = x->shape.d[1], out = w->shape.d[0], n, o;
    if (x->grad) gm__gemm(y->tape, 0, 0, B, in, out, 1.0f, y->grad, out, w->val, in, 1.0f, x->grad, in);
    if (w->grad) gm__gemm(y->tape, 1, 0, out, in, B, 1.0f, y->grad, out, x->val, in, 1.0f, w->grad, in);
    if (b->grad) for (n = 0; n < B; n++) for (o = 0; o < out; o++) b->grad[o] += y->grad[(size_t)n * out + o];
}

GMDEF gm_tensor *gm_dense_at(gm_tape *T, const gm_dense *l, gm_tensor *x, GM__SITE)
{
    char s[64];
    gm_tensor *y;
    int B, n, o;
    if (x->shape.ndim != 2 || x->shape.d[1] != l->in)
        gm__fatal(file, line, "gm_dense", "expects x of shape (B,%d), got %s%s", l->in, gm__shape_str(x->shape, s),
                  x->shape.ndim > 2 ? "; flatten images first with gm_flatten" : "");
    B = x->shape.d[0];
    y = gm__node(T, gm_shape2(B, l->out), "gm_dense", gm__dense_bwd, x, l->w, l->b, file, line);
    for (n = 0; n < B; n++) for (o = 0; o < l->out; o++) y->val[(size_t)n * l->out + o] = l->b->val[o];
    gm__gemm(T, 0, 1, B, l->out, l->in, 1.0f, x->val, l->in, l->w->val, l->in, 1.0f, y->val, l->out);
    return y;
}

// >>ops-conv
/* im2col: unfold the K x K patches of one image x (C,H,W) into the columns of
 *     col[(c,u,v), (i,j)] = x[c, S i - P + u, S j - P + v]   (0 outside the image),
 * a (C K K, Ho Wo) matrix, so a convolution becomes one matrix product W col.
 * col2im is its adjoint: it adds every column entry back where it came from. */
static void gm__im2col(const float *x, int C, int H, int W, int K, int S, int P, int Ho, int Wo, float *col)
{
    int c, u, v, i, j;
    for (c = 0; c < C; c++)
        for (u = 0; u < K; u++)
            for (v = 0; v < K; v++) {
                float *row = col + ((size_t)(c * K + u) * K + v) * Ho * Wo;
                for (i = 0; i < Ho; i++) {
                    int r = S * i - P + u;
                    for (j = 0; j < Wo; j++) {
                        int q = S * j - P + v;
                        row[i * Wo + j] = (r >= 0 && r < H && q >= 0 && q < W) ? x[((size_t)c * H + r) * W + q] : 0.0f;
                    }
                }
            }
}

static void gm__col2im(const float *col, int C, int H, int W, int K, int S, int P, int Ho, int Wo, float *x)
{
    int c, u, v, i, j;
    for (c = 0; c < C; c++)
        for (u = 0; u < K; u++)
            for (v = 0; v < K; v++) {
                const float *row = col + ((size_t)(c * K + u) * K + v) * Ho * Wo;
                for (i = 0; i < Ho; i++) {
                    int r = S * i - P + u;
                    if (r < 0 || r >= H) continue;
                    for (j = 0; j < Wo; j++) {
                        int q = S * j - P + v;
                        if (q >= 0 && q < W) x[((size_t)c * H + r) * W + q] += row[i * Wo + j];
                    }
                }
            }
}

GMDEF gm_conv2d gm_conv2d_new(gm_params *P, const char *name, int cin, int cout, int k, int stride, int pad,
                              gm_rng *rng)
{
    gm_conv2d l;
    char buf[128];
    l.cin = cin; l.cout = cout; l.k = k; l.stride = stride; l.pad = pad;
    l.w = gm_param_new(P, gm__pname(buf, sizeof buf, name, "w"), gm_shape4(cout, cin, k, k));
    l.b = gm_param_new(P, gm__pname(buf, sizeof buf, name, "b"), gm_shape1(cout));
    gm__init_fan_in(l.w, l.b, cin * k * k, rng);
    return l;
}

/* Per example n: col = im2col(x_n);  y_n = W col + b  (W viewed as (Cout, Cin K K)).
 * Backward: dW += dy_n col^T;  dcol = W^T dy_n;  dx_n += col2im(dcol);  db += sum dy_n.
 * The columns are rebuilt in the backward instead of kept: memory over a little time. */
static void gm__conv2d_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0], *w = y->in[1], *b = y->in[2];
    int B = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    int K = y->iarg[0], S = y->iarg[1], P = y->iarg[2], Co = y->shape.d[1], Ho = y->shape.d[2], Wo = y->shape.d[3];
    int CKK = C * K * K, HWo = Ho * Wo, n, o, i;
    size_t mark = y->tape->used;
    float *col = gm__floats(y->tape, CKK * HWo, "gm_conv2d", GM__HERE);
    for (n = 0; n < B; n++) {
        const float *dy = y->grad + (size_t)n * Co * HWo;
        if (b->grad) for (o = 0; o < Co; o++) for (i = 0; i < HWo; i++) b->grad[o] += dy[(size_t)o * HWo + i];
        if (w->grad) {
            gm__im2col(x->val + (size_t)n * C * H * W, C, H, W, K, S, P, Ho, Wo, col);
            gm__gemm(y->tape, 0, 1, Co, CKK, HWo, 1.0f, dy, HWo, col, HWo, 1.0f, w->grad, CKK);
        }
        if (x->grad) {
            gm__gemm(y->tape, 1, 0, CKK, HWo, Co, 1.0f, w->val, CKK, dy, HWo, 0.0f, col, HWo);
            gm__col2im(col, C, H, W, K, S, P, Ho, Wo, x->grad + (size_t)n * C * H * W);
        }
    }
    y->tape->used = mark;
}

static void gm__conv_geometry(const gm_tensor *x, int cin, int K, int S, int P, const char *op, GM__SITE)
{
    char s[64];
    gm__need4(x, op, file, line);
    if (x->shape.d[1] != cin)
        gm__fatal(file, line, op, "the layer takes %d input channels, x is %s", cin, gm__shape_str(x->shape, s));
    if (K < 1 || S < 1 || P < 0)
        gm__fatal(file, line, op, "needs K >= 1, S >= 1, P >= 0, got K=%d S=%d P=%d", K, S, P);
}

GMDEF gm_tensor *gm_conv2d_at(gm_tape *T, const gm_conv2d *l, gm_tensor *x, GM__SITE)
{
    char s[64];
    gm_tensor *y;
    int B, C, H, W, K = l->k, S = l->stride, P = l->pad, Co = l->cout, Ho, Wo, CKK, HWo, n, o, i;
    size_t mark;
    float *col;
    gm__conv_geometry(x, l->cin, K, S, P, "gm_conv2d", file, line);
    B = x->shape.d[0]; C = x->shape.d[1]; H = x->shape.d[2]; W = x->shape.d[3];
    if (H + 2 * P < K || W + 2 * P < K)
        gm__fatal(file, line, "gm_conv2d", "a %dx%d kernel does not fit x %s with padding %d", K, K,
                  gm__shape_str(x->shape, s), P);
    Ho = (H + 2 * P - K) / S + 1; Wo = (W + 2 * P - K) / S + 1;
    CKK = C * K * K; HWo = Ho * Wo;
    y = gm__node(T, gm_shape4(B, Co, Ho, Wo), "gm_conv2d", gm__conv2d_bwd, x, l->w, l->b, file, line);
    y->iarg[0] = K; y->iarg[1] = S; y->iarg[2] = P;
    mark = T->used;
    col = gm__floats(T, CKK * HWo, "gm_conv2d", file, line);
    for (n = 0; n < B; n++) {
        float *yn = y->val + (size_t)n * Co * HWo;
        for (o = 0; o < Co; o++) for (i = 0; i < HWo; i++) yn[(size_t)o * HWo + i] = l->b->val[o];
        gm__im2col(x->val + (size_t)n * C * H * W, C, H, W, K, S, P, Ho, Wo, col);
        gm__gemm(T, 0, 0, Co, HWo, CKK, 1.0f, l->w->val, CKK, col, HWo, 1.0f, yn, HWo);
    }
    T->used = mark;
    return y;
}

GMDEF gm_conv_transpose2d gm_conv_transpose2d_new(gm_params *P, const char *name, int cin, int cout, int k,
                                                  int stride, int pad, int out_pad, gm_rng *rng)
{
    gm_conv_transpose2d l;
    char buf[128];
    l.cin = cin; l.cout = cout; l.k = k; l.stride = stride; l.pad = pad; l.out_pad = out_pad;
    l.w = gm_param_new(P, gm__pname(buf, sizeof buf, name, "w"), gm_shape4(cin, cout, k, k));
    l.b = gm_param_new(P, gm__pname(buf, sizeof buf, name, "b"), gm_shape1(cout));
    gm__init_fan_in(l.w, l.b, cout * k * k, rng);   /* PyTorch takes fan_in from w's dim 1 */
    return l;
}

/* The transposed convolution runs conv2d's data flow backwards. Per example n, with W
 * viewed as (Cin, Cout K K):  col = W^T x_n  (Cout K K, H W);  y_n = col2im(col) + b,
 * where col2im uses the geometry of a conv from y (Ho,Wo) down to x (H,W).
 * Backward: dcol = im2col(dy_n);  dx_n += W dcol;  dW += x_n dcol^T;  db += sum dy_n. */
static void gm__conv_transpose2d_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0], *w = y->in[1], *b = y->in[2];
    int B = x->shape.d[0], Ci = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    int K = y->iarg[0], S = y->iarg[1], P = y->iarg[2], Co = y->shape.d[1], Ho = y->shape.d[2], Wo = y->shape.d[3];
    int CKK = Co * K * K, HW = H * W, n, o, i;
    size_t mark = y->tape->used;
    float *col = gm__floats(y->tape, CKK * HW, "gm_conv_transpose2d", GM__HERE);
    for (n = 0; n < B; n++) {
        const float *dy = y->grad + (size_t)n * Co * Ho * Wo;
        if (b->grad) for (o = 0; o < Co; o++) for (i = 0; i < Ho * Wo; i++) b->grad[o] += dy[(size_t)o * Ho * Wo + i];
        gm__im2col(dy, Co, Ho, Wo, K, S, P, H, W, col);
        if (x->grad) gm__gemm(y->tape, 0, 0, Ci, HW, CKK, 1.0f, w->val, CKK, col, HW, 1.0f,
                              x->grad + (size_t)n * Ci * HW, HW);
        if (w->grad) gm__gemm(y->tape, 0, 1, Ci, CKK, HW, 1.0f, x->val + (size_t)n * Ci * HW, HW, col, HW,
                              1.0f, w->grad, CKK);
    }
    y->tape->used = mark;
}

GMDEF gm_tensor *gm_conv_transpose2d_at(gm_tape *T, const gm_conv_transpose2d *l, gm_tensor *x, GM__SITE)
{
    gm_tensor *y;
    int B, Ci, H, W, K = l->k, S = l->stride, P = l->pad, OP = l->out_pad, Co = l->cout, Ho, Wo, CKK, n, o, i;
    size_t mark;
    float *col;
    gm__conv_geometry(x, l->cin, K, S, P, "gm_conv_transpose2d", file, line);
    if (OP < 0 || OP >= S)
        gm__fatal(file, line, "gm_conv_transpose2d", "output padding must be in [0, stride), got %d", OP);
    B = x->shape.d[0]; Ci = x->shape.d[1]; H = x->shape.d[2]; W = x->shape.d[3];
    Ho = (H - 1) * S - 2 * P + K + OP; Wo = (W - 1) * S - 2 * P + K + OP;
    if (Ho < 1 || Wo < 1)
        gm__fatal(file, line, "gm_conv_transpose2d", "padding %d leaves no output for %dx%d inputs", P, H, W);
    CKK = Co * K * K;
    y = gm__node(T, gm_shape4(B, Co, Ho, Wo), "gm_conv_transpose2d", gm__conv_transpose2d_bwd, x, l->w, l->b,
                 file, line);
    y->iarg[0] = K; y->iarg[1] = S; y->iarg[2] = P;
    mark = T->used;
    col = gm__floats(T, CKK * H * W, "gm_conv_transpose2d", file, line);
    for (n = 0; n < B; n++) {
        float *yn = y->val + (size_t)n * Co * Ho * Wo;
        gm__gemm(T, 1, 0, CKK, H * W, Ci, 1.0f, l->w->val, CKK, x->val + (size_t)n * Ci * H * W, H * W, 0.0f,
                 col, H * W);
        for (o = 0; o < Co; o++) for (i = 0; i < Ho * Wo; i++) yn[(size_t)o * Ho * Wo + i] = l->b->val[o];
        gm__col2im(col, Co, Ho, Wo, K, S, P, H, W, yn);
    }
    T->used = mark;
    return y;
}

// >>ops-batchnorm
GMDEF gm_batchnorm gm_batchnorm_new(gm_params *P, const char *name, int c)
{
    gm_batchnorm l;
    char buf[128];
    int i;
    l.c = c; l.momentum = 0.1f; l.eps = 1e-5f;
    l.gamma = gm_param_new(P, gm__pname(buf, sizeof buf, name, "gamma"), gm_shape1(c));
    l.beta = gm_param_new(P, gm__pname(buf, sizeof buf, name, "beta"), gm_shape1(c));
    l.mean = gm_buffer_new(P, gm__pname(buf, sizeof buf, name, "running_mean"), gm_shape1(c));
    l.var = gm_buffer_new(P, gm__pname(buf, sizeof buf, name, "running_var"), gm_shape1(c));
    for (i = 0; i < c; i++) { l.gamma->val[i] = 1.0f; l.var->val[i] = 1.0f; }
    return l;
}

/* Per channel c, over its N = B H W values:
 *   xhat = (x - mu) s,  s = 1/sqrt(var + eps),  y = gamma xhat + beta.
 * Training (mu, var from the batch; var biased):
 *   dgamma = sum dy xhat,  dbeta = sum dy,
 *   dx = gamma s (dy - mean(dy) - xhat mean(dy xhat))     (mu and var depend on x too)
 * Eval (running mu, var are constants):  dx = gamma s dy.
 * saved holds xhat (x's size) then s (C values). iarg[0] is the mode. */
static void gm__batchnorm_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0], *g = y->in[1], *be = y->in[2];
    int B = x->shape.d[0], C = x->shape.d[1], I = x->size / (B * C), N = B * I, n, c, i;
    const float *xhat = y->saved, *s = y->saved + x->size;
    for (c = 0; c < C; c++) {
        double sdy = 0.0, sdyx = 0.0;
        for (n = 0; n < B; n++)
            for (i = 0; i < I; i++) {
                size_t k = ((size_t)n * C + c) * I + i;
                sdy += y->grad[k];
                sdyx += y->grad[k] * xhat[k];
            }
        if (g->grad) g->grad[c] += (float)sdyx;
        if (be->grad) be->grad[c] += (float)sdy;
        if (!x->grad) continue;
        for (n = 0; n < B; n++)
            for (i = 0; i < I; i++) {
                size_t k = ((size_t)n * C + c) * I + i;
                float d = y->iarg[0] == GM_TRAIN ? y->grad[k] - (float)(sdy / N) - xhat[k] * (float)(sdyx / N)
                                                 : y->grad[k];
                x->grad[k] += g->val[c] * s[c] * d;
            }
    }
}

GMDEF gm_tensor *gm_batchnorm_at(gm_tape *T, const gm_batchnorm *l, gm_tensor *x, int mode, GM__SITE)
{
    char sx[64];
    gm_tensor *y;
    int B, C, I, N, n, c, i;
    float *xhat, *s;
    if (x->shape.ndim < 2 || x->shape.d[1] != l->c || (x->shape.ndim != 2 && x->shape.ndim != 4))
        gm__fatal(file, line, "gm_batchnorm", "the layer has %d channels; x must be (B,%d) or (B,%d,H,W), got %s",
                  l->c, l->c, l->c, gm__shape_str(x->shape, sx));
    B = x->shape.d[0]; C = l->c; I = x->size / (B * C); N = B * I;
    if (mode == GM_TRAIN && N < 2)
        gm__fatal(file, line, "gm_batchnorm", "training needs more than one value per channel, x is %s",
                  gm__shape_str(x->shape, sx));
    y = gm__node(T, x->shape, "gm_batchnorm", gm__batchnorm_bwd, x, l->gamma, l->beta, file, line);
    y->iarg[0] = mode;
    y->saved = gm__floats(T, x->size + C, "gm_batchnorm", file, line);
    xhat = y->saved; s = y->saved + x->size;
    for (c = 0; c < C; c++) {
        double mu, var;
        if (mode == GM_TRAIN) {
            double sum = 0.0, sq = 0.0;
            for (n = 0; n < B; n++) for (i = 0; i < I; i++) sum += x->val[((size_t)n * C + c) * I + i];
            mu = sum / N;
            for (n = 0; n < B; n++)
                for (i = 0; i < I; i++) {
                    double e = x->val[((size_t)n * C + c) * I + i] - mu;
                    sq += e * e;
                }
            var = sq / N;
            /* running statistics, as PyTorch keeps them (unbiased variance) */
            l->mean->val[c] = (1.0f - l->momentum) * l->mean->val[c] + l->momentum * (float)mu;
            l->var->val[c] = (1.0f - l->momentum) * l->var->val[c] + l->momentum * (float)(sq / (N - 1));
        } else {
            mu = l->mean->val[c];
            var = l->var->val[c];
        }
        s[c] = (float)(1.0 / sqrt(var + l->eps));
        for (n = 0; n < B; n++)
            for (i = 0; i < I; i++) {
                size_t k = ((size_t)n * C + c) * I + i;
                xhat[k] = (float)(x->val[k] - mu) * s[c];
                y->val[k] = l->gamma->val[c] * xhat[k] + l->beta->val[c];
            }
    }
    return y;
}

// >>optim
static gm_optim *gm__optim(gm_params *P, float lr, int adam, float b1, float b2)
{
    gm_optim *o = (gm_optim *)gm__calloc(1, sizeof *o);
    if (!o) return NULL;
    o->P = P; o->lr = lr; o->adam = adam; o->beta1 = b1; o->beta2 = b2; o->eps = 1e-8f;
    o->n = gm_params_count(P);
    o->m = (float *)gm__calloc((size_t)o->n + 1, sizeof(float));
    o->v = adam ? (float *)gm__calloc((size_t)o->n + 1, sizeof(float)) : NULL;
    if (!o->m || (adam && !o->v)) { gm_optim_free(o); return NULL; }
    return o;
}

GMDEF gm_optim *gm_sgd_new(gm_params *P, float lr, float momentum) { return gm__optim(P, lr, 0, momentum, 0.0f); }
GMDEF gm_optim *gm_adam_new(gm_params *P, float lr, float beta1, float beta2) { return gm__optim(P, lr, 1, beta1, beta2); }

GMDEF void gm_optim_free(gm_optim *o)
{
    if (!o) return;
    GM_FREE(o->m);
    GM_FREE(o->v);
    GM_FREE(o);
}

GMDEF void gm_optim_step(gm_optim *o)
{
    long at = 0;
    int p, i;
    float c1, c2;
    if (gm_params_count(o->P) != o->n)
        gm__fatal(__FILE__, __LINE__, "gm_optim_step", "the model has %ld trainable numbers but the optimizer "
                  "was made for %ld; create the optimizer after all layers", gm_params_count(o->P), o->n);
    o->t++;
    c1 = 1.0f - powf(o->beta1, (float)o->t);            /* Adam's bias corrections */
    c2 = 1.0f - powf(o->beta2, (float)o->t);
    for (p = 0; p < o->P->n; p++) {
        gm_tensor *t = o->P->t[p];
        float *m, *v;
        if (!(t->flags & GM_PARAM)) continue;
        m = o->m + at;
        v = o->adam ? o->v + at : NULL;
        at += t->size;
        for (i = 0; i < t->size; i++) {
            float g = t->grad[i];
            if (o->adam) {
                m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g;
                v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g * g;
                t->val[i] -= o->lr * (m[i] / c1) / (sqrtf(v[i] / c2) + o->eps);
            } else {
                m[i] = o->beta1 * m[i] + g;
                t->val[i] -= o->lr * m[i];
            }
        }
    }
}

GMDEF float gm_clip_grad_norm(gm_params *P, float max_norm)
{
    double sq = 0.0;
    float norm, k;
    int p, i;
    for (p = 0; p < P->n; p++)
        if (P->t[p]->flags & GM_PARAM)
            for (i = 0; i < P->t[p]->size; i++) sq += (double)P->t[p]->grad[i] * P->t[p]->grad[i];
    norm = (float)sqrt(sq);
    if (norm <= max_norm) return norm;
    k = max_norm / (norm + 1e-6f);
    for (p = 0; p < P->n; p++)
        if (P->t[p]->flags & GM_PARAM)
            for (i = 0; i < P->t[p]->size; i++) P->t[p]->grad[i] *= k;
    return norm;
}

// >>gradcheck
/* L = sum_i y_i r_i in double: the scalar whose gradient the check compares. */
static double gm__weighted(gm_build_fn build, void *ctx, gm_tape *T, const float *r)
{
    gm_tensor *y;
    double L = 0.0;
    int i;
    gm_tape_reset(T);
    y = build(T, ctx);
    for (i = 0; i < y->size; i++) L += (double)y->val[i] * r[i];
    return L;
}

GMDEF double gm_grad_check(gm_build_fn build, void *ctx, gm_tensor **inputs, int n_inputs, float h, uint64_t seed)
{
    gm_tape *T = gm_tape_new((size_t)64 << 20);
    gm_rng rng = gm_rng_new(seed);
    gm_tensor *y;
    float *r, **analytic;
    double worst = 0.0;
    int k, i, n;
    if (!T) return INFINITY;
    for (k = 0; k < n_inputs; k++)
        if (!(inputs[k]->flags & GM_PARAM))
            gm__fatal(__FILE__, __LINE__, "gm_grad_check", "input %d is not a parameter (make it with gm_param_new)", k);
    gm_tape_reset(T);
    y = build(T, ctx);
    n = y->size;
    r = (float *)gm__calloc((size_t)n, sizeof(float));
    analytic = (float **)gm__calloc((size_t)n_inputs, sizeof(float *));
    for (i = 0; i < n; i++) r[i] = gm_rng_uniform(&rng) * 2.0f - 1.0f;
    gm__backprop(T, y, r, GM__HERE);
    for (k = 0; k < n_inputs; k++) {
        analytic[k] = (float *)gm__calloc((size_t)inputs[k]->size, sizeof(float));
        memcpy(analytic[k], inputs[k]->grad, (size_t)inputs[k]->size * sizeof(float));
    }
    for (k = 0; k < n_inputs; k++) {
        gm_tensor *x = inputs[k];
        double *num = (double *)gm__calloc((size_t)x->size, sizeof(double)), big = 0.0;
        for (i = 0; i < x->size; i++) {
            float keep = x->val[i];
            double lp, lm;
            x->val[i] = keep + h; lp = gm__weighted(build, ctx, T, r);
            x->val[i] = keep - h; lm = gm__weighted(build, ctx, T, r);
            x->val[i] = keep;
            num[i] = (lp - lm) / ((double)(keep + h) - (double)(keep - h));   /* the step as floats hold it */
            if (fabs(num[i]) > big) big = fabs(num[i]);
        }
        for (i = 0; i < x->size; i++) {
            double a = analytic[k][i], d = fabs(a - num[i]);
            double den = fmax(fmax(fabs(a), fabs(num[i])), 0.01 * big);
            if (den > 0.0 && d / den > worst) worst = d / den;
            if (den == 0.0 && d > 0.0) worst = INFINITY;
        }
        GM_FREE(num);
        GM_FREE(analytic[k]);
    }
    GM_FREE(analytic);
    GM_FREE(r);
    gm_tape_free(T);
    return worst;
}
