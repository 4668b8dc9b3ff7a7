/* tests/student_ops.h - ops written the way a student adds one to genmod.h, following
 * lectures/00-design.md, so that what the lectures teach stays true. Like genmod.h it has
 * declarations, then the code under GENMOD_IMPLEMENTATION: tests/main.c includes it right
 * after genmod.h's implementation (where an op inside genmod.h would be), and
 * tests/test_ops.c gradient-checks both ops:
 *   student_abs    the worked example of 00-design's checklist, line for line (keep the two
 *                  in step: a change to the op pattern must show up here first);
 *   student_dense  y = x W^T + b with the backward of lecture 02's exercise 3, as a student
 *                  writes it: plain loops that add (+=) dX = dY W, dW = dY^T X, db = sum_B dY
 *                  into the grads, with no knowledge of how the walk prepares them. */

#ifndef STUDENT_OPS_H
#define STUDENT_OPS_H
/* ---- 00-design, step 2: the declarations in section 4 ---- */
GMDEF gm_tensor *student_abs_at(gm_tape *T, gm_tensor *x, GM__SITE);             /* |x| */
#define student_abs(...) student_abs_at(__VA_ARGS__, GM__HERE)
/* y = x W^T + b like gm_dense, its backward written as lecture 02's exercise 3 asks */
GMDEF gm_tensor *student_dense_at(gm_tape *T, const gm_dense *l, gm_tensor *x, GM__SITE);
#define student_dense(...) student_dense_at(__VA_ARGS__, GM__HERE)
#endif

#if defined(GENMOD_IMPLEMENTATION) && !defined(STUDENT_OPS_IMPLEMENTED)
#define STUDENT_OPS_IMPLEMENTED

/* ---- 00-design, step 3: the kernels and the builder, under // >>ops-unary ---- */
/* y = |x|;  dx = sign(x) dy  (sign(0) = 0: the check keeps inputs away from 0) */
static void student__abs_fwd(gm_tensor *y)
{
    const float *x = y->in[0]->val;
    int i;
    for (i = 0; i < y->size; i++) y->val[i] = fabsf(x[i]);
}
static void student__abs_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0];
    int i;
    for (i = 0; i < y->size; i++) {
        float sign = x->val[i] > 0.0f ? 1.0f : x->val[i] < 0.0f ? -1.0f : 0.0f;
        x->grad[i] += sign * y->grad[i];
    }
}
GMDEF gm_tensor *student_abs_at(gm_tape *T, gm_tensor *x, GM__SITE)
{
    return gm__unary(T, x, "student_abs", student__abs_fwd, student__abs_bwd, 0.0f, file, line);
}

/* ---- lecture 02, exercise 3: dense with a backward of plain += loops ---- */
/* Y = X W^T + b, X (B,in), W (out,in);  dX = dY W,  dW = dY^T X,  db = sum over the batch of dY */
static void student__dense_bwd(gm_tensor *y)
{
    gm_tensor *x = y->in[0], *w = y->in[1], *b = y->in[2];
    int B = x->shape.d[0], in = x->shape.d[1], out = w->shape.d[0], n, o, k;
    for (n = 0; n < B; n++)
        for (o = 0; o < out; o++) {
            float g = y->grad[n * out + o];                      /* dL/dY[n,o] */
            for (k = 0; k < in; k++) {
                if (x->grad) x->grad[n * in + k] += g * w->val[o * in + k];
                if (w->grad) w->grad[o * in + k] += g * x->val[n * in + k];
            }
            if (b->grad) b->grad[o] += g;
        }
}
GMDEF gm_tensor *student_dense_at(gm_tape *T, const gm_dense *l, gm_tensor *x, GM__SITE)
{
    int B = x->shape.d[0], n, o, k;
    gm_tensor *y;
    if (x->shape.ndim != 2 || x->shape.d[1] != l->in)
        gm__fatal(file, line, "student_dense", "expects x of shape (B,%d)", l->in);
    y = gm__node(T, gm_shape2(B, l->out), "student_dense", student__dense_bwd, x, l->w, l->b, file, line);
    for (n = 0; n < B; n++)
        for (o = 0; o < l->out; o++) {
            float acc = l->b->val[o];
            for (k = 0; k < l->in; k++) acc += x->val[n * l->in + k] * l->w->val[o * l->in + k];
            y->val[n * l->out + o] = acc;
        }
    return y;
}
#endif
