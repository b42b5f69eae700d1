#include "th_io.h"

#include <stdarg.h>

#include "board.h"

static void put_str(const char *s) {
    while (*s) board_putc(*s++);
}

static void put_uint(uint64_t v, unsigned base, int width, char pad) {
    char digits[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v != 0u);
    while (width-- > n) board_putc(pad);
    while (n > 0) board_putc(digits[--n]);
}

void th_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            board_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        if (*fmt == 'l') fmt++;
        switch (*fmt) {
        case 's': put_str(va_arg(ap, const char *)); break;
        case 'c': board_putc((char)va_arg(ap, int)); break;
        case 'u': put_uint(va_arg(ap, unsigned), 10, width, pad); break;
        case 'x': put_uint(va_arg(ap, unsigned), 16, width, pad); break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                board_putc('-');
                put_uint((uint64_t)(-(int64_t)v), 10, width - 1, pad);
            } else {
                put_uint((uint64_t)v, 10, width, pad);
            }
            break;
        }
        case '%': board_putc('%'); break;
        case '\0': fmt--; break;
        default: board_putc('%'); board_putc(*fmt); break;
        }
    }
    va_end(ap);
}

void th_print_u64(uint64_t v) { put_uint(v, 10, 0, ' '); }

void th_print_fixed(float v, int decimals) {
    union { float f; uint32_t u; } b = {v};
    uint32_t exp = (b.u >> 23) & 0xFFu, frac = b.u & 0x7FFFFFu;
    if (b.u >> 31) board_putc('-');
    if (exp == 0xFFu) {
        put_str(frac ? "nan" : "inf");
        return;
    }
    uint64_t scale = 1u; /* 10^decimals: 1 <= decimals <= 9, so m * scale < 2^54 */
    for (int i = 0; i < decimals; i++) scale *= 10u;
    /* |v| = m * 2^e exactly; |v| * 10^decimals = m * 10^decimals * 2^e, rounded to an
     * integer half to even: the exact binary value correctly rounded, as printf does. */
    uint64_t m = exp ? (frac | 0x800000u) : frac;
    int e = exp ? (int)exp - 150 : -149;
    uint64_t whole, part = 0u;
    if (e >= 0) { /* an integer: no fraction */
        whole = e < 40 ? m << e : 0xFFFFFFFFFFFFFFFFull; /* beyond any value printed here */
    } else {
        uint64_t n = m * scale, q;
        int s = -e;
        if (s >= 63) {
            q = 0u; /* n < 2^54: below half of one step */
        } else {
            q = n >> s;
            uint64_t rem = n - (q << s), half = (uint64_t)1 << (s - 1);
            if (rem > half || (rem == half && (q & 1u))) q++;
        }
        whole = q / scale;
        part = q % scale;
    }
    put_uint(whole, 10, 0, ' ');
    if (decimals > 0) {
        board_putc('.');
        put_uint(part, 10, decimals, '0');
    }
}
