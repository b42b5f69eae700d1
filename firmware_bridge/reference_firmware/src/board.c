/* mps2-an385 drivers: console UART with an interrupt-fed ring, APB timers, timestamp line. */
#include "board.h"

#include "mps2_an385.h"

#define RING_SIZE 256u /* a power of two */

static volatile uint8_t g_ring[RING_SIZE];
static volatile uint32_t g_head, g_tail; /* written by the ISR, read by main */
static volatile uint32_t g_lap_wraps;

void uart0_rx_handler(void) {
    UART0->INTSTATUS = UART_INT_RX; /* clear first: a byte arriving after the read re-raises */
    while (UART0->STATE & UART_STATE_RXFULL) {
        if (g_head - g_tail == RING_SIZE) {
            /* Full: stop taking bytes (the byte stays in the UART, the sender waits; under
             * qemu the pty holds the rest). board_getchar() turns reception back on. */
            UART0->CTRL &= ~UART_CTRL_RXINT;
            return;
        }
        g_ring[g_head % RING_SIZE] = (uint8_t)UART0->DATA;
        g_head++;
    }
}

void timer0_handler(void) {
    TIMER0->INTSTATUS = 1u;
    g_lap_wraps++;
}

static void uart_init(cmsdk_uart_t *u, uint32_t baud, uint32_t ctrl) {
    u->BAUDDIV = SYSCLK_HZ / baud;
    u->CTRL = ctrl;
}

static void timer_start(cmsdk_timer_t *t) {
    t->CTRL = 0u;
    t->INTSTATUS = 1u;
    t->RELOAD = 0xFFFFFFFFu;
    t->VALUE = 0xFFFFFFFFu;
    t->CTRL = TIMER_CTRL_EN | TIMER_CTRL_IRQEN;
}

void board_init(uint32_t baud) {
    uart_init(UART0, baud, UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_RXINT);
    uart_init(UART1, 115200u, UART_CTRL_TXEN);
    GPIO0->OUTENSET = 1u << 7;
    timer_start(TIMER0);
    NVIC_ISER0 = (1u << IRQ_UART0_RX) | (1u << IRQ_TIMER0);
    irq_enable();
}

int board_getchar(void) {
    int c;
    irq_disable();
    while (g_head == g_tail) {
        UART0->CTRL |= UART_CTRL_RXINT;
        wait_for_interrupt(); /* wakes on the pending interrupt even with PRIMASK set */
        irq_enable();
        irq_disable();
    }
    c = g_ring[g_tail % RING_SIZE];
    g_tail++;
    UART0->CTRL |= UART_CTRL_RXINT;
    irq_enable();
    return c;
}

static void uart_putc(cmsdk_uart_t *u, char c) {
    while (u->STATE & UART_STATE_TXFULL) {
    }
    u->DATA = (uint8_t)c;
}

void board_putc(char c) { uart_putc(UART0, c); }

/* A 64-bit count from a down-counting 32-bit timer and its wrap count. A wrap whose
 * interrupt is still pending (interrupts masked, or not yet taken) is counted here. */
static uint64_t timer_ticks(cmsdk_timer_t *t, volatile uint32_t *wraps) {
    uint32_t hi, v;
    do {
        hi = *wraps;
        v = t->VALUE;
    } while (hi != *wraps);
    if ((t->INTSTATUS & 1u) && v > 0x80000000u) {
        hi++;
    }
    return ((uint64_t)hi << 32) | (uint64_t)(0xFFFFFFFFu - v);
}

void lap_restart(void) {
    irq_disable();
    timer_start(TIMER0);
    g_lap_wraps = 0u;
    irq_enable();
}

uint64_t lap_ticks(void) { return timer_ticks(TIMER0, &g_lap_wraps); }

uint64_t lap_us(void) { return lap_ticks() / (SYSCLK_HZ / 1000000u); }

void lap_wait_ticks(uint32_t ticks) {
    uint64_t end = lap_ticks() + ticks;
    while (lap_ticks() < end) {
    }
}

static void put_u64(cmsdk_uart_t *u, uint64_t v) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        uart_putc(u, digits[--n]);
    }
}

void timestamp_line(int level) {
    uint64_t t = lap_ticks();
    if (level) {
        GPIO0->DATAOUT |= 1u << 7;
    } else {
        GPIO0->DATAOUT &= ~(1u << 7);
    }
    uart_putc(UART1, level ? 'R' : 'F');
    put_u64(UART1, t);
    uart_putc(UART1, '\n');
}
