/* fuzz_util.h - scratch files and abort-with-message helpers shared by the libFuzzer targets. */
#ifndef VAE_FUZZ_UTIL_H
#define VAE_FUZZ_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The readers take a path, so every input goes through a file. $TMPDIR is
 * honoured (scripts/fuzz.sh points it at its own scratch folder); otherwise
 * /dev/shm keeps the hundreds of thousands of rewrites off the disk. */
static inline const char *fuzz_tmpdir(void)
{
    const char *d = getenv("TMPDIR");
    if (d && *d) return d;
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

/* A harness bug or a broken library promise: stop so libFuzzer saves the input. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static inline void fuzz_die(const char *fmt, ...);
static inline void fuzz_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* A scratch file, created once per process and reused by every input. */
typedef struct fuzz_file {
    char path[4096];
    int fd;
} fuzz_file;

/* Creates dir/vae-fuzz-<tag>-XXXXXX<suffix>; suffix may be "". */
static inline void fuzz_file_open(fuzz_file *f, const char *tag, const char *suffix)
{
    int n = snprintf(f->path, sizeof f->path, "%s/vae-fuzz-%s-XXXXXX%s", fuzz_tmpdir(), tag, suffix);
    if (n < 0 || (size_t)n >= sizeof f->path) fuzz_die("scratch path too long");
    f->fd = mkstemps(f->path, (int)strlen(suffix));
    if (f->fd < 0) fuzz_die("mkstemps %s: %s", f->path, strerror(errno));
}

/* Replaces the file's whole content with data[0..size). */
static inline void fuzz_file_set(fuzz_file *f, const uint8_t *data, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fuzz_die("write %s: %s", f->path, w < 0 ? strerror(errno) : "no progress");
        done += (size_t)w;
    }
    if (ftruncate(f->fd, (off_t)size) != 0) fuzz_die("ftruncate %s: %s", f->path, strerror(errno));
}

static inline void fuzz_file_remove(fuzz_file *f)
{
    if (f->fd >= 0) close(f->fd);
    unlink(f->path);
    f->fd = -1;
}

/* The one scratch file most targets need: opened on the first call, removed
 * at exit. */
static fuzz_file fuzz_scratch;

static void fuzz_scratch_remove(void) { fuzz_file_remove(&fuzz_scratch); }

static inline fuzz_file *fuzz_scratch_open(const char *tag, const char *suffix)
{
    fuzz_file_open(&fuzz_scratch, tag, suffix);
    atexit(fuzz_scratch_remove);
    return &fuzz_scratch;
}

#endif /* VAE_FUZZ_UTIL_H */
