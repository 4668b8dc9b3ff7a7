/* lectures/figures/tape.c - the tape of one tiny step, printed and drawn (lecture 00).
 *
 *     L = sum((x W + b)^2),   x (B=2, D=3) data,  W (3,4) and b (4) parameters
 *
 * Runs the step and its backward, prints the tape (gm_tape_print) and writes it as Graphviz
 * DOT to the file given (gm_tape_save_dot):
 *     make build/tape && ./build/tape tape.dot && dot -Tpng tape.dot -o tape.png
 * lectures/figures/runs.txt runs it for the lecture's log and picture. */
#define GENMOD_IMPLEMENTATION
#include "../../genmod.h"

int main(int argc, char **argv)
{
    static const float xs[2 * 3] = {0.5f, -1.0f, 2.0f, 1.5f, 0.0f, -0.5f};
    gm_params P = {0};
    gm_rng rng = gm_rng_new(1);
    gm_tensor *W = gm_param_new(&P, "W", gm_shape2(3, 4)), *b = gm_param_new(&P, "b", gm_shape1(4));
    gm_tape *T = gm_tape_new(1 << 20);                /* 1 MiB of arena is plenty here */
    gm_tensor *x, *h, *y, *L;
    int ok;
    if (argc != 2 || !T) { fprintf(stderr, "usage: tape OUT.dot\n"); return 2; }
    gm_init_normal(W, 0.0f, 1.0f, &rng);

    gm_tape_reset(T);
    x = gm_from(T, gm_shape2(2, 3), xs);      /* the data, a batch of two vectors */
    h = gm_matmul(T, x, W);                   /* x W, (2,4)                       */
    y = gm_add(T, h, b);                      /* + b, broadcast over the batch    */
    L = gm_sum(T, gm_square(T, y));           /* L = sum of the squares           */
    gm_backward(T, L);

    gm_tape_print(T, stdout);
    ok = gm_tape_save_dot(T, L, argv[1]);
    if (!ok) fprintf(stderr, "tape: %s\n", gm_last_error());
    gm_tape_free(T);
    gm_params_free(&P);
    return ok ? 0 : 1;
}
