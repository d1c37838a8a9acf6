/* pictures.c - the picture commands: `vae interpolate`, `traverse`,
 * `manifold`, `embed` and `curves`, drawn with the plotting module
 * (plot.c) and written as PNG (plus CSV for embed) crash-safely. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <png.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "latent.h"
#include "pictures.h"
#include "plot.h"

#define BORDER 2  /* pixels between tiles, as in the sample grids */

/* ------------------------------------------------------------ helpers */

/* A conditional VAE decodes (and encodes single images) with one class: the
 * class of the image a picture starts from, else 0. n rows of that class
 * (NULL for a model without classes; caller frees). */
static uint8_t *class_rows(const vae_model *m, int label, long n)
{
    if (!vae_model_num_classes(m)) return NULL;
    uint8_t *rows = xmalloc((size_t)n);
    memset(rows, label, (size_t)n);
    return rows;
}

/* mu (n x latent) = encoder means of the n images x, all of class label. */
static void encode_images(vae_model *m, const float *x, int n, int label, float *mu)
{
    uint8_t *rows = class_rows(m, label, n);
    if (vae_model_encode(m, x, rows, n, mu, NULL)) die("%s", vae_model_errmsg(m));
    free(rows);
}

/* The class of image i of ds, for a CVAE (0 otherwise). */
static int image_label(const vae_model *m, const vae_dataset *ds, uint32_t i)
{
    const uint8_t *l = need_labels(ds, m);
    return l ? l[i] : 0;
}

/* Encoder means (and log-variances, when lv is not NULL) of the first n
 * images of ds, in batches the model holds. */
static void encode_first(vae_model *m, const vae_dataset *ds, long n, float *mu, float *lv)
{
    int D = vae_model_input_size(m), d = vae_model_config(m)->latent, B = vae_model_max_batch(m);
    uint32_t *idx = xmalloc((size_t)B * sizeof *idx);
    float *x = xmalloc((size_t)B * D * sizeof *x);
    for (long i = 0; i < n; i += B) {
        int b = (int)(n - i < B ? n - i : B);
        for (int k = 0; k < b; k++) idx[k] = (uint32_t)(i + k);
        vae_dataset_batch(ds, idx, b, VAE_BINARIZE_NONE, 0, NULL, x);
        const uint8_t *labels = need_labels(ds, m);
        if (vae_model_encode(m, x, labels ? labels + i : NULL, b, mu + (size_t)i * d,
                             lv ? lv + (size_t)i * d : NULL))
            die("%s", vae_model_errmsg(m));
    }
    free(idx);
    free(x);
}

/* out (n x D) = decoder means of the n codes z (n x latent), a CVAE's of
 * class label. */
static void decode_all(vae_model *m, const float *z, long n, int label, float *out)
{
    int D = vae_model_input_size(m), d = vae_model_config(m)->latent, B = vae_model_max_batch(m);
    uint8_t *rows = class_rows(m, label, B);
    for (long i = 0; i < n; i += B) {
        int b = (int)(n - i < B ? n - i : B);
        if (vae_model_decode(m, z + (size_t)i * d, rows, b, out + (size_t)i * D))
            die("%s", vae_model_errmsg(m));
    }
    free(rows);
}

/* KL of each latent dimension averaged over the test images of ds. */
static void test_kl(vae_model *m, const vae_dataset *ds, double *kl)
{
    long n = (long)vae_dataset_count(ds);
    int d = vae_model_config(m)->latent;
    float *mu = xmalloc((size_t)n * d * sizeof *mu), *lv = xmalloc((size_t)n * d * sizeof *lv);
    encode_first(m, ds, n, mu, lv);
    vae_kl_per_dim(mu, lv, n, d, kl);
    free(mu);
    free(lv);
}

/* A test image index for flag, checked against the data set. */
static uint32_t image_index(const vae_dataset *ds, const char *flag, long i)
{
    size_t n = vae_dataset_count(ds);
    if (i < 0 || (size_t)i >= n)
        die("%s %ld is out of range: %s holds %zu images (0..%zu)", flag, i, vae_dataset_path(ds),
            n, n - 1);
    return (uint32_t)i;
}

/* Labels every k-th of n marks spaced `gap` pixels apart, k the smallest
 * step that keeps them `need` pixels apart. */
static int label_every(int n, double gap, double need)
{
    int k = 1;
    while (k < n && k * gap < need) k++;
    return k;
}

/* Parses "a,b" into two distinct dimension indices (range checked later). */
static void parse_dims(const char *cmd, const char *s, int *a, int *b)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10), y = -1;
    if (end != s && *end == ',') {
        const char *t = end + 1;
        y = strtol(t, &end, 10);
        if (end == t) y = -1;
    } else end = (char *)s;
    if (errno || *end || x < 0 || y < 0 || x > 65535 || y > 65535 || x == y)
        usage_error(cmd, "--dims expects two different dimension indices like 0,1, not '%s'", s);
    *a = (int)x, *b = (int)y;
}

/* An image file (PNG, any bit depth or colour type) as c x h x w floats in
 * [0,1] for the model: grey for c = 1 (libpng mixes colour to grey), RGB for
 * c = 3; its size must be the model's. */
#define MAX_IMAGE_FILE ((size_t)256 << 20) /* a PNG of at most 4096x4096 fits easily */

static void read_image_file(const char *flag, const char *path, int c, int h, int w, float *out)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    // read whole first: a FIFO or device is refused, not waited on
    void *file;
    size_t len;
    vae_error err;
    if (vae_read_file(path, MAX_IMAGE_FILE, &file, &len, &err)) die("%s %s", flag, err.msg);
    if (!png_image_begin_read_from_memory(&img, file, len)) {
        free(file);
        die("%s %s: cannot read it as a PNG image (%s)", flag, path, img.message);
    }
    if ((int)img.width != w || (int)img.height != h) {
        png_image_free(&img);
        free(file);
        die("%s %s: the image is %ux%u but the model takes %dx%d", flag, path, img.width,
            img.height, w, h);
    }
    img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    size_t n = (size_t)w * h;
    unsigned char *px = xmalloc(n * c);
    if (!png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px), free(file);
        die("%s %s: cannot decode the PNG image (%s)", flag, path, img.message);
    }
    for (int ch = 0; ch < c; ch++) // interleaved -> planar (c, h, w)
        for (size_t p = 0; p < n; p++) out[ch * n + p] = px[p * c + ch] / 255.0f;
    free(px);
    free(file);
}

/* The basename of a path, for labels. */
static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ------------------------------------------------------ the options */

/* The picture commands' options: each command's table names those it takes
 * and their defaults; one take() parses them all. */
typedef struct picture_args {
    const char *cmd;
    model_args ma;
    const char *out, *plot, *files[2];
    long from, to, image, limit;
    int steps, slerp, scale, rows, grid, dims[2];
    double range;
} picture_args;

enum { P_FROM = 256, P_TO, P_FROM_IMAGE, P_TO_IMAGE, P_STEPS, P_SLERP, P_SCALE, P_OUT, P_IMAGE,
       P_RANGE, P_ROWS, P_GRID, P_DIMS, P_PLOT, P_LIMIT };

static void take_picture(int key, const char *a, int from_default, void *ctx)
{
    picture_args *p = ctx;
    const char *cmd = p->cmd;
    (void)from_default;
    switch (key) {
    case P_FROM: p->from = parse_long(cmd, "--from", a, 0, 0x7fffffffL); break;
    case P_TO: p->to = parse_long(cmd, "--to", a, 0, 0x7fffffffL); break;
    case P_FROM_IMAGE: p->files[0] = path_arg(cmd, "--from-image", a); break;
    case P_TO_IMAGE: p->files[1] = path_arg(cmd, "--to-image", a); break;
    case P_STEPS: p->steps = (int)parse_long(cmd, "--steps", a, 2, strcmp(cmd, "traverse") ? 200 : 100); break;
    case P_SLERP: p->slerp = 1; break;
    case P_SCALE: p->scale = (int)parse_long(cmd, "--scale", a, 1, 16); break;
    case P_OUT: p->out = path_arg(cmd, "-o", a); break;
    case P_IMAGE: p->image = parse_long(cmd, "--image", a, 0, 0x7fffffffL); break;
    case P_RANGE: p->range = parse_double(cmd, "--range", a, 1e-3, 1e3); break;
    case P_ROWS: p->rows = (int)parse_long(cmd, "--rows", a, 1, 4096); break;
    case P_GRID: p->grid = (int)parse_long(cmd, "--n", a, 2, 100); break;
    case P_DIMS: parse_dims(cmd, a, &p->dims[0], &p->dims[1]); break;
    case P_PLOT: p->plot = path_arg(cmd, "--plot", a); break;
    case P_LIMIT: p->limit = parse_long(cmd, "-n", a, 1, 0x7fffffffL); break;
    default: model_flag(cmd, key, a, &p->ma); // the table holds no other keys
    }
}

/* The preamble of interpolate, traverse, manifold and embed: their options
 * parsed (no operands) and the output files checked. */
static void picture_args_parse(const cli_command *c, int argc, char **argv, picture_args *p)
{
    memset(p, 0, sizeof *p);
    p->cmd = c->name;
    p->from = p->to = p->image = -1;
    p->dims[0] = p->dims[1] = -1;
    model_args_init(&p->ma);
    int first = cli_parse(c, argc, argv, take_picture, p);
    if (first < argc) usage_error(c->name, "unexpected argument '%s'", argv[first]);
    check_output("-o", p->out);
    if (p->plot) check_output("--plot", p->plot);
    static const char *const in_flags[] = {"--model", "--data", "--from-image", "--to-image"};
    const char *ins[] = {p->ma.model, p->ma.data, p->files[0], p->files[1]};
    for (int i = 0; i < 4; i++) {
        check_not_input("-o", p->out, in_flags[i], ins[i]);
        if (p->plot) check_not_input("--plot", p->plot, in_flags[i], ins[i]);
    }
}

#define OUT_OPT(file, what) {"-o", P_OUT, "FILE", what, file, NULL}
#define SCALE_OPT(k) {"--scale", P_SCALE, "K", "draw each pixel KxK", k, NULL}

/* ---------------------------------------------------------- interpolate */

static const cli_opt interpolate_opts[] = {
    MODEL_OPTS,
    {"--from", P_FROM, "I", "test image where the path starts", NULL, "required, or --from-image"},
    {"--to", P_TO, "J", "test image where it ends", NULL, "required, or --to-image"},
    {"--from-image", P_FROM_IMAGE, "FILE", "a PNG of the model's size instead of --from (colour\nis made grey for a 1-channel model)", NULL, NULL},
    {"--to-image", P_TO_IMAGE, "FILE", "a PNG instead of --to", NULL, NULL},
    {"--steps", P_STEPS, "N", "decoded points, both ends included (2..200)", "10", NULL},
    {"--slerp", P_SLERP, NULL, "spherical instead of linear interpolation", NULL, NULL},
    OUT_OPT("interpolate.png", "output PNG"),
    SCALE_OPT("2"),
    CLI_END};

const cli_command interpolate_cmd = {
    "interpolate",
    "decode the path between two test images' codes (PNG strip)",
    "usage: vae interpolate --model M --from I --to J [options]\n"
    "       vae interpolate --model M --from-image A.png --to-image B.png [options]\n"
    "Decodes the path between the codes (encoder means) of test images I and J\n"
    "into a strip: image I, the decoded points from I's code to J's, image J.\n",
    interpolate_opts, NULL};

int cmd_interpolate(int argc, char **argv)
{
    const char *cmd = "interpolate";
    picture_args pa;
    picture_args_parse(&interpolate_cmd, argc, argv, &pa);
    const char *out = pa.out, *const *files = pa.files;
    long from = pa.from, to = pa.to;
    int steps = pa.steps, slerp = pa.slerp, scale = pa.scale;
    if (from >= 0 && files[0]) usage_error(cmd, "give --from or --from-image, not both");
    if (to >= 0 && files[1]) usage_error(cmd, "give --to or --to-image, not both");
    if ((from < 0 && !files[0]) || (to < 0 && !files[1]))
        usage_error(cmd, "--from and --to (or --from-image and --to-image) are required");
    vae_model *m = model_load(cmd, &pa.ma, 256);
    const vae_config *cfg = vae_model_config(m);
    int D = vae_model_input_size(m), d = cfg->latent, n = steps + 2;
    float *x = xmalloc((size_t)2 * D * sizeof *x), *mu = xmalloc((size_t)2 * d * sizeof *mu);
    vae_dataset *ds = NULL;
    if (from >= 0 || to >= 0) ds = model_split(cmd, &pa.ma, m, VAE_SPLIT_TEST); // files need none
    int label = 0; // a CVAE's path keeps --from's class
    for (int e = 0; e < 2; e++) {
        long i = e ? to : from;
        if (files[e]) {
            read_image_file(e ? "--to-image" : "--from-image", files[e], cfg->channels, cfg->height,
                            cfg->width, x + (size_t)e * D);
        } else {
            uint32_t k = image_index(ds, e ? "--to" : "--from", i);
            vae_dataset_batch(ds, &k, 1, VAE_BINARIZE_NONE, 0, NULL, x + (size_t)e * D);
            if (!e) label = image_label(m, ds, k);
        }
    }
    encode_images(m, x, 2, label, mu);
    float *z = xmalloc((size_t)steps * d * sizeof *z), *tiles = xmalloc((size_t)n * D * sizeof *tiles);
    for (int k = 0; k < steps; k++)
        path_point(mu, mu + d, d, (double)k / (steps - 1), slerp, z + (size_t)k * d);
    memcpy(tiles, x, (size_t)D * sizeof *tiles);
    decode_all(m, z, steps, label, tiles + D);
    memcpy(tiles + (size_t)(n - 1) * D, x + D, (size_t)D * sizeof *tiles);

    // title, a label over each tile, the strip
    int gw, gh, tw = cfg->width * scale + BORDER;
    grid_size(n, cfg->height, cfg->width, n, BORDER, scale, &gw, &gh);
    int W = gw + 32 < 400 ? 400 : gw + 32, H = gh + 80, x0 = (W - gw) / 2, y0 = 62;
    figure *f = fig_new(W, H);
    char buf[320], ends[2][64];
    for (int e = 0; e < 2; e++) {
        if (files[e]) { // printable ASCII only: cairo refuses text that is not UTF-8
            const char *b = base_name(files[e]);
            size_t k = 0;
            for (; b[k] && k < 40; k++) ends[e][k] = b[k] >= 0x20 && b[k] < 0x7f ? b[k] : '?';
            ends[e][k] = 0;
        }
        else snprintf(ends[e], sizeof ends[e], "#%ld", e ? to : from);
    }
    snprintf(buf, sizeof buf, "%s interpolation: %s%s \xe2\x86\x92 %s",
             slerp ? "spherical" : "linear", files[0] ? "" : "test image ", ends[0], ends[1]);
    fig_text(f, W / 2.0, 20, buf, 15, 0, 0, 1);
    int every = label_every(n, tw, 46);
    for (int k = 0; k < n; k++) {
        double cx = x0 + BORDER + k * tw + (tw - BORDER) / 2.0;
        if (k == 0 || k == n - 1) snprintf(buf, sizeof buf, "%.8s", ends[k != 0]); // fits a tile
        else if ((k - 1) % every == 0 || k == n - 2) snprintf(buf, sizeof buf, "%.2f", (double)(k - 1) / (steps - 1));
        else continue;
        fig_text(f, cx, y0 - 12, buf, 11, 0, 0, k == 0 || k == n - 1);
    }
    fig_text(f, W / 2.0, y0 + gh + 10, "t along the path (ends: the real images)", 11, 0, 0, 0);
    fig_tiles(f, x0, y0, tiles, n, cfg->channels, cfg->height, cfg->width, n, BORDER, scale);
    fig_save(f, out);
    if (ds) report_data(&pa.ma.dargs, NULL, ds);
    fprintf(stderr, "wrote %s\n", out);
    fig_free(f);
    free(x), free(mu), free(z), free(tiles);
    vae_dataset_free(ds);
    vae_model_free(m);
    return 0;
}

/* ------------------------------------------------------------ traverse */

static const cli_opt traverse_opts[] = {
    MODEL_OPTS,
    {"--image", P_IMAGE, "I", "test image whose code is the centre", NULL, "none: z = 0"},
    {"--range", P_RANGE, "R", "the values go from -R to R", "3", NULL},
    {"--steps", P_STEPS, "N", "values per row (2..100)", "11", NULL},
    {"--rows", P_ROWS, "K", "only the K dimensions with the largest KL", "64", "all, at most 64"},
    OUT_OPT("traverse.png", "output PNG"),
    SCALE_OPT("1"),
    CLI_END};

const cli_command traverse_cmd = {
    "traverse",
    "vary each latent dimension in turn, by KL (PNG grid)",
    "usage: vae traverse --model M [options]\n"
    "One row per latent dimension, most informative (largest KL over the test\n"
    "set) first: the dimension runs from -R to R while the others stay at the\n"
    "image's code (encoder mean), or at 0 without --image.\n",
    traverse_opts, NULL};

int cmd_traverse(int argc, char **argv)
{
    const char *cmd = "traverse";
    picture_args pa;
    picture_args_parse(&traverse_cmd, argc, argv, &pa);
    const char *out = pa.out;
    long image = pa.image;
    double range = pa.range;
    int steps = pa.steps, scale = pa.scale, rows = pa.rows;
    vae_model *m = model_load(cmd, &pa.ma, 256);
    vae_dataset *ds = model_split(cmd, &pa.ma, m, VAE_SPLIT_TEST);
    const vae_config *cfg = vae_model_config(m);
    int D = vae_model_input_size(m), d = cfg->latent, label = 0;
    float *centre = xmalloc((size_t)d * sizeof *centre);
    for (int j = 0; j < d; j++) centre[j] = 0;
    if (image >= 0) {
        uint32_t i = image_index(ds, "--image", image);
        float *x = xmalloc((size_t)D * sizeof *x);
        vae_dataset_batch(ds, &i, 1, VAE_BINARIZE_NONE, 0, NULL, x);
        label = image_label(m, ds, i);
        encode_images(m, x, 1, label, centre);
        free(x);
    }
    double *kl = xmalloc((size_t)d * sizeof *kl);
    int *order = xmalloc((size_t)d * sizeof *order);
    test_kl(m, ds, kl);
    order_by_kl(kl, d, order);
    if (rows > d) rows = d;
    long n = (long)rows * steps;
    float *z = xmalloc((size_t)n * d * sizeof *z), *tiles = xmalloc((size_t)n * D * sizeof *tiles);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < steps; k++) {
            float *zz = z + ((size_t)r * steps + k) * d;
            memcpy(zz, centre, (size_t)d * sizeof *zz);
            zz[order[r]] = (float)(-range + 2 * range * k / (steps - 1));
        }
    decode_all(m, z, n, label, tiles);

    // title, value of each column, "z_j KL" beside each row, the grid
    int gw, gh, tw = cfg->width * scale + BORDER, th = cfg->height * scale + BORDER;
    grid_size((int)n, cfg->height, cfg->width, steps, BORDER, scale, &gw, &gh);
    int L = 110, T = 64, W = L + gw + 16 < 440 ? 440 : L + gw + 16, H = T + gh + 16;
    L += (W - (L + gw + 16)) / 2; // a small grid sits in the middle
    figure *f = fig_new(W, H);
    char buf[160];
    char top[48] = "";
    if (rows < d) snprintf(top, sizeof top, ", top %d of %d dimensions", rows, d);
    if (image >= 0) snprintf(buf, sizeof buf, "traversal around test image %ld's code%s", image, top);
    else snprintf(buf, sizeof buf, "traversal around z = 0%s", top);
    fig_text(f, W / 2.0, 18, buf, 15, 0, 0, 1);
    int every = label_every(steps, tw, 34);
    for (int k = 0; k < steps; k++) {
        if (k % every && k != steps - 1) continue;
        snprintf(buf, sizeof buf, "%.3g", -range + 2 * range * k / (steps - 1));
        fig_text(f, L + BORDER + k * tw + (tw - BORDER) / 2.0, T - 12, buf, 11, 0, 0, 0);
    }
    fig_text(f, L - 8, T - 12, "value:", 11, 1, 0, 0);
    fig_text(f, L - 8, T - 32, "dim (KL nats)", 11, 1, 0, 0);
    int rows_every = label_every(rows, th, 14);
    for (int r = 0; r < rows; r += rows_every) {
        snprintf(buf, sizeof buf, "z%d (%.2f)", order[r], kl[order[r]]);
        fig_text(f, L - 8, T + BORDER + r * th + (th - BORDER) / 2.0, buf, 11, 1, 0, 0);
    }
    fig_tiles(f, L, T, tiles, (int)n, cfg->channels, cfg->height, cfg->width, steps, BORDER, scale);
    fig_save(f, out);
    report_data(&pa.ma.dargs, NULL, ds);
    fprintf(stderr, "wrote %s\n", out);
    fig_free(f);
    free(centre), free(kl), free(order), free(z), free(tiles);
    vae_dataset_free(ds);
    vae_model_free(m);
    return 0;
}

/* ------------------------------------------------------------ manifold */

static const cli_opt manifold_opts[] = {
    MODEL_OPTS,
    {"--n", P_GRID, "N", "grid size (2..100)", "20", NULL},
    {"--dims", P_DIMS, "A,B", "the two dimensions, from 0", NULL,
     "0,1 for a 2-D latent; else the\ntwo with the largest KL over the test split"},
    OUT_OPT("manifold.png", "output PNG"),
    SCALE_OPT("1"),
    CLI_END};

const cli_command manifold_cmd = {
    "manifold",
    "decode a 2-D grid of normal quantiles (PNG grid)",
    "usage: vae manifold --model M [options]\n"
    "Decodes an N x N grid of codes: two latent dimensions take the inverse\n"
    "normal CDF of evenly spaced points (i + 1/2)/N in (0,1), the others are 0\n"
    "(Kingma & Welling's figure). The latent must have at least 2 dimensions.\n",
    manifold_opts, NULL};

int cmd_manifold(int argc, char **argv)
{
    const char *cmd = "manifold";
    picture_args pa;
    picture_args_parse(&manifold_cmd, argc, argv, &pa);
    const char *out = pa.out, *model = pa.ma.model;
    int n = pa.grid, scale = pa.scale, da = pa.dims[0], db = pa.dims[1];
    vae_model *m = model_load(cmd, &pa.ma, 256);
    const vae_config *cfg = vae_model_config(m);
    int D = vae_model_input_size(m), d = cfg->latent;
    if (d < 2)
        die("%s: manifold needs a latent space of at least 2 dimensions; this model has %d", model, d);
    if (da >= d || db >= d)
        die("--dims %d,%d: this model's latent dimensions are 0..%d", da, db, d - 1);
    double *kl = NULL;
    if (da < 0 && d == 2) da = 0, db = 1;
    else if (da < 0) { // the two most informative dimensions, larger KL on x
        vae_dataset *ds = model_split(cmd, &pa.ma, m, VAE_SPLIT_TEST);
        kl = xmalloc((size_t)d * sizeof *kl);
        int *order = xmalloc((size_t)d * sizeof *order);
        test_kl(m, ds, kl);
        order_by_kl(kl, d, order);
        da = order[0], db = order[1];
        report_data(&pa.ma.dargs, NULL, ds);
        free(order);
        vae_dataset_free(ds);
    }
    long cnt = (long)n * n;
    float *z = xmalloc((size_t)cnt * d * sizeof *z), *tiles = xmalloc((size_t)cnt * D * sizeof *tiles);
    double *q = xmalloc((size_t)n * sizeof *q);
    for (int i = 0; i < n; i++) q[i] = norm_quantile((i + 0.5) / n);
    for (int r = 0; r < n; r++) // row 0 at the top holds the largest z_b
        for (int k = 0; k < n; k++) {
            float *zz = z + ((size_t)r * n + k) * d;
            for (int j = 0; j < d; j++) zz[j] = 0;
            zz[da] = (float)q[k];
            zz[db] = (float)q[n - 1 - r];
        }
    decode_all(m, z, cnt, 0, tiles);

    // the grid with z values as ticks on the bottom and left
    int gw, gh, tw = cfg->width * scale + BORDER;
    grid_size((int)cnt, cfg->height, cfg->width, n, BORDER, scale, &gw, &gh);
    int L = 86, T = 44, W = L + gw + 20 < 420 ? 420 : L + gw + 20, H = T + gh + 64;
    L += (W - (L + gw + 20)) / 2; // a small grid sits in the middle
    figure *f = fig_new(W, H);
    char buf[160];
    snprintf(buf, sizeof buf, "decoded \xce\xa6\xe2\x81\xbb\xc2\xb9 grid, %d\xc3\x97%d%s", n, n,
             d > 2 ? ", other dimensions at 0" : "");
    fig_text(f, W / 2.0, 20, buf, 14, 0, 0, 1);
    int every = label_every(n, tw, 40);
    for (int i = 0; i < n; i += every) {
        snprintf(buf, sizeof buf, "%.2f", q[i]);
        double cx = L + BORDER + i * tw + (tw - BORDER) / 2.0;
        fig_text(f, cx, T + gh + 14, buf, 11, 0, 0, 0);
        double cy = T + BORDER + (n - 1 - i) * tw + (tw - BORDER) / 2.0;
        fig_text(f, L - 6, cy, buf, 11, 1, 0, 0);
    }
    if (kl) snprintf(buf, sizeof buf, "z%d (KL %.2f nats)", da, kl[da]);
    else snprintf(buf, sizeof buf, "z%d", da);
    fig_text(f, L + gw / 2.0, T + gh + 38, buf, 14, 0, 0, 0);
    if (kl) snprintf(buf, sizeof buf, "z%d (KL %.2f nats)", db, kl[db]);
    else snprintf(buf, sizeof buf, "z%d", db);
    fig_text(f, L - 52, T + gh / 2.0, buf, 14, 0, 90, 0);
    fig_tiles(f, L, T, tiles, (int)cnt, cfg->channels, cfg->height, cfg->width, n, BORDER, scale);
    fig_save(f, out);
    fprintf(stderr, "wrote %s\n", out);
    fig_free(f);
    free(kl), free(z), free(tiles), free(q);
    vae_model_free(m);
    return 0;
}

/* --------------------------------------------------------------- embed */

static const cli_opt embed_opts[] = {
    MODEL_OPTS,
    {"-n", P_LIMIT, "N", "the first N test images", NULL, "all"},
    OUT_OPT("codes.csv", "output CSV"),
    {"--plot", P_PLOT, "FILE", "also draw the scatter plot as PNG", NULL, "none"},
    CLI_END};

const cli_command embed_cmd = {
    "embed",
    "test-set latent codes as CSV, and a scatter plot by label",
    "usage: vae embed --model M [options]\n"
    "Writes the latent means of the test images as CSV (index, label, z0..)\n"
    "and, with --plot, a scatter plot coloured by label: z0 against z1 for a\n"
    "2-D latent, the first two principal components otherwise.\n",
    embed_opts, NULL};

/* Fashion-MNIST's class names, used when the data path says it is that (a
 * PNG folder's class names are its sub-folders'). */
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};

static int is_fashion(const char *path)
{
    return strcasestr(path, "fashion") || strcasestr(path, "fmnist");
}

/* The scatter plot of the n points xy (n x 2) coloured by label: the codes
 * of a 2-D latent (d = 2), else their principal components (expl: the share
 * of the variance each holds). */
static figure *embedding_plot(const vae_dataset *ds, const uint8_t *labels, long n, int d,
                              const double *xy, const double expl[2])
{
    const int W = 860, H = 660;
    axes a;
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            double v = xy[i * 2 + k];
            if (v < lo[k]) lo[k] = v;
            if (v > hi[k]) hi[k] = v;
        }
    figure *f = fig_new(W, H);
    axes_init(&a, 90, 50, 560, 540, lo[0], hi[0], lo[1], hi[1], 0);
    char xl[96], yl[96], title[128];
    if (d == 2) snprintf(xl, sizeof xl, "z0"), snprintf(yl, sizeof yl, "z1");
    else {
        snprintf(xl, sizeof xl, "PC1 (%.1f%% of the variance of the %d-D codes)", 100 * expl[0], d);
        snprintf(yl, sizeof yl, "PC2 (%.1f%%)", 100 * expl[1]);
    }
    snprintf(title, sizeof title, "latent means of %ld test images", n);
    axes_draw(f, &a, xl, yl, title);
    double *px = xmalloc((size_t)n * sizeof *px), *py = xmalloc((size_t)n * sizeof *py);
    int nclass = 0;
    for (long i = 0; labels && i < n; i++) if (labels[i] + 1 > nclass) nclass = labels[i] + 1;
    // one class at a time would paint the last class over the rest; in
    // data order the classes mix as they lie
    for (long i = 0; i < n; i++) {
        px[0] = xy[i * 2], py[0] = xy[i * 2 + 1];
        plot_rgb col = labels ? plot_palette[labels[i] % 10] : plot_palette[0];
        plot_points(f, &a, px, py, 1, col, 1.8, 0.55);
    }
    if (labels) {
        // 10 colours: with more labels they repeat, and each legend row
        // lists the labels that share its colour (k, k+10, ...)
        legend_entry e[10];
        char names[10][40];
        int rows = nclass < 10 ? nclass : 10;
        for (int k = 0; k < rows; k++) {
            const char *name = nclass > 10             ? NULL
                               : vae_dataset_class_name(ds, k) ? vae_dataset_class_name(ds, k)
                               : is_fashion(vae_dataset_path(ds)) ? fashion_names[k] : NULL;
            if (name) snprintf(names[k], sizeof names[k], "%d %.30s", k, name);
            else {
                int len = snprintf(names[k], sizeof names[k], "%d", k), l = k + 10;
                for (; l < nclass && len < 24; l += 10)
                    len += snprintf(names[k] + len, sizeof names[k] - len, ", %d", l);
                if (l < nclass) snprintf(names[k] + len, sizeof names[k] - len, ", ...");
            }
            e[k] = (legend_entry){names[k], plot_palette[k], 0, 0};
        }
        fig_text(f, 672, 50, "label", 13, -1, 0, 1);
        plot_legend_at(f, 670, 62, e, rows);
    }
    free(px), free(py);
    return f;
}

int cmd_embed(int argc, char **argv)
{
    const char *cmd = "embed";
    picture_args pa;
    picture_args_parse(&embed_cmd, argc, argv, &pa);
    const char *out = pa.out, *plot = pa.plot, *model = pa.ma.model;
    long limit = pa.limit;
    vae_model *m = model_load(cmd, &pa.ma, 256);
    int d = vae_model_config(m)->latent;
    if (plot && d < 2)
        die("%s: --plot needs a latent space of at least 2 dimensions; this model has %d", model, d);
    vae_dataset *ds = model_split(cmd, &pa.ma, m, VAE_SPLIT_TEST);
    long n = (long)vae_dataset_count(ds);
    if (limit && limit < n) n = limit;
    const uint8_t *labels = vae_dataset_labels(ds);
    float *mu = xmalloc((size_t)n * d * sizeof *mu);
    encode_first(m, ds, n, mu, NULL);

    // everything is computed before any file is written
    double *xy = xmalloc((size_t)n * 2 * sizeof *xy), expl[2] = {0, 0};
    if (plot && d == 2)
        for (long i = 0; i < 2 * n; i++) xy[i] = mu[i];
    else if (plot) {
        int rc = pca2(mu, n, d, xy, expl);
        if (rc) die("%s: PCA of the codes failed (%s)", model,
                    rc == VAE_EINVAL ? "needs at least 2 images" : vae_strerror(rc));
    }
    // CSV: a header, then one row per image; %.9g keeps floats exact
    size_t cap = (size_t)n * (d * 16 + 24) + 64 + (size_t)d * 8, len = 0;
    char *csv = xmalloc(cap);
    len += (size_t)snprintf(csv + len, cap - len, "index,label");
    for (int j = 0; j < d; j++) len += (size_t)snprintf(csv + len, cap - len, ",z%d", j);
    csv[len++] = '\n';
    for (long i = 0; i < n; i++) {
        if (labels) len += (size_t)snprintf(csv + len, cap - len, "%ld,%d", i, labels[i]);
        else len += (size_t)snprintf(csv + len, cap - len, "%ld,", i);
        for (int j = 0; j < d; j++)
            len += (size_t)snprintf(csv + len, cap - len, ",%.9g", (double)mu[(size_t)i * d + j]);
        csv[len++] = '\n';
    }
    figure *f = plot ? embedding_plot(ds, labels, n, d, xy, expl) : NULL;
    vae_error err;
    if (vae_write_file(out, csv, len, &err)) die("%s", err.msg);
    report_data(&pa.ma.dargs, NULL, ds);
    fprintf(stderr, "wrote %s (%ld rows)\n", out, n);
    if (f) {
        fig_save(f, plot);
        fprintf(stderr, "wrote %s\n", plot);
        fig_free(f);
    }
    free(mu), free(xy), free(csv);
    vae_dataset_free(ds);
    vae_model_free(m);
    return 0;
}

/* -------------------------------------------------------------- curves */

static const cli_opt curves_opts[] = {OUT_OPT("curves.png", "output PNG"), CLI_END};

const cli_command curves_cmd = {
    "curves",
    "training curves from a run's metrics.jsonl (PNG plot)",
    "usage: vae curves METRICS [-o FILE]\n"
    "Draws the training curves of a run from its metrics log (metrics.jsonl, as\n"
    "vae train writes it; a run directory works too): loss and reconstruction,\n"
    "KL, and beta when it changes, for training and test sets per epoch.\n",
    curves_opts, NULL};

#define MAX_LOG_BYTES (64L << 20)

enum { K_EPOCH, K_BETA, K_TRL, K_TRR, K_TRK, K_TEL, K_TER, K_TEK, NKEYS };
static const char *const log_keys[NKEYS] = {"epoch",     "beta",      "train_loss", "train_rec",
                                            "train_kl",  "test_loss", "test_rec",   "test_kl"};

/* Value of "key": in a one-line JSON object, or NAN when it is missing or
 * not a finite number. */
static double json_number(const char *line, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return NAN;
    char *end;
    errno = 0;
    double v = strtod(p + strlen(pat), &end);
    if (end == p + strlen(pat) || errno || (*end != ',' && *end != '}')) return NAN;
    return v;
}

/* Reads a metrics log into cols[key][epoch]; dies with one line naming the
 * file (and line) when it is not one. */
static int read_metrics(const char *path, double *cols[NKEYS])
{
    void *file;
    size_t len;
    vae_error err;
    int rc = vae_read_file(path, MAX_LOG_BYTES, &file, &len, &err); // a regular file only
    if (rc == VAE_EUNSUPPORTED) die("%s: larger than %ld MiB, not a metrics log", path, MAX_LOG_BYTES >> 20);
    if (rc == VAE_ENOENT) die("%s: cannot open the metrics log: %s", path, strerror(ENOENT));
    if (rc) die("%s", err.msg);
    char *text = file;
    if (memchr(text, 0, len)) die("%s: binary data, not a metrics log (metrics.jsonl of vae train)", path);
    text[len] = 0;
    int n = 0, cap = 64, lineno = 0;
    for (int k = 0; k < NKEYS; k++) cols[k] = xmalloc((size_t)cap * sizeof **cols);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        const char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) continue;
        if (strncmp(s, "{\"epoch\":", 9) != 0 || !strchr(s, '}'))
            die("%s:%d: not a vae metrics log line (expected {\"epoch\":N,...} as vae train writes "
                "in metrics.jsonl)", path, lineno);
        if (n == cap) {
            cap *= 2;
            for (int k = 0; k < NKEYS; k++) {
                cols[k] = realloc(cols[k], (size_t)cap * sizeof **cols);
                if (!cols[k]) die("out of memory");
            }
        }
        for (int k = 0; k < NKEYS; k++) {
            double v = json_number(s, log_keys[k]);
            if (!isfinite(v) && k != K_BETA) // beta is optional
                die("%s:%d: metrics line without a finite \"%s\"", path, lineno, log_keys[k]);
            cols[k][n] = v;
        }
        if (n > 0 && !(cols[K_EPOCH][n] > cols[K_EPOCH][n - 1]))
            die("%s:%d: epoch %g follows epoch %g; the log is out of order", path, lineno,
                cols[K_EPOCH][n], cols[K_EPOCH][n - 1]);
        n++;
    }
    free(text);
    if (n == 0) die("%s: no epochs logged (an empty metrics log)", path);
    return n;
}

static void range_of(double *lo, double *hi, const double *v, int n)
{
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

/* A panel of curves: cols ys[0..k) against the epochs, each with a style. */
static void curve_panel(figure *f, double px, const double *ep, int n, double *const *ys,
                        const legend_entry *e, int k, const char *ylabel, const char *title)
{
    axes a;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < k; i++) range_of(&lo, &hi, ys[i], n);
    axes_init(&a, px, 50, 440, 320, ep[0], ep[n - 1], lo, hi, 1);
    axes_draw(f, &a, "epoch", ylabel, title);
    // densified copies of the curves tell the legend where the lines run
    int dn = n > 1 ? (n - 1) * 8 + 1 : 1;
    double *lx = xmalloc((size_t)k * dn * sizeof *lx), *ly = xmalloc((size_t)k * dn * sizeof *ly);
    for (int i = 0; i < k; i++) {
        plot_line(f, &a, ep, ys[i], n, e[i].col, 2, e[i].dashed);
        for (int s = 0; s < dn; s++) {
            int j = n > 1 ? s / 8 : 0, jj = j + 1 < n ? j + 1 : j;
            double t = n > 1 ? (s % 8) / 8.0 : 0;
            lx[i * dn + s] = ep[j] + t * (ep[jj] - ep[j]);
            ly[i * dn + s] = ys[i][j] + t * (ys[i][jj] - ys[i][j]);
        }
    }
    plot_legend(f, &a, e, k, lx, ly, k * dn);
    free(lx), free(ly);
}

int cmd_curves(int argc, char **argv)
{
    const char *cmd = "curves", *in;
    picture_args pa;
    memset(&pa, 0, sizeof pa);
    pa.cmd = cmd;
    int first = cli_parse(&curves_cmd, argc, argv, take_picture, &pa);
    if (first + 1 != argc) usage_error(cmd, "expects exactly one metrics log (RUN/metrics.jsonl)");
    const char *out = pa.out;
    check_output("-o", out);
    in = path_arg(cmd, "METRICS", argv[first]);
    struct stat st;
    char *path = stat(in, &st) == 0 && S_ISDIR(st.st_mode) ? join(in, "metrics.jsonl") : strdup(in);
    if (!path) die("out of memory");
    check_not_input("-o", out, "METRICS", path);
    double *cols[NKEYS];
    int n = read_metrics(path, cols);
    int beta_varies = 0;
    for (int i = 1; i < n; i++)
        if (isfinite(cols[K_BETA][i]) && cols[K_BETA][i] != cols[K_BETA][0]) beta_varies = 1;
    int panels = 2 + beta_varies, W = 560 * panels + 20, H = 440;
    figure *f = fig_new(W, H);
    plot_rgb blue = plot_palette[0], orange = plot_palette[1], green = plot_palette[2],
             purple = plot_palette[4];
    char t1[96];
    if (isfinite(cols[K_BETA][0]) && !beta_varies && cols[K_BETA][0] == 1)
        snprintf(t1, sizeof t1, "loss (\xe2\x88\x92" "ELBO) and reconstruction");
    else if (isfinite(cols[K_BETA][0]) && !beta_varies)
        snprintf(t1, sizeof t1, "loss (rec + %g\xc2\xb7KL) and reconstruction", cols[K_BETA][0]);
    else snprintf(t1, sizeof t1, "loss (rec + \xce\xb2\xc2\xb7KL) and reconstruction");
    legend_entry e1[4] = {{"test loss", blue, 1, 0},
                          {"train loss", blue, 1, 1},
                          {"test reconstruction", orange, 1, 0},
                          {"train reconstruction", orange, 1, 1}};
    double *y1[4] = {cols[K_TEL], cols[K_TRL], cols[K_TER], cols[K_TRR]};
    curve_panel(f, 90, cols[K_EPOCH], n, y1, e1, 4, "nats per image", t1);
    legend_entry e2[2] = {{"test KL", green, 1, 0}, {"train KL", green, 1, 1}};
    double *y2[2] = {cols[K_TEK], cols[K_TRK]};
    curve_panel(f, 650, cols[K_EPOCH], n, y2, e2, 2, "nats per image", "KL(q(z|x) || p(z))");
    if (beta_varies) {
        legend_entry e3[1] = {{"\xce\xb2", purple, 1, 0}};
        double *y3[1] = {cols[K_BETA]};
        curve_panel(f, 1210, cols[K_EPOCH], n, y3, e3, 1, "\xce\xb2", "KL weight \xce\xb2");
    }
    fig_save(f, out);
    fprintf(stderr, "wrote %s (%d epochs)\n", out, n);
    fig_free(f);
    for (int k = 0; k < NKEYS; k++) free(cols[k]);
    free(path);
    return 0;
}
