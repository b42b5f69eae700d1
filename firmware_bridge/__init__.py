"""edgeperf's firmware bridge: microcontroller boards that speak MLPerf Tiny's (EEMBC's) UART
protocol, driven from the host (imported as ``edgeperf_firmware``)."""
