/* perceptual.c - the perceptual reconstruction term's forward/backward pair
 * (perceptual.h): the squared distance between a frozen classifier's
 * feature maps of the target and of the decoder's mean, and its gradient at
 * the mean through the classifier's layers (their data gradients only). */
#include <string.h>

#include "nn/layers.h"
#include "nn/perceptual.h"

void vae__percep_init(vae__percep *p, int C, int H, int W, int conv1, int conv2, int hidden)
{
    memset(p, 0, sizeof *p);
    // the scoring classifier's shapes (model/classifier.c)
    vae__conv_geom_init(&p->g1, C, H, W, conv1, 3, 1, 1);
    vae__conv_geom_init(&p->g2, conv1, p->g1.OH, p->g1.OW, conv2, 3, 2, 1);
    p->F = conv2 * p->g2.OH * p->g2.OW;
    p->hidden = hidden;
}

/* How deep the passes go: 1 (conv1), 2 (conv2) or 3 (fc1). */
static int depth(const vae__percep *p)
{
    return p->layers & VAE__PERC_FC1 ? 3 : p->layers & VAE__PERC_CONV2 ? 2 : 1;
}

static size_t n1(const vae__percep *p) { return (size_t)p->g1.OC * p->g1.OH * p->g1.OW; }

/* The work area for `rows` images: the target's features (a1x, a2x, hx),
 * the mean's (a1, a2, h), the mean's gradients (d1, d2, dh), im2col scratch. */
typedef struct views {
    real *a1x, *a2x, *hx, *a1, *a2, *h, *d1, *d2, *dh, *col;
} views;

static views carve(const vae__percep *p, real *work, int rows)
{
    size_t r = (size_t)rows, s1 = r * n1(p), s2 = r * p->F, s3 = r * p->hidden;
    views v;
    v.a1x = work, v.a2x = v.a1x + s1, v.hx = v.a2x + s2;
    v.a1 = v.hx + s3, v.a2 = v.a1 + s1, v.h = v.a2 + s2;
    v.d1 = v.h + s3, v.d2 = v.d1 + s1, v.dh = v.d2 + s2;
    v.col = v.dh + s3;
    return v;
}

size_t vae__percep_work_size(const vae__percep *p, int rows)
{
    size_t c1 = vae__conv_col_size(&p->g1, rows), c2 = vae__conv_col_size(&p->g2, rows);
    return 3 * (size_t)rows * (n1(p) + (size_t)p->F + (size_t)p->hidden) + (c1 > c2 ? c1 : c2);
}

/* img (B, C*H*W) -> a1 (B, n1), a2 (B, F), h (B, hidden) after ReLU, as
 * deep as the term needs. */
static void features(const vae__percep *p, const real *img, real *a1, real *a2, real *h, int B,
                     real *col)
{
    int dep = depth(p);
    vae__conv2d_forward(a1, img, p->w1, p->b1, B, &p->g1, col);
    vae__relu_forward(a1, (size_t)B * n1(p));
    if (dep < 2) return;
    vae__conv2d_forward(a2, a1, p->w2, p->b2, B, &p->g2, col);
    vae__relu_forward(a2, (size_t)B * p->F);
    if (dep < 3) return;
    vae__linear_forward(h, a2, p->w3, p->b3, B, p->F, p->hidden);
    vae__relu_forward(h, (size_t)B * p->hidden);
}

static double sq_dist(const real *a, const real *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s;
}

double vae__percep_forward(const vae__percep *p, real *work, const real *x, const real *xhat,
                           int B, real *per_img)
{
    views v = carve(p, work, B);
    features(p, x, v.a1x, v.a2x, v.hx, B, v.col);
    features(p, xhat, v.a1, v.a2, v.h, B, v.col);
    size_t sz[3] = {n1(p), (size_t)p->F, (size_t)p->hidden};
    const real *mine[3] = {v.a1, v.a2, v.h}, *theirs[3] = {v.a1x, v.a2x, v.hx};
    double total = 0;
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int l = 0; l < 3; l++)
            if (p->layers & (1u << l))
                s += sq_dist(mine[l] + b * sz[l], theirs[l] + b * sz[l], sz[l]);
        s *= (double)p->weight;
        if (per_img) per_img[b] += (real)s;
        total += s;
    }
    return total;
}

/* d (n) = c (a - ax) when first, else d += c (a - ax): the layer's own
 * term's gradient, written or added to what came from above. */
static void add_diff(real *d, const real *a, const real *ax, real c, size_t n, int first)
{
    for (size_t i = 0; i < n; i++) d[i] = (first ? 0 : d[i]) + c * (a[i] - ax[i]);
}

void vae__percep_backward(const vae__percep *p, real *work, real *dxhat, int B, real scale)
{
    views v = carve(p, work, B);
    int dep = depth(p);
    real c = 2 * scale * p->weight; // d/da of weight * (a - ax)^2
    if (dep == 3) { // fc1 (B, hidden) -> conv2's output (B, F)
        add_diff(v.dh, v.h, v.hx, c, (size_t)B * p->hidden, 1);
        vae__relu_backward(v.dh, v.h, (size_t)B * p->hidden);
        vae__linear_backward_data(v.d2, v.dh, p->w3, B, p->F, p->hidden);
    }
    if (dep >= 2) { // conv2 (B, F) -> conv1's output (B, n1)
        if (p->layers & VAE__PERC_CONV2)
            add_diff(v.d2, v.a2, v.a2x, c, (size_t)B * p->F, dep == 2);
        vae__relu_backward(v.d2, v.a2, (size_t)B * p->F);
        vae__conv2d_backward(v.d1, NULL, NULL, v.d2, NULL, p->w2, B, &p->g2, v.col);
    }
    if (p->layers & VAE__PERC_CONV1) add_diff(v.d1, v.a1, v.a1x, c, (size_t)B * n1(p), dep == 1);
    vae__relu_backward(v.d1, v.a1, (size_t)B * n1(p));
    vae__conv2d_backward(dxhat, NULL, NULL, v.d1, NULL, p->w1, B, &p->g1, v.col);
}
