/* MLPerf Tiny's (EEMBC's) DUT side of the UART protocol, as benchmark/api/
 * internally_implemented.cpp defines it, and the th_ hooks a port provides. */
#ifndef EE_H
#define EE_H

#include <stddef.h>
#include <stdint.h>

#define EE_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"
#define EE_DEVICE_NAME "dut"
#define TH_VENDOR_NAME_STRING "edgeperf-reference-mps2-an385"
#define EE_CMD_SIZE 80u
#define EE_CMD_TERMINATOR '%'
#define MAX_DB_INPUT_SIZE (96 * 96 * 3)

#ifndef EE_CFG_ENERGY_MODE
#define EE_CFG_ENERGY_MODE 0
#endif

void ee_benchmark_initialize(void);
void ee_serial_callback(char c);
size_t ee_get_buffer(uint8_t *buffer, size_t max_len);

/* th_: the port (th_port.c) */
void th_serialport_initialize(void);
void th_timestamp_initialize(void);
void th_final_initialize(void);
void th_timestamp(void);
void th_lap_restart(void);
int th_load_tensor(void); /* 0 when the loaded buffer is a valid input */
void th_infer(void);
void th_results(void);
const char *th_model_version(void);

#endif
