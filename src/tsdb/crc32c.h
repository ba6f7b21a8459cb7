/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of the store's on-disk
 * records (private to src/tsdb/). Uses the SSE4.2 crc32 instruction when the
 * CPU has it, else a slicing-by-8 table; both give the same values.
 */
#ifndef SITREP_TSDB_CRC32C_H
#define SITREP_TSDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start) over p[0..n). Chaining calls over consecutive
 * pieces gives the CRC of the whole: crc32c(crc32c(0, a, x), b, y) equals the
 * CRC of a followed by b. crc32c(0, "123456789", 9) == 0xe3069283.
 */
uint32_t tsdb__crc32c(uint32_t crc, const void *p, size_t n);

/* The portable table version, whatever the CPU (for tests and benchmarks). */
uint32_t tsdb__crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
