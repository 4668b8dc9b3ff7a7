/* 02_transposed_conv.c - convolution as a matrix A, transposed convolution as A^T.
 *
 * What it shows
 *   1. A 6x6 -> 4x4 convolution (one channel, K=3, S=1, P=0) on small integers, and the
 *      4x4 -> 6x6 transposed convolution with the same kernel: each input number stamps a
 *      scaled copy of the kernel into the output, and overlapping stamps add. The same
 *      result comes from an ordinary convolution of the 4x4 zero-padded by K-1 = 2, with
 *      the kernel turned by 180 degrees.
 *   2. The convolution written out as a 16x36 matrix A (column j = the conv of the j-th
 *      unit image), and the transposed convolution equal to multiplication by A^T.
 *   3. The adjoint identity <A x, y> = <x, A^T y> for random x, y: in the case above and in
 *      a strided one (B=2, 3 -> 4 channels, K=3, S=2, P=1) where output padding is needed
 *      to get back to the input size; and the gradient of conv2d equal to conv_transpose2d.
 *   4. Why K=3, S=2 transposed convs make checkerboards: stamp overlap counts, K=3 vs K=4.
 * Lecture: lectures/02-transposed-convolution.md
 * Run:     make build/transposed_conv && ./build/transposed_conv        (about 0.03 s)
 * Output (out/transposed_conv/):
 *   conv_matrix.png  A as a 16x36 heatmap: a convolution is a sparse, banded matrix
 *   stamps.png       the 16 rows of A, each shown as a 6x6 image (red positive, blue
 *                    negative, white 0): row r of A = what output pixel r reads = what
 *                    the transposed conv paints for input pixel r
 *   A.npy            A as (16, 36)
 */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include "demo.h"
#include <math.h>

static const char *usage =
    "  --stride N   stride S of the multi-channel check (default 2)\n"
    "  --pad N      padding P of the multi-channel check (default 1)\n"
    "  --size N     height = width H of its input images (default 8)\n";

/* Matrices side by side, each under its title; every number in `width` columns, zeros as
 * '.' when dots is set. */
typedef struct mat { const char *title; const float *v; int rows, cols; } mat;

static void print_mats(const mat *m, int n, int width, int dots)
{
    char line[512];
    int i, j, k, len, rows = 0;
    for (k = 0; k < n; k++) rows = m[k].rows > rows ? m[k].rows : rows;
    for (i = -1; i < rows; i++) {                   /* row -1: the titles */
        len = snprintf(line, sizeof line, "  ");
        for (k = 0; k < n; k++) {
            int w = m[k].cols * width, t = (int)strlen(m[k].title), end;
            end = len + (t > w ? t : w) + 4;
            if (i < 0) len += snprintf(line + len, sizeof line - len, "%s", m[k].title);
            else if (i < m[k].rows)
                for (j = 0; j < m[k].cols; j++) {
                    float a = m[k].v[i * m[k].cols + j];
                    if (dots && a == 0.0f) len += snprintf(line + len, sizeof line - len, "%*s", width, ".");
                    else len += snprintf(line + len, sizeof line - len, "%*g", width, a);
                }
            while (len < end && len < (int)sizeof line - 1) line[len++] = ' ';
            line[len] = 0;
        }
        while (len > 0 && line[len - 1] == ' ') line[--len] = 0;
        printf("%s\n", line);
    }
}

static double dot(const float *a, const float *b, int n)
{
    double s = 0.0;
    int i;
    for (i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0.0;
    int i;
    for (i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static double rel_err(double a, double b) { return fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-30); }

int main(int argc, char **argv)
{
    /* ---- configuration --------------------------------------------------------------- */
    demo d = demo_start(argc, argv, "transposed_conv", usage);
    int S = demo_int(&d, "--stride", 2, 1, 8), Pd = demo_int(&d, "--pad", 1, 0, 8), H = demo_int(&d, "--size", 8, 1, 64);
    const int K = 3, B = 2, CIN = 3, COUT = 4;
    gm_rng rng = gm_rng_new(d.seed);
    gm_tape *T = gm_tape_new(16 << 20);
    gm_params P = {0};
    double worst = 0.0, e;
    int i, j, r;
    if (H + 2 * Pd < K) { fprintf(stderr, "transposed_conv: need --size + 2 --pad >= 3\n"); return 2; }
    printf("data: built-in (small integer matrices and random numbers; no data set needed)\n");
    demo_check(&d, T != NULL, "gm_tape_new");

    /* ---- data: a 6x6 input x, a 3x3 kernel w, and a 4x4 input u for the transposed conv */
    static const float x6[36] = { 1, 0, 2, 1, 0, 1,
                                  0, 1, 3, 0, 1, 2,
                                  2, 1, 0, 1, 3, 0,
                                  1, 0, 1, 2, 0, 1,
                                  0, 2, 1, 0, 1, 3,
                                  1, 1, 0, 3, 2, 0 };
    static const float w3[9] = { 1, 0, -1,      /* no symmetry, so the 180-degree turn shows */
                                 2, 1,  0,
                                 0, 0,  1 };
    static const float u4[16] = { 1, 0, 0, 0,
                                  0, 0, 0, 0,
                                  0, 0, 2, 0,
                                  0, 0, 0, 0 };

    /* ---- model: one conv and one transposed conv sharing the kernel, no bias -------------
     * conv2d's w is (Cout,Cin,K,K) and conv_transpose2d's is (Cin,Cout,K,K); with one
     * channel each both are (1,1,3,3). */
    gm_conv2d conv = gm_conv2d_new(&P, "conv", 1, 1, K, 1, 0, &rng);
    gm_conv_transpose2d convt = gm_conv_transpose2d_new(&P, "convt", 1, 1, K, 1, 0, 0, &rng);
    gm_conv2d flipconv = gm_conv2d_new(&P, "flip", 1, 1, K, 1, K - 1, &rng);  /* P = K-1 = 2 */
    memcpy(conv.w->val, w3, sizeof w3);
    memcpy(convt.w->val, w3, sizeof w3);
    for (i = 0; i < 9; i++) flipconv.w->val[i] = w3[8 - i];          /* w turned by 180 deg */
    conv.b->val[0] = convt.b->val[0] = flipconv.b->val[0] = 0.0f;

    /* ---- 1. the worked example ---------------------------------------------------------- */
    gm_tensor *x = gm_from(T, gm_shape4(1, 1, 6, 6), x6);
    gm_tensor *y = gm_conv2d(T, &conv, x);                           /* (1,1,4,4) */
    gm_tensor *u = gm_from(T, gm_shape4(1, 1, 4, 4), u4);
    gm_tensor *v = gm_conv_transpose2d(T, &convt, u);                /* (1,1,6,6) */
    gm_tensor *v2 = gm_conv2d(T, &flipconv, u);                      /* (1,1,6,6) */
    printf("\n1. convolution, K=3 S=1 P=0: (6-3)/1+1 = 4; y[i][j] = sum_{a,b} w[a][b] x[i+a][j+b]\n");
    {
        mat m[3] = {{"kernel w", w3, 3, 3}, {"input x (6x6)", x6, 6, 6}, {"y = conv(x) (4x4)", y->val, 4, 4}};
        int a, b;
        print_mats(m, 3, 3, 0);
        printf("   y[0][0] =");                              /* the sum, w's zeros left out */
        for (a = 0, i = 0; a < 3; a++)
            for (b = 0; b < 3; b++)
                if (w3[a * 3 + b] != 0.0f)
                    printf(w3[a * 3 + b] < 0 ? "%s(%g)*%g" : "%s%g*%g", i++ ? " + " : " ", w3[a * 3 + b], x6[a * 6 + b]);
        printf(" = %g\n", y->val[0]);
    }
    printf("\n   transposed convolution, same w: (4-1)*1-0+3 = 6\n");
    {
        mat m[2] = {{"u (4x4)", u4, 4, 4}, {"v = conv_transpose(u) (6x6)", v->val, 6, 6}};
        print_mats(m, 2, 3, 0);
        printf("   1*w stamped at (0,0) plus 2*w at (2,2); where they overlap,\n"
               "   v[2][2] = 1*w[2][2] + 2*w[0][0] = %g + %g = %g\n", w3[8], 2 * w3[0], v->val[2 * 6 + 2]);
    }
    printf("   the same as conv(u zero-padded by 2 to 8x8, w turned 180 deg): max |difference| = %g\n",
           max_abs_diff(v->val, v2->val, 36));

    /* ---- 2. the convolution as a 16x36 matrix ---------------------------------------------
     * Column j of A is the conv of the unit image e_j (a single 1 at pixel j): run all 36
     * unit images as one batch. Then A x = conv(x) for every x, by linearity. */
    gm_tensor *E = gm_zeros(T, gm_shape4(36, 1, 6, 6));
    for (j = 0; j < 36; j++) E->val[j * 36 + j] = 1.0f;
    gm_tensor *AE = gm_conv2d(T, &conv, E);                           /* (36,1,4,4) */
    float A[16 * 36];
    for (r = 0; r < 16; r++) for (j = 0; j < 36; j++) A[r * 36 + j] = AE->val[j * 16 + r];
    printf("\n2. the convolution as a matrix A (16x36): y = A x with x, y flattened row by row\n");
    {
        mat m = {"A (each row holds the 9 kernel numbers, spread over 3 rows of the image):", A, 16, 36};
        print_mats(&m, 1, 3, 1);
    }
    {
        gm_tensor *At = gm_from(T, gm_shape2(16, 36), A);
        gm_tensor *Ax = gm_matmul(T, At, gm_reshape(T, x, gm_shape2(36, 1)));     /* A x     */
        gm_tensor *uA = gm_matmul(T, gm_reshape(T, u, gm_shape2(1, 16)), At);     /* u^T A = (A^T u)^T */
        double e1 = max_abs_diff(Ax->val, y->val, 16), e2 = max_abs_diff(uA->val, v->val, 36);
        printf("   max |A x - conv(x)|             = %g\n", e1);
        printf("   max |A^T u - conv_transpose(u)| = %g\n", e2);
    }

    /* ---- 3a. the adjoint identity, one channel, random x and y --------------------------- */
    printf("\n3. adjoint check <A x, y> = <x, A^T y> for random x, y\n");
    {
        gm_tensor *xr = gm_randn(T, gm_shape4(1, 1, 6, 6), &rng);
        gm_tensor *yr = gm_randn(T, gm_shape4(1, 1, 4, 4), &rng);
        double l = dot(gm_conv2d(T, &conv, xr)->val, yr->val, 16);
        double rt = dot(xr->val, gm_conv_transpose2d(T, &convt, yr)->val, 36);
        e = rel_err(l, rt);
        worst = fmax(worst, e);
        printf("   6x6 -> 4x4, K=3 S=1 P=0:   <Ax,y> = %.6f   <x,A^T y> = %.6f   relative error %.1e\n", l, rt, e);
    }

    /* ---- 3b. strided, several channels: output padding ---------------------------------
     * Ho = (H+2P-K)/S+1 rounds down, so S input sizes give the same Ho; the transposed conv
     * gives (Ho-1)S-2P+K and output padding OP (0 <= OP < S) adds the rows that were lost. */
    int Ho = (H + 2 * Pd - K) / S + 1, base = (Ho - 1) * S - 2 * Pd + K, OP = H - base;
    gm_conv2d c2 = gm_conv2d_new(&P, "c2", CIN, COUT, K, S, Pd, &rng);
    gm_conv_transpose2d t2 = gm_conv_transpose2d_new(&P, "t2", COUT, CIN, K, S, Pd, OP, &rng);
    gm_tensor *xs = gm_param_new(&P, "x", gm_shape4(B, CIN, H, H));  /* a parameter: it gets a grad */
    memcpy(t2.w->val, c2.w->val, (size_t)c2.w->size * sizeof(float));  /* the identical array */
    memset(c2.b->val, 0, COUT * sizeof(float));
    memset(t2.b->val, 0, CIN * sizeof(float));
    gm_init_normal(xs, 0.0f, 1.0f, &rng);
    printf("   (%d,%d,%d,%d) -> (%d,%d,%d,%d), K=%d S=%d P=%d: every input size from %d to %d gives %dx%d;\n",
           B, CIN, H, H, B, COUT, Ho, Ho, K, S, Pd, base, base + S - 1, Ho, Ho);
    printf("   the transposed conv gives (%d-1)*%d-2*%d+%d = %d, so output padding OP = %d restores %dx%d\n",
           Ho, S, Pd, K, base, OP, H, H);
    {
        gm_tensor *yc = gm_conv2d(T, &c2, xs);
        gm_tensor *ys = gm_randn(T, yc->shape, &rng);
        gm_tensor *back = gm_conv_transpose2d(T, &t2, ys);                  /* A^T y, (B,CIN,H,H) */
        double l = dot(yc->val, ys->val, yc->size), rt = dot(xs->val, back->val, xs->size), eg;
        e = rel_err(l, rt);
        worst = fmax(worst, e);
        printf("   <Ax,y> = %.6f   <x,A^T y> = %.6f   relative error %.1e\n", l, rt, e);
        /* the backward of conv2d: for L = <conv(x), y>, dL/dx = A^T y = conv_transpose(y) */
        gm_backward(T, gm_sum(T, gm_mul(T, yc, ys)));
        eg = max_abs_diff(xs->grad, back->val, xs->size);
        printf("   gradient of L = <conv2d(x), y> w.r.t. x vs conv_transpose2d(y): max |difference| = %.1e\n", eg);
    }

    /* ---- 4. checkerboard: how many stamps cover each output pixel -------------------------
     * An all-ones 4x4 through an all-ones kernel counts the overlapping stamps. With K=3,
     * S=2 the count alternates 1, 2, 1, 2, ...: the uneven overlap behind checkerboard
     * artifacts. With K=4, S=2 (K divisible by S) the inside is even. */
    printf("\n4. stamps per output pixel (all-ones input and kernel), S=2 P=1\n");
    {
        mat m[2] = {{"K=3, OP=1: 4x4 -> 8x8", NULL, 8, 8}, {"K=4, OP=0: 4x4 -> 8x8", NULL, 8, 8}};
        float lo[2] = {1e9f, 1e9f}, hi[2] = {0, 0};
        for (r = 3; r <= 4; r++) {
            gm_conv_transpose2d ct = gm_conv_transpose2d_new(&P, r == 3 ? "ones3" : "ones4", 1, 1, r, 2, 1, 4 - r, &rng);
            gm_tensor *ones = gm_zeros(T, gm_shape4(1, 1, 4, 4));
            for (i = 0; i < ct.w->size; i++) ct.w->val[i] = 1.0f;
            for (i = 0; i < 16; i++) ones->val[i] = 1.0f;
            ct.b->val[0] = 0.0f;
            m[r - 3].v = gm_conv_transpose2d(T, &ct, ones)->val;            /* (1,1,8,8) */
            for (i = 1; i < 7; i++)                                          /* inside the border */
                for (j = 1; j < 7; j++) {
                    lo[r - 3] = fminf(lo[r - 3], m[r - 3].v[i * 8 + j]);
                    hi[r - 3] = fmaxf(hi[r - 3], m[r - 3].v[i * 8 + j]);
                }
        }
        print_mats(m, 2, 3, 0);
        printf("   stamps per pixel inside the border: K=3 from %g to %g, K=4 from %g to %g\n", lo[0], hi[0], lo[1], hi[1]);
    }

    /* ---- output ---------------------------------------------------------------------------- */
    {
        gm_plot *pl = gm_plot_new("A: the 6x6 -> 4x4 convolution as a 16 x 36 matrix",
                                  "column j = input pixel (6 x 6, row by row)",
                                  "row r = output pixel (4 x 4, row by row)");
        int shape[2] = {16, 36};
        gm_tensor *rgb = gm_zeros(T, gm_shape4(16, 3, 6, 6));
        float amax = 0.0f;
        gm_plot_heatmap(pl, A, 16, 36, 0.0f, 36.0f, 0.0f, 16.0f);
        gm_plot_ydown(pl, 1);                                     /* row 0 at the top, y = 0 */
        demo_check(&d, gm_plot_save(pl, demo_path(&d, "conv_matrix.png"), 900, 480), "gm_plot_save");
        gm_plot_free(pl);
        /* row r of A as a 6x6 colour image, in a 4x4 grid laid out like the output pixels:
         * positive numbers red, negative blue, 0 white (the grid's borders are grey); each
         * pixel doubled (nearest) so the picture is not tiny */
        for (i = 0; i < 16 * 36; i++) amax = fmaxf(amax, fabsf(A[i]));
        for (r = 0; r < 16; r++)
            for (j = 0; j < 36; j++) {
                float t = A[r * 36 + j] / amax, *px = rgb->val + r * 3 * 36 + j;    /* t in [-1, 1] */
                px[0] = t < 0 ? 1 + t : 1;            /* R */
                px[36] = 1 - fabsf(t);                /* G */
                px[72] = t > 0 ? 1 - t : 1;           /* B */
            }
        demo_check(&d, gm_save_image_grid(demo_path(&d, "stamps.png"), gm_upsample2x(T, rgb)->val, 16, 3, 12, 12, 4,
                                          0.0f, 1.0f), "gm_save_image_grid");
        demo_check(&d, gm_save_npy(demo_path(&d, "A.npy"), A, 2, shape), "gm_save_npy");
    }
    printf("\n");
    demo_result("adjoint_error", worst);

    /* ---- cleanup ----------------------------------------------------------------------- */
    gm_params_free(&P);
    gm_tape_free(T);
    demo_done(&d);
    return 0;
}
