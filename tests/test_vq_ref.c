#define _POSIX_C_SOURCE 200809L
/* test_vq_ref.c - the VQ layer, the VQ-VAE and the PixelCNN prior against the
 * PyTorch fixture written by scripts/make_vq_ref.py: the nearest codes, z_q,
 * the VQ terms and the straight-through and codebook gradients, one EMA
 * update; a whole VQ-VAE's forward values and every gradient (loss and EMA
 * updates, on one thread and split over 3) and its codebook after an EMA
 * step; the mask-A and mask-B convolutions built from the C's own mask rule;
 * the prior loaded from the twin's tensors (its file layout), its logits,
 * NLL and every gradient, plain and gated. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "model/model.h"
#include "nn/conv.h"
#include "nn/vq.h"

/* Tolerances: float sums of a few hundred terms. */
#define ATOL 1e-5
#define RTOL 1e-5

static void check(const char *label, const float *a, const char *name, size_t n)
{
    fixture_tensor(name, n);
    fixture_check(label, a, name, 1, 0, 1, ATOL, RTOL);
}

static void check_zero(const char *label, const float *a, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += a[i] != 0;
    printf("  %-28s %s\n", label, bad ? "NONZERO" : "all 0 ok");
    CHECK(!bad);
}

/* The VQ layer alone (nn/vq.h). */
static void layer(void)
{
    int B, D, H, W, K;
    double beta, decay, eps;
    const char *spec = vae__st_meta(fixture, "layer");
    CHECK(spec && sscanf(spec, "%d,%d,%d,%d,%d,%lf,%lf,%lf", &B, &D, &H, &W, &K, &beta, &decay,
                         &eps) == 8);
    int P = H * W;
    size_t n = (size_t)B * D * P, KD = (size_t)K * D;
    printf("VQ layer: %d images, %d-D codes on %dx%d, K = %d\n", B, D, H, W, K);
    const float *ze = fixture_get("layer.ze", n), *cb0 = fixture_get("layer.codebook", KD);
    const float *dout = fixture_get("layer.dout", n);
    float *zq = malloc(n * sizeof *zq), *codes = malloc((size_t)B * P * sizeof *codes);
    float *err = malloc((size_t)B * sizeof *err), *dze = malloc(n * sizeof *dze);
    float *dcb = malloc(KD * sizeof *dcb), *cb = malloc(KD * sizeof *cb);
    float *count = malloc((size_t)K * sizeof *count), *sum = malloc(KD * sizeof *sum);
    float *ecount = malloc((size_t)K * sizeof *ecount), *esum = malloc(KD * sizeof *esum);
    double total = vae__vq_forward(zq, codes, ze, cb0, B, D, P, K, err);
    // codes are whole numbers: equal, not near
    fixture_tensor("layer.codes", (size_t)B * P);
    fixture_check("codes", codes, "layer.codes", 1, 0, 1, 0, 0);
    check("z_q", zq, "layer.zq", n);
    check("||z_e - z_q||^2 per image", err, "layer.err", (size_t)B);
    double want = 0;
    for (int b = 0; b < B; b++) want += fixture_get("layer.err", (size_t)B)[b];
    CHECK_NEAR(total, want, 1e-4);
    // the encoder's gradient: the upstream one at z_q copied (straight through)
    // plus the commitment term's; the codebook's: the codebook term's
    vae__vq_backward(dze, dout, ze, zq, (float)beta, n);
    check("dz_e (straight through)", dze, "layer.dze", n);
    vae__vq_codebook_grad(dcb, ze, cb0, codes, 1, B, D, P, K);
    check("dcodebook", dcb, "layer.dcodebook", KD);
    vae__vq_stats(count, sum, ze, codes, B, D, P, K);
    check("EMA: counts", count, "layer.count", (size_t)K);
    check("EMA: sums", sum, "layer.sum", KD);
    memcpy(cb, cb0, KD * sizeof *cb);
    memcpy(ecount, fixture_get("layer.ema_count0", (size_t)K), (size_t)K * sizeof *ecount);
    memcpy(esum, fixture_get("layer.ema_sum0", KD), KD * sizeof *esum);
    vae__vq_ema_update(cb, ecount, esum, count, sum, K, D, (float)decay, (float)eps);
    check("EMA: N_k after", ecount, "layer.ema_count1", (size_t)K);
    check("EMA: m_k after", esum, "layer.ema_sum1", KD);
    check("EMA: codebook after", cb, "layer.codebook1", KD);
    free(zq), free(codes), free(err), free(dze), free(dcb), free(cb), free(count), free(sum);
    free(ecount), free(esum);
}

/* A whole VQ-VAE (section "vqvae": loss updates, "ema": EMA updates): the
 * twin's tensors under vae's checkpoint names and shapes, one step. */
static void model(const char *name, int ema, int threads)
{
    int C, H, W, h1, h2, D, K, B;
    double beta, decay;
    const char *spec = vae__st_meta(fixture, "model");
    CHECK(spec && sscanf(spec, "%d,%d,%d,%d,%d,%d,%d,%lf,%lf,%d", &C, &H, &W, &h1, &h2, &D, &K,
                         &beta, &decay, &B) == 10);
    vae_config cfg;
    vae_config_default(&cfg);
    cfg.arch = VAE_ARCH_CONV, cfg.model = VAE_MODEL_VQVAE;
    cfg.channels = C, cfg.height = H, cfg.width = W;
    cfg.n_hidden = 2, cfg.hidden[0] = h1, cfg.hidden[1] = h2;
    cfg.codebook = K, cfg.code_dim = D, cfg.commitment = (float)beta;
    cfg.codebook_update = ema ? VAE_CODEBOOK_EMA : VAE_CODEBOOK_LOSS;
    cfg.ema_decay = (float)decay, cfg.restart_dead = 0;
    cfg.latent = vae_config_vq_latent(&cfg, NULL, NULL);
    printf("VQ-VAE (%s updates), %d thread(s)\n", ema ? "EMA" : "loss", threads);
    vae_set_threads(threads);
    vae_model *m;
    vae_error err;
    if (vae_model_create(&cfg, B, 0, &m, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        CHECK(0);
        return;
    }
    vae__param_view v[VAE_MAX_TENSORS];
    int nv = vae__model_tensors(m, v);
    char key[128], label[96];
    int layout_ok = 1;
    for (int i = 0; i < nv; i++) { // the same names and shapes as the twin's state_dict
        snprintf(key, sizeof key, "%s.init.%.47s", name, v[i].name);
        const vae__st_tensor *t = fixture_tensor(key, vae__view_numel(&v[i]));
        int same = t->ndim == v[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == v[i].shape[d];
        if (!same) fprintf(stderr, "%s: shape differs from the twin's\n", v[i].name);
        layout_ok &= same;
        memcpy(v[i].data, t->data, vae__view_numel(&v[i]) * sizeof(float));
    }
    CHECK(layout_ok);
    int twin_tensors = 0; // and nothing of the twin's is missing here
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.init.", name);
    for (int i = 0; i < vae__st_count(fixture); i++)
        twin_tensors += !strncmp(vae__st_at(fixture, i)->name, prefix, strlen(prefix));
    CHECK_EQ(twin_tensors, nv);
    vae__net *net = &m->net;
    int P = net->vq_P, d = cfg.latent, Dx = C * H * W;
    const float *x = fixture_get("x", (size_t)B * Dx);
    vae_stats st = {0};
    CHECK_EQ(vae__model_step(m, x, NULL, B, ema, &st), VAE_OK);
    if (threads == 1) { // one slice: every activation is in m->net
        snprintf(key, sizeof key, "%s.ze", name);
        check("z_e", net->act[net->k], key, (size_t)B * d);
        snprintf(key, sizeof key, "%s.codes", name);
        fixture_tensor(key, (size_t)B * P);
        fixture_check("codes", net->codes, key, 1, 0, 1, 0, 0);
        snprintf(key, sizeof key, "%s.zq", name);
        check("z_q", net->z, key, (size_t)B * d);
        snprintf(key, sizeof key, "%s.logits", name);
        check("logits", net->act[net->n_layers - 1], key, (size_t)B * Dx);
        snprintf(key, sizeof key, "%s.rec", name);
        fixture_check("rec (per image)", net->rec_img, key, 1, 0, 1, 1e-4, 1e-6);
        snprintf(key, sizeof key, "%s.vq", name);
        fixture_check("vq terms (per image)", net->kl_img, key, 1, 0, 1, ATOL, RTOL);
    }
    float loss = (float)(st.loss / B);
    snprintf(key, sizeof key, "%s.loss", name);
    fixture_check("loss", &loss, key, 1, 0, 1, 1e-4, 1e-6);
    for (int i = 0; i < nv; i++) {
        snprintf(key, sizeof key, "%s.grad.%.47s", name, v[i].name);
        snprintf(label, sizeof label, "grad.%.47s", v[i].name);
        const float *g = m->grads + (v[i].data - m->params);
        // the EMA state, and the codebook under EMA updates, have no gradient in the twin
        if (vae__st_find(fixture, key)) check(label, g, key, vae__view_numel(&v[i]));
        else check_zero(label, g, vae__view_numel(&v[i]));
    }
    if (ema) { // the EMA update after the step, from the step's codes and z_e
        static const char *after[] = {"vq.codebook", "vq.ema_count", "vq.ema_sum"};
        const float *now[] = {net->cb, net->ema_count, net->ema_sum};
        size_t len[] = {(size_t)K * D, (size_t)K, (size_t)K * D};
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "%s.after.%s", name, after[i]);
            snprintf(label, sizeof label, "after the step: %s", after[i]);
            check(label, now[i], key, len[i]);
        }
    }
    vae_model_free(m);
}

/* Weight i of a (OC, C, k, k) kernel may be nonzero (the prior's mask). */
static int open_tap(size_t i, int k, int type_b)
{
    int tap = (int)(i % ((size_t)k * k));
    return vae__prior_tap_open(tap / k, tap % k, k, type_b);
}

/* The PixelCNN's masked convolutions: the twin's unmasked weights, masked here
 * by the C's own rule (vae__prior_tap_open); the weight gradient masked too,
 * as the prior's backward does. */
static void mask(const char *name, int type_b)
{
    int B, C, H, W, OC, k;
    const char *spec = vae__st_meta(fixture, name);
    CHECK(spec && sscanf(spec, "%d,%d,%d,%d,%d,%d", &B, &C, &H, &W, &OC, &k) == 6);
    printf("mask %s: %dx%d kernel\n", type_b ? "B" : "A", k, k);
    vae__conv_geom g;
    CHECK(!vae__conv_geom_init(&g, C, H, W, OC, k, 1, k / 2));
    size_t n_in = (size_t)B * C * H * W, n_out = (size_t)B * OC * g.OH * g.OW;
    size_t n_w = (size_t)OC * C * k * k;
    char key[64];
    snprintf(key, sizeof key, "%s.weight", name);
    const float *w0 = fixture_get(key, n_w);
    snprintf(key, sizeof key, "%s.x", name);
    const float *x = fixture_get(key, n_in);
    snprintf(key, sizeof key, "%s.bias", name);
    const float *bias = fixture_get(key, (size_t)OC);
    snprintf(key, sizeof key, "%s.dout", name);
    const float *dout = fixture_get(key, n_out);
    float *w = malloc(n_w * sizeof *w), *out = malloc(n_out * sizeof *out);
    float *dx = malloc(n_in * sizeof *dx), *dw = malloc(n_w * sizeof *dw);
    float *db = malloc((size_t)OC * sizeof *db);
    float *col = malloc(vae__conv_col_size(&g, B) * sizeof *col);
    for (size_t i = 0; i < n_w; i++) w[i] = open_tap(i, k, type_b) ? w0[i] : 0;
    vae__conv2d_forward(out, x, w, bias, B, &g, col);
    vae__conv2d_backward(dx, dw, db, dout, x, w, B, &g, col);
    for (size_t i = 0; i < n_w; i++) dw[i] = open_tap(i, k, type_b) ? dw[i] : 0;
    snprintf(key, sizeof key, "%s.out", name);
    check("out", out, key, n_out);
    snprintf(key, sizeof key, "%s.dx", name);
    check("dx", dx, key, n_in);
    snprintf(key, sizeof key, "%s.dweight", name);
    check("dweight (masked)", dw, key, n_w);
    snprintf(key, sizeof key, "%s.dbias", name);
    check("dbias", db, key, (size_t)OC);
    free(w), free(out), free(dx), free(dw), free(db), free(col);
}

/* The prior: the twin's state_dict written as a prior file (its names, with
 * vae's metadata) and loaded by vae_prior_load, then one loss and gradient. */
static void prior(const char *name)
{
    int K, H, W, E, CH, L, B, G;
    const char *spec = vae__st_meta(fixture, name);
    CHECK(spec && sscanf(spec, "%d,%d,%d,%d,%d,%d,%d,%d", &K, &H, &W, &E, &CH, &L, &B, &G) == 8);
    printf("%s PixelCNN prior: K = %d on %dx%d, embedding %d, %d channels, %d %s layers\n",
           G ? "gated" : "plain", K, H, W, E, CH, L, G ? "gated" : "mask-B");
    char prefix[32], key[96], label[96];
    snprintf(prefix, sizeof prefix, "%s.init.", name);
    size_t np = strlen(prefix);
    enum { MAXT = 80 };
    vae__st_tensor t[MAXT];
    char names[MAXT][64];
    int nt = 0;
    for (int i = 0; i < vae__st_count(fixture) && nt < MAXT; i++) {
        const vae__st_tensor *s = vae__st_at(fixture, i);
        if (strncmp(s->name, prefix, np)) continue;
        snprintf(names[nt], sizeof names[nt], "%s", s->name + np);
        t[nt] = *s;
        t[nt].name = names[nt];
        nt++;
    }
    char num[7][16];
    int vals[7] = {K, H, W, E, CH, L, G};
    for (int i = 0; i < 7; i++) snprintf(num[i], sizeof num[i], "%d", vals[i]);
    const char *meta[] = {"format", "vae-prior", "prior.codebook", num[0], "prior.grid_h", num[1],
                          "prior.grid_w", num[2], "prior.embed", num[3], "prior.channels", num[4],
                          "prior.layers", num[5], "prior.gated", num[6], NULL};
    char path[] = "/tmp/vae-test-vq-ref-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    vae_error err;
    vae_prior *p = NULL;
    // the load checks the count, every name and shape, and that masked taps are 0
    CHECK_EQ(vae__st_write(path, t, nt, meta, &err), VAE_OK);
    int rc = vae_prior_load(path, B, &p, &err);
    unlink(path);
    if (rc) fprintf(stderr, "prior: %s\n", err.msg);
    CHECK_EQ(rc, VAE_OK);
    if (rc) return;
    int P = H * W;
    snprintf(key, sizeof key, "%s.codes", name);
    const float *cf = fixture_get(key, (size_t)B * P);
    int32_t *codes = malloc((size_t)B * P * sizeof *codes);
    for (int i = 0; i < B * P; i++) codes[i] = (int32_t)cf[i];
    double nll[64];
    float nllf[64];
    CHECK(B <= 64);
    CHECK_EQ(vae__prior_grad(p, codes, B, nll), VAE_OK);
    // the logits the gradient's forward pass left (the same pass again)
    const float *logits = vae__prior_logits(p, codes, B);
    CHECK(logits != NULL);
    snprintf(key, sizeof key, "%s.logits", name);
    if (logits) check("logits", logits, key, (size_t)B * K * P);
    double mean = 0;
    for (int b = 0; b < B; b++) nllf[b] = (float)nll[b], mean += nll[b] / B;
    snprintf(key, sizeof key, "%s.nll", name);
    fixture_check("-log p (per grid)", nllf, key, 1, 0, 1, 1e-4, 1e-6);
    float lossf = (float)mean;
    snprintf(key, sizeof key, "%s.loss", name);
    fixture_check("loss", &lossf, key, 1, 0, 1, 1e-4, 1e-6);
    for (int i = 0; i < nt; i++) {
        size_t n = 0;
        const float *g = vae__prior_tensor(p, names[i], 1, &n);
        CHECK(g != NULL);
        if (!g) continue;
        snprintf(key, sizeof key, "%s.grad.%.63s", name, names[i]);
        snprintf(label, sizeof label, "grad.%.63s", names[i]);
        check(label, g, key, n);
    }
    free(codes);
    vae_prior_free(p);
}

int main(int argc, char **argv)
{
    fixture_open(argc, argv, "ref_vq.safetensors");
    layer();
    for (int threads = 1; threads <= 3; threads += 2) {
        model("vqvae", 0, threads);
        model("ema", 1, threads);
    }
    mask("maskA", 0);
    mask("maskB", 1);
    prior("prior");
    prior("gprior");
    vae__st_free(fixture);
    return TEST_REPORT();
}
