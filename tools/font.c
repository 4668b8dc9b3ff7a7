/* tools/font.c - makes the glyph table of genmod.h's plot font (>>output-text) from DejaVu Sans.
 *
 *     cc -O2 $(pkg-config --cflags stb) tools/font.c -o font -lm
 *     ./font /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf > glyphs.txt
 *
 * Reads the outlines of the printable ASCII characters with stb_truetype (Debian
 * libstb-dev, fonts-dejavu-core), rounds every coordinate to units of 1/82 em and prints
 * one C string per character, as genmod.h decodes it: the advance, then the outline as
 * 'M' x y (start a contour), 'L' x y (a line to) and 'Q' cx cy x y (a quadratic curve
 * with control point c). A number is one character: its value is its offset from ' ' in
 * the printable characters without '"', '?' and '\' (so strings need no escapes and hold no
 * trigraph); x is stored plus 6, y (upwards from the baseline) plus 21. */
#define STB_TRUETYPE_IMPLEMENTATION
#include <stb_truetype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define EM 82
#define X_OFF 6
#define Y_OFF 21

static unsigned char ttf[1 << 22];

/* A coordinate in font units -> its character. */
static int code(int v, int off, float scale)
{
    int u = (int)lround(v * scale) + off, c;
    if (u < 0 || u > 91) { fprintf(stderr, "font: coordinate %d out of range\n", v); exit(1); }
    for (c = ' '; ; c++) {               /* the u-th printable character, skipping three */
        if (c == '"' || c == '?' || c == '\\') continue;
        if (u-- == 0) return c;
    }
}

int main(int argc, char **argv)
{
    stbtt_fontinfo font;
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    float scale;
    int ch;
    if (!f || fread(ttf, 1, sizeof ttf, f) == 0 || !stbtt_InitFont(&font, ttf, 0)) {
        fprintf(stderr, "usage: font DejaVuSans.ttf\n");
        return 2;
    }
    fclose(f);
    scale = EM * stbtt_ScaleForMappingEmToPixels(&font, 1.0f);    /* EM / units per em */
    for (ch = 32; ch < 127; ch++) {
        stbtt_vertex *v;
        int n = stbtt_GetCodepointShape(&font, ch, &v), adv, lsb, i;
        char line[4096];
        int len = 0;
        stbtt_GetCodepointHMetrics(&font, ch, &adv, &lsb);
        line[len++] = (char)code(adv, 0, scale);
        for (i = 0; i < n; i++) {
            line[len++] = v[i].type == STBTT_vmove ? 'M' : v[i].type == STBTT_vline ? 'L' : 'Q';
            if (v[i].type == STBTT_vcurve) {
                line[len++] = (char)code(v[i].cx, X_OFF, scale);
                line[len++] = (char)code(v[i].cy, Y_OFF, scale);
            }
            line[len++] = (char)code(v[i].x, X_OFF, scale);
            line[len++] = (char)code(v[i].y, Y_OFF, scale);
        }
        stbtt_FreeShape(&font, v);
        /* the string in pieces of at most 80 characters, one a line, then the character */
        for (i = 0; i < len; i += 80)
            printf("%s\"%.*s\"", i ? "\n    " : "    ", len - i < 80 ? len - i : 80, line + i);
        printf(",  /* %c */\n", ch);
    }
    return 0;
}
