/* dataopen.c - vae_data_open: recognises an IDX directory, a PNG folder or a
 * CSV file, and gives a training and a test split. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "io/io.h"

void vae_data_options_default(vae_data_options *o)
{
    memset(o, 0, sizeof *o);
    o->csv_label = VAE_CSV_LABEL_NONE;
    o->csv_header = -1;
    o->csv_scale = 255;
    o->test_fraction = 0.1;
    o->split_seed = 1;
}

/* Is there dir/{train,t10k}-images-idx3-ubyte[.gz] (present, even if broken)? */
static int has_idx(const char *dir)
{
    char p[4096];
    struct stat st;
    const char *sep = *dir && dir[strlen(dir) - 1] == '/' ? "" : "/";
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "%s%s%s-images-idx3-ubyte%s", dir, sep, k / 2 ? "t10k" : "train",
                 k % 2 ? ".gz" : "");
        if (lstat(p, &st) == 0) return 1;
    }
    return 0;
}

/* CSV files are known by name: *.csv or *.csv.gz, any case. */
static int is_csv_name(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && !strcasecmp(path + n - 4, ".csv")) ||
           (n > 7 && !strcasecmp(path + n - 7, ".csv.gz"));
}

static int check_options(const vae_data_options *o, const char *path, vae_error *err)
{
    if ((o->csv_label < VAE_CSV_LABEL_NONE || o->csv_label > VAE_CSV_LABEL_LAST) ||
        o->csv_header < -1 || o->csv_header > 1 || (o->csv_scale != 255 && o->csv_scale != 1) ||
        !(o->test_fraction > 0 && o->test_fraction < 1) || o->resize_w < 0 || o->resize_h < 0 ||
        o->resize_w > VAE_MAX_SIDE || o->resize_h > VAE_MAX_SIDE ||
        (!o->resize_w != !o->resize_h) || o->channels < 0 || o->height < 0 || o->width < 0 ||
        (o->channels && o->channels != 1 && o->channels != 3) ||
        o->height > VAE_MAX_SIDE || o->width > VAE_MAX_SIDE ||
        (!o->channels != !o->height) || (!o->channels != !o->width))
        return vae__error(err, VAE_EINVAL, "%s: invalid data options", path);
    return VAE_OK;
}

int vae_data_open(const char *path, const vae_data_options *opt, vae_dataset **train,
                  vae_dataset **test, vae_error *err)
{
    if (!train || !test) return vae__error(err, VAE_EINVAL, "vae_data_open: NULL output");
    *train = *test = NULL;
    if (!path || !*path) return vae__error(err, VAE_EINVAL, "vae_data_open: empty path");
    vae_data_options defaults;
    if (!opt) vae_data_options_default(&defaults), opt = &defaults;
    int rc = check_options(opt, path, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return vae__error(err, VAE_ENOENT, "%s: no such directory or file%s", path,
                              lstat(path, &st) == 0 ? " (a dangling symbolic link)"
                              : " (for Fashion-MNIST install Debian's package: apt-get install "
                                "dataset-fashion-mnist)");
        return vae__error(err, VAE_EIO, "%s: %s", path, strerror(errno));
    }
    vae_dataset *tr = NULL, *te = NULL;
    if (S_ISDIR(st.st_mode) && has_idx(path)) {
        if ((rc = vae_dataset_open_mnist(path, VAE_SPLIT_TRAIN, &tr, err))) return rc;
        rc = vae_dataset_open_mnist(path, VAE_SPLIT_TEST, &te, err);
        if (rc == VAE_ENOENT) { // no t10k files: hold some out, like any other data
            te = NULL;
            rc = VAE_OK;
        }
    } else if (S_ISDIR(st.st_mode)) {
        rc = vae__open_pngdir(path, opt, &tr, &te, err);
    } else if (S_ISREG(st.st_mode) && is_csv_name(path)) {
        rc = vae__open_csv(path, opt, &tr, err);
    } else if (S_ISREG(st.st_mode)) {
        return vae__error(err, VAE_EINVAL, "%s: not a directory (an MNIST-layout one or a folder "
                          "of PNG images) nor a *.csv file", path);
    } else { // a FIFO or device, even when named *.csv: say what it is
        return vae__error(err, VAE_EINVAL, "%s: %s, not a data set (a directory or a *.csv file)",
                          path, vae__file_kind(st.st_mode));
    }
    if (rc == VAE_OK && !te) rc = vae__dataset_hold_out(tr, opt->test_fraction, opt->split_seed, &te, err);
    if (rc == VAE_OK && (tr->c != te->c || tr->h != te->h || tr->w != te->w))
        rc = vae__error(err, VAE_ESHAPE, "%s: test images are %dx%d%s but training images (%s) are "
                        "%dx%d%s", te->path, te->w, te->h, te->c == tr->c ? "" : te->c == 3 ? " RGB" : " grey",
                        tr->path, tr->w, tr->h, te->c == tr->c ? "" : tr->c == 3 ? " RGB" : " grey");
    if (rc) {
        vae_dataset_free(tr);
        vae_dataset_free(te);
        return rc;
    }
    // labels of either split count: a class seen only in the test split still exists
    int k = tr->num_classes > te->num_classes ? tr->num_classes : te->num_classes;
    if (tr->labels) tr->num_classes = k;
    if (te->labels) te->num_classes = k;
    *train = tr;
    *test = te;
    return VAE_OK;
}
