/* checkpoint.c - model <-> safetensors file: the weights under the PyTorch
 * twin's names, the configuration and training metadata in __metadata__. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "model/model.h"

#define CKPT_FORMAT "vae-checkpoint"
#define CKPT_VERSION "1"
#define MAX_META 64
/* Steps are counted in a long and raised to Adam's bias-correction powers:
 * 2^53 (exact in a double) is far past any real run and far from overflow. */
#define VAE_MAX_ADAM_STEPS ((long)1 << 53)

static const char *model_names[] = {"vae", "ae", "sparse-ae", "dae", "iwae", "cvae", "vqvae",
                                     "hvae"};
static const char *codebook_update_names[] = {"loss", "ema"};
static const char *noise_names[] = {"none", "gaussian", "mask"};
static const char *likelihood_names[] = {"bernoulli", "gaussian", "continuous-bernoulli"};
static const char *sigma_names[] = {"fixed", "learned", "learned-pixel"};
static const char *arch_names[] = {"mlp", "conv"};
static const char *flow_names[] = {"none", "planar", "householder"};
static const char *act_names[] = {"relu", "tanh", "softplus", "gated"};

/* Copies the caller's key, value pairs after the n already in kv. */
static int add_meta(vae_model *m, const char *path, const char **kv, int n,
                    const char *const *meta)
{
    for (const char *const *p = meta; p && p[0] && p[1]; p += 2) {
        if (n + 2 > 2 * MAX_META)
            return vae__model_error(m, VAE_EINVAL, "%s: more than %d metadata entries", path,
                                    MAX_META);
        kv[n++] = p[0];
        kv[n++] = p[1];
    }
    kv[n] = NULL;
    return VAE_OK;
}

static int save(vae_model *m, const char *path, const char *const *meta, int with_state)
{
    const vae_config *c = &m->cfg;
    char num[12][32], hidden[VAE_MAX_HIDDEN * 12 + 1] = "", rng[VAE_RNG_TEXT];
    for (int i = 0; i < c->n_hidden; i++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d", i ? "," : "",
                 c->hidden[i]);
    snprintf(num[0], 32, "%d", c->channels);
    snprintf(num[1], 32, "%d", c->height);
    snprintf(num[2], 32, "%d", c->width);
    snprintf(num[3], 32, "%d", c->latent);
    snprintf(num[4], 32, "%.9g", (double)c->beta); // 9 digits: floats round-trip exactly
    snprintf(num[5], 32, "%ld", m->step);
    const char *kv[2 * MAX_META + 1] = {
        "format", CKPT_FORMAT, "format_version", CKPT_VERSION, "vae.channels", num[0],
        "vae.height", num[1], "vae.width", num[2], "vae.hidden", hidden, "vae.latent", num[3],
        "vae.model", model_names[c->model], "vae.likelihood", likelihood_names[c->likelihood],
        "vae.beta", num[4], "train.adam_steps", num[5], "vae.arch", arch_names[c->arch]};
    int n = 24;
    char fb[32], l1[32], noise[48], iwk[16], ncls[16], flow[32], prior[32];
    if (c->model == VAE_MODEL_CVAE) {
        snprintf(ncls, sizeof ncls, "%d", c->n_classes);
        kv[n++] = "vae.n_classes", kv[n++] = ncls;
    }
    char l1z[16];
    if (c->model == VAE_MODEL_HVAE) { // vae.latent is the top layer z2's
        snprintf(l1z, sizeof l1z, "%d", c->latent1);
        kv[n++] = "vae.latent1", kv[n++] = l1z;
    }
    if (c->model == VAE_MODEL_IWAE) {
        snprintf(iwk, sizeof iwk, "%d", c->iwae_k);
        kv[n++] = "vae.iwae_k", kv[n++] = iwk;
    }
    if (c->model == VAE_MODEL_SPARSE_AE) {
        snprintf(l1, sizeof l1, "%.9g", (double)c->l1);
        kv[n++] = "vae.l1", kv[n++] = l1;
    }
    if (c->model == VAE_MODEL_DAE) {
        snprintf(noise, sizeof noise, "%s:%.9g", noise_names[c->noise], (double)c->noise_level);
        kv[n++] = "vae.noise", kv[n++] = noise;
    }
    char vq[5][32];
    if (c->model == VAE_MODEL_VQVAE) {
        snprintf(vq[0], 32, "%d", c->codebook);
        snprintf(vq[1], 32, "%d", c->code_dim);
        snprintf(vq[2], 32, "%.9g", (double)c->commitment);
        snprintf(vq[3], 32, "%.9g", (double)c->restart_dead);
        snprintf(vq[4], 32, "%s:%.9g", codebook_update_names[c->codebook_update],
                 (double)c->ema_decay);
        const char *q[] = {"vae.codebook", vq[0], "vae.code_dim", vq[1], "vae.commitment", vq[2],
                           "vae.restart_dead", vq[3], "vae.codebook_update", vq[4]};
        memcpy(kv + n, q, sizeof q);
        n += 10;
    }
    if (c->activation != VAE_ACT_RELU) kv[n++] = "vae.activation", kv[n++] = act_names[c->activation];
    if (c->flow != VAE_FLOW_NONE) {
        snprintf(flow, sizeof flow, "%s:%d", flow_names[c->flow], c->flow_steps);
        kv[n++] = "vae.flow", kv[n++] = flow;
    }
    if (c->vamp_k) { // absent: the standard normal prior
        snprintf(prior, sizeof prior, "vamp:%d", c->vamp_k);
        kv[n++] = "vae.prior", kv[n++] = prior;
    }
    if (c->free_bits > 0) {
        snprintf(fb, sizeof fb, "%.9g", (double)c->free_bits);
        kv[n++] = "vae.free_bits", kv[n++] = fb;
    }
    if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN) {
        snprintf(num[11], 32, "%.9g", (double)c->sigma);
        const char *g[] = {"vae.sigma", num[11], "vae.sigma_mode", sigma_names[c->sigma_mode]};
        memcpy(kv + n, g, sizeof g);
        n += 4;
    }
    if (with_state) {
        snprintf(num[6], 32, "%.9g", (double)m->adam.lr);
        snprintf(num[7], 32, "%.9g", (double)m->adam.beta1);
        snprintf(num[8], 32, "%.9g", (double)m->adam.beta2);
        snprintf(num[9], 32, "%.9g", (double)m->adam.eps);
        snprintf(num[10], 32, "%.9g", (double)m->clip_norm);
        vae_rng_format(&m->rng, rng);
        const char *st[] = {"optim.lr", num[6], "optim.beta1", num[7], "optim.beta2", num[8],
                            "optim.eps", num[9], "optim.clip_norm", num[10], "train.rng", rng};
        memcpy(kv + n, st, sizeof st);
        n += 12;
    }
    int rc = add_meta(m, path, kv, n, meta);
    if (rc) return rc;

    // the weights, then (for a checkpoint) the moments under the same names
    vae__param_view v[3][VAE_MAX_TENSORS];
    vae__st_tensor t[3 * VAE_MAX_TENSORS];
    int nv = vae__model_tensors(m, v[0]), nt = 0;
    for (int k = 0; k < (with_state ? 3 : 1); k++)
        for (int i = 0; i < nv; i++) {
            if (k) {
                const vae__param_view *w = &v[0][i];
                const float *buf = k == 1 ? m->adam_m : m->adam_v;
                v[k][i] = *w;
                v[k][i].data = (float *)buf + (w->data - m->params);
                char name[sizeof w->name];
                snprintf(name, sizeof name, "optim.%c.%.36s", k == 1 ? 'm' : 'v', w->name);
                memcpy(v[k][i].name, name, sizeof name);
            }
            t[nt] = (vae__st_tensor){v[k][i].name, v[k][i].ndim, {0}, v[k][i].data};
            memcpy(t[nt++].shape, v[k][i].shape, sizeof v[k][i].shape);
        }
    return vae__st_write(path, t, nt, kv, &m->err);
}

int vae_model_save(vae_model *m, const char *path, const char *const *meta)
{
    return save(m, path, meta, 0);
}

int vae_model_save_checkpoint(vae_model *m, const char *path, const char *const *meta)
{
    return save(m, path, meta, 1);
}

static int lookup(const char *s, const char **names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Parses a finite float in [lo, hi]. */
static int parse_float(const char *s, float lo, float hi, float *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*end || errno || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* "gaussian:0.3" or "mask:0.5" (ranges are vae_config_validate's). */
static int parse_noise(const char *s, vae_config *c)
{
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!colon) return -1;
    for (int i = 1; i < 3; i++)
        if ((size_t)(colon - s) == strlen(noise_names[i]) && !strncmp(s, noise_names[i], colon - s)) {
            c->noise = i;
            return parse_float(colon + 1, 0, 1e30f, &c->noise_level);
        }
    return -1;
}

/* "planar:4" or "householder:8" (the steps' range is vae_config_validate's). */
static int parse_flow(const char *s, vae_config *c)
{
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!colon) return -1;
    for (int i = 1; i < 3; i++)
        if ((size_t)(colon - s) == strlen(flow_names[i]) && !strncmp(s, flow_names[i], colon - s)) {
            c->flow = i;
            return vae__parse_int(colon + 1, 1, VAE_FLOW_MAX_STEPS, &c->flow_steps);
        }
    return -1;
}

/* A VQ-VAE's entries; the name of a bad one, or NULL (ranges are
 * vae_config_validate's). */
static const char *vq_from_meta(const vae__st_file *f, vae_config *c)
{
    const char *u = vae__st_meta(f, "vae.codebook_update"), *colon = u ? strchr(u, ':') : NULL;
    if (vae__parse_int(vae__st_meta(f, "vae.codebook"), 2, 65536, &c->codebook)) return "vae.codebook";
    if (vae__parse_int(vae__st_meta(f, "vae.code_dim"), 1, 4096, &c->code_dim)) return "vae.code_dim";
    if (parse_float(vae__st_meta(f, "vae.commitment"), 0, 100, &c->commitment))
        return "vae.commitment";
    if (parse_float(vae__st_meta(f, "vae.restart_dead"), 0, 1e30f, &c->restart_dead))
        return "vae.restart_dead";
    if (!colon || parse_float(colon + 1, 0, 1, &c->ema_decay)) return "vae.codebook_update";
    for (int i = 0; i < 2; i++)
        if ((size_t)(colon - u) == strlen(codebook_update_names[i]) &&
            !strncmp(u, codebook_update_names[i], colon - u)) {
            c->codebook_update = i;
            return NULL;
        }
    return "vae.codebook_update";
}

static int config_from_meta(const vae__st_file *f, const char *path, vae_config *c, vae_error *err)
{
    vae_config_default(c);
    const char *fmt = vae__st_meta(f, "format");
    if (!fmt || strcmp(fmt, CKPT_FORMAT))
        return vae__error(err, VAE_EFORMAT,
                          "%s: a safetensors file but not a vae checkpoint (no format=%s in "
                          "its metadata)", path, CKPT_FORMAT);
    const char *ver = vae__st_meta(f, "format_version");
    if (!ver || strcmp(ver, CKPT_VERSION))
        return vae__error(err, VAE_EUNSUPPORTED,
                          "%s: checkpoint format version %s; this vae reads version %s", path,
                          ver ? ver : "(none)", CKPT_VERSION);
    const char *bad = NULL;
    if (vae__parse_int(vae__st_meta(f, "vae.channels"), 1, 3, &c->channels)) bad = "vae.channels";
    else if (vae__parse_int(vae__st_meta(f, "vae.height"), 1, 4096, &c->height)) bad = "vae.height";
    else if (vae__parse_int(vae__st_meta(f, "vae.width"), 1, 4096, &c->width)) bad = "vae.width";
    else if (vae__parse_int(vae__st_meta(f, "vae.latent"), 1, 4096, &c->latent)) bad = "vae.latent";
    else if ((c->model = lookup(vae__st_meta(f, "vae.model"), model_names, 8)) < 0)
        bad = "vae.model";
    else if ((c->likelihood = lookup(vae__st_meta(f, "vae.likelihood"), likelihood_names, 3)) < 0)
        bad = "vae.likelihood";
    else if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN &&
             (parse_float(vae__st_meta(f, "vae.sigma"), 0, 1e30f, &c->sigma) ||
              (c->sigma_mode = lookup(vae__st_meta(f, "vae.sigma_mode"), sigma_names, 3)) < 0))
        bad = "vae.sigma";
    else if (vae__st_meta(f, "vae.free_bits") &&
             parse_float(vae__st_meta(f, "vae.free_bits"), 0, 1000, &c->free_bits))
        bad = "vae.free_bits";
    else if (c->model == VAE_MODEL_SPARSE_AE && parse_float(vae__st_meta(f, "vae.l1"), 0, 1e30f, &c->l1))
        bad = "vae.l1";
    else if (c->model == VAE_MODEL_DAE && parse_noise(vae__st_meta(f, "vae.noise"), c))
        bad = "vae.noise";
    else if (c->model == VAE_MODEL_IWAE && vae__parse_int(vae__st_meta(f, "vae.iwae_k"), 1, 4096, &c->iwae_k))
        bad = "vae.iwae_k";
    else if (c->model == VAE_MODEL_HVAE &&
             vae__parse_int(vae__st_meta(f, "vae.latent1"), 1, 4096, &c->latent1))
        bad = "vae.latent1";
    else if (c->model == VAE_MODEL_CVAE &&
             vae__parse_int(vae__st_meta(f, "vae.n_classes"), 2, 256, &c->n_classes))
        bad = "vae.n_classes";
    else if (vae__st_meta(f, "vae.flow") && parse_flow(vae__st_meta(f, "vae.flow"), c))
        bad = "vae.flow";
    else if (vae__st_meta(f, "vae.prior") && // absent: N(0, I), all a vae before 0.3 wrote
             (strncmp(vae__st_meta(f, "vae.prior"), "vamp:", 5) ||
              vae__parse_int(vae__st_meta(f, "vae.prior") + 5, 1, VAE_VAMP_MAX_K, &c->vamp_k)))
        bad = "vae.prior";
    else if (vae__st_meta(f, "vae.activation") && // absent: ReLU, all a vae before 0.2 wrote
             (c->activation = lookup(vae__st_meta(f, "vae.activation"), act_names, 4)) < 0)
        bad = "vae.activation";
    else if (vae__st_meta(f, "vae.arch") && // absent in files of vae 0.1.0: the MLP
             (c->arch = lookup(vae__st_meta(f, "vae.arch"), arch_names, 2)) < 0)
        bad = "vae.arch";
    if (!bad) {
        const char *b = vae__st_meta(f, "vae.beta");
        char *end;
        c->beta = b ? strtof(b, &end) : -1;
        if (!b || *end || !*b) bad = "vae.beta";
    }
    if (!bad) { // "400" or "512,256" or "" (no hidden layer)
        const char *h = vae__st_meta(f, "vae.hidden");
        c->n_hidden = 0;
        if (!h) bad = "vae.hidden";
        while (!bad && *h) {
            char part[16];
            size_t len = strcspn(h, ",");
            if (len == 0 || len >= sizeof part || c->n_hidden == VAE_MAX_HIDDEN) {
                bad = "vae.hidden";
                break;
            }
            memcpy(part, h, len);
            part[len] = 0;
            if (vae__parse_int(part, 1, 65536, &c->hidden[c->n_hidden++])) bad = "vae.hidden";
            h += len + (h[len] == ',');
        }
    }
    if (!bad && c->model == VAE_MODEL_VQVAE) bad = vq_from_meta(f, c);
    if (bad)
        return vae__error(err, VAE_EFORMAT, "%s: metadata entry %s is missing or invalid", path,
                          bad);
    vae_error why; // formatted apart: err->msg must not be printed into itself
    int rc = vae_config_validate(c, &why);
    if (rc) return vae__error(err, rc, "%s: %s", path, why.msg);
    return VAE_OK;
}

/* Copies tensor `name` of f into dst after checking its shape against view
 * and that its values are finite (and >= 0 when nonneg: second moments). */
static int load_tensor(const vae__st_file *f, const char *path, const char *name,
                       const vae__param_view *view, float *dst, int nonneg, vae_error *err)
{
    const vae__st_tensor *t = vae__st_find(f, name);
    if (!t) return vae__error(err, VAE_ESHAPE, "%s: tensor %s is missing", path, name);
    int same = t->ndim == view->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == view->shape[d];
    if (!same)
        return vae__error(err, VAE_ESHAPE, "%s: tensor %s has the wrong shape for the model", path,
                          name);
    size_t n = vae__view_numel(view);
    for (size_t j = 0; j < n; j++)
        if (!isfinite(t->data[j]) || (nonneg && t->data[j] < 0))
            return vae__error(err, VAE_ENUMERIC, "%s: tensor %s holds %s value", path, name,
                              isfinite(t->data[j]) ? "a negative" : "a non-finite");
    memcpy(dst, t->data, n * sizeof(float));
    return VAE_OK;
}


/* The training state of a checkpoint: Adam settings, step count, RNG. */
static int state_from_meta(const vae__st_file *f, const char *path, vae_model *m, vae_error *err)
{
    const char *bad = NULL, *steps = vae__st_meta(f, "train.adam_steps");
    char *end;
    errno = 0;
    m->step = steps ? strtol(steps, &end, 10) : -1;
    if (!steps || !*steps || *end || errno || m->step < 0 || m->step > VAE_MAX_ADAM_STEPS)
        bad = "train.adam_steps";
    else if (parse_float(vae__st_meta(f, "optim.lr"), 0, 10, &m->adam.lr)) bad = "optim.lr";
    else if (parse_float(vae__st_meta(f, "optim.beta1"), 0, 1, &m->adam.beta1)) bad = "optim.beta1";
    else if (parse_float(vae__st_meta(f, "optim.beta2"), 0, 1, &m->adam.beta2)) bad = "optim.beta2";
    else if (parse_float(vae__st_meta(f, "optim.eps"), 0, 1, &m->adam.eps)) bad = "optim.eps";
    else if (parse_float(vae__st_meta(f, "optim.clip_norm"), 0, 1e30f, &m->clip_norm))
        bad = "optim.clip_norm";
    else if (vae_rng_parse(&m->rng, vae__st_meta(f, "train.rng"))) bad = "train.rng";
    if (bad)
        return vae__error(err, VAE_EFORMAT, "%s: training-state entry %s is missing or invalid",
                          path, bad);
    return VAE_OK;
}

int vae_model_load(const char *path, int max_batch, vae_model **out, vae_error *err)
{
    *out = NULL;
    vae__st_file *f = NULL;
    vae_model *m = NULL;
    vae_config cfg;
    int rc = vae__st_read(path, &f, err);
    if (rc) return rc;
    rc = config_from_meta(f, path, &cfg, err);
    if (rc) goto fail;
    // the file must hold as many values as the configuration says before the
    // model is allocated: memory stays in proportion to the file's size
    vae__net net;
    vae__net_layout(&net, &cfg, 1);
    uint64_t held = 0;
    for (int i = 0; i < vae__st_count(f); i++) {
        const vae__st_tensor *t = vae__st_at(f, i);
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d]; // the reader bounded these
        held += n;
    }
    if (held != net.n_params && held != 3 * (uint64_t)net.n_params) {
        rc = vae__error(err, VAE_ESHAPE, "%s: the tensors hold %llu values, but the model its "
                        "metadata describes has %zu parameters", path, (unsigned long long)held,
                        net.n_params);
        goto fail;
    }
    if ((rc = vae_model_create(&cfg, max_batch, 0, &m, err))) goto fail;

    vae__param_view v[VAE_MAX_TENSORS];
    int nv = vae__model_tensors(m, v);
    // weights alone, or weights and both Adam moments (a training checkpoint)
    char first[64]; // the first tensor's moment: fc_mu's before the VQ-VAE's were any
    snprintf(first, sizeof first, "optim.m.%.40s", v[0].name);
    int with_state = vae__st_find(f, first) != NULL;
    if (vae__st_count(f) != (with_state ? 3 : 1) * nv) {
        rc = vae__error(err, VAE_ESHAPE, "%s: %d tensors, but this model has %d (%d with its "
                        "optimiser state)", path, vae__st_count(f), nv, 3 * nv);
        goto fail;
    }
    for (int k = 0; k < (with_state ? 3 : 1); k++)
        for (int i = 0; i < nv; i++) {
            char name[64];
            float *dst = k == 0 ? v[i].data
                       : (k == 1 ? m->adam_m : m->adam_v) + (v[i].data - m->params);
            snprintf(name, sizeof name, "%s%.40s", k == 0 ? "" : k == 1 ? "optim.m." : "optim.v.",
                     v[i].name);
            if ((rc = load_tensor(f, path, name, &v[i], dst, k == 2, err))) goto fail;
        }
    if (with_state && (rc = state_from_meta(f, path, m, err))) goto fail;
    // keep the metadata for vae_model_meta (info, resume)
    if (!(m->meta = vae__st_meta_copy(f))) {
        rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    vae__st_free(f);
    *out = m;
    return VAE_OK;
fail:
    vae__st_free(f);
    vae_model_free(m);
    return rc;
}
