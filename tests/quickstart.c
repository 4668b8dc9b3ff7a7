/* tests/quickstart.c - the quick start at the top of genmod.h, as a program. tests/run.sh
 * builds it as C99 and as C++11 and checks that it learns (the loss falls tenfold). */
#define GENMOD_IMPLEMENTATION
#include "../genmod.h"
#include <stdio.h>

int main(void)
{
    float first = 0, last = 0;
    gm_rng rng = gm_rng_new(1);
    gm_dataset data;
    gm_synthetic_2d(&data, GM_TWO_MOONS, 1000, 1);
    gm_params P = {0};                                    // the model: its parameters
    gm_dense l1 = gm_dense_new(&P, "l1", 2, 64, &rng), l2 = gm_dense_new(&P, "l2", 64, 2, &rng);
    gm_optim *opt = gm_adam_new(&P, 1e-2f, 0.9f, 0.999f);
    gm_tape *T = gm_tape_new(0);                          // 0: the default arena size
    for (long step = 0; step < 500; step++) {
        gm_tape_reset(T);                                 // forget the last step's tensors
        gm_tensor *x = gm_batch(T, &data, step, 64);      // (B, 2)
        gm_tensor *y = gm_dense(T, &l2, gm_tanh(T, gm_dense(T, &l1, x)));
        gm_tensor *loss = gm_mean(T, gm_mse(T, y, x));    // reconstruct x
        last = gm_backward(T, loss);                      // p->grad = dloss/dp
        if (step == 0) first = last;
        gm_optim_step(opt);
    }
    gm_optim_free(opt); gm_tape_free(T); gm_params_free(&P); gm_dataset_free(&data);
    printf("quick start: loss %.4f -> %.4f\n", first, last);
    return last < 0.1f * first ? 0 : 1;
}
