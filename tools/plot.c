/* plot.c - the vae CLI's plotting module on cairo (see plot.h). */
#define _DEFAULT_SOURCE /* M_PI, M_SQRT2 */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

#define FONT "DejaVu Sans"
#define BORDER_GREY 128 /* as the grids of vae_write_png_grid */

/* Tableau's 10 categorical colours. */
const plot_rgb plot_palette[10] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}};

struct figure {
    cairo_surface_t *s;
    cairo_t *cr;
    int w, h;
};

/* At exit: cairo's font caches and fontconfig's configuration are process
 * state that is otherwise never freed (LeakSanitizer and valgrind list it). */
static int live_figures;

static void release_fonts(void)
{
    if (live_figures) return; // only safe with no cairo object left (an exit through die)
    cairo_debug_reset_static_data();
    FcFini();
}

figure *fig_new(int w, int h)
{
    static int registered;
    if (!registered) registered = 1, atexit(release_fonts);
    if (w < 1 || h < 1 || w > 32767 || h > 32767)
        die("a %dx%d picture is too large (cairo draws at most 32767 pixels a side); ask for "
            "fewer or smaller tiles (--scale)", w, h);
    figure *f = xmalloc(sizeof *f);
    f->w = w, f->h = h;
    f->s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    f->cr = cairo_create(f->s);
    live_figures++;
    if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS)
        die("cannot draw a %dx%d picture: %s", w, h, cairo_status_to_string(cairo_status(f->cr)));
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    return f;
}

void fig_free(figure *f)
{
    if (!f) return;
    cairo_destroy(f->cr);
    cairo_surface_destroy(f->s);
    free(f);
    live_figures--;
}

typedef struct membuf {
    unsigned char *data;
    size_t len, cap;
} membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int n)
{
    membuf *b = closure;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) return CAIRO_STATUS_NO_MEMORY;
        b->data = p, b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return CAIRO_STATUS_SUCCESS;
}

void fig_save(figure *f, const char *path)
{
    // render to memory first: the file appears whole (vae_write_file) or not at all
    membuf b = {0};
    cairo_surface_flush(f->s);
    cairo_status_t st = cairo_surface_write_to_png_stream(f->s, mem_write, &b);
    vae_error err;
    int rc = st == CAIRO_STATUS_SUCCESS ? vae_write_file(path, b.data, b.len, &err) : VAE_EIO;
    free(b.data);
    if (rc) { // let go of the figure first, so the exit can release the fonts
        fig_free(f);
        if (st != CAIRO_STATUS_SUCCESS) die("%s: PNG encoding failed: %s", path, cairo_status_to_string(st));
        die("%s", err.msg);
    }
}

void fig_text(figure *f, double x, double y, const char *s, double size, int halign, int angle,
              int bold)
{
    cairo_t *cr = f->cr;
    cairo_save(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_translate(cr, x, y);
    if (angle == 90) cairo_rotate(cr, -M_PI / 2);
    double dx = halign < 0 ? 0 : halign == 0 ? -te.x_advance / 2 : -te.x_advance;
    // centre vertically on the height of a capital letter, not of this string
    cairo_move_to(cr, dx, 0.36 * size);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

/* ------------------------------------------------------------- tiles */

void grid_size(int n, int h, int w, int cols, int border, int scale, int *W, int *H)
{
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    *W = cols * (w * scale + border) + border;
    *H = rows * (h * scale + border) + border;
}

static unsigned to_byte(float v)
{
    if (!(v > 0)) return 0;  // NaN too
    if (v >= 1) return 255;
    return (unsigned)(v * 255.0f + 0.5f);
}

void fig_tiles(figure *f, int x, int y, const float *images, int n, int c, int h, int w, int cols,
               int border, int scale)
{
    int W, H;
    if (cols > n) cols = n;
    grid_size(n, h, w, cols, border, scale, &W, &H);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) die("cannot draw a %dx%d grid", W, H);
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    const uint32_t grey = BORDER_GREY * 0x010101u;
    for (int yy = 0; yy < H; yy++)
        for (int xx = 0; xx < W; xx++) ((uint32_t *)(data + (size_t)yy * stride))[xx] = grey;
    for (int i = 0; i < n; i++) {
        const float *img = images + (size_t)i * c * h * w; // (c,h,w)
        int x0 = border + (i % cols) * (w * scale + border);
        int y0 = border + (i / cols) * (h * scale + border);
        for (int yy = 0; yy < h * scale; yy++) {
            uint32_t *row = (uint32_t *)(data + (size_t)(y0 + yy) * stride) + x0;
            for (int xx = 0; xx < w * scale; xx++) {
                size_t p = (size_t)(yy / scale) * w + xx / scale;
                unsigned r = to_byte(img[p]);
                unsigned g = c == 3 ? to_byte(img[(size_t)h * w + p]) : r;
                unsigned b = c == 3 ? to_byte(img[(size_t)2 * h * w + p]) : r;
                row[xx] = r << 16 | g << 8 | b;
            }
        }
    }
    cairo_surface_mark_dirty(s);
    cairo_set_source_surface(f->cr, s, x, y);
    cairo_paint(f->cr);
    cairo_surface_destroy(s);
}

/* -------------------------------------------------------------- axes */

/* 1, 2 or 5 times a power of ten, near range/target. */
static double nice_step(double range, int target)
{
    if (!(range > 0)) return 1;
    double raw = range / target, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

void axes_init(axes *a, double px, double py, double pw, double ph, double xmin, double xmax,
               double ymin, double ymax, int integer_x)
{
    a->px = px, a->py = py, a->pw = pw, a->ph = ph;
    if (!isfinite(xmin) || !isfinite(xmax)) xmin = 0, xmax = 1;
    if (!isfinite(ymin) || !isfinite(ymax)) ymin = 0, ymax = 1;
    // a single value still gets an axis around it
    if (xmax - xmin < 1e-12 * (fabs(xmin) + 1)) xmin -= 0.5 * (fabs(xmin) + 1), xmax += 0.5 * (fabs(xmax) + 1);
    if (ymax - ymin < 1e-12 * (fabs(ymin) + 1)) ymin -= 0.5 * (fabs(ymin) + 1), ymax += 0.5 * (fabs(ymax) + 1);
    a->xstep = nice_step(xmax - xmin, (int)(pw / 90) + 2);
    a->ystep = nice_step(ymax - ymin, (int)(ph / 60) + 2);
    if (integer_x && a->xstep < 1) a->xstep = 1;
    if (integer_x) { // epochs: the axis ends at the data, half a step beyond
        a->x0 = xmin - 0.02 * (xmax - xmin + 1), a->x1 = xmax + 0.02 * (xmax - xmin + 1);
    } else {
        double padx = 0.03 * (xmax - xmin);
        a->x0 = xmin - padx, a->x1 = xmax + padx;
    }
    double pady = 0.05 * (ymax - ymin);
    a->y0 = ymin - pady, a->y1 = ymax + pady;
}

double axes_px(const axes *a, double x) { return a->px + (x - a->x0) / (a->x1 - a->x0) * a->pw; }
double axes_py(const axes *a, double y) { return a->py + (a->y1 - y) / (a->y1 - a->y0) * a->ph; }

/* A tick label with as many decimals as the step needs. */
static void tick_label(char *buf, size_t n, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-9) v = 0; // no "-0"
    if (fabs(v) >= 1e6 || (fabs(v) > 0 && fabs(v) < 1e-4)) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.*f", dec, v);
}

void axes_draw(figure *f, const axes *a, const char *xlabel, const char *ylabel, const char *title)
{
    cairo_t *cr = f->cr;
    char buf[64];
    cairo_save(cr);
    cairo_set_line_width(cr, 1);
    double maxw = 0;
    // grid lines and ticks
    for (double v = ceil(a->x0 / a->xstep - 1e-9) * a->xstep; v <= a->x1 + 1e-9 * a->xstep; v += a->xstep) {
        double X = round(axes_px(a, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, X, a->py), cairo_line_to(cr, X, a->py + a->ph), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, X, a->py + a->ph), cairo_line_to(cr, X, a->py + a->ph + 5), cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, a->xstep);
        fig_text(f, X, a->py + a->ph + 16, buf, 12, 0, 0, 0);
    }
    for (double v = ceil(a->y0 / a->ystep - 1e-9) * a->ystep; v <= a->y1 + 1e-9 * a->ystep; v += a->ystep) {
        double Y = round(axes_py(a, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, a->px, Y), cairo_line_to(cr, a->px + a->pw, Y), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, a->px - 5, Y), cairo_line_to(cr, a->px, Y), cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, a->ystep);
        fig_text(f, a->px - 8, Y, buf, 12, 1, 0, 0);
        cairo_text_extents_t te;
        cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 12);
        cairo_text_extents(cr, buf, &te);
        if (te.x_advance > maxw) maxw = te.x_advance;
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, round(a->px) + 0.5, round(a->py) + 0.5, round(a->pw), round(a->ph));
    cairo_stroke(cr);
    cairo_restore(cr);
    if (xlabel) fig_text(f, a->px + a->pw / 2, a->py + a->ph + 38, xlabel, 14, 0, 0, 0);
    if (ylabel) fig_text(f, a->px - maxw - 24, a->py + a->ph / 2, ylabel, 14, 0, 90, 0);
    if (title) fig_text(f, a->px + a->pw / 2, a->py - 16, title, 15, 0, 0, 1);
}

/* ------------------------------------------------------------- marks */

static void clip_to(cairo_t *cr, const axes *a)
{
    cairo_rectangle(cr, a->px, a->py, a->pw, a->ph);
    cairo_clip(cr);
}

void plot_line(figure *f, const axes *a, const double *x, const double *y, int n, plot_rgb col,
               double width, int dashed)
{
    cairo_t *cr = f->cr;
    cairo_save(cr);
    clip_to(cr, a);
    cairo_set_source_rgb(cr, col.r, col.g, col.b);
    cairo_set_line_width(cr, width);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (dashed) {
        double d[2] = {6, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) { pen = 0; continue; }
        if (pen) cairo_line_to(cr, axes_px(a, x[i]), axes_py(a, y[i]));
        else cairo_move_to(cr, axes_px(a, x[i]), axes_py(a, y[i]));
        pen = 1;
    }
    cairo_stroke(cr);
    // a dot on every point, so a one-epoch curve still shows
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        cairo_arc(cr, axes_px(a, x[i]), axes_py(a, y[i]), width + 1.5, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

void plot_points(figure *f, const axes *a, const double *x, const double *y, int n, plot_rgb col,
                 double r, double alpha)
{
    cairo_t *cr = f->cr;
    cairo_save(cr);
    clip_to(cr, a);
    cairo_set_source_rgba(cr, col.r, col.g, col.b, alpha);
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, axes_px(a, x[i]), axes_py(a, y[i]), r, 0, 2 * M_PI);
    }
    cairo_fill(cr);
    cairo_restore(cr);
}

/* ------------------------------------------------------------ legend */

#define LEG_ROW 20
#define LEG_PAD 8
#define LEG_SAMPLE 30

static double legend_width(figure *f, const legend_entry *e, int n)
{
    cairo_t *cr = f->cr;
    cairo_save(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    double w = 0;
    for (int i = 0; i < n; i++) {
        cairo_text_extents_t te;
        cairo_text_extents(cr, e[i].label, &te);
        if (te.x_advance > w) w = te.x_advance;
    }
    cairo_restore(cr);
    return w + LEG_SAMPLE + 3 * LEG_PAD;
}

void plot_legend_at(figure *f, double x, double y, const legend_entry *e, int n)
{
    cairo_t *cr = f->cr;
    double w = legend_width(f, e, n), h = n * LEG_ROW + LEG_PAD;
    cairo_save(cr);
    cairo_rectangle(cr, x + 0.5, y + 0.5, round(w), round(h));
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double cy = y + LEG_PAD / 2 + LEG_ROW * (i + 0.5) + 0.5, sx = x + LEG_PAD;
        cairo_set_source_rgb(cr, e[i].col.r, e[i].col.g, e[i].col.b);
        if (e[i].line) {
            cairo_set_line_width(cr, 2);
            double d[2] = {6, 4};
            cairo_set_dash(cr, d, e[i].dashed ? 2 : 0, 0);
            cairo_move_to(cr, sx, cy), cairo_line_to(cr, sx + LEG_SAMPLE, cy);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        } else {
            cairo_arc(cr, sx + LEG_SAMPLE / 2, cy, 4, 0, 2 * M_PI);
            cairo_fill(cr);
        }
        fig_text(f, sx + LEG_SAMPLE + LEG_PAD, cy, e[i].label, 12, -1, 0, 0);
    }
    cairo_restore(cr);
}

void plot_legend(figure *f, const axes *a, const legend_entry *e, int n, const double *x,
                 const double *y, int npts)
{
    double w = legend_width(f, e, n), h = n * LEG_ROW + LEG_PAD, m = 10;
    double cx[4] = {a->px + a->pw - w - m, a->px + m, a->px + a->pw - w - m, a->px + m};
    double cy[4] = {a->py + m, a->py + m, a->py + a->ph - h - m, a->py + a->ph - h - m};
    int best = 0;
    long best_hits = -1;
    for (int k = 0; k < 4; k++) { // top right, top left, bottom right, bottom left
        long hits = 0;
        for (int i = 0; i < npts; i++) {
            double X = axes_px(a, x[i]), Y = axes_py(a, y[i]);
            hits += X >= cx[k] - 4 && X <= cx[k] + w + 4 && Y >= cy[k] - 4 && Y <= cy[k] + h + 4;
        }
        if (best_hits < 0 || hits < best_hits) best = k, best_hits = hits;
    }
    plot_legend_at(f, cx[best], cy[best], e, n);
}
