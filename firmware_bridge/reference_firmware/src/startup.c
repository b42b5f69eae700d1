/* Vector table and reset: copy .data, zero .bss, run main. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
void uart0_rx_handler(void);
void timer0_handler(void);
void fault_handler(void);

void reset_handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0u;
    }
    main();
    for (;;) {
        __asm volatile("wfi");
    }
}

static void unused_handler(void) {
    for (;;) {
        __asm volatile("wfi");
    }
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) static const vector_t g_vectors[16 + 32] = {
    (vector_t)(uintptr_t)&_estack,
    reset_handler,
    unused_handler, /* NMI */
    fault_handler,  /* HardFault */
    fault_handler,  /* MemManage */
    fault_handler,  /* BusFault */
    fault_handler,  /* UsageFault */
    0, 0, 0, 0,
    unused_handler, /* SVC */
    unused_handler, /* DebugMon */
    0,
    unused_handler, /* PendSV */
    unused_handler, /* SysTick */
    [16 + 0] = uart0_rx_handler,
    [16 + 8] = timer0_handler,
};
