/* idx.c - strict reader for IDX files of unsigned bytes (MNIST layout), raw or gzip. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/io.h"

#define IDX_MAX_RANK 4
#define GZ_CHUNK ((size_t)1 << 30)  /* gzread takes an unsigned int length */
#define GZ_FIRST ((size_t)1 << 24)  /* gz buffers grow as data really arrives */

/* Reads up to n bytes into buf, *got of them arriving. Returns zlib's error
 * state, which is the only place a corrupt or truncated stream shows up. */
static int gz_read_full(gzFile gz, uint8_t *buf, size_t n, size_t *got)
{
    int zerr = Z_OK;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < GZ_CHUNK ? n - *got : GZ_CHUNK;
        int r = gzread(gz, buf + *got, (unsigned)want);
        if (r > 0) *got += (size_t)r;
        gzerror(gz, &zerr);
        if (r <= 0 || zerr != Z_OK) break;
    }
    return zerr;
}

static int gz_fail(vae_error *err, const char *path, gzFile gz, int zerr)
{
    if (zerr == Z_ERRNO)
        return vae__error(err, VAE_EIO, "%s: read error: %s", path, strerror(errno));
    if (zerr == Z_MEM_ERROR) return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    if (zerr == Z_BUF_ERROR)
        return vae__error(err, VAE_EFORMAT, "%s: truncated gzip stream (unexpected end of file)",
                          path);
    /* zlib prefixes its message with the name it was opened by, "<fd:N>" */
    const char *m = gzerror(gz, &zerr), *p = strstr(m, ": ");
    return vae__error(err, VAE_EFORMAT, "%s: corrupt gzip data: %s", path, p ? p + 2 : m);
}

static const char *type_name(int t)
{
    switch (t) {
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return NULL;
}

/* Checks the 4 magic bytes; the message names the usual wrong-file mistakes. */
static int check_magic(const uint8_t *m, int want_ndim, const char *path, vae_error *err)
{
    if (m[0] == 0x1F && m[1] == 0x8B)  /* raw 1F 8B is already unwrapped by zlib */
        return vae__error(err, VAE_EFORMAT,
                          "%s: not IDX: gzip data inside gzip (double-compressed?)", path);
    if (m[0] == '<' || m[0] == '{')
        return vae__error(err, VAE_EFORMAT,
                          "%s: not IDX: looks like an HTML/JSON page (a failed download?)", path);
    if (m[0] || m[1])
        return vae__error(err, VAE_EFORMAT,
                          "%s: not IDX: magic %02X %02X %02X %02X (must start 00 00)", path,
                          m[0], m[1], m[2], m[3]);
    if (type_name(m[2]))
        return vae__error(err, VAE_EUNSUPPORTED,
                          "%s: IDX type 0x%02X (%s) is not supported, only unsigned bytes (0x08)",
                          path, m[2], type_name(m[2]));
    if (m[2] != 0x08)
        return vae__error(err, VAE_EFORMAT, "%s: not IDX: unknown type byte 0x%02X", path, m[2]);
    if (m[3] != want_ndim)
        return vae__error(err, VAE_EFORMAT, "%s: expected %d dimensions (idx%d), found %d", path,
                          want_ndim, want_ndim, m[3]);
    return VAE_OK;
}

int vae__idx_read_u8(const char *path, int want_ndim, uint8_t **data, uint32_t *dims,
                     vae_error *err)
{
    if (!path || !data || !dims || want_ndim < 1 || want_ndim > IDX_MAX_RANK)
        return vae__error(err, VAE_EINVAL, "%s: bad arguments to the IDX reader",
                          path ? path : "(null)");
    int fd;
    struct stat st;
    int orc = vae__open_read(path, &fd, &st, err);
    if (orc) return orc;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }

    int rc = VAE_OK, zerr;
    uint8_t hdr[4 * (1 + IDX_MAX_RANK)], *buf = NULL;
    uint32_t d[IDX_MAX_RANK];
    size_t got, hlen = 4 + 4 * (size_t)want_ndim, have = 0;
    uint64_t total = 1;

    if ((zerr = gz_read_full(gz, hdr, 4, &got)) != Z_OK) goto zfail;
    if (got < 4) {
        rc = vae__error(err, VAE_EFORMAT, "%s: no full IDX header (%s%zu bytes)", path,
                        gzdirect(gz) ? "file is " : "decompressed data is ", got);
        goto done;
    }
    if ((rc = check_magic(hdr, want_ndim, path, err)) != VAE_OK) goto done;
    if ((zerr = gz_read_full(gz, hdr + 4, hlen - 4, &got)) != Z_OK) goto zfail;
    if (got < hlen - 4) {
        rc = vae__error(err, VAE_EFORMAT, "%s: truncated header: %zu of %zu dimension bytes",
                        path, got, hlen - 4);
        goto done;
    }
    for (int i = 0; i < want_ndim; i++) {
        const uint8_t *p = hdr + 4 + 4 * i;
        d[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d[i] == 0) {
            rc = vae__error(err, VAE_EFORMAT, "%s: dimension %d is 0", path, i);
            goto done;
        }
        /* checking the cap at every step keeps this far from 2^64; the overflow
         * test still guards a raised cap */
        if (__builtin_mul_overflow(total, d[i], &total) || total > VAE_IDX_MAX_BYTES ||
            total > SIZE_MAX) {
            rc = vae__error(err, VAE_EFORMAT,
                            "%s: dimensions declare more than the %llu-byte limit", path,
                            (unsigned long long)VAE_IDX_MAX_BYTES);
            goto done;
        }
    }
    /* The images are kept in memory: more than the memory budget (half the
     * RAM) is refused now, not after decompressing gigabytes of it. */
    size_t budget = vae__memory_budget(0);
    if (total > budget) {
        rc = vae__error(err, VAE_ENOMEM, "%s: dimensions declare %llu bytes, more than the %zu MiB "
                        "of memory images may take", path, (unsigned long long)total, budget >> 20);
        goto done;
    }
    /* A raw file must be exactly as long as its header says: know before malloc. */
    int direct = gzdirect(gz);
    if (direct && (uint64_t)st.st_size < hlen + total) {
        rc = vae__error(err, VAE_EFORMAT,
                        "%s: truncated: expected %llu bytes of data, got %llu", path,
                        (unsigned long long)total, (unsigned long long)(st.st_size - hlen));
        goto done;
    }
    if (direct && (uint64_t)st.st_size > hlen + total) {
        rc = vae__error(err, VAE_EFORMAT, "%s: %llu trailing bytes after the data", path,
                        (unsigned long long)(st.st_size - hlen - total));
        goto done;
    }
    /* A gzip header can lie, so grow the buffer as bytes really arrive. */
    size_t cap = direct || total < GZ_FIRST ? (size_t)total : GZ_FIRST;
    for (;;) {
        uint8_t *nb = realloc(buf, cap);
        if (!nb) {
            rc = vae__error(err, VAE_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
            goto done;
        }
        buf = nb;
        zerr = gz_read_full(gz, buf + have, cap - have, &got);
        have += got;
        if (zerr != Z_OK && zerr != Z_BUF_ERROR) goto zfail;
        if (zerr != Z_OK || have < cap || cap == total) break;
        cap = total / 4 < cap ? (size_t)total : cap * 4;
    }
    if (have < total) {
        rc = vae__error(err, VAE_EFORMAT,
                        "%s: truncated%s: expected %llu bytes of data, got %zu", path,
                        direct ? "" : " gzip stream", (unsigned long long)total, have);
        goto done;
    }
    /* One more read must find the end; it also makes zlib check the CRC. Note
     * zlib accepts concatenated members and ignores garbage after a member. */
    uint8_t extra[64];
    if ((zerr = gz_read_full(gz, extra, sizeof extra, &got)) != Z_OK) goto zfail;
    if (got > 0) {
        rc = vae__error(err, VAE_EFORMAT,
                        "%s: trailing bytes after the %llu bytes of data the header declares",
                        path, (unsigned long long)total);
        goto done;
    }
    goto done;
zfail:
    rc = gz_fail(err, path, gz, zerr);
done:
    /* a truncated stream may surface only here */
    zerr = gzclose_r(gz);
    if (rc == VAE_OK && zerr != Z_OK)
        rc = zerr == Z_BUF_ERROR ? gz_fail(err, path, NULL, zerr)
                                 : vae__error(err, VAE_EIO, "%s: close failed (%d)", path, zerr);
    if (rc != VAE_OK) {
        free(buf);
        return rc;
    }
    memcpy(dims, d, sizeof *dims * (size_t)want_ndim);
    *data = buf;
    return VAE_OK;
}
