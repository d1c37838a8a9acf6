/* test.h - a tiny test harness: checks count failures, main reports them. */
#ifndef VAE_TEST_H
#define VAE_TEST_H

#include <math.h>
#include <stdio.h>

static int test_failures_, test_checks_;

#define CHECK(cond)                                                              \
    do {                                                                         \
        test_checks_++;                                                          \
        if (!(cond)) {                                                           \
            test_failures_++;                                                    \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                             \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        test_checks_++;                                                            \
        if (a_ != b_) {                                                            \
            test_failures_++;                                                      \
            fprintf(stderr, "%s:%d: FAILED: %s == %s (%lld vs %lld)\n", __FILE__,  \
                    __LINE__, #a, #b, a_, b_);                                     \
        }                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                       \
    do {                                                                            \
        double a_ = (double)(a), b_ = (double)(b);                                  \
        test_checks_++;                                                             \
        if (!(fabs(a_ - b_) <= (tol))) {                                            \
            test_failures_++;                                                       \
            fprintf(stderr, "%s:%d: FAILED: %s ~ %s (%.9g vs %.9g, tol %g)\n",      \
                    __FILE__, __LINE__, #a, #b, a_, b_, (double)(tol));             \
        }                                                                           \
    } while (0)

/* Ends main: prints "N passed, N failed" and returns the exit status. */
#define TEST_REPORT()                                                               \
    (printf("%s: %d passed, %d failed\n", __FILE__, test_checks_ - test_failures_, \
            test_failures_),                                                        \
     test_failures_ ? 1 : 0)

#endif
