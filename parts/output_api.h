/* ======================================================================================
 * 10. output
 *    What a run leaves behind: PNG grids of samples, .npy arrays of raw values, plots of
 *    losses, latent spaces and densities as PNG, and a progress bar on stderr.
 *    Every file is written to "<path>.tmp" and renamed over <path> only when complete, so
 *    a failed or interrupted write never leaves half a file nor destroys the old one.
 *    Functions returning int give 1 on success and 0 on failure (reason in gm_last_error()).
 * ====================================================================================== */

/* Tile n images x (B=n, C, H, W), C = 1 or 3, ncols to a row (ncols <= 0: a near-square
 * grid), into one PNG. A pixel value v becomes round(255 (v - lo) / (hi - lo)), clamped
 * to 0..255, NaN -> 0; lo == hi means "use the min and max of x". Cells are separated
 * by a 1 px grey (128) border, and the grid is then magnified by the smallest integer
 * s in 1..8 that makes its longer side at least 400 px, so 28x28 samples are not tiny:
 * the PNG is s (ncols W + ncols + 1) wide and s (rows H + rows + 1) high. */
GMDEF int gm_save_image_grid(const char *path, const float *x, int n, int c, int h, int w,
                             int ncols, float lo, float hi);

/* NumPy .npy (format 1.0, little-endian float32 '<f4', C order): ndim in 0..4 and shape
 * as in x[shape[0]][shape[1]]...; np.load(path) reads it back. */
GMDEF int gm_save_npy(const char *path, const float *x, int ndim, const int *shape);
/* Read a float32 '<f4' C-order .npy (format 1, 2 or 3) with at most 4 dims: returns the
 * values (free with gm_npy_free), sets *ndim and shape[0..*ndim-1]; NULL on any problem
 * with the file (bad magic, other dtype, Fortran order, absurd shape, truncated). */
GMDEF float *gm_load_npy(const char *path, int *ndim, int shape[4]);
GMDEF void   gm_npy_free(float *x);

/* Plots to PNG. Add series, then save; all data are copied in, so the caller may free its
 * arrays at once. Axes fit the data with a small margin and get "nice" ticks (1, 2 or 5
 * times a power of ten); a legend appears when there are 2 to 40 labelled series or classes.
 * Non-finite points (and points <= 0 on a log axis) are skipped, not drawn.
 * The adders never fail loudly: the first problem (out of memory, n < 0) is remembered
 * and reported by gm_plot_save, which then writes nothing. */
typedef struct gm_plot gm_plot;
GMDEF gm_plot *gm_plot_new(const char *title, const char *xlabel, const char *ylabel);  /* NULL ok */
/* A polyline through (x[i], y[i]); x == NULL means x[i] = i. */
GMDEF void gm_plot_line(gm_plot *p, const char *label, const float *x, const float *y, int n);
/* n points in one colour; x == NULL means x[i] = i. */
GMDEF void gm_plot_scatter(gm_plot *p, const char *label, const float *x, const float *y, int n);
/* n points xy = (x0, y0, x1, y1, ...), point i coloured by its class labels[i] in
 * 0..nclass-1, legend "0" .. "nclass-1" (colours repeat after 10 classes). */
GMDEF void gm_plot_scatter_labeled(gm_plot *p, const float *xy, const int *labels, int n, int nclass);
/* A layer under all series: v (rows, cols) row-major, row 0 at the top (y = y1), column 0
 * at the left (x = x0), painted with a viridis-like colour map and explained by a colour
 * bar from min(v) to max(v). One heatmap per plot; a second call replaces the first. */
GMDEF void gm_plot_heatmap(gm_plot *p, const float *v, int rows, int cols,
                           float x0, float x1, float y0, float y1);
GMDEF void gm_plot_logy(gm_plot *p, int on);    /* y on a log10 axis: loss curves */
/* Draw and write the PNG; width, height 0 mean 640 x 480. */
GMDEF int  gm_plot_save(gm_plot *p, const char *path, int width, int height);
GMDEF void gm_plot_free(gm_plot *p);

/* A heatmap alone (the same drawing as gm_plot_heatmap), 640 x 480, title may be NULL. */
GMDEF int gm_save_heatmap(const char *path, const float *v, int rows, int cols,
                          float x0, float x1, float y0, float y1, const char *title);

/* A progress bar on stderr:
 *     gm_progress pb = gm_progress_start("train", steps);
 *     for (step = 0; step < steps; step++) {
 *         ...
 *         gm_progress_update(&pb, step + 1, "rec %.1f kl %.2f", rec, kl);
 *     }
 *     gm_progress_finish(&pb);
 * On a terminal it redraws one line at most 10 times a second:
 *     train [#####...............] 250/1000  25% | rec 80.1 kl 3.20 | 45.3 it/s | ETA 0:16
 * otherwise (a log file, CI) it prints a plain line at each tenth of the total; finish
 * prints the final line with the total time. total <= 0: unknown, no bar and no ETA.
 * A plain struct with no allocation; set .tty = 0 after start to force plain lines. */
#ifndef GM__PRINTF
#  if defined(__GNUC__) || defined(__clang__)
#    define GM__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))  /* check the format */
#  else
#    define GM__PRINTF(fmt, args)
#  endif
#endif
typedef struct gm_progress {
    char what[32];       /* the name in front of the bar */
    long total, done;    /* steps in all, steps so far */
    double t_start;      /* gm_seconds() at start */
    double t_last;       /* gm_seconds() at the last line printed */
    int tty;             /* 1: redraw one line with '\r'; 0: plain lines */
    int tenth;           /* plain mode: the last tenth of total printed */
    int width;           /* tty mode: length of the last line drawn, to blank it */
    char terms[96];      /* the caller's loss terms from the last update */
} gm_progress;
GMDEF gm_progress gm_progress_start(const char *what, long total);
GMDEF void gm_progress_update(gm_progress *p, long done, const char *fmt, ...)  /* fmt may be NULL */
    GM__PRINTF(3, 4);
GMDEF void gm_progress_finish(gm_progress *p);
