/* pngdir.c - a folder of PNG images as a data set: flat or one sub-folder
 * per class, optionally train/ + test/, read in byte order of names. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"

#define PNG_MAX_FILE ((size_t)256 << 20) /* one PNG file's bytes */
#define MAX_CLASSES 256                  /* labels are bytes */

/* One directory entry after following links: a directory or a regular file. */
typedef struct entry {
    char *name, *path;
    int is_dir;
} entry;

typedef struct listing {
    entry *e;
    size_t n, cap;
    size_t skipped; /* neither a directory nor a *.png file */
} listing;

typedef struct file {
    char *path;
    int label;
} file;

typedef struct filelist {
    file *f;
    size_t n, cap;
} filelist;

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->e[i].name), free(l->e[i].path);
    free(l->e);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int is_png_name(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && !strcasecmp(s + n - 4, ".png");
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, *dir && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

/* Lists dir: sub-directories and *.png regular files, sorted by name (bytes);
 * anything else, hidden files included, is counted as skipped. A symbolic
 * link must resolve inside root (the data folder's real path). */
static int list_dir(const char *dir, const char *root, listing *l, vae_error *err)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d) return vae__error(err, errno == ENOENT ? VAE_ENOENT : VAE_EIO, "%s: cannot open the folder: %s",
                              dir, strerror(errno));
    int rc = VAE_OK;
    struct dirent *de;
    size_t rootlen = strlen(root);
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        char *p = path_join(dir, nm);
        if (!p) {
            rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", dir);
            break;
        }
        struct stat st;
        if (lstat(p, &st) != 0) {
            rc = vae__error(err, VAE_EIO, "%s: %s", p, strerror(errno));
            free(p);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            char real[PATH_MAX];
            if (!realpath(p, real)) {
                rc = vae__error(err, VAE_ENOENT, "%s: a symbolic link to nowhere (%s)", p, strerror(errno));
                free(p);
                break;
            }
            // links may share files inside the folder, never reach out of it
            if (strncmp(real, root, rootlen) || (real[rootlen] != '/' && real[rootlen] != 0)) {
                rc = vae__error(err, VAE_EINVAL, "%s: a symbolic link pointing outside the data folder "
                                "(to %s); copy the file in instead", p, real);
                free(p);
                break;
            }
            if (stat(p, &st) != 0) {
                rc = vae__error(err, VAE_EIO, "%s: %s", p, strerror(errno));
                free(p);
                break;
            }
        }
        int dirent_is_dir = S_ISDIR(st.st_mode);
        if (nm[0] == '.' || !(dirent_is_dir || (S_ISREG(st.st_mode) && is_png_name(nm)))) {
            l->skipped++;
            free(p);
            continue;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 64;
            entry *e = realloc(l->e, cap * sizeof *e);
            if (!e) {
                free(p);
                rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", dir);
                break;
            }
            l->e = e, l->cap = cap;
        }
        entry *e = &l->e[l->n];
        e->path = p;
        e->is_dir = dirent_is_dir;
        if (!(e->name = strdup(nm))) {
            free(p);
            rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", dir);
            break;
        }
        l->n++;
    }
    closedir(d);
    if (rc) listing_free(l);
    else if (l->n) qsort(l->e, l->n, sizeof *l->e, by_name);
    return rc;
}

static int push_file(filelist *fl, const char *path, int label, vae_error *err)
{
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? 2 * fl->cap : 256;
        file *f = realloc(fl->f, cap * sizeof *f);
        if (!f) return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
        fl->f = f, fl->cap = cap;
    }
    if (!(fl->f[fl->n].path = strdup(path))) return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    fl->f[fl->n++].label = label;
    return VAE_OK;
}

static void filelist_free(filelist *fl)
{
    for (size_t i = 0; i < fl->n; i++) free(fl->f[i].path);
    free(fl->f);
    memset(fl, 0, sizeof *fl);
}

/* The images of one collection (the folder, or its train/ or test/): *.png
 * files directly in it (label -1), or class sub-folders of them. classes
 * holds the class names seen so far (the training split's first); a test
 * split may not bring new ones. */
static int collect(const char *dir, const char *root, int new_classes_ok, char ***classes,
                   int *nclasses, filelist *fl, size_t *skipped, vae_error *err)
{
    listing l;
    int rc = list_dir(dir, root, &l, err);
    if (rc) return rc;
    *skipped += l.skipped;
    size_t ndirs = 0;
    for (size_t i = 0; i < l.n; i++) ndirs += l.e[i].is_dir;
    if (ndirs && ndirs < l.n) {
        const char *img = NULL, *sub = NULL;
        for (size_t i = 0; i < l.n; i++)
            if (l.e[i].is_dir) sub = sub ? sub : l.e[i].name;
            else img = img ? img : l.e[i].name;
        rc = vae__error(err, VAE_EINVAL, "%s: holds both images (%s) and sub-folders (%s/); use only "
                        "class sub-folders, or only images", dir, img, sub);
        listing_free(&l);
        return rc;
    }
    for (size_t i = 0; i < l.n && !rc; i++) {
        if (!l.e[i].is_dir) {
            rc = push_file(fl, l.e[i].path, -1, err);
            continue;
        }
        int k = 0;
        while (k < *nclasses && strcmp((*classes)[k], l.e[i].name)) k++;
        if (k == *nclasses) {
            if (!new_classes_ok) {
                rc = vae__error(err, VAE_EINVAL, "%s: class '%s' is not among the training classes",
                                l.e[i].path, l.e[i].name);
                break;
            }
            if (*nclasses == MAX_CLASSES) {
                rc = vae__error(err, VAE_EUNSUPPORTED, "%s: more than %d class folders", dir, MAX_CLASSES);
                break;
            }
            char **c = realloc(*classes, (size_t)(*nclasses + 1) * sizeof *c);
            if (!c || !(c[*nclasses] = strdup(l.e[i].name))) {
                if (c) *classes = c;
                rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", dir);
                break;
            }
            *classes = c;
            (*nclasses)++;
        }
        listing sub;
        if ((rc = list_dir(l.e[i].path, root, &sub, err))) break;
        *skipped += sub.skipped;
        for (size_t j = 0; j < sub.n && !rc; j++) {
            if (sub.e[j].is_dir) (*skipped)++; // classes are one level deep
            else rc = push_file(fl, sub.e[j].path, k, err);
        }
        listing_free(&sub);
    }
    listing_free(&l);
    return rc;
}

/* Reads a whole (small) file into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **buf, size_t *len, vae_error *err)
{
    *buf = NULL;
    int fd;
    struct stat st;
    int rc = vae__open_read(path, &fd, &st, err);
    if (rc) return rc;
    if ((uint64_t)st.st_size > PNG_MAX_FILE) {
        close(fd);
        return vae__error(err, VAE_EUNSUPPORTED, "%s: %lld bytes, more than the %zu MiB a PNG may have",
                          path, (long long)st.st_size, PNG_MAX_FILE >> 20);
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return vae__error(err, VAE_EIO, "%s: read error", path);
    }
    *buf = b;
    *len = n;
    return VAE_OK;
}

/* Decodes one file into dst (c x h x w, planar), resized when asked. */
static int decode_one(const char *path, int c, int h, int w, int resize, uint8_t *dst,
                      vae_error *err)
{
    uint8_t *buf, *pix = NULL, *rs = NULL;
    size_t len;
    uint32_t pw, ph;
    int rc = read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = vae__png_decode(buf, len, path, c, &pix, &pw, &ph, err);
    free(buf);
    if (rc) return rc;
    const uint8_t *src = pix;
    if (resize) {
        if (!(rs = malloc((size_t)h * w * c)) || vae__resize_u8(pix, (int)pw, (int)ph, c, rs, w, h)) {
            free(pix), free(rs);
            return vae__error(err, VAE_ENOMEM, "%s: out of memory", path);
        }
        src = rs;
    } else if ((int)pw != w || (int)ph != h) { // the probe saw it; the file changed since
        free(pix);
        return vae__error(err, VAE_ESHAPE, "%s: changed while being read", path);
    }
    for (size_t p = 0; p < (size_t)h * w; p++) // interleaved -> planar (C, H, W)
        for (int k = 0; k < c; k++) dst[(size_t)k * h * w + p] = src[p * c + k];
    free(pix), free(rs);
    return VAE_OK;
}

/* The first failure of a parallel loop by index, so the message is the
 * same whatever the threads did. */
typedef struct first_error {
    size_t at; /* SIZE_MAX: none */
    vae_error err;
} first_error;

static void note_error(first_error *f, size_t i, const vae_error *e)
{
#pragma omp critical(vae_pngdir_error)
    if (i < f->at) f->at = i, f->err = *e;
}

static int passed(first_error *f, size_t i)
{
    size_t at;
#pragma omp atomic read
    at = f->at;
    return i > at; // a file after a failure need not be read
}

/* Decodes the files into one data set of c x h x w (planar) images; files
 * are decoded in parallel (OpenMP), each into its own slot. */
static int decode_all(const filelist *fl, int c, int h, int w, int resize, const char *name,
                      int labelled, size_t budget, vae_dataset **out, vae_error *err)
{
    size_t D = (size_t)c * h * w, total, map_len;
    if (__builtin_mul_overflow(D, fl->n, &total))
        return vae__error(err, VAE_ENOMEM, "%s: %zu images of %zu bytes are too many", name, fl->n, D);
    uint8_t *img = vae__images_alloc(total, budget, &map_len, name, err);
    if (!img) return err ? err->code : VAE_ENOMEM;
    uint8_t *lab = labelled ? malloc(fl->n) : NULL;
    if (labelled && !lab) {
        vae__images_free(img, map_len);
        return vae__error(err, VAE_ENOMEM, "%s: out of memory", name);
    }
    first_error fe = {SIZE_MAX, {0, ""}};
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < fl->n; i++) {
        if (passed(&fe, i)) continue;
        vae_error e;
        if (decode_one(fl->f[i].path, c, h, w, resize, img + i * D, &e)) note_error(&fe, i, &e);
        else if (lab) lab[i] = (uint8_t)fl->f[i].label;
    }
    if (fe.at != SIZE_MAX) {
        vae__images_free(img, map_len), free(lab);
        if (err) *err = fe.err;
        return fe.err.code;
    }
    int rc = vae__dataset_wrap(NULL, lab, fl->n, c, h, w, "PNG folder", name, out, err);
    if (rc) {
        vae__images_free(img, map_len);
        return rc;
    }
    (*out)->images = img, (*out)->map_len = map_len, (*out)->budget = budget;
    return VAE_OK;
}

static int set_classes(vae_dataset *ds, char **classes, int n, vae_error *err)
{
    if (!n) return VAE_OK;
    ds->classes = calloc((size_t)n, sizeof *ds->classes);
    if (!ds->classes) return vae__error(err, VAE_ENOMEM, "%s: out of memory", ds->path);
    for (int k = 0; k < n; k++)
        if (!(ds->classes[k] = strdup(classes[k])))
            return vae__error(err, VAE_ENOMEM, "%s: out of memory", ds->path);
    ds->num_classes = n;
    return VAE_OK;
}

int vae__open_pngdir(const char *dir, const vae_data_options *o, vae_dataset **train,
                     vae_dataset **test, vae_error *err)
{
    *train = *test = NULL;
    char root[PATH_MAX];
    if (!realpath(dir, root)) return vae__error(err, VAE_EIO, "%s: %s", dir, strerror(errno));
    listing top;
    int rc = list_dir(dir, root, &top, err);
    if (rc) return rc;
    const char *trdir = NULL, *tedir = NULL;
    for (size_t i = 0; i < top.n; i++)
        if (top.e[i].is_dir && !strcmp(top.e[i].name, "train")) trdir = top.e[i].path;
        else if (top.e[i].is_dir && !strcmp(top.e[i].name, "test")) tedir = top.e[i].path;
    if (!trdir || !tedir) trdir = tedir = NULL; // train/ alone (or test/ alone) is a class

    filelist ftr = {0}, fte = {0};
    char **classes = NULL;
    int ncl = 0;
    size_t skipped = 0;
    if (trdir) {
        for (size_t i = 0; i < top.n; i++) // what lies beside train/ and test/ is not read
            if (top.e[i].path != trdir && top.e[i].path != tedir) skipped++;
        skipped += top.skipped;
        rc = collect(trdir, root, 1, &classes, &ncl, &ftr, &skipped, err);
        if (!rc) rc = collect(tedir, root, 0, &classes, &ncl, &fte, &skipped, err);
        if (!rc && ftr.n && fte.n && (ftr.f[0].label < 0) != (fte.f[0].label < 0))
            rc = vae__error(err, VAE_EINVAL, "%s: one of train/ and test/ has class folders and the "
                            "other has not", dir);
        if (!rc && fte.n == 0)
            rc = vae__error(err, VAE_EINVAL, "%s: no *.png images (test split)", tedir);
    } else {
        rc = collect(dir, root, 1, &classes, &ncl, &ftr, &skipped, err);
    }
    const char *trname = trdir ? trdir : dir;
    if (!rc && ftr.n == 0)
        rc = vae__error(err, VAE_EINVAL, "%s: no *.png images here%s", trname,
                        ncl ? " (in its class folders)" : "");

    // probe every file (in parallel): one size (or --resize), grey or colour
    int c = 1, w = 0, h = 0;
    size_t nall = ftr.n + fte.n;
    uint32_t *dims = rc ? NULL : malloc((nall ? nall : 1) * 2 * sizeof *dims);
    uint8_t *chans = rc ? NULL : malloc(nall ? nall : 1);
    if (!rc && (!dims || !chans)) rc = vae__error(err, VAE_ENOMEM, "%s: out of memory", dir);
    if (!rc) {
        first_error fe = {SIZE_MAX, {0, ""}};
#pragma omp parallel for schedule(dynamic, 16)
        for (size_t i = 0; i < nall; i++) {
            if (passed(&fe, i)) continue;
            const char *path = i < ftr.n ? ftr.f[i].path : fte.f[i - ftr.n].path;
            uint8_t *buf;
            size_t len;
            int pc = 0;
            vae_error e;
            int r = read_file(path, &buf, &len, &e);
            if (!r) {
                r = vae__png_probe(buf, len, path, &dims[2 * i], &dims[2 * i + 1], &pc, &e);
                free(buf);
            }
            if (r) note_error(&fe, i, &e);
            chans[i] = (uint8_t)pc;
        }
        if (fe.at != SIZE_MAX) {
            if (err) *err = fe.err;
            rc = fe.err.code;
        }
    }
    for (size_t i = 0; i < nall && !rc; i++) {
        const char *path = i < ftr.n ? ftr.f[i].path : fte.f[i - ftr.n].path;
        if (chans[i] == 3) c = 3; // one colour image makes the data set RGB
        if (i == 0) w = (int)dims[0], h = (int)dims[1];
        else if (!o->resize_w && ((int)dims[2 * i] != w || (int)dims[2 * i + 1] != h))
            rc = vae__error(err, VAE_ESHAPE, "%s: %ux%u pixels, but %s is %dx%d; all images must be "
                            "one size (or pass --resize WxH)", path, (unsigned)dims[2 * i],
                            (unsigned)dims[2 * i + 1], ftr.f[0].path, w, h);
    }
    free(dims);
    free(chans);
    int resize = o->resize_w > 0;
    if (resize) w = o->resize_w, h = o->resize_h;
    vae_dataset *tr = NULL, *te = NULL;
    int labelled = ncl > 0;
    size_t budget = vae__memory_budget(o->max_memory); // shared by both splits
    if (!rc) rc = decode_all(&ftr, c, h, w, resize, trname, labelled, budget, &tr, err);
    if (!rc && trdir) rc = decode_all(&fte, c, h, w, resize, tedir, labelled, budget, &te, err);
    if (!rc) rc = set_classes(tr, classes, ncl, err);
    if (!rc && te) rc = set_classes(te, classes, ncl, err);
    if (!rc) {
        tr->skipped = skipped, tr->resized = resize;
        if (te) {
            te->skipped = skipped, te->resized = resize;
            snprintf(tr->split, sizeof tr->split, "test/ folder");
            snprintf(te->split, sizeof te->split, "test/ folder");
        }
    }
    for (int k = 0; k < ncl; k++) free(classes[k]);
    free(classes);
    filelist_free(&ftr);
    filelist_free(&fte);
    listing_free(&top);
    if (rc) {
        vae_dataset_free(tr);
        vae_dataset_free(te);
        return rc;
    }
    *train = tr;
    *test = te;
    return VAE_OK;
}
