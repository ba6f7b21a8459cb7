/*
 * crc32c.c: CRC-32C, reflected polynomial 0x82f63b78. A slicing-by-8 table
 * version (8 table lookups per 8 input bytes) everywhere, and the SSE4.2
 * crc32 instruction on x86-64 CPUs that report it at run time. The tables and
 * the choice are set up once, on first use.
 *
 * The instruction has a latency of 3 cycles but issues every cycle, so long
 * inputs (WAL records of whole batches, block files) run three independent
 * streams over consecutive LONG-byte pieces and join them: the CRC register
 * is linear, so crc(A B) = shift_|B|(crc(A)) ^ crc_from_0(B), with the shift
 * by LONG zero bytes applied through a 4 x 256 table built once from the
 * polynomial's matrix (squared until it spans LONG bytes).
 */
#include "tsdb/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

#define LONG 4096 /* bytes per stream; a power of two */

static uint32_t table[8][256];
static uint32_t shift_long[4][256]; /* the register moved across LONG zero bytes */
static uint32_t (*impl)(uint32_t, const uint8_t *, size_t);
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* mat (32 columns) times vec over GF(2). */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static uint32_t shift(uint32_t c)
{
    return shift_long[0][c & 0xff] ^ shift_long[1][(c >> 8) & 0xff] ^
           shift_long[2][(c >> 16) & 0xff] ^ shift_long[3][c >> 24];
}

static void setup_shift(void)
{
    uint32_t op[32], sq[32];
    op[0] = POLY; /* one zero bit */
    for (int i = 1; i < 32; i++)
        op[i] = 1u << (i - 1);
    for (size_t bits = 1; bits < (size_t)LONG * 8; bits *= 2) {
        for (int i = 0; i < 32; i++)
            sq[i] = gf2_times(op, op[i]);
        memcpy(op, sq, sizeof(op));
    }
    for (int j = 0; j < 4; j++)
        for (uint32_t v = 0; v < 256; v++)
            shift_long[j][v] = gf2_times(op, v << (8 * j));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = __builtin_ia32_crc32qi(crc, *p++);
        n--;
    }
    uint64_t c = crc;
    while (n >= 3 * LONG) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < LONG; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + LONG + i, 8);
            memcpy(&w2, p + 2 * LONG + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c = shift(shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * LONG;
        n -= 3 * LONG;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
    while (n--)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

static void setup(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    setup_shift();
    impl = crc_sw;
#ifdef HAVE_HW
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        impl = crc_hw;
#endif
}

uint32_t tsdb__crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&once, setup);
    return ~impl(~crc, p, n);
}

uint32_t tsdb__crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&once, setup);
    return ~crc_sw(~crc, p, n);
}
