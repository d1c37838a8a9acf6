/* perceptual.c - vae train's --perceptual C[:LAYERS][:WEIGHT] (perceptual.h):
 * parsing, loading and checking the classifier, attaching the term. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "cli.h"
#include "perceptual.h"

static const char *const layer_names[] = {"conv1", "conv2", "fc1"};

/* "conv1,fc1" -> bits; 0 when a name is unknown (*bad: it) or the list empty. */
static unsigned parse_layers(const char *s, char *bad, size_t len)
{
    unsigned bits = 0;
    const char *p = s;
    snprintf(bad, len, "%s", s);
    while (1) {
        size_t n = strcspn(p, ",");
        int k = 0;
        while (k < 3 && !(strlen(layer_names[k]) == n && !strncmp(p, layer_names[k], n))) k++;
        if (k == 3) {
            snprintf(bad, len, "%.*s", (int)n, p);
            return 0;
        }
        bits |= 1u << k;
        if (!p[n]) return bits;
        p += n + 1;
    }
}

/* Whether s is all lower-case letters, digits and commas: a layer list, not a
 * part of the path. */
static int looks_like_layers(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == ',')) return 0;
    return 1;
}

void perceptual_parse(const char *flag, const char *spec, perceptual_opt *p)
{
    char *s = strdup(spec), bad[64];
    if (!s) die("out of memory");
    const char *layers = PERCEPTUAL_DEFAULT_LAYERS, *weight = PERCEPTUAL_DEFAULT_WEIGHT;
    // from the right: a number is the weight, then a list of names the layers
    char *colon = strrchr(s, ':'), *end;
    if (colon && colon[1] && (strtod(colon + 1, &end), !*end)) {
        weight = colon + 1, *colon = 0;
        colon = strrchr(s, ':');
    }
    if (colon && looks_like_layers(colon + 1)) layers = colon + 1, *colon = 0;
    if (!*s) usage_error("train", "%s '%s': no classifier file before the ':'", flag, spec);
    p->layers = parse_layers(layers, bad, sizeof bad);
    if (!p->layers)
        usage_error("train", "%s '%s': unknown layer '%s' (the classifier's are conv1, conv2 and "
                             "fc1, joined by ',')", flag, spec, bad);
    errno = 0;
    double w = strtod(weight, &end);
    if (*end || errno || !(w >= 0 && w <= 1e6))
        usage_error("train", "%s '%s': weight %s: need a number in 0..1e6", flag, spec, weight);
    p->weight = (float)w;
    p->path = s;
    char names[32] = "";
    for (int k = 0; k < 3; k++)
        if (p->layers & (1u << k))
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", *names ? "," : "",
                     layer_names[k]);
    if (snprintf(p->text, sizeof p->text, "%s:%s:%.9g", s, names, w) >= (int)sizeof p->text)
        usage_error("train", "%s: the path is too long", flag);
}

/* The CRC-32 of a file's bytes, as 8 hex digits. */
static void file_crc(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: cannot read the --perceptual classifier: %s", path, strerror(errno));
    uLong crc = crc32(0L, Z_NULL, 0);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) crc = crc32(crc, buf, (uInt)n);
    int failed = ferror(f);
    fclose(f);
    if (failed) die("%s: read error", path);
    snprintf(out, len, "%08lx", (unsigned long)crc);
}

void perceptual_load(perceptual_opt *p, const char *want_crc)
{
    vae_error err;
    file_crc(p->path, p->crc, sizeof p->crc);
    if (want_crc && strcmp(want_crc, p->crc))
        die("%s: not the classifier this run was trained with (CRC-32 %s, the checkpoint's "
            "train.perceptual_crc32 is %s)", p->path, p->crc, want_crc);
    if (vae_classifier_load(p->path, 1, &p->cls, &err)) die("%s", err.msg);
}

void perceptual_check_shape(const perceptual_opt *p, int c, int h, int w)
{
    const vae_classifier_config *cc = vae_classifier_get_config(p->cls);
    if (cc->channels != c || cc->height != h || cc->width != w)
        die("%s: the --perceptual classifier reads %dx%dx%d images, the data are %dx%dx%d",
            p->path, cc->channels, cc->height, cc->width, c, h, w);
}

void perceptual_attach(const perceptual_opt *p, vae_model *m)
{
    if (vae_model_set_perceptual(m, p->cls, p->layers, p->weight))
        die("--perceptual: %s", vae_model_errmsg(m));
}
