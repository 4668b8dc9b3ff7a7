/* tests/test_made.c - section 8's autoregressive pieces (MADE): the gradient of the masked
 * dense layer; the masks against the rules written out by hand; the autoregressive property
 * itself (output d's gradient with respect to every input at or after d's place is exactly
 * zero, and moving such an input leaves the logit's bits alone) through three masked layers
 * for several orderings; -log p(x) of a two-pixel MADE against a value worked by hand, and
 * p(x) summing to 1 over all binary images; sampling that fills the values in the order's
 * places and draws them with the model's probabilities. */
#include "../genmod.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

enum { MAXL = 3 };

/* A MADE of up to MAXL masked layers, ReLU between them, and its input as a parameter so
 * that gradients with respect to it can be read. */
typedef struct made {
    gm_params P;
    gm_masked_dense l[MAXL];
    int L, D;
    gm_tensor *x;
} made;

static made made_new(const int *sizes, int L, float scale, uint64_t seed)   /* sizes: D, hidden..., D */
{
    made m;
    gm_rng rng = gm_rng_new(seed);
    int i, k;
    memset(&m, 0, sizeof m);
    m.L = L; m.D = sizes[0];
    for (i = 0; i < L; i++) {
        char name[16];
        snprintf(name, sizeof name, "l%d", i);
        m.l[i] = gm_masked_dense_new(&m.P, name, sizes[i], sizes[i + 1], &rng);
        for (k = 0; k < m.l[i].lin.w->size; k++) m.l[i].lin.w->val[k] *= scale;   /* sharper p */
    }
    return m;
}

/* the logits (B, D) */
static gm_tensor *made_logits(gm_tape *T, void *model, gm_tensor *x)
{
    made *m = (made *)model;
    int i;
    for (i = 0; i < m->L; i++) {
        x = gm_masked_dense(T, &m->l[i], x);
        if (i < m->L - 1) x = gm_relu(T, x);
    }
    return x;
}

static gm_tensor *b_made(gm_tape *T, void *p) { made *m = (made *)p; return made_logits(T, m, m->x); }

/* the gradient check of the layer (W, b and x), with a mask of zeros and ones, and a check
 * that the masked weights got no gradient at all */
static void grad_masked_dense(void)
{
    static const int sizes[] = {5, 6, 5};
    made m = made_new(sizes, 2, 1.0f, 3);
    gm_rng rng = gm_rng_new(4);
    int order[5], k, zeros = 0, leak = 0;
    gm_tape *T = gm_tape_new(1 << 20);
    gm_tensor *loss;
    gm_made_connect(m.l, 2, order, 1, 9);
    m.x = gm_param_new(&m.P, "x", gm_shape2(3, 5));
    gm_init_uniform(m.x, -1, 1, &rng);
    loss = gm_sum(T, gm_square(T, b_made(T, &m)));
    gm_backward(T, loss);
    for (k = 0; k < 2; k++) {
        const gm_tensor *w = m.l[k].lin.w, *mask = m.l[k].mask;
        int i;
        for (i = 0; i < w->size; i++)
            if (mask->val[i] == 0.0f) { zeros++; leak += w->grad[i] != 0.0f; }
    }
    EXPECT(zeros > 0 && leak == 0);
    gm_tape_free(T);
    EXPECT(gm_test_grad("masked dense (2 layers)", b_made, &m, &m.P) < GRAD_TOL);
}

/* The masks of a hand-made case, D = 4, against the rules written out: ordering m(d) =
 * (3, 1, 4, 2), three hidden units of degrees (1, 3, 2). Hidden: M[k][j] = m(k) >= m(j);
 * output: V[d][k] = m(d) > m(k). Then the degrees' range, and gm_made_connect's seeds. */
static void masks_follow_the_rules(void)
{
    static const int order[4] = {3, 1, 4, 2}, deg[3] = {1, 3, 2};
    static const float hidden[3][4] = {{0, 1, 0, 0},      /* degree 1 sees the input of place 1 */
                                       {1, 1, 0, 1},      /* degree 3: places 3, 1, 2 */
                                       {0, 1, 0, 1}};     /* degree 2: places 1, 2 */
    static const float output[4][3] = {{1, 0, 1},         /* place 3: degrees 1, 2 */
                                       {0, 0, 0},         /* place 1: nothing, p(x_1) is a bias */
                                       {1, 1, 1},         /* place 4: all */
                                       {1, 0, 0}};        /* place 2: degree 1 */
    static const int sizes[] = {4, 3, 4}, big[] = {6, 40, 30, 6};
    made m = made_new(sizes, 2, 1.0f, 1), a = made_new(big, 3, 1.0f, 1), b = made_new(big, 3, 1.0f, 1);
    gm_rng rng = gm_rng_new(2);
    int k, j, ok = 1, seen[7] = {0}, deg2[200], ord[6], ord2[6], natural = 1, same = 1, differ = 0, in_range = 1;
    gm_made_mask(&m.l[0], order, deg, 0);
    gm_made_mask(&m.l[1], deg, order, 1);
    for (k = 0; k < 3; k++) for (j = 0; j < 4; j++) ok &= m.l[0].mask->val[k * 4 + j] == hidden[k][j];
    for (j = 0; j < 4; j++) for (k = 0; k < 3; k++) ok &= m.l[1].mask->val[j * 3 + k] == output[j][k];
    EXPECT(ok);
    gm_made_order(ord, 6, NULL);
    gm_made_degrees(deg2, 200, ord, 6, 6, &rng);               /* above the inputs: 1..5, each drawn */
    for (k = 0; k < 200; k++) { in_range &= deg2[k] >= 1 && deg2[k] <= 5; if (in_range) seen[deg2[k]] = 1; }
    EXPECT(in_range && seen[1] && seen[2] && seen[3] && seen[4] && seen[5]);
    deg2[0] = 3; for (k = 1; k < 10; k++) deg2[k] = 4;          /* a layer of degrees >= 3 */
    gm_made_degrees(deg2 + 10, 100, deg2, 10, 6, &rng);
    for (k = 10; k < 110; k++) in_range &= deg2[k] >= 3 && deg2[k] <= 5;
    EXPECT(in_range);
    gm_made_connect(a.l, 3, ord, 0, 5);                         /* shuffle 0: the natural order */
    for (j = 0; j < 6; j++) natural &= ord[j] == j + 1;
    gm_made_connect(b.l, 3, ord2, 0, 5);
    for (k = 0; k < 3; k++) same &= memcmp(a.l[k].mask->val, b.l[k].mask->val, sizeof(float) * a.l[k].mask->size) == 0;
    gm_made_connect(b.l, 3, ord2, 1, 6);                        /* another seed, a random order */
    for (k = 0; k < 3; k++) differ |= memcmp(a.l[k].mask->val, b.l[k].mask->val, sizeof(float) * a.l[k].mask->size) != 0;
    for (j = 0; j < 6; j++) differ |= (ord2[j] != j + 1) << 1;
    EXPECT(natural && same && differ == 3);
    gm_params_free(&m.P); gm_params_free(&a.P); gm_params_free(&b.P);
}

/* The property itself, through three masked layers (7 -> 12 -> 10 -> 7), for the natural
 * order and three random ones: d l_d / d x_j is exactly 0 for every j whose place is at or
 * after d's, and moving such an x_j by 1 leaves l_d the same bits; and the test is not empty:
 * inputs before d do reach l_d (some of their gradients are not 0). */
static void outputs_see_only_earlier_inputs(void)
{
    static const int sizes[] = {7, 12, 10, 7};
    gm_tape *T = gm_tape_new(1 << 20);
    int s, d, j, order[7], zero_after = 1, same_after = 1, reach = 0;
    for (s = 0; s < 4; s++) {
        made m = made_new(sizes, 3, 1.0f, 10 + s);
        gm_rng rng = gm_rng_new(20 + s);
        gm_made_connect(m.l, 3, order, s > 0, 30 + s);
        m.x = gm_param_new(&m.P, "x", gm_shape2(1, 7));
        gm_init_uniform(m.x, 0.2f, 1, &rng);
        for (d = 0; d < 7; d++) {
            float onehot[7] = {0}, l_d, keep;
            gm_tensor *l;
            onehot[d] = 1;
            gm_tape_reset(T);
            l = made_logits(T, &m, m.x);
            l_d = l->val[d];
            gm_backward(T, gm_sum(T, gm_mul(T, l, gm_from(T, gm_shape2(1, 7), onehot))));   /* dl_d/dx */
            for (j = 0; j < 7; j++) {
                if (order[j] < order[d]) { reach += m.x->grad[j] != 0.0f; continue; }
                zero_after &= m.x->grad[j] == 0.0f;
                keep = m.x->val[j];
                m.x->val[j] = keep + 1.0f;
                gm_tape_reset(T);
                same_after &= made_logits(T, &m, m.x)->val[d] == l_d;
                m.x->val[j] = keep;
            }
        }
        gm_params_free(&m.P);
    }
    EXPECT(zero_after);
    EXPECT(same_after);
    EXPECT(reach > 20);             /* of the 4 x 21 pairs with j before d */
    gm_tape_free(T);
}

/* -log p(x) summed over the values of an example (B) */
static double nll_of(gm_tape *T, made *m, const float *x, int B)
{
    gm_tensor *xt;
    gm_tape_reset(T);
    xt = gm_from(T, gm_shape2(B, m->D), x);
    return gm_bernoulli_nll(T, made_logits(T, m, xt), xt)->val[0];
}

/* Two pixels, natural order, one hidden unit of degree 1: h = relu(2 x_1 - 0.5) (the weight 5
 * from x_2 is masked), l_1 = 0.3 (the weight 7 from h is masked: x_1 comes first), l_2 =
 * -1.5 h + 0.2. For x = (1, 0): h = 1.5, l_2 = -2.05, and
 *     -log p(x) = -log sigmoid(0.3) - log(1 - sigmoid(-2.05)) = log(1 + e^-0.3) + log(1 + e^-2.05)
 *               = 0.5543552 + 0.1210975 = 0.6754527.
 * Then p(x) over all 2^D binary images sums to 1, here and for a random three-layer MADE of
 * 8 pixels in a random order (an output that saw its own pixel would break the sum). */
static void likelihood_by_hand(void)
{
    static const int two[] = {2, 1, 2}, eight[] = {8, 9, 6, 8};
    static const int order[2] = {1, 2}, deg[1] = {1};
    static const float w1[2] = {2, 5}, b1[1] = {-0.5f}, w2[2] = {7, -1.5f}, b2[2] = {0.3f, 0.2f};
    made m = made_new(two, 2, 1.0f, 1), big = made_new(eight, 3, 3.0f, 2);
    gm_tape *T = gm_tape_new(1 << 20);
    float x[2] = {1, 0}, xb[8];
    int o8[8], i, d;
    double sum = 0;
    memcpy(m.l[0].lin.w->val, w1, sizeof w1); memcpy(m.l[0].lin.b->val, b1, sizeof b1);
    memcpy(m.l[1].lin.w->val, w2, sizeof w2); memcpy(m.l[1].lin.b->val, b2, sizeof b2);
    gm_made_mask(&m.l[0], order, deg, 0);
    gm_made_mask(&m.l[1], deg, order, 1);
    EXPECT_NEAR(nll_of(T, &m, x, 1), 0.6754527, 1e-6);
    for (i = 0; i < 4; i++) {
        x[0] = (float)(i & 1); x[1] = (float)(i >> 1);
        sum += exp(-nll_of(T, &m, x, 1));
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    gm_made_connect(big.l, 3, o8, 1, 3);
    for (sum = 0, i = 0; i < 256; i++) {
        for (d = 0; d < 8; d++) xb[d] = (float)((i >> d) & 1);
        sum += exp(-nll_of(T, &big, xb, 1));
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    gm_params_free(&m.P); gm_params_free(&big.P);
    gm_tape_free(T);
}

/* A stand-in network that checks what the sampler feeds it: at its c-th call the values of
 * places 1..c must be 1 (drawn with logit 30, p = 1 in float) and all others 0. */
typedef struct watcher { const int *order; int D, calls, ok; } watcher;

static gm_tensor *watch(gm_tape *T, void *model, gm_tensor *x)
{
    watcher *w = (watcher *)model;
    gm_tensor *l = gm_zeros(T, x->shape);
    int b, d;
    for (b = 0; b < x->shape.d[0]; b++)
        for (d = 0; d < w->D; d++) {
            w->ok &= x->val[b * w->D + d] == (w->order[d] <= w->calls ? 1.0f : 0.0f);
            l->val[b * w->D + d] = 30.0f;
        }
    w->calls++;
    return l;
}

/* Sampling fills the values in the order's places (the watcher), and draws each from the
 * model's conditional: 20000 samples of a random 4-pixel MADE in a random order land on the
 * 16 images with the frequencies p(x) (total variation below 0.03; about 0.01 is expected). */
static void sampling_follows_the_order(void)
{
    static const int order[6] = {4, 6, 1, 3, 2, 5}, sizes[] = {4, 6, 4};
    enum { N = 20000 };
    watcher w = {order, 6, 0, 1};
    made m = made_new(sizes, 2, 4.0f, 5);
    gm_tape *T = gm_tape_new(16 << 20);
    gm_rng rng = gm_rng_new(6);
    float *x = (float *)malloc(sizeof(float) * N * 4), xb[4];
    int o4[4], i, d, count[16] = {0};
    double tv = 0;
    gm_made_sample(watch, &w, T, order, 3, 6, x, &rng);
    EXPECT(w.ok && w.calls == 6);
    for (i = 0; i < 18; i++) EXPECT(x[i] == 1.0f);
    gm_made_connect(m.l, 2, o4, 1, 7);
    gm_made_sample(made_logits, &m, T, o4, N, 4, x, &rng);
    for (i = 0; i < N; i++) {
        int k = 0;
        for (d = 0; d < 4; d++) k |= (x[i * 4 + d] == 1.0f) << d;
        count[k]++;
    }
    for (i = 0; i < 16; i++) {
        for (d = 0; d < 4; d++) xb[d] = (float)((i >> d) & 1);
        tv += 0.5 * fabs((double)count[i] / N - exp(-nll_of(T, &m, xb, 1)));
    }
    printf("  sampling: total variation from p(x) over 16 images, %d samples: %.4f\n", N, tv);
    EXPECT(tv < 0.03);
    free(x);
    gm_params_free(&m.P);
    gm_tape_free(T);
}

void tests_made(void)
{
    TEST(grad_masked_dense);
    TEST(masks_follow_the_rules);
    TEST(outputs_see_only_earlier_inputs);
    TEST(likelihood_by_hand);
    TEST(sampling_follows_the_order);
}
