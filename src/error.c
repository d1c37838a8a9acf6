/* error.c - the version, status codes to text and the one-line error helper. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

const char *vae_version(void)
{
    return VAE_VERSION;
}

const char *vae_strerror(int code)
{
    switch (code) {
#define VAE_XX_(name, num, text) \
    case VAE_##name:             \
        return text;
        VAE_ERRNO_MAP(VAE_XX_)
#undef VAE_XX_
    }
    return "unknown error";
}

int vae__error(vae_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}
