/* test_conv.c - the C convolution layers (float) and the conv VAE against
 * the PyTorch fixture written by scripts/make_conv_ref.py: outputs and every
 * gradient of nn.Conv2d and nn.ConvTranspose2d, on conv.c's own path and on
 * oneDNN's (conv_dnnl.c, taken inside a parallel region), with NCHW
 * tensors and with 16-channel blocks, then the forward values,
 * loss terms and parameter gradients of vae_twin.ConvVAE. Exits non-zero on
 * any mismatch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv.h"
#include "fixture.h"
#include "model/model.h"

/* Fixture tensor name.field: want values. */
static const float *get(const char *name, const char *field, size_t want)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", name, field);
    return fixture_get(key, want);
}

/* name.field against a (n values, rows of `width` that are `stride` apart in a). */
static void check_rows(const char *name, const char *field, const float *a, size_t n,
                       size_t stride, size_t width)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", name, field);
    fixture_tensor(key, n);
    fixture_check(key, a, key, stride, 0, width, 1e-5, 1e-5);
}

static void check(const char *name, const char *field, const float *a, size_t n)
{
    check_rows(name, field, a, n, 1, 1);
}

/* One layer's passes, inside a team of one when fast (oneDNN's path, where
 * the build has it) or outside any (conv.c's own). */
static void layer_passes(int fast, float *out, float *dx, float *dw, float *db, const float *x,
                         const float *w, const float *b, const float *dout, int B,
                         const vae__conv_geom *g, float *col)
{
#pragma omp parallel num_threads(1) if (fast)
    {
#ifdef VAE_HAVE_DNNL
        // the fast path must take these passes: it is what this case checks (a
        // transposed layer's forward: with 16 output channels or more, without
        // the bias); the layer's passes below then overwrite what they wrote
        if (fast) {
            if (!g->transposed)
                CHECK(!vae__conv_fast_forward(out, x, w, b, B, g));
            else if (g->OC >= 16)
                CHECK(!vae__conv_fast_forward(out, x, w, NULL, B, g));
            CHECK(!vae__conv_fast_backward_data(dx, dout, w, B, g));
            CHECK(!vae__conv_fast_backward_weights(dw, db, dout, x, B, g));
        }
#endif
        if (g->transposed) {
            vae__convt2d_forward(out, x, w, b, B, g, col);
            vae__convt2d_backward(dx, dw, db, dout, x, w, B, g, col);
        } else {
            vae__conv2d_forward(out, x, w, b, B, g, col);
            vae__conv2d_backward(dx, dw, db, dout, x, w, B, g, col);
        }
    }
}

/* n images of ch channels and hw pixels between NCHW and 16-channel blocks,
 * either way; a layout the geometry does not block is copied. The index is
 * written out from conv.h's definition, not taken from conv.c. */
static void relayout(float *dst, const float *src, int n, int ch, int hw, int blocked,
                     int to_blocks)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < ch; c++)
            for (int j = 0; j < hw; j++) {
                size_t plain = ((size_t)i * ch + c) * hw + j;
                size_t in_block = ((size_t)(c / 16) * hw + j) * 16 + c % 16;
                size_t blk = blocked ? (size_t)i * ch * hw + in_block : plain;
                if (to_blocks) dst[blk] = src[plain];
                else dst[plain] = src[blk];
            }
}

/* A case's passes with the input and output in 16-channel blocks where their
 * channels allow (blocks: 1), or NCHW (0). */
static void run_case(const char *name, int B, int fast, int blocks)
{
    int t, C, H, W, OC, K, S, P, OP;
    const char *spec = vae__st_meta(fixture, name);
    CHECK(spec && sscanf(spec, "%d,%d,%d,%d,%d,%d,%d,%d,%d", &t, &C, &H, &W, &OC, &K, &S, &P,
                         &OP) == 9);
    vae__conv_geom g;
    int bad = t ? vae__convt_geom_init(&g, C, H, W, OC, K, S, P, OP, OP)
                : vae__conv_geom_init(&g, C, H, W, OC, K, S, P);
    CHECK(!bad);
    if (bad) return;
    g.blk_in = blocks && C % 16 == 0, g.blk_out = blocks && OC % 16 == 0;
    if (blocks && !g.blk_in && !g.blk_out) return; // as the NCHW run
    int hw = H * W, ohw = g.OH * g.OW;
    size_t n_in = (size_t)B * C * hw, n_out = (size_t)B * OC * ohw;
    size_t n_w = (size_t)C * OC * K * K;
    const float *w = get(name, "weight", n_w), *b = get(name, "bias", OC);
    float *x = malloc(n_in * sizeof *x), *dout = malloc(n_out * sizeof *dout);
    float *out = malloc(n_out * sizeof *out), *dx = malloc(n_in * sizeof *dx);
    float *out_nchw = malloc(n_out * sizeof *out), *dx_nchw = malloc(n_in * sizeof *dx);
    float *dw = malloc(n_w * sizeof *dw), *db = malloc(OC * sizeof *db);
    float *col = malloc(vae__conv_col_size(&g, B) * sizeof *col);
    relayout(x, get(name, "x", n_in), B, C, hw, g.blk_in, 1);
    relayout(dout, get(name, "dout", n_out), B, OC, ohw, g.blk_out, 1);
    layer_passes(fast, out, dx, dw, db, x, w, b, dout, B, &g, col);
    relayout(out_nchw, out, B, OC, ohw, g.blk_out, 0);
    relayout(dx_nchw, dx, B, C, hw, g.blk_in, 0);
    check(name, "out", out_nchw, n_out);
    check(name, "dx", dx_nchw, n_in);
    check(name, "dweight", dw, n_w);
    check(name, "dbias", db, OC);
    free(x), free(dout), free(out), free(dx), free(out_nchw), free(dx_nchw);
    free(dw), free(db), free(col);
}

/* The whole conv VAE: weights from the fixture, one step without update. */
static void run_vae(int B)
{
    int C, H, W, c1, c2, d;
    const char *spec = vae__st_meta(fixture, "vae");
    CHECK(spec && sscanf(spec, "%d,%d,%d,%d,%d,%d", &C, &H, &W, &c1, &c2, &d) == 6);
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.arch = VAE_ARCH_CONV;
    cfg.channels = C, cfg.height = H, cfg.width = W, cfg.latent = d;
    cfg.n_hidden = 2, cfg.hidden[0] = c1, cfg.hidden[1] = c2;
    vae_model *m;
    vae_error err;
    if (vae_model_create(&cfg, B, 0, &m, &err)) {
        fprintf(stderr, "conv VAE: %s\n", err.msg);
        CHECK(0);
        return;
    }
    vae__param_view v[4 * VAE_MAX_LAYERS];
    int nv = vae__model_tensors(m, v);
    CHECK_EQ(nv, 14);
    char field[96];
    for (int i = 0; i < nv; i++) {
        snprintf(field, sizeof field, "init.%.47s", v[i].name);
        memcpy(v[i].data, get("vae", field, vae__view_numel(&v[i])),
               vae__view_numel(&v[i]) * sizeof(float));
    }
    int D = C * H * W;
    vae__net *net = &m->net;
    memcpy(net->eps, get("vae", "eps", (size_t)B * d), (size_t)B * d * sizeof(float));
    vae_stats st = {0};
    vae_set_threads(1); // one slice: every activation is in m->net
    CHECK_EQ(vae__model_step(m, get("vae", "x", (size_t)B * D), NULL, B, 0, &st), VAE_OK);
    check_rows("vae", "mu", net->act[net->k], (size_t)B * d, 2 * d, d);
    check_rows("vae", "logvar", net->act[net->k] + d, (size_t)B * d, 2 * d, d);
    check("vae", "z", net->z, (size_t)B * d);
    check("vae", "logits", net->act[net->n_layers - 1], (size_t)B * D);
    check("vae", "rec", net->rec_img, B);
    check("vae", "kl", net->kl_img, B);
    float loss = (float)(st.loss / B);
    check("vae", "loss", &loss, 1);
    for (int i = 0; i < nv; i++) {
        snprintf(field, sizeof field, "grad.%.47s", v[i].name);
        check("vae", field, m->grads + (v[i].data - m->params), vae__view_numel(&v[i]));
    }
    vae_model_free(m);
}

/* Images go through a layer in groups of a fixed size (conv.c); a batch of
 * several groups must give each image's output and input gradient as that
 * image alone does, and the sum of their weight and bias gradients. The
 * geometry is large enough for groups of 2, so 5 images make groups 2, 2, 1. */
static void check_groups(int transposed)
{
    enum { B = 5 };
    vae__conv_geom g;
    int bad = transposed ? vae__convt_geom_init(&g, 8, 24, 24, 8, 4, 2, 1, 0, 0)
                         : vae__conv_geom_init(&g, 8, 48, 48, 8, 4, 2, 1);
    CHECK(!bad);
    if (bad) return;
    size_t col1 = vae__conv_col_size(&g, 1), colB = vae__conv_col_size(&g, B);
    CHECK(colB > col1 && colB < B * col1); // several images per group, not all of them
    size_t n_in = (size_t)g.C * g.H * g.W, n_out = (size_t)g.OC * g.OH * g.OW;
    size_t n_w = (size_t)g.C * g.OC * g.K * g.K;
    float *x = malloc(B * n_in * sizeof *x), *dout = malloc(B * n_out * sizeof *dout);
    float *w = malloc(n_w * sizeof *w), *b = malloc(g.OC * sizeof *b);
    float *out = malloc(B * n_out * sizeof *out), *dx = malloc(B * n_in * sizeof *dx);
    float *dw = malloc(n_w * sizeof *dw), *db = malloc(g.OC * sizeof *db);
    float *out1 = malloc(n_out * sizeof *out1), *dx1 = malloc(n_in * sizeof *dx1);
    float *dw1 = malloc(n_w * sizeof *dw1), *db1 = malloc(g.OC * sizeof *db1);
    double *dw_sum = calloc(n_w, sizeof *dw_sum), *db_sum = calloc(g.OC, sizeof *db_sum);
    float *col = malloc(colB * sizeof *col);
    for (size_t i = 0; i < B * n_in; i++) x[i] = (float)((i * 7919) % 201) / 100 - 1;
    for (size_t i = 0; i < B * n_out; i++) dout[i] = (float)((i * 104729) % 199) / 100 - 1;
    for (size_t i = 0; i < n_w; i++) w[i] = (float)((i * 31) % 97) / 97 - 0.5f;
    for (int i = 0; i < g.OC; i++) b[i] = (float)i / 10;
    void (*fwd)(float *, const float *, const float *, const float *, int,
                const vae__conv_geom *, float *) = transposed ? vae__convt2d_forward
                                                              : vae__conv2d_forward;
    void (*bwd)(float *, float *, float *, const float *, const float *, const float *, int,
                const vae__conv_geom *, float *) = transposed ? vae__convt2d_backward
                                                              : vae__conv2d_backward;
    fwd(out, x, w, b, B, &g, col);
    bwd(dx, dw, db, dout, x, w, B, &g, col);
    double worst = 0, scale = 1;
    for (int i = 0; i < B; i++) {
        fwd(out1, x + i * n_in, w, b, 1, &g, col);
        bwd(dx1, dw1, db1, dout + i * n_out, x + i * n_in, w, 1, &g, col);
        for (size_t j = 0; j < n_out; j++)
            worst = fmax(worst, fabs(out1[j] - out[i * n_out + j]));
        for (size_t j = 0; j < n_in; j++) worst = fmax(worst, fabs(dx1[j] - dx[i * n_in + j]));
        for (size_t j = 0; j < n_w; j++) dw_sum[j] += dw1[j];
        for (int j = 0; j < g.OC; j++) db_sum[j] += db1[j];
    }
    for (size_t j = 0; j < n_w; j++) {
        worst = fmax(worst, fabs(dw_sum[j] - dw[j]) / (1 + fabs(dw_sum[j])));
        scale = fmax(scale, fabs(dw_sum[j]));
    }
    for (int j = 0; j < g.OC; j++) worst = fmax(worst, fabs(db_sum[j] - db[j]) / (1 + fabs(db_sum[j])));
    if (worst > 1e-4)
        fprintf(stderr, "%s groups: worst difference %g (weight gradients up to %g)\n",
                transposed ? "convt" : "conv", worst, scale);
    CHECK(worst <= 1e-4);
    free(x), free(dout), free(w), free(b), free(out), free(dx), free(dw), free(db);
    free(out1), free(dx1), free(dw1), free(db1), free(dw_sum), free(db_sum), free(col);
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_conv.safetensors");
    int B = fixture_meta_int("batch");
    static const char *cases[] = {"enc1", "enc2", "dec1", "dec2", "odd", "oddt", "dec16", "oddt16"};
    for (int blocks = 0; blocks < 2; blocks++)
        for (int fast = 0; fast < 2; fast++)
            for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
                run_case(cases[i], B, fast, blocks);
    run_vae(B);
    check_groups(0);
    check_groups(1);
    vae__st_free(fixture);
    return TEST_REPORT();
}
