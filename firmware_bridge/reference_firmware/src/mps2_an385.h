/* The parts of the MPS2 AN385 (Cortex-M3) memory map this firmware touches, as AN385 and the
 * Cortex-M System Design Kit TRM (DDI0479) define them and qemu's mps2-an385 models them. */
#ifndef MPS2_AN385_H
#define MPS2_AN385_H

#include <stdint.h>

#define SYSCLK_HZ 25000000u /* SYSCLK = PCLK of the APB timers and UARTs */

typedef struct {
    volatile uint32_t DATA;      /* 0x00 */
    volatile uint32_t STATE;     /* 0x04: bit0 TX full, bit1 RX full */
    volatile uint32_t CTRL;      /* 0x08: bit0 TX en, bit1 RX en, bit2 TX int, bit3 RX int */
    volatile uint32_t INTSTATUS; /* 0x0C: read status, write 1 to clear; bit0 TX, bit1 RX */
    volatile uint32_t BAUDDIV;   /* 0x10 */
} cmsdk_uart_t;

#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u
#define UART_CTRL_TXEN 0x1u
#define UART_CTRL_RXEN 0x2u
#define UART_CTRL_RXINT 0x8u
#define UART_INT_RX 0x2u

typedef struct {
    volatile uint32_t CTRL;      /* 0x00: bit0 enable, bit3 interrupt enable */
    volatile uint32_t VALUE;     /* 0x04: counts down at PCLK */
    volatile uint32_t RELOAD;    /* 0x08 */
    volatile uint32_t INTSTATUS; /* 0x0C: write 1 to clear */
} cmsdk_timer_t;

#define TIMER_CTRL_EN 0x1u
#define TIMER_CTRL_IRQEN 0x8u

typedef struct {
    volatile uint32_t DATA;       /* 0x00 */
    volatile uint32_t DATAOUT;    /* 0x04 */
    uint32_t reserved[2];
    volatile uint32_t OUTENSET;   /* 0x10 */
} cmsdk_gpio_t;

#define UART0 ((cmsdk_uart_t *)0x40004000u)  /* the protocol's UART (qemu: first -serial) */
#define UART1 ((cmsdk_uart_t *)0x40005000u)  /* the timestamp line's record (second -serial) */
#define TIMER0 ((cmsdk_timer_t *)0x40000000u) /* lap timer, restarted at each infer */
#define GPIO0 ((cmsdk_gpio_t *)0x40010000u)   /* AHB GPIO 0 (not modelled by qemu 7.2) */

#define IRQ_UART0_RX 0
#define IRQ_TIMER0 8

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void wait_for_interrupt(void) { __asm volatile("wfi" ::: "memory"); }

#endif
