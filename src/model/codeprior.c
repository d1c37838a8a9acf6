/* codeprior.c - the PixelCNN prior over a VQ-VAE's code grids: a learned
 * embedding of each code, a 5x5 mask-A convolution (a cell sees only the
 * cells before it in raster order), 3x3 mask-B convolutions (and itself),
 * two 1x1 convolutions to K logits per cell; its training step, likelihood,
 * sampling and file. The convolutions are nn/conv.c's: a mask is weights
 * held at zero (started at zero, their gradient zeroed every step, so Adam
 * never moves them). The plain PixelCNN has a blind spot (cells up and to
 * the right that the stacked 3x3 masks never reach); the gated one (van den
 * Oord et al. 2016, pc.gated) has none: a vertical stack sees every row
 * above a cell, a horizontal stack the cells left of it on its row, fed the
 * vertical stack's features through a 1x1 convolution; each layer's output
 * is tanh(a) * sigmoid(b) of its two halves of channels, the horizontal
 * stack's after a 1x1 convolution and a residual connection. Its two
 * stacks are masked k x k convolutions too (the horizontal one's taps on
 * the centre row only): a 7x7 grid makes the wasted taps cheap. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"
#include "model/model.h"
#include "nn/adam.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "vae.h"

#define PRIOR_FORMAT "vae-prior"
#define MAX_CONV 36 /* mask A, up to 32 mask-B layers, two 1x1 */
#define MAX_GATED 8 /* gated layers: four convolutions each, then two 1x1 */

struct vae_prior {
    vae_prior_config pc;
    int n_conv, P, max_batch;
    vae__conv_geom geom[MAX_CONV];
    size_t w_off[MAX_CONV], b_off[MAX_CONV], emb_off, n_params;
    float *params, *grads, *adam_m, *adam_v, *mask; /* mask: 1 where a weight may be nonzero */
    float *x0, *dx0;                      /* (B, E, P) embedded codes and their gradient */
    float *act[MAX_CONV], *dact[MAX_CONV]; /* (B, OC, P) */
    float *col;
    /* gated: per layer the vertical stack's gated output and the horizontal
     * one's gate (B, C, P), the gradient reaching the vertical output; the
     * head's ReLU of the last horizontal output and its gradient; scratch */
    float *vout[MAX_GATED], *gh[MAX_GATED], *dvout[MAX_GATED], *hr, *dhr, *dg, *dtv, *dth;
    double *lse;                          /* (B, P) log-sum-exp of each cell's logits */
    vae_adam adam;
    long step;
    char **meta;
    vae_error err;
};

/* The file's name of convolution l: conv.l (plain); gated.i.{v,h,v2h,res}
 * for the four of gated layer i, out.0 and out.1 for the head (gated). */
static void tensor_name(const vae_prior *p, char *buf, size_t n, int l, int bias)
{
    static const char *part[] = {"v", "h", "v2h", "res"};
    const char *wb = bias ? "bias" : "weight";
    int L = p->pc.layers;
    if (!p->pc.gated) snprintf(buf, n, "conv.%d.%s", l, wb);
    else if (l < 4 * L) snprintf(buf, n, "gated.%d.%s.%s", l / 4, part[l % 4], wb);
    else snprintf(buf, n, "out.%d.%s", l - 4 * L, wb);
}

static int prior_error(vae_prior *p, int code, const char *msg)
{
    snprintf(p->err.msg, sizeof p->err.msg, "%s", msg);
    p->err.code = code;
    return code;
}

void vae_prior_config_default(vae_prior_config *pc, const vae_config *vq)
{
    memset(pc, 0, sizeof *pc);
    pc->codebook = vq ? vq->codebook : 128;
    pc->grid_h = pc->grid_w = 7;
    if (vq) vae_config_vq_latent(vq, &pc->grid_h, &pc->grid_w);
    pc->embed = 32;
    pc->channels = 64;
    pc->layers = 4;
}

static int check_config(const vae_prior_config *c, vae_error *err)
{
    if (c->codebook < 2 || c->codebook > 65536)
        return vae__error(err, VAE_EINVAL, "prior: codebook size %d is outside 2..65536", c->codebook);
    if (c->grid_h < 1 || c->grid_h > 64 || c->grid_w < 1 || c->grid_w > 64)
        return vae__error(err, VAE_EINVAL, "prior: grid %dx%d is outside 1..64 a side", c->grid_h,
                          c->grid_w);
    if (c->embed < 1 || c->embed > 256)
        return vae__error(err, VAE_EINVAL, "prior: embedding %d is outside 1..256", c->embed);
    if (c->channels < 1 || c->channels > 1024)
        return vae__error(err, VAE_EINVAL, "prior: channels %d are outside 1..1024", c->channels);
    if (c->gated != 0 && c->gated != 1)
        return vae__error(err, VAE_EINVAL, "prior: gated is %d, not 0 or 1", c->gated);
    if (c->gated && (c->layers < 1 || c->layers > MAX_GATED))
        return vae__error(err, VAE_EINVAL, "prior: gated layers %d are outside 1..%d", c->layers,
                          MAX_GATED);
    if (c->layers < 0 || c->layers > MAX_CONV - 4)
        return vae__error(err, VAE_EINVAL, "prior: layers %d are outside 0..%d", c->layers,
                          MAX_CONV - 4);
    return VAE_OK;
}

/* Tap (i, j) of a k x k kernel may be nonzero: the cells above the centre's
 * row, and those left of it (mask A) or up to it (mask B) on its row. */
int vae__prior_tap_open(int i, int j, int k, int type_b)
{
    int c = k / 2;
    return i < c || (i == c && (j < c || (type_b && j == c)));
}

/* Tap (i, j) of gated convolution l may be nonzero: the vertical stack
 * (l % 4 == 0) sees the rows above the centre (mask A, the first layer) or
 * up to it (mask B: its features at a row already see only rows above); the
 * horizontal stack (l % 4 == 1) the centre row's taps left of the centre
 * (A) or up to it (B). */
static int gated_tap_open(int l, int i, int j, int k)
{
    int c = k / 2, type_b = l >= 4;
    if (l % 4 == 0) return i < c || (type_b && i == c);
    return i == c && (j < c || (type_b && j == c));
}

int vae_prior_create(const vae_prior_config *pc, int max_batch, uint64_t seed, vae_prior **out,
                     vae_error *err)
{
    *out = NULL;
    int rc = check_config(pc, err);
    if (rc) return rc;
    if (max_batch < 1 || max_batch > 65536)
        return vae__error(err, VAE_EINVAL, "prior: batch size %d is outside 1..65536", max_batch);
    vae_prior *p = calloc(1, sizeof *p);
    if (!p) return vae__error(err, VAE_ENOMEM, "out of memory");
    p->pc = *pc;
    p->max_batch = max_batch;
    p->P = pc->grid_h * pc->grid_w;
    int L = pc->layers, G = pc->gated;
    p->n_conv = G ? 4 * L + 2 : L + 3;
    int H = pc->grid_h, W = pc->grid_w, C = pc->channels;
    size_t off = 0, acts = 0, col = 0;
    for (int l = 0; l < p->n_conv; l++) {
        int in, outc, k;
        if (G && l < 4 * L) { // gated layer l / 4: v, h (k x k), v2h (1x1 2C), res (1x1 C)
            int kind = l % 4;
            in = kind == 3 ? C : kind == 2 ? 2 * C : l < 4 ? pc->embed : C;
            outc = kind == 3 ? C : 2 * C;
            k = kind >= 2 ? 1 : l < 4 ? 5 : 3;
        } else {
            in = l == 0 ? pc->embed : C, outc = l == p->n_conv - 1 ? pc->codebook : C;
            k = G ? 1 : l == 0 ? 5 : l <= L ? 3 : 1;
        }
        vae__conv_geom_init(&p->geom[l], in, H, W, outc, k, 1, k / 2);
        p->w_off[l] = off, off += (size_t)outc * in * k * k;
        p->b_off[l] = off, off += (size_t)outc;
        acts += (size_t)max_batch * outc * p->P;
        size_t cs = vae__conv_col_size(&p->geom[l], max_batch);
        if (cs > col) col = cs;
    }
    p->emb_off = off, off += (size_t)pc->codebook * pc->embed;
    p->n_params = off;
    size_t nx = (size_t)max_batch * pc->embed * p->P;
    p->params = calloc(off, sizeof(float));
    p->grads = calloc(off, sizeof(float));
    p->adam_m = calloc(off, sizeof(float));
    p->adam_v = calloc(off, sizeof(float));
    p->mask = calloc(off, sizeof(float));
    // gated: vout, gh, dvout per layer, hr, dhr, dg (C each), dtv, dth (the wider of E, C)
    size_t nc = (size_t)max_batch * C * p->P;
    size_t nw = (size_t)max_batch * (C > pc->embed ? C : pc->embed) * p->P;
    size_t gated = G ? (3 * (size_t)L + 3) * nc + 2 * nw : 0;
    p->x0 = calloc(2 * nx + 2 * acts + col + gated, sizeof(float));
    p->lse = calloc((size_t)max_batch * p->P, sizeof(double));
    if (!p->params || !p->grads || !p->adam_m || !p->adam_v || !p->mask || !p->x0 || !p->lse) {
        vae_prior_free(p);
        return vae__error(err, VAE_ENOMEM, "out of memory for a prior of %zu parameters", off);
    }
    float *a = p->x0 + nx;
    p->dx0 = a, a += nx;
    for (int l = 0; l < p->n_conv; l++) {
        size_t n = (size_t)max_batch * p->geom[l].OC * p->P;
        p->act[l] = a, a += n;
        p->dact[l] = a, a += n;
    }
    p->col = a, a += col;
    if (G) {
        for (int i = 0; i < L; i++) {
            p->vout[i] = a, a += nc;
            p->gh[i] = a, a += nc;
            p->dvout[i] = a, a += nc;
        }
        p->hr = a, a += nc;
        p->dhr = a, a += nc;
        p->dg = a, a += nc;
        p->dtv = a, a += nw;
        p->dth = a;
    }
    vae_adam_default(&p->adam);

    vae_rng init;
    vae_rng_seed(&init, seed);
    for (int l = 0; l < p->n_conv; l++) {
        const vae__conv_geom *g = &p->geom[l];
        double bound = 1.0 / sqrt((double)g->C * g->K * g->K);
        for (int o = 0; o < g->OC; o++)
            for (int c = 0; c < g->C; c++)
                for (int i = 0; i < g->K; i++)
                    for (int j = 0; j < g->K; j++) {
                        size_t at = p->w_off[l] + (((size_t)o * g->C + c) * g->K + i) * g->K + j;
                        // 1x1 layers see only their own cell's features: open
                        int open = g->K == 1 || (G ? gated_tap_open(l, i, j, g->K)
                                                   : vae__prior_tap_open(i, j, g->K, l > 0));
                        p->mask[at] = (float)open;
                        p->params[at] = open ? (float)((2 * vae_rng_uniform(&init) - 1) * bound) : 0;
                    }
        for (int o = 0; o < g->OC; o++) {
            p->mask[p->b_off[l] + o] = 1;
            p->params[p->b_off[l] + o] = (float)((2 * vae_rng_uniform(&init) - 1) * bound);
        }
    }
    for (size_t i = p->emb_off; i < off; i++) {
        p->mask[i] = 1;
        p->params[i] = (float)vae_rng_normal(&init);
    }
    *out = p;
    return VAE_OK;
}

void vae_prior_free(vae_prior *p)
{
    if (!p) return;
    free(p->params), free(p->grads), free(p->adam_m), free(p->adam_v), free(p->mask);
    free(p->x0), free(p->lse);
    vae__meta_free(p->meta);
    free(p);
}

const char *vae_prior_errmsg(const vae_prior *p) { return p ? p->err.msg : "no prior"; }
const vae_prior_config *vae_prior_get_config(const vae_prior *p) { return &p->pc; }
size_t vae_prior_num_params(const vae_prior *p) { return p->n_params; }
void vae_prior_set_adam(vae_prior *p, const vae_adam *a) { p->adam = *a; }

static int check_codes(vae_prior *p, const int32_t *codes, int B, int max)
{
    if (!codes || B < 1 || B > max) {
        snprintf(p->err.msg, sizeof p->err.msg, "prior: batch of %d grids: need 1..%d and codes",
                 B, max);
        p->err.code = VAE_EINVAL;
        return VAE_EINVAL;
    }
    for (size_t i = 0; i < (size_t)B * p->P; i++)
        if (codes[i] < 0 || codes[i] >= p->pc.codebook) {
            snprintf(p->err.msg, sizeof p->err.msg, "prior: code %d at %zu is outside 0..%d",
                     codes[i], i, p->pc.codebook - 1);
            p->err.code = VAE_EINVAL;
            return VAE_EINVAL;
        }
    return VAE_OK;
}

/* act[l] = convolution l of in. */
static void conv(vae_prior *p, int l, const float *in, int B)
{
    vae__conv2d_forward(p->act[l], in, p->params + p->w_off[l], p->params + p->b_off[l], B,
                        &p->geom[l], p->col);
}

/* Convolution l's weight and bias gradients, and its input's into din
 * (written), from dout; in: its input. */
static void conv_back(vae_prior *p, int l, float *din, const float *dout, const float *in, int B)
{
    vae__conv2d_backward(din, p->grads + p->w_off[l], p->grads + p->b_off[l], dout, in,
                         p->params + p->w_off[l], B, &p->geom[l], p->col);
}

/* out (B, C, P) = tanh(a) * sigmoid(b), a and b the two halves of each
 * image's channels of pre (B, 2C, P). */
static void gate(float *out, const float *pre, int B, int C, int P)
{
    size_t n = (size_t)C * P;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            double t = tanh(pre[2 * n * b + i]), g = 1 / (1 + exp(-pre[2 * n * b + n + i]));
            out[n * b + i] = (float)(t * g);
        }
}

/* dpre (B, 2C, P) of the gate from dout (B, C, P), or 0 where dout is NULL. */
static void gate_back(float *dpre, const float *pre, const float *dout, int B, int C, int P)
{
    size_t n = (size_t)C * P;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            double t = tanh(pre[2 * n * b + i]), g = 1 / (1 + exp(-pre[2 * n * b + n + i]));
            double d = dout ? dout[n * b + i] : 0;
            dpre[2 * n * b + i] = (float)(d * (1 - t * t) * g);
            dpre[2 * n * b + n + i] = (float)(d * t * g * (1 - g));
        }
}

/* The gated net's logits into act[last] from the embedded codes x0. Layer i's
 * convolutions are 4i (vertical, its output act[4i] the gate's input), 4i+1
 * (horizontal; act[4i+1] becomes the horizontal gate's input), 4i+2 (the
 * vertical features into the horizontal stack), 4i+3 (the 1x1 after the
 * horizontal gate; act[4i+3] is the layer's horizontal output). */
static void gated_forward(vae_prior *p, int B)
{
    int L = p->pc.layers, C = p->pc.channels, P = p->P;
    size_t n2 = (size_t)B * 2 * C * P, n = (size_t)B * C * P;
    const float *vin = p->x0, *hin = p->x0;
    for (int i = 0; i < L; i++) {
        int v = 4 * i, h = v + 1, vh = v + 2, r = v + 3;
        conv(p, v, vin, B);
        gate(p->vout[i], p->act[v], B, C, P);
        conv(p, h, hin, B);
        conv(p, vh, p->act[v], B);
        for (size_t j = 0; j < n2; j++) p->act[h][j] += p->act[vh][j];
        gate(p->gh[i], p->act[h], B, C, P);
        conv(p, r, p->gh[i], B);
        if (i > 0) // the residual connection, where the widths agree
            for (size_t j = 0; j < n; j++) p->act[r][j] += hin[j];
        vin = p->vout[i], hin = p->act[r];
    }
    memcpy(p->hr, hin, n * sizeof *p->hr);
    vae__act_forward(VAE_ACT_RELU, p->hr, n);
    conv(p, 4 * L, p->hr, B);
    vae__act_forward(VAE_ACT_RELU, p->act[4 * L], n);
    conv(p, 4 * L + 1, p->act[4 * L], B);
}

/* The gated net's gradients, and dx0, from dact[last] (see gated_forward). */
static void gated_backward(vae_prior *p, int B)
{
    int L = p->pc.layers, C = p->pc.channels, P = p->P;
    size_t n2 = (size_t)B * 2 * C * P, n = (size_t)B * C * P;
    conv_back(p, 4 * L + 1, p->dact[4 * L], p->dact[4 * L + 1], p->act[4 * L], B);
    vae__act_backward(VAE_ACT_RELU, p->dact[4 * L], p->act[4 * L], n);
    conv_back(p, 4 * L, p->dhr, p->dact[4 * L], p->hr, B);
    vae__act_backward(VAE_ACT_RELU, p->dhr, p->hr, n);
    memcpy(p->dact[4 * L - 1], p->dhr, n * sizeof *p->dhr);
    for (int i = L - 1; i >= 0; i--) {
        int v = 4 * i, h = v + 1, vh = v + 2, r = v + 3;
        const float *vin = i ? p->vout[i - 1] : p->x0, *hin = i ? p->act[r - 4] : p->x0;
        // dact[r]: the gradient at the layer's horizontal output; dvout[i] at its
        // vertical one (none from the last layer: the head reads the horizontal)
        conv_back(p, r, p->dg, p->dact[r], p->gh[i], B);
        gate_back(p->dact[h], p->act[h], p->dg, B, C, P);
        conv_back(p, h, p->dth, p->dact[h], hin, B);
        conv_back(p, vh, p->dact[vh], p->dact[h], p->act[v], B);
        gate_back(p->dact[v], p->act[v], i < L - 1 ? p->dvout[i] : NULL, B, C, P);
        for (size_t j = 0; j < n2; j++) p->dact[v][j] += p->dact[vh][j];
        conv_back(p, v, p->dtv, p->dact[v], vin, B);
        size_t nin = (size_t)B * p->geom[v].C * P;
        if (i > 0) {
            for (size_t j = 0; j < n; j++) p->dact[r - 4][j] = p->dth[j] + p->dact[r][j];
            memcpy(p->dvout[i - 1], p->dtv, n * sizeof *p->dtv);
        } else {
            for (size_t j = 0; j < nin; j++) p->dx0[j] = p->dth[j] + p->dtv[j];
        }
    }
}

/* logits act[last] (B, K, P) from codes (B, P); returns the summed
 * -log p(codes) and each grid's into nll (may be NULL). */
static double forward(vae_prior *p, const int32_t *codes, int B, double *nll)
{
    int E = p->pc.embed, P = p->P, K = p->pc.codebook, last = p->n_conv - 1;
    const float *emb = p->params + p->emb_off;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++)
            for (int e = 0; e < E; e++)
                p->x0[((size_t)b * E + e) * P + q] = emb[(size_t)codes[(size_t)b * P + q] * E + e];
    if (p->pc.gated) gated_forward(p, B);
    const float *in = p->x0;
    for (int l = 0; l <= last && !p->pc.gated; l++) {
        conv(p, l, in, B);
        if (l < last) vae__act_forward(VAE_ACT_RELU, p->act[l], (size_t)B * p->geom[l].OC * P);
        in = p->act[l];
    }
    double total = 0;
    for (int b = 0; b < B; b++) {
        const float *y = p->act[last] + (size_t)b * K * P;
        double img = 0;
        for (int q = 0; q < P; q++) {
            double top = -INFINITY, s = 0;
            for (int k = 0; k < K; k++) top = fmax(top, y[(size_t)k * P + q]);
            for (int k = 0; k < K; k++) s += exp(y[(size_t)k * P + q] - top);
            double lse = top + log(s);
            p->lse[(size_t)b * P + q] = lse;
            img += lse - y[(size_t)codes[(size_t)b * P + q] * P + q];
        }
        if (nll) nll[b] = img;
        total += img;
    }
    return total;
}

/* grads = scale * d(summed nll)/d params after forward on the same codes. */
static void backward(vae_prior *p, const int32_t *codes, int B, float scale)
{
    int E = p->pc.embed, P = p->P, K = p->pc.codebook, last = p->n_conv - 1;
    float *d = p->dact[last];
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++) {
            double lse = p->lse[(size_t)b * P + q];
            int code = codes[(size_t)b * P + q];
            for (int k = 0; k < K; k++) {
                size_t at = ((size_t)b * K + k) * P + q;
                d[at] = scale * (float)(exp(p->act[last][at] - lse) - (k == code));
            }
        }
    if (p->pc.gated) gated_backward(p, B);
    for (int l = last; l >= 0 && !p->pc.gated; l--) {
        if (l < last) vae__act_backward(VAE_ACT_RELU, p->dact[l], p->act[l], (size_t)B * p->geom[l].OC * P);
        conv_back(p, l, l ? p->dact[l - 1] : p->dx0, p->dact[l], l ? p->act[l - 1] : p->x0, B);
    }
    float *demb = p->grads + p->emb_off;
    memset(demb, 0, (size_t)K * E * sizeof *demb);
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++)
            for (int e = 0; e < E; e++)
                demb[(size_t)codes[(size_t)b * P + q] * E + e] += p->dx0[((size_t)b * E + e) * P + q];
    for (size_t i = 0; i < p->emb_off; i++) p->grads[i] *= p->mask[i]; // the masked taps stay 0
}

/* The gradient of the mean per-grid NLL of B checked grids into p->grads;
 * returns the summed NLL, each grid's into nll (may be NULL). */
static double loss_grad(vae_prior *p, const int32_t *codes, int B, double *nll)
{
    double sum = forward(p, codes, B, nll);
    backward(p, codes, B, 1.0f / B);
    return sum;
}

int vae_prior_train_step(vae_prior *p, const int32_t *codes, int B, double *nll)
{
    int rc = check_codes(p, codes, B, p->max_batch);
    if (rc) return rc;
    double sum = loss_grad(p, codes, B, NULL);
    double ss = vae__sum_squares(p->grads, p->n_params);
    if (!isfinite(sum) || !isfinite(ss))
        return prior_error(p, VAE_ENUMERIC, "prior: a non-finite loss or gradient; weights left "
                                            "unchanged (try a lower --lr)");
    p->step++;
    vae__adam_update(p->params, p->grads, p->adam_m, p->adam_v, p->n_params, &p->adam, p->step, 1);
    if (nll) *nll = sum;
    return VAE_OK;
}

int vae__prior_grad(vae_prior *p, const int32_t *codes, int B, double *nll)
{
    int rc = check_codes(p, codes, B, p->max_batch);
    if (!rc) loss_grad(p, codes, B, nll);
    return rc;
}

float *vae__prior_tensor(vae_prior *p, const char *name, int grad, size_t *numel)
{
    float *base = grad ? p->grads : p->params;
    if (!strcmp(name, "embed.weight")) {
        *numel = p->n_params - p->emb_off;
        return base + p->emb_off;
    }
    char buf[32];
    for (int l = 0; l < p->n_conv; l++)
        for (int bias = 0; bias < 2; bias++) {
            tensor_name(p, buf, sizeof buf, l, bias);
            if (strcmp(name, buf)) continue;
            size_t at = bias ? p->b_off[l] : p->w_off[l];
            *numel = bias ? (size_t)p->geom[l].OC : p->b_off[l] - p->w_off[l];
            return base + at;
        }
    return NULL;
}

const float *vae__prior_logits(vae_prior *p, const int32_t *codes, int B)
{
    if (check_codes(p, codes, B, p->max_batch)) return NULL;
    forward(p, codes, B, NULL);
    return p->act[p->n_conv - 1];
}

int vae_prior_nll(vae_prior *p, const int32_t *codes, int B, double *nll)
{
    int rc = check_codes(p, codes, B, 1 << 30);
    if (rc) return rc;
    for (int i = 0; i < B; i += p->max_batch) {
        int b = B - i < p->max_batch ? B - i : p->max_batch;
        forward(p, codes + (size_t)i * p->P, b, nll + i);
    }
    return VAE_OK;
}

int vae_prior_sample(vae_prior *p, int n, float temperature, vae_rng *rng, int32_t *codes)
{
    if (n < 1 || !codes || !(temperature > 0 && temperature <= 100))
        return prior_error(p, VAE_EINVAL, "prior: sampling needs n >= 1 grids and a temperature "
                                          "in (0, 100]");
    int P = p->P, K = p->pc.codebook, last = p->n_conv - 1;
    double *prob = malloc((size_t)K * sizeof *prob);
    if (!prob) return prior_error(p, VAE_ENOMEM, "out of memory");
    memset(codes, 0, (size_t)n * P * sizeof *codes);
    for (int i = 0; i < n; i += p->max_batch) {
        int b = n - i < p->max_batch ? n - i : p->max_batch;
        int32_t *c = codes + (size_t)i * P;
        // cell q's logits depend on cells before q only: one pass per cell
        for (int q = 0; q < P; q++) {
            forward(p, c, b, NULL);
            for (int r = 0; r < b; r++) {
                const float *y = p->act[last] + (size_t)r * K * P;
                double top = -INFINITY, s = 0;
                for (int k = 0; k < K; k++) top = fmax(top, y[(size_t)k * P + q] / temperature);
                for (int k = 0; k < K; k++) s += prob[k] = exp(y[(size_t)k * P + q] / temperature - top);
                double u = vae_rng_uniform(rng) * s;
                int k = 0;
                while (k < K - 1 && (u -= prob[k]) >= 0) k++;
                c[(size_t)r * P + q] = k;
            }
        }
    }
    free(prob);
    return VAE_OK;
}

/* ------------------------------------------------------------------ file */

int vae_prior_save(vae_prior *p, const char *path, const char *const *meta)
{
    enum { MAXT = 2 * MAX_CONV + 1, MAXM = 48 };
    char names[MAXT][32], num[7][16];
    vae__st_tensor t[MAXT];
    int nt = 0;
    for (int l = 0; l < p->n_conv; l++) {
        const vae__conv_geom *g = &p->geom[l];
        tensor_name(p, names[nt], 32, l, 0);
        t[nt] = (vae__st_tensor){names[nt], 4, {g->OC, g->C, g->K, g->K}, p->params + p->w_off[l]};
        nt++;
        tensor_name(p, names[nt], 32, l, 1);
        t[nt] = (vae__st_tensor){names[nt], 1, {g->OC}, p->params + p->b_off[l]};
        nt++;
    }
    t[nt++] = (vae__st_tensor){"embed.weight", 2, {p->pc.codebook, p->pc.embed},
                               p->params + p->emb_off};
    const vae_prior_config *c = &p->pc;
    int vals[7] = {c->codebook, c->grid_h, c->grid_w, c->embed, c->channels, c->layers, c->gated};
    for (int i = 0; i < 7; i++) snprintf(num[i], sizeof num[i], "%d", vals[i]);
    const char *kv[2 * MAXM + 1] = {"format", PRIOR_FORMAT, "prior.codebook", num[0],
                                    "prior.grid_h", num[1], "prior.grid_w", num[2],
                                    "prior.embed", num[3], "prior.channels", num[4],
                                    "prior.layers", num[5], "prior.gated", num[6]};
    int n = 16;
    for (const char *const *m = meta; m && m[0] && m[1]; m += 2) {
        if (n + 2 > 2 * MAXM) return prior_error(p, VAE_EINVAL, "prior: too many metadata entries");
        kv[n++] = m[0], kv[n++] = m[1];
    }
    return vae__st_write(path, t, nt, kv, &p->err);
}

int vae_prior_load(const char *path, int max_batch, vae_prior **out, vae_error *err)
{
    *out = NULL;
    vae__st_file *f = NULL;
    vae_prior *p = NULL;
    int rc = vae__st_read(path, &f, err);
    if (rc) return rc;
    const char *fmt = vae__st_meta(f, "format");
    if (!fmt || strcmp(fmt, PRIOR_FORMAT)) {
        rc = vae__error(err, VAE_EFORMAT, "%s: not a prior (no format=%s in its metadata)", path,
                        PRIOR_FORMAT);
        goto fail;
    }
    vae_prior_config pc;
    memset(&pc, 0, sizeof pc);
    // a file written before the gated net has no prior.gated: the plain one
    const char *gated = vae__st_meta(f, "prior.gated");
    if (gated && vae__parse_int(gated, 0, 1, &pc.gated)) {
        rc = vae__error(err, VAE_EFORMAT, "%s: metadata entry prior.gated is not 0 or 1", path);
        goto fail;
    }
    static const char *keys[] = {"prior.codebook", "prior.grid_h", "prior.grid_w", "prior.embed",
                                 "prior.channels", "prior.layers"};
    int *dst[] = {&pc.codebook, &pc.grid_h, &pc.grid_w, &pc.embed, &pc.channels, &pc.layers};
    for (int i = 0; i < 6; i++)
        if (vae__parse_int(vae__st_meta(f, keys[i]), 0, 65536, dst[i])) {
            rc = vae__error(err, VAE_EFORMAT, "%s: metadata entry %s is missing or invalid", path,
                            keys[i]);
            goto fail;
        }
    if ((rc = vae_prior_create(&pc, max_batch, 0, &p, err))) goto fail;
    if (vae__st_count(f) != 2 * p->n_conv + 1) {
        rc = vae__error(err, VAE_ESHAPE, "%s: %d tensors, but this prior has %d", path,
                        vae__st_count(f), 2 * p->n_conv + 1);
        goto fail;
    }
    for (int i = 0; i <= 2 * p->n_conv; i++) {
        char name[32];
        int l = i / 2, emb = i == 2 * p->n_conv;
        if (!emb) tensor_name(p, name, sizeof name, l, i % 2);
        const vae__st_tensor *t = vae__st_find(f, emb ? "embed.weight" : name);
        size_t at = emb ? p->emb_off : i % 2 ? p->b_off[l] : p->w_off[l];
        size_t end = emb ? p->n_params : i % 2 ? (l + 1 < p->n_conv ? p->w_off[l + 1] : p->emb_off)
                                               : p->b_off[l];
        size_t numel = 1;
        for (int d = 0; t && d < t->ndim; d++) numel *= (size_t)t->shape[d];
        if (!t || numel != end - at) {
            rc = vae__error(err, VAE_ESHAPE, "%s: tensor %s is missing or has the wrong shape",
                            path, emb ? "embed.weight" : name);
            goto fail;
        }
        for (size_t j = 0; j < numel; j++) {
            if (!isfinite(t->data[j]) || (p->mask[at + j] == 0 && t->data[j] != 0)) {
                rc = vae__error(err, VAE_ENUMERIC, "%s: tensor %s holds a non-finite value or a "
                                "nonzero masked tap", path, emb ? "embed.weight" : name);
                goto fail;
            }
            p->params[at + j] = t->data[j];
        }
    }
    if (!(p->meta = vae__st_meta_copy(f))) {
        rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    vae__st_free(f);
    *out = p;
    return VAE_OK;
fail:
    vae__st_free(f);
    vae_prior_free(p);
    return rc;
}

const char *vae_prior_meta(const vae_prior *p, const char *key)
{
    return vae__meta_get(p->meta, key);
}
