/*
 * dtoa.h: doubles to decimal digits, fast: the Grisu2 method (Loitsch,
 * "Printing floating-point numbers quickly and accurately with integers",
 * PLDI 2010), written for sitrep. The digits always read back as the same
 * double and are the shortest such in nearly every case (a few are one
 * digit longer). Tens of nanoseconds a value instead of the microseconds
 * printf("%.17g") + strtod retries take: JSON answers of range queries
 * carry millions of values.
 */
#ifndef SITREP_UTIL_DTOA_H
#define SITREP_UTIL_DTOA_H

/*
 * v finite and > 0. Writes the significant digits (no dot, no sign, no
 * trailing zeros) into digits (room for 18 bytes, NUL-terminated) and the
 * decimal exponent of the first digit: v = d1.d2d3... x 10^*exp10.
 * Returns the number of digits.
 */
int util_dtoa_digits(double v, char *digits, int *exp10);

#endif
