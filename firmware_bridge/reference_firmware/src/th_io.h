/* Console output: a small printf (%s %c %d %u %x, width and 0 flag) and the fixed-point
 * renderings the protocol needs. */
#ifndef TH_IO_H
#define TH_IO_H

#include <stdint.h>

void th_printf(const char *fmt, ...);
void th_print_u64(uint64_t v);
/* v rounded to 3 decimals, as "%0.3f" renders a float (correctly rounded, ties to even). */
void th_print_fixed3(float v);

#endif
