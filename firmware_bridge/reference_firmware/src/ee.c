/* The command parser, db buffer and inference loop, reply for reply as MLPerf Tiny's
 * internally_implemented.cpp. Departures, each where the original would misbehave: an
 * empty command, a 'db load' above the buffer, 'db' data beyond what was announced and an
 * input of the wrong size are answered with e-[...] instead of crashing or inferring. */
#include "ee.h"

#include "th_io.h"

static char g_cmd_buf[EE_CMD_SIZE + 1u];
static size_t g_cmd_pos;
static uint8_t g_buff[MAX_DB_INPUT_SIZE];
static size_t g_buff_size, g_buff_pos;
static int g_parser_enabled;

static int str_eq(const char *a, const char *b) {
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* strtok(s, " ") */
static char *next_token(char *s) {
    static char *rest;
    if (s) rest = s;
    if (!rest) return 0;
    while (*rest == ' ') rest++;
    if (!*rest) {
        rest = 0;
        return 0;
    }
    char *tok = rest;
    while (*rest && *rest != ' ') rest++;
    if (*rest) *rest++ = '\0';
    else rest = 0;
    return tok;
}

/* atoi */
static long to_int(const char *s) {
    long v = 0;
    int neg = 0;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    return neg ? -v : v;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t ee_get_buffer(uint8_t *buffer, size_t max_len) {
    size_t len = max_len < g_buff_pos ? max_len : g_buff_pos;
    for (size_t i = 0; i < len; i++) buffer[i] = g_buff[i];
    return len;
}

static void db_print(void) {
    const size_t max = 8;
    size_t i = 0;
    for (; i < g_buff_size; ++i) {
        if (i % max == 0) th_printf("m-buffer-");
        th_printf("%02x", g_buff[i]);
        if ((i + 1) % max == 0 || i + 1 == g_buff_size) th_printf("\r\n");
        else th_printf("-");
    }
    if (i % max != 0) th_printf("\r\n");
}

static void db_data(const char *hex) {
    size_t n = 0;
    while (n < EE_CMD_SIZE && hex[n]) n++;
    if (n & 1u) {
        th_printf("e-[Insufficent number of hex digits]\r\n");
        return;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            th_printf("e-[Invalid hex digit '%c%c']\r\n", hex[i], hex[i + 1]);
            return;
        }
        if (g_buff_pos >= g_buff_size) {
            th_printf("e-[All %u bytes are loaded; send 'db load N' first]\r\n",
                      (unsigned)g_buff_size);
            return;
        }
        g_buff[g_buff_pos++] = (uint8_t)(hi * 16 + lo);
        if (g_buff_pos == g_buff_size) {
            th_printf("m-load-done\r\n");
            return; /* the rest of the digits is disregarded */
        }
    }
}

static void db_command(void) {
    char *sub = next_token(0);
    if (!sub) {
        th_printf("e-[Command 'db' requires a subcommand]\r\n");
    } else if (str_eq(sub, "load")) {
        char *arg = next_token(0);
        if (!arg) {
            th_printf("e-[Command 'db load' requires the # of bytes]\r\n");
            return;
        }
        long size = to_int(arg);
        if (size <= 0) {
            th_printf("e-[Command 'db load' must be >0 bytes]\r\n");
        } else if (size > MAX_DB_INPUT_SIZE) {
            g_buff_size = g_buff_pos = 0;
            th_printf("e-[Supplied buffer size %d exceeds maximum of %d]\r\n", (int)size,
                      MAX_DB_INPUT_SIZE);
        } else {
            g_buff_size = (size_t)size;
            g_buff_pos = 0;
            th_printf("m-[Expecting %d bytes]\r\n", (int)size);
        }
    } else if (str_eq(sub, "print")) {
        db_print();
    } else {
        db_data(sub);
    }
}

static void ee_infer(size_t n, size_t n_warmup) {
    if (th_load_tensor() != 0) return;
    th_printf("m-warmup-start-%d\r\n", (int)n_warmup);
    while (n_warmup-- > 0) th_infer();
    th_printf("m-warmup-done\r\n");
    th_printf("m-infer-start-%d\r\n", (int)n);
    th_lap_restart();
    th_timestamp();
    while (n-- > 0) th_infer();
    th_timestamp();
    th_printf("m-infer-done\r\n");
    th_results();
}

static void infer_command(void) {
    long n = 1, w = 10;
    char *arg = next_token(0);
    if (arg) {
        n = to_int(arg);
        if (n <= 0) {
            th_printf("e-[Inference iterations must be >0]\r\n");
            return;
        }
        arg = next_token(0);
        if (arg) {
            w = to_int(arg);
            if (w < 0) {
                th_printf("e-[Inference warmup must be >=0]\r\n");
                return;
            }
        }
    }
    ee_infer((size_t)n, (size_t)w);
}

static void help_command(void) {
    th_printf("%s\r\n\r\n", EE_FW_VERSION);
    th_printf("help         : Print this information\r\n");
    th_printf("name         : Print the name of the device\r\n");
    th_printf("timestsamp   : Generate a timetsamp\r\n");
    th_printf("db SUBCMD    : Manipulate a generic byte buffer\r\n");
    th_printf("  load N     : Allocate N bytes and set load counter\r\n");
    th_printf("  db HH[HH]* : Load 8-bit hex byte(s) until N bytes\r\n");
    th_printf("  print [N=16] [offset=0]\r\n");
    th_printf("             : Print N bytes at offset as hex\r\n");
    th_printf("infer N [W=0]: Load input, execute N inferences after W warmup loops\r\n");
    th_printf("results      : Return the result fp32 vector\r\n");
}

static void dispatch(char *command) {
    char *tok = next_token(command);
    if (!g_parser_enabled) return;
    if (!tok) {
        th_printf("e-[Unknown command: ]\r\n");
    } else if (str_eq(tok, "name")) {
        th_printf("m-name-%s-[%s]\r\n", EE_DEVICE_NAME, TH_VENDOR_NAME_STRING);
    } else if (str_eq(tok, "timestamp")) {
        th_timestamp();
    } else if (str_eq(tok, "profile")) {
        th_printf("m-profile-[%s]\r\n", EE_FW_VERSION);
        th_printf("m-model-[%s]\r\n", th_model_version());
    } else if (str_eq(tok, "help")) {
        help_command();
    } else if (str_eq(tok, "db")) {
        db_command();
    } else if (str_eq(tok, "infer")) {
        infer_command();
    } else if (str_eq(tok, "results")) {
        th_results();
    } else {
        th_printf("e-[Unknown command: %s]\r\n", tok);
    }
    th_printf("m-ready\r\n");
}

void ee_serial_callback(char c) {
    if (c == EE_CMD_TERMINATOR) {
        g_cmd_buf[g_cmd_pos] = '\0';
        g_cmd_pos = 0;
        dispatch(g_cmd_buf);
    } else {
        g_cmd_buf[g_cmd_pos] = c;
        g_cmd_pos = g_cmd_pos >= EE_CMD_SIZE ? EE_CMD_SIZE : g_cmd_pos + 1;
    }
}

void ee_benchmark_initialize(void) {
    th_serialport_initialize();
    th_timestamp_initialize();
    th_final_initialize();
    th_printf("m-init-done\r\n");
    g_parser_enabled = 1;
    th_printf("m-ready\r\n");
}
