/* Console output: a small printf (%s %c %d %u %x, width and 0 flag) and the fixed-point
 * renderings the protocol needs. */
#ifndef TH_IO_H
#define TH_IO_H

#include <stdint.h>

void th_printf(const char *fmt, ...);
void th_print_u64(uint64_t v);
/* v rounded to 0 <= decimals <= 9 places, as "%0.<decimals>f" renders a float (the exact
 * binary value correctly rounded, ties to even; Python's '%.Nf' % float(v) alike). */
void th_print_fixed(float v, int decimals);

#endif
