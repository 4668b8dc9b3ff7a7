/* tests/installed.c - genmod used as an installed library: <genmod.h> is found, and the
 * program built and linked, with nothing but `pkg-config --cflags --libs genmod`
 * (tests/install.sh builds it as C and as C++, and runs it). */
#define GENMOD_IMPLEMENTATION
#include <genmod.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    gm_rng rng = gm_rng_new(1);
    gm_tape *T = gm_tape_new(0);
    gm_tensor *p = gm_sigmoid(T, gm_randn(T, gm_shape4(4, 1, 2, 2), &rng));           /* libm */
    int ok = argc == 2 && gm_save_image_grid(argv[1], p->val, 4, 1, 2, 2, 2, 0, 1);  /* stb */
    printf("genmod %s: mean %.4f\n", GENMOD_VERSION, gm_item(gm_mean(T, p)));
    gm_tape_free(T);
    return !ok;
}
