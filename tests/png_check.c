/* png_check.c - prints facts about a PNG for the shell tests: width,
 * height, the number of distinct colours, the standard deviation of the
 * grey level (0..255) and the fraction of pixels that are not white.
 * "png_check FILE" -> "W H colours std nonwhite"; exit 1 if unreadable.
 * "png_check FILE X Y W H" also prints a second line: the red channel of
 * the W x H rectangle at (X, Y), row by row, as decimal bytes (to compare a
 * tile with the image it must show). */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 6) {
        fprintf(stderr, "usage: png_check FILE.png [X Y W H]\n");
        return 2;
    }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, argv[1])) {
        fprintf(stderr, "png_check: %s: %s\n", argv[1], img.message);
        return 1;
    }
    img.format = PNG_FORMAT_RGB;
    size_t n = (size_t)img.width * img.height;
    unsigned char *px = malloc(n * 3);
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        fprintf(stderr, "png_check: %s: %s\n", argv[1], px ? img.message : "out of memory");
        return 1;
    }
    // distinct colours through a bitmap over the 2^24 RGB values
    unsigned char *seen = calloc(1 << 21, 1);
    if (!seen) return 1;
    long colours = 0, nonwhite = 0;
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2], c = r << 16 | g << 8 | b;
        if (!(seen[c >> 3] & (1u << (c & 7)))) seen[c >> 3] |= (unsigned char)(1u << (c & 7)), colours++;
        double grey = (r + g + b) / 3.0;
        sum += grey, sum2 += grey * grey;
        nonwhite += c != 0xffffff;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    printf("%u %u %ld %.2f %.4f\n", img.width, img.height, colours, sqrt(var > 0 ? var : 0),
           (double)nonwhite / n);
    if (argc == 6) {
        long x0 = atol(argv[2]), y0 = atol(argv[3]), w = atol(argv[4]), h = atol(argv[5]);
        if (x0 < 0 || y0 < 0 || w < 1 || h < 1 || x0 + w > (long)img.width || y0 + h > (long)img.height) {
            fprintf(stderr, "png_check: the rectangle is outside the %ux%u image\n", img.width, img.height);
            return 1;
        }
        for (long y = y0; y < y0 + h; y++)
            for (long x = x0; x < x0 + w; x++)
                printf("%u%c", px[3 * ((size_t)y * img.width + x)], y == y0 + h - 1 && x == x0 + w - 1 ? '\n' : ' ');
    }
    free(px);
    free(seen);
    return 0;
}
