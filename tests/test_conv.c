/* test_conv.c - the C convolution layers (float) and the conv VAE against
 * the PyTorch fixture written by scripts/make_conv_ref.py: outputs and every
 * gradient of nn.Conv2d and nn.ConvTranspose2d, then the forward values,
 * loss terms and parameter gradients of vae_twin.ConvVAE. Exits non-zero on
 * any mismatch. */
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

static void run_case(const char *name, int B)
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
    size_t n_in = (size_t)B * C * H * W, n_out = (size_t)B * OC * g.OH * g.OW;
    size_t n_w = (size_t)C * OC * K * K;
    const float *x = get(name, "x", n_in), *w = get(name, "weight", n_w);
    const float *b = get(name, "bias", OC), *dout = get(name, "dout", n_out);
    float *out = malloc(n_out * sizeof *out), *dx = malloc(n_in * sizeof *dx);
    float *dw = malloc(n_w * sizeof *dw), *db = malloc(OC * sizeof *db);
    float *col = malloc(vae__conv_col_size(&g) * sizeof *col);
    if (t) {
        vae__convt2d_forward(out, x, w, b, B, &g, col);
        vae__convt2d_backward(dx, dw, db, dout, x, w, B, &g, col);
    } else {
        vae__conv2d_forward(out, x, w, b, B, &g, col);
        vae__conv2d_backward(dx, dw, db, dout, x, w, B, &g, col);
    }
    check(name, "out", out, n_out);
    check(name, "dx", dx, n_in);
    check(name, "dweight", dw, n_w);
    check(name, "dbias", db, OC);
    free(out), free(dx), free(dw), free(db), free(col);
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

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_conv.safetensors");
    int B = fixture_meta_int("batch");
    static const char *cases[] = {"enc1", "enc2", "dec1", "dec2", "odd", "oddt"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(cases[i], B);
    run_vae(B);
    vae__st_free(fixture);
    return TEST_REPORT();
}
