/* The submitter's side: serial port, timestamps, the network, and main. As MLPerf Tiny's
 * image-classification reference (submitter_implemented.cpp): the db bytes are the input
 * tensor offset by 128 (uint8), the results are the dequantized outputs as "%0.3f". */
#include <stdint.h>

#include "board.h"
#include "ee.h"
#include "nn.h"
#include "th_io.h"

#define TIMESTAMP_HOLD_TICKS 25000u /* the line stays low 1 ms (25 MHz ticks) */

static int8_t g_input[4096];
static int8_t g_output[256];

void th_serialport_initialize(void) {
#if EE_CFG_ENERGY_MODE == 1
    board_init(9600u);
#else
    board_init(115200u);
#endif
}

void th_timestamp(void) {
#if EE_CFG_ENERGY_MODE == 1
    timestamp_line(0);
    lap_wait_ticks(TIMESTAMP_HOLD_TICKS);
    timestamp_line(1);
#else
    uint64_t us = lap_us();
    th_printf("m-lap-us-");
    th_print_u64(us);
    th_printf("\r\n");
#endif
}

void th_lap_restart(void) { lap_restart(); }

void th_timestamp_initialize(void) {
#if EE_CFG_ENERGY_MODE == 1
    th_printf("m-timestamp-mode-energy\r\n");
#else
    th_printf("m-timestamp-mode-performance\r\n");
#endif
    th_timestamp(); /* as the reference: the line starts high, so the first edge falls */
}

void th_final_initialize(void) {}

const char *th_model_version(void) { return NN_MODEL.id; }

int th_load_tensor(void) {
    uint8_t bytes[4096];
    size_t n = ee_get_buffer(bytes, NN_MODEL.input_size);
    if (n != NN_MODEL.input_size) {
        th_printf("e-[Input db has %d bytes, expected %d]\r\n", (int)n, NN_MODEL.input_size);
        return -1;
    }
    for (size_t i = 0; i < n; i++) g_input[i] = (int8_t)(bytes[i] - 128);
    return 0;
}

void th_infer(void) { nn_invoke(&NN_MODEL, g_input, g_output); }

void th_results(void) {
    union { uint32_t u; float f; } scale = {NN_MODEL.output_scale_bits};
    th_printf("m-results-[");
    for (int i = 0; i < NN_MODEL.output_size; i++) {
        th_print_fixed3((float)(g_output[i] - NN_MODEL.output_zp) * scale.f);
        if (i + 1 < NN_MODEL.output_size) th_printf(",");
    }
    th_printf("]\r\n");
}

void fault_handler(void) {
    th_printf("e-[fault]\r\n");
    for (;;) {
        __asm volatile("wfi");
    }
}

int main(void) {
    ee_benchmark_initialize();
    for (;;) ee_serial_callback((char)board_getchar());
}
