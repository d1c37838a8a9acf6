/* encode_decode.c - libvae from C: train a small VAE for a few steps, encode
 * test images into their codes, decode the codes back, and write the images
 * above their reconstructions as a PNG.
 *
 *   example_encode_decode [DATA_DIR [OUT.png]]
 *
 * DATA_DIR is an MNIST-layout directory [/usr/share/datasets/fashion-mnist].
 * Build against the tree: cmake --build build (build/example_encode_decode),
 * or PKG_CONFIG_PATH=build cc encode_decode.c $(pkg-config --cflags --libs vae);
 * against the installed libvae: cc encode_decode.c $(pkg-config --cflags
 * --libs vae), or with CMake, examples/cmake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae.h"

enum { BATCH = 64, STEPS = 100, SHOW = 8 };

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    const char *png = argc > 2 ? argv[2] : "example.png";
    vae_dataset *train = NULL, *test = NULL;
    vae_model *m = NULL;
    vae_error err = {0};
    float *x = NULL, *mu = NULL, *rec = NULL;
    int status = 1;

    /* example:begin */
    // the images, and a VAE of their size with the default settings
    if (vae_dataset_open_mnist(dir, VAE_SPLIT_TRAIN, &train, &err) ||
        vae_dataset_open_mnist(dir, VAE_SPLIT_TEST, &test, &err))
        goto fail;
    vae_config cfg;
    vae_config_default(&cfg);
    vae_dataset_shape(train, &cfg.channels, &cfg.height, &cfg.width);
    if (vae_model_create(&cfg, BATCH, 1, &m, &err)) goto fail;
    int D = vae_model_input_size(m), d = cfg.latent;
    x = malloc(sizeof *x * BATCH * D);
    mu = malloc(sizeof *mu * BATCH * d);
    rec = malloc(sizeof *rec * BATCH * D);
    if (!x || !mu || !rec) goto fail;

    // a few Adam steps on batches of training images (pixels in [0, 1])
    uint32_t idx[BATCH];
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < BATCH; i++)
            idx[i] = (uint32_t)((step * BATCH + i) % vae_dataset_count(train));
        vae_dataset_batch(train, idx, BATCH, VAE_BINARIZE_NONE, 0, NULL, x);
        vae_stats st = {0};
        if (vae_model_train_step(m, x, NULL, BATCH, &st)) goto fail_model;
        if (step % 25 == 24) printf("step %2d  loss %.2f nats per image\n", step + 1, st.loss / st.n);
    }

    // codes (posterior means) of test images, and the images decoded from them
    for (int i = 0; i < SHOW; i++) idx[i] = (uint32_t)i;
    vae_dataset_batch(test, idx, SHOW, VAE_BINARIZE_NONE, 0, NULL, x);
    // (labels, the NULL: one per row for a conditional VAE)
    if (vae_model_encode(m, x, NULL, SHOW, mu, NULL) || vae_model_decode(m, mu, NULL, SHOW, rec))
        goto fail_model;
    /* example:end */

    memcpy(x + (size_t)SHOW * D, rec, sizeof *x * SHOW * D); // row 1: images, row 2: decoded
    if (vae_write_png_grid(png, x, 2 * SHOW, cfg.channels, cfg.height, cfg.width, SHOW, 2, 2, &err))
        goto fail;
    printf("code of test image 0: %.3f %.3f ... (%d dimensions); wrote %s\n", mu[0], mu[1], d, png);
    status = 0;
    goto done;
fail_model:
    fprintf(stderr, "example: %s\n", vae_model_errmsg(m));
    goto done;
fail:
    fprintf(stderr, "example: %s\n", err.code ? err.msg : "out of memory");
done:
    free(x), free(mu), free(rec);
    vae_model_free(m);
    vae_dataset_free(train);
    vae_dataset_free(test);
    return status;
}
