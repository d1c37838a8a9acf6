/* checkpoint.c - model <-> safetensors file: the weights under the PyTorch
 * twin's names, the configuration and training metadata in __metadata__. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define CKPT_FORMAT "vae-checkpoint"
#define CKPT_VERSION "1"
#define MAX_META 64

static const char *model_names[] = {"vae"};
static const char *likelihood_names[] = {"bernoulli"};

int vae_model_save(vae_model *m, const char *path, const char *const *meta)
{
    const vae_config *c = &m->cfg;
    char num[8][32], hidden[VAE_MAX_HIDDEN * 12 + 1] = "";
    for (int i = 0; i < c->n_hidden; i++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d", i ? "," : "",
                 c->hidden[i]);
    snprintf(num[0], 32, "%d", c->channels);
    snprintf(num[1], 32, "%d", c->height);
    snprintf(num[2], 32, "%d", c->width);
    snprintf(num[3], 32, "%d", c->latent);
    snprintf(num[4], 32, "%.9g", (double)c->beta);
    snprintf(num[5], 32, "%ld", m->step);
    const char *kv[2 * MAX_META + 1] = {
        "format", CKPT_FORMAT, "format_version", CKPT_VERSION, "vae.channels", num[0],
        "vae.height", num[1], "vae.width", num[2], "vae.hidden", hidden, "vae.latent", num[3],
        "vae.model", model_names[c->model], "vae.likelihood", likelihood_names[c->likelihood],
        "vae.beta", num[4], "train.adam_steps", num[5]};
    int n = 22;
    for (const char *const *p = meta; p && p[0] && p[1]; p += 2) {
        if (n + 2 > 2 * MAX_META)
            return vae__model_error(m, VAE_EINVAL, "%s: more than %d metadata entries", path,
                                    MAX_META);
        kv[n++] = p[0];
        kv[n++] = p[1];
    }
    kv[n] = NULL;

    vae__param_view views[4 * VAE_MAX_LAYERS];
    vae__st_tensor t[4 * VAE_MAX_LAYERS];
    int nt = vae__model_tensors(m, views);
    for (int i = 0; i < nt; i++)
        t[i] = (vae__st_tensor){views[i].name, views[i].ndim, {views[i].shape[0], views[i].shape[1]},
                                views[i].data};
    return vae__st_write(path, t, nt, kv, &m->err);
}

/* Parses a whole decimal int in [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int lookup(const char *s, const char **names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
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
    if (parse_int(vae__st_meta(f, "vae.channels"), 1, 3, &c->channels)) bad = "vae.channels";
    else if (parse_int(vae__st_meta(f, "vae.height"), 1, 4096, &c->height)) bad = "vae.height";
    else if (parse_int(vae__st_meta(f, "vae.width"), 1, 4096, &c->width)) bad = "vae.width";
    else if (parse_int(vae__st_meta(f, "vae.latent"), 1, 4096, &c->latent)) bad = "vae.latent";
    else if ((c->model = lookup(vae__st_meta(f, "vae.model"), model_names, 1)) < 0)
        bad = "vae.model";
    else if ((c->likelihood = lookup(vae__st_meta(f, "vae.likelihood"), likelihood_names, 1)) < 0)
        bad = "vae.likelihood";
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
            if (parse_int(part, 1, 65536, &c->hidden[c->n_hidden++])) bad = "vae.hidden";
            h += len + (h[len] == ',');
        }
    }
    if (bad)
        return vae__error(err, VAE_EFORMAT, "%s: metadata entry %s is missing or invalid", path,
                          bad);
    int rc = vae_config_validate(c, err);
    if (rc) return vae__error(err, rc, "%s: %s", path, err ? err->msg : "invalid configuration");
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
    if (!rc) rc = vae_model_create(&cfg, max_batch, 0, &m, err);
    if (rc) goto fail;

    vae__param_view v[4 * VAE_MAX_LAYERS];
    int nv = vae__model_tensors(m, v);
    if (vae__st_count(f) != nv) {
        rc = vae__error(err, VAE_ESHAPE, "%s: %d tensors, but this model has %d", path,
                        vae__st_count(f), nv);
        goto fail;
    }
    for (int i = 0; i < nv; i++) {
        const vae__st_tensor *t = vae__st_find(f, v[i].name);
        if (!t) {
            rc = vae__error(err, VAE_ESHAPE, "%s: tensor %s is missing", path, v[i].name);
            goto fail;
        }
        if (t->ndim != v[i].ndim || t->shape[0] != v[i].shape[0] ||
            (v[i].ndim == 2 && t->shape[1] != v[i].shape[1])) {
            rc = vae__error(err, VAE_ESHAPE, "%s: tensor %s has the wrong shape for the model",
                            path, v[i].name);
            goto fail;
        }
        size_t n = (size_t)v[i].shape[0] * (v[i].ndim == 2 ? (size_t)v[i].shape[1] : 1);
        for (size_t j = 0; j < n; j++)
            if (!isfinite(t->data[j])) {
                rc = vae__error(err, VAE_ENUMERIC, "%s: tensor %s holds a non-finite value", path,
                                v[i].name);
                goto fail;
            }
        memcpy(v[i].data, t->data, n * sizeof(float));
    }
    // keep the metadata for vae_model_meta (info, resume)
    int nm = vae__st_meta_count(f);
    m->meta = calloc(2 * (size_t)nm + 1, sizeof(char *));
    if (!m->meta) {
        rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < nm; i++) {
        const char *k, *val;
        vae__st_meta_at(f, i, &k, &val);
        m->meta[2 * i] = strdup(k);
        m->meta[2 * i + 1] = strdup(val);
        if (!m->meta[2 * i] || !m->meta[2 * i + 1]) {
            rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
    }
    const char *steps = vae_model_meta(m, "train.adam_steps");
    if (steps) m->step = strtol(steps, NULL, 10);
    vae__st_free(f);
    *out = m;
    return VAE_OK;
fail:
    vae__st_free(f);
    vae_model_free(m);
    return rc;
}
