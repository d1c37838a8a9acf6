/* rng.c - xoshiro256** seeded by splitmix64, uniforms and Box-Muller normals.
 * Our own generator so that a seed means the same numbers everywhere. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "nn/rng.h"

/* splitmix64's finaliser */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) { return mix64(*x += 0x9E3779B97F4A7C15ull); }

void vae_rng_seed(vae_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
    r->has_spare = 0;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t vae_rng_u64(vae_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

void vae__rng_stream(vae_rng *r, uint64_t seed, long i)
{
    vae_rng_seed(r, mix64(seed * 0x9E3779B97F4A7C15ull + (uint64_t)i));
}

double vae_rng_uniform(vae_rng *r) { return (double)(vae_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t vae_rng_below(vae_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    /* rejection keeps every value equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = vae_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double vae_rng_normal(vae_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - vae_rng_uniform(r); /* (0, 1]: log stays finite */
    double u2 = vae_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

/* s0-s3 as hex words, then the spare normal's bits (0 when there is none). */
void vae_rng_format(const vae_rng *r, char out[VAE_RNG_TEXT])
{
    uint64_t spare = 0;
    if (r->has_spare) memcpy(&spare, &r->spare, sizeof spare);
    snprintf(out, VAE_RNG_TEXT, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 ":%d:%016" PRIx64,
             r->s[0], r->s[1], r->s[2], r->s[3], r->has_spare ? 1 : 0, spare);
}

static int hex64(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int vae_rng_parse(vae_rng *r, const char *text)
{
    vae_rng t = {{0}, 0, 0};
    uint64_t spare;
    if (!text || strlen(text) != 64 + 3 + 16 || text[64] != ':' || text[66] != ':' ||
        (text[65] != '0' && text[65] != '1'))
        return VAE_EINVAL;
    for (int i = 0; i < 4; i++)
        if (hex64(text + 16 * i, &t.s[i])) return VAE_EINVAL;
    if (hex64(text + 67, &spare)) return VAE_EINVAL;
    if (!(t.s[0] | t.s[1] | t.s[2] | t.s[3])) return VAE_EINVAL; // xoshiro's one dead state
    t.has_spare = text[65] == '1';
    if (t.has_spare) memcpy(&t.spare, &spare, sizeof spare);
    *r = t;
    return VAE_OK;
}
