/* fileio.c - crash-safe whole-file writes (temporary file, fsync, rename). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"

/* Directory part of path ("." when there is none), in a fresh string. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (!slash) memcpy(d, ".", 1);
    else if (n == 0) { n = 1; memcpy(d, "/", 1); }
    else memcpy(d, path, n);
    d[n] = 0;
    return d;
}

long vae__fault_write_after = -1;

int vae_write_file(const char *path, const void *data, size_t len, vae_error *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base) return vae__error(err, VAE_EINVAL, "%s: not a file name", path);
    char *dir = dir_of(path);
    size_t tl = (dir ? strlen(dir) : 0) + strlen(base) + 16;
    char *tmp = dir ? malloc(tl) : NULL;
    if (!tmp) {
        free(dir);
        free(tmp);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }
    /* same directory: rename() cannot cross file systems */
    snprintf(tmp, tl, "%s/.%s.tmp.XXXXXX", dir, base);
    int rc = VAE_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = vae__error(err, errno == ENOENT ? VAE_ENOENT : VAE_EIO,
                        "%s: cannot create a file in %s: %s", path, dir, strerror(errno));
        goto done;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        size_t chunk = left;
        if (vae__fault_write_after >= 0) { // the test hook: a disk that fills up here
            size_t done = len - left, room = (size_t)vae__fault_write_after;
            chunk = done < room ? (room - done < chunk ? room - done : chunk) : 0;
            if (chunk == 0) {
                errno = ENOSPC;
                rc = vae__error(err, VAE_EIO, "%s: write failed: %s", path, strerror(errno));
                break;
            }
        }
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = vae__error(err, VAE_EIO, "%s: write failed: %s", path,
                            w < 0 ? strerror(errno) : "no progress");
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (rc == VAE_OK) fchmod(fd, 0644); /* mkstemp makes 0600; outputs are ordinary files */
    if (rc == VAE_OK && fsync(fd) != 0)
        rc = vae__error(err, VAE_EIO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == VAE_OK)
        rc = vae__error(err, VAE_EIO, "%s: close failed: %s", path, strerror(errno));
    if (rc == VAE_OK && rename(tmp, path) != 0)
        rc = vae__error(err, VAE_EIO, "%s: rename failed: %s", path, strerror(errno));
    if (rc != VAE_OK) {
        unlink(tmp);
        goto done;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* makes the rename durable; best effort on odd file systems */
        close(dfd);
    }
done:
    free(dir);
    free(tmp);
    return rc;
}
