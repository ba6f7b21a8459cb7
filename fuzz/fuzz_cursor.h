/*
 * fuzz_cursor.h: reading structured values off a fuzzer's input (shared by
 * the fuzz targets; header-only so fuzz/run.sh needs no extra file). Once the
 * input is used up, reads return zeros, so every input drives a full case.
 */
#ifndef SITREP_FUZZ_CURSOR_H
#define SITREP_FUZZ_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cursor {
    const uint8_t *p;
    size_t left;
};

/* The next n (<= 8) input bytes as a little-endian integer. */
static inline uint64_t take(struct cursor *c, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        x |= (uint64_t)(c->left ? *c->p : 0) << (8 * i);
        if (c->left) {
            c->p++;
            c->left--;
        }
    }
    return x;
}

#endif
