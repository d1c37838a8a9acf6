/* fileio.c - the file helpers every reader and writer goes through: opening
 * a regular file for reading without blocking on a FIFO or device, whole-file
 * reads, crash-safe whole-file writes (temporary file, fsync, rename) and the
 * removal of temporaries a killed writer left. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

const char *vae__file_kind(unsigned mode)
{
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISREG(mode)) return "a regular file";
    return "not a regular file";
}

int vae__open_read(const char *path, int *fd, struct stat *st, vae_error *err)
{
    struct stat sb;
    if (!st) st = &sb;
    // O_NONBLOCK: opening a FIFO without a writer (or some devices) would
    // wait for ever; what is not a regular file is refused after fstat
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f < 0)
        return vae__error(err, errno == ENOENT || errno == ENOTDIR ? VAE_ENOENT : VAE_EIO,
                          "%s: cannot open: %s", path, strerror(errno));
    if (fstat(f, st) != 0) {
        int e = errno;
        close(f);
        return vae__error(err, VAE_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(f);
        return vae__error(err, VAE_EIO, "%s: %s, not a regular file", path,
                          vae__file_kind(st->st_mode));
    }
    // reads of a regular file never block; clear the flag all the same
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0) fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    return VAE_OK;
}

int vae_read_file(const char *path, size_t max, void **data, size_t *len, vae_error *err)
{
    if (!path || !data || !len) return vae__error(err, VAE_EINVAL, "vae_read_file: NULL argument");
    *data = NULL;
    *len = 0;
    int fd;
    struct stat st;
    int rc = vae__open_read(path, &fd, &st, err);
    if (rc) return rc;
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return vae__error(err, VAE_EUNSUPPORTED, "%s: %lld bytes, more than the limit of %zu",
                          path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    int e = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            e = r < 0 ? errno : 0;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return vae__error(err, VAE_EIO, "%s: %s", path,
                          e ? strerror(e) : "file ended early (changed while being read?)");
    }
    b[n] = 0; // text readers may treat it as a string
    *data = b;
    *len = n;
    return VAE_OK;
}

long vae__fault_write_after = -1;

int vae_write_file(const char *path, const void *data, size_t len, vae_error *err)
{
    vae__part part = {data, len};
    return vae__write_parts(path, &part, 1, err);
}

int vae__write_parts(const char *path, const vae__part *parts, int n_parts, vae_error *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base) return vae__error(err, VAE_EINVAL, "%s: not a file name", path);
    char *dir = dir_of(path);
    size_t tl = (dir ? strlen(dir) : 0) + strlen(base) + 40;
    char *tmp = dir ? malloc(tl) : NULL;
    if (!tmp) {
        free(dir);
        free(tmp);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }
    /* same directory: rename() cannot cross file systems; the writer's PID in
     * the name tells vae_remove_stale_temps whether it is still running */
    snprintf(tmp, tl, "%s/.%s.tmp.%ld.XXXXXX", dir, base, (long)getpid());
    int rc = VAE_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = vae__error(err, errno == ENOENT ? VAE_ENOENT : VAE_EIO,
                        "%s: cannot create a file in %s: %s", path, dir, strerror(errno));
        goto done;
    }
    size_t done = 0; // bytes written, for the test hook
    for (int i = 0; i < n_parts && rc == VAE_OK; i++) {
        const char *p = parts[i].data;
        size_t left = parts[i].len;
        while (left > 0) {
            size_t chunk = left;
            if (vae__fault_write_after >= 0) { // the test hook: a disk that fills up here
                size_t room = (size_t)vae__fault_write_after;
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
            done += (size_t)w;
        }
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

int vae_remove_stale_temps(const char *path, vae_error *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base) return vae__error(err, VAE_EINVAL, "%s: not a file name", path);
    char *dir = dir_of(path);
    size_t pl = strlen(base) + 8;
    char *prefix = malloc(pl);
    if (!dir || !prefix) {
        free(dir), free(prefix);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }
    snprintf(prefix, pl, ".%s.tmp.", base);
    int removed = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        free(dir), free(prefix);
        if (e == ENOENT) return 0; // no directory: nothing left behind
        return vae__error(err, VAE_EIO, "%s: cannot list the directory: %s", path, strerror(e));
    }
    struct dirent *de;
    size_t plen = strlen(prefix);
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, plen)) continue;
        // ".NAME.tmp.PID.XXXXXX": a writer that is gone (kill(pid, 0) fails
        // with ESRCH) leaves it for good; a live one is left alone
        char *end;
        long pid = strtol(de->d_name + plen, &end, 10);
        if (end == de->d_name + plen || *end != '.' || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        size_t fl = strlen(dir) + strlen(de->d_name) + 2;
        char *full = malloc(fl);
        if (!full) continue;
        snprintf(full, fl, "%s/%s", dir, de->d_name);
        removed += unlink(full) == 0;
        free(full);
    }
    closedir(d);
    free(dir), free(prefix);
    return removed;
}
