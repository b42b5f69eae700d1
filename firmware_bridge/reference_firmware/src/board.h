/* The board under the protocol: console UART, the two timers, the timestamp line. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

void board_init(uint32_t baud);

/* Console (UART0). Input arrives by interrupt into a ring buffer; board_getchar() sleeps
 * (WFI) until a byte is there, so an idle board costs its host no CPU under qemu. */
int board_getchar(void);
void board_putc(char c);

/* Lap timer: TIMER0, started at boot and restarted by lap_restart() (each infer), read in
 * 25 MHz ticks or microseconds. Restarting it puts its phase at the restart, so under icount
 * a reading is the same on every run of the same instructions. */
void lap_restart(void);
uint64_t lap_ticks(void);
uint64_t lap_us(void);
void lap_wait_ticks(uint32_t ticks);

/* The timestamp line (MLPerf Tiny's D7): level 0 or 1. Each change is recorded on UART1 as
 * one line, "F<ticks>\n" for a falling edge, "R<ticks>\n" for a rising one, the lap
 * timer's ticks when it happened. */
void timestamp_line(int level);

#endif
