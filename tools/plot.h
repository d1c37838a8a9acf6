/* plot.h - a small plotting module for the vae CLI, drawn with cairo: a
 * figure (white RGB canvas), axes with nice ticks, lines, markers, legends,
 * text and grids of image tiles, saved as PNG crash-safely. CLI-only (it
 * lives in tools/, not in libvae) so that embedders of the library need no
 * cairo; like the other CLI helpers it reports failures with die(). */
#ifndef VAE_PLOT_H
#define VAE_PLOT_H

typedef struct plot_rgb {
    double r, g, b;
} plot_rgb;

/* The 10 label colours (distinct, colour-blind friendly order). */
extern const plot_rgb plot_palette[10];

typedef struct figure figure;

/* A w x h canvas, white. */
figure *fig_new(int w, int h);
void fig_free(figure *f);
/* Encodes the figure to PNG in memory and writes it with vae_write_file;
 * on failure frees the figure and dies with one line. */
void fig_save(figure *f, const char *path);

/* Text with its anchor at (x, y): halign -1 left, 0 centre, 1 right; the
 * baseline sits so that (x, y) is the vertical middle of the text. angle 0
 * or 90 (reads bottom to top). bold 0/1. */
void fig_text(figure *f, double x, double y, const char *s, double size, int halign, int angle,
              int bold);

/* n image tiles (c x h x w floats in [0,1], c = 1 or 3) as a grid of `cols`
 * columns with its top-left corner at (x, y): a `border`-pixel grey gap and
 * each pixel drawn scale x scale, exactly as vae_write_png_grid lays them
 * out. Size: grid_size(). */
void fig_tiles(figure *f, int x, int y, const float *images, int n, int c, int h, int w, int cols,
               int border, int scale);
void grid_size(int n, int h, int w, int cols, int border, int scale, int *W, int *H);

/* Axes: a pixel rectangle and the data range it shows. */
typedef struct axes {
    double px, py, pw, ph;  /* plot area: left, top, width, height (pixels) */
    double x0, x1, y0, y1;  /* data shown */
    double xstep, ystep;    /* tick spacing */
} axes;

/* Sets up axes over [xmin,xmax] x [ymin,ymax], widened a little and to
 * whole ticks ("nice" steps of 1, 2 or 5 times a power of ten). integer_x
 * keeps x ticks on whole numbers (epochs). */
void axes_init(axes *a, double px, double py, double pw, double ph, double xmin, double xmax,
               double ymin, double ymax, int integer_x);
/* Frame, grid lines, ticks, tick labels, axis titles and a title above. */
void axes_draw(figure *f, const axes *a, const char *xlabel, const char *ylabel,
               const char *title);

/* Data -> pixel coordinates. */
double axes_px(const axes *a, double x);
double axes_py(const axes *a, double y);

/* A polyline through n points (dashed: 0/1), clipped to the axes. */
void plot_line(figure *f, const axes *a, const double *x, const double *y, int n, plot_rgb col,
               double width, int dashed);
/* Filled dots of radius r (alpha for dense scatter plots), clipped. */
void plot_points(figure *f, const axes *a, const double *x, const double *y, int n, plot_rgb col,
                 double r, double alpha);

/* A legend entry: a line sample (line = 1, dashed or not) or a dot. */
typedef struct legend_entry {
    const char *label;
    plot_rgb col;
    int line, dashed;
} legend_entry;

/* A boxed legend inside the axes, in the corner that covers the fewest of
 * the npts points (x, y; may be 0), so it hides as little data as it can. */
void plot_legend(figure *f, const axes *a, const legend_entry *e, int n, const double *x,
                 const double *y, int npts);
/* A boxed legend with its top-left corner at pixel (x, y), e.g. beside the axes. */
void plot_legend_at(figure *f, double x, double y, const legend_entry *e, int n);

#endif
