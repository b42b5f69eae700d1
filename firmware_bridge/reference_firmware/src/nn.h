/* An int8 network as a list of layers, computed with TFLite's integer arithmetic exactly as
 * edgeperf's numpy reference (host/models/reference_ops.py) computes it. The layer table is
 * generated from the project's model by firmware_bridge/gen_weights.py. */
#ifndef NN_H
#define NN_H

#include <stdint.h>

enum { NN_CONV = 1, NN_DEPTHWISE, NN_FULLY_CONNECTED, NN_MAX_POOL, NN_AVERAGE_POOL, NN_SOFTMAX };

/* What the db bytes are: the int8 input offset by 128 (uint8, Tiny's ic01/vww01/kws01), or
 * the real input as float32 little-endian that the device quantizes (Tiny's ad01). */
enum { NN_INPUT_INT8_OFFSET = 1, NN_INPUT_FLOAT32 };
/* What m-results prints: the dequantized output vector (ic01), or the mean squared error
 * between the dequantized output and the float input, one value (ad01). */
enum { NN_RESULT_VECTOR = 1, NN_RESULT_MSE };

typedef struct {
    uint8_t op;
    uint8_t kh, kw, sh, sw, pad_t, pad_l; /* window, stride, padding before (SAME/VALID) */
    uint8_t multiplier;                   /* depthwise channel multiplier */
    uint16_t ih, iw, ic, oh, ow, oc;      /* fully connected: ic inputs, oc outputs */
    int16_t in_zp, out_zp;
    int16_t lo, hi;                       /* the fused activation as an int8 clamp */
    const int8_t *w;                      /* TFLite layouts: [oc,kh,kw,ic], [1,kh,kw,oc], [oc,ic] */
    const int32_t *bias;
    const int32_t *mult;                  /* per output channel: Q0.31 multiplier */
    const int8_t *shift;                  /*   and its power of two */
    const uint32_t *exp_table;            /* softmax: float32 bits of exp(-scale * beta * k) */
    uint32_t out_scale_bits;              /* softmax: float32 bits of the output scale */
} nn_layer_t;

typedef struct {
    const char *id; /* the MLPerf Tiny model id: ic01, ad01, ... */
    const char *description;
    uint16_t input_size, output_size, arena_size, n_layers;
    int16_t output_zp;
    uint32_t output_scale_bits;
    uint8_t input_kind;         /* NN_INPUT_... */
    uint8_t result_kind;        /* NN_RESULT_... */
    uint8_t result_decimals;    /* m-results values as "%0.<N>f" */
    int16_t input_zp;           /* NN_INPUT_FLOAT32: the input tensor's quantization */
    uint32_t input_scale_bits;  /*   (float32 bits of its scale) */
    uint32_t uart_baud;         /* performance mode's UART, as the model's Tiny reference */
    const nn_layer_t *layers;
} nn_model_t;

extern const nn_model_t NN_MODEL;

/* Run the network on input (int8, input_size), leaving the output in output. */
void nn_invoke(const nn_model_t *m, const int8_t *input, int8_t *output);

#endif
