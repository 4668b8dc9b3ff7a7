/* tests/stb_impl.c - stb_image and stb_image_write for the test files, which read back
 * the PNGs genmod writes and make PNGs for the image-folder loader. (genmod compiles its
 * own copies privately, as static functions, so these do not clash with them.) */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__) || defined(__clang__)
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image.h>
#include <stb_image_write.h>
