#include "nn.h"

#include <stdint.h>

#define NN_MAX_ARENA 4096

static int8_t g_arena[2][NN_MAX_ARENA];

static inline float bits_float(uint32_t b) {
    union { uint32_t u; float f; } v = {b};
    return v.f;
}

static inline int8_t clamp(int64_t v, int lo, int hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* acc * mult * 2^(shift - 31) rounded half up in one step: TFLite's single rounding
 * (reference_ops.multiply_by_quantized_multiplier, rounding="single"). */
static inline int64_t requantize(int64_t acc, int32_t mult, int shift) {
    int64_t x = acc * ((int64_t)1 << (shift > 0 ? shift : 0));
    int total = 31 + (shift < 0 ? -shift : 0);
    return (x * mult + ((int64_t)1 << (total - 1))) >> total;
}

static void conv(const nn_layer_t *l, const int8_t *in, int8_t *out) {
    for (int oy = 0; oy < l->oh; oy++) {
        for (int ox = 0; ox < l->ow; ox++) {
            for (int o = 0; o < l->oc; o++) {
                int32_t acc = 0;
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->pad_t + ky;
                    if (iy < 0 || iy >= l->ih) continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pad_l + kx;
                        if (ix < 0 || ix >= l->iw) continue;
                        const int8_t *x = in + (iy * l->iw + ix) * l->ic;
                        const int8_t *w = l->w + ((o * l->kh + ky) * l->kw + kx) * l->ic;
                        for (int c = 0; c < l->ic; c++) {
                            acc += (x[c] - l->in_zp) * w[c];
                        }
                    }
                }
                int64_t v = requantize((int64_t)acc + l->bias[o], l->mult[o], l->shift[o]);
                *out++ = clamp(v + l->out_zp, l->lo, l->hi);
            }
        }
    }
}

static void depthwise(const nn_layer_t *l, const int8_t *in, int8_t *out) {
    for (int oy = 0; oy < l->oh; oy++) {
        for (int ox = 0; ox < l->ow; ox++) {
            for (int o = 0; o < l->oc; o++) {
                int c = o / l->multiplier;
                int32_t acc = 0;
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->pad_t + ky;
                    if (iy < 0 || iy >= l->ih) continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pad_l + kx;
                        if (ix < 0 || ix >= l->iw) continue;
                        acc += (in[(iy * l->iw + ix) * l->ic + c] - l->in_zp) *
                               l->w[(ky * l->kw + kx) * l->oc + o];
                    }
                }
                int64_t v = requantize((int64_t)acc + l->bias[o], l->mult[o], l->shift[o]);
                *out++ = clamp(v + l->out_zp, l->lo, l->hi);
            }
        }
    }
}

static void fully_connected(const nn_layer_t *l, const int8_t *in, int8_t *out) {
    for (int o = 0; o < l->oc; o++) {
        const int8_t *w = l->w + o * l->ic;
        int32_t acc = 0;
        for (int i = 0; i < l->ic; i++) {
            acc += (in[i] - l->in_zp) * w[i];
        }
        int64_t v = requantize((int64_t)acc + l->bias[o], l->mult[o], l->shift[o]);
        out[o] = clamp(v + l->out_zp, l->lo, l->hi);
    }
}

/* Pools keep their input's quantization; the average rounds half away from zero and leaves
 * padding out of the count, as TFLite's reference kernel does. */
static void pool(const nn_layer_t *l, const int8_t *in, int8_t *out) {
    for (int oy = 0; oy < l->oh; oy++) {
        for (int ox = 0; ox < l->ow; ox++) {
            for (int c = 0; c < l->oc; c++) {
                int32_t acc = 0, count = 0, best = -129;
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->pad_t + ky;
                    if (iy < 0 || iy >= l->ih) continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pad_l + kx;
                        if (ix < 0 || ix >= l->iw) continue;
                        int32_t v = in[(iy * l->iw + ix) * l->ic + c];
                        acc += v;
                        count++;
                        if (v > best) best = v;
                    }
                }
                if (l->op == NN_MAX_POOL) {
                    *out++ = clamp(best, l->lo, l->hi);
                } else {
                    int32_t half = count / 2;
                    int32_t num = acc > 0 ? acc + half : acc - half;
                    *out++ = clamp(num / count, l->lo, l->hi); /* C division truncates */
                }
            }
        }
    }
}

/* numpy's pairwise float32 sum (what np.sum does along a contiguous axis). */
static float pairwise_sum(const float *a, int n) {
    if (n < 8) {
        float res = 0.0f;
        for (int i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        float r[8];
        int i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8) {
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        }
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* The optimized kernel's float exp table over int8 steps, the output rounded half to even
 * (reference_ops.softmax_int8). */
static void softmax(const nn_layer_t *l, const int8_t *in, int8_t *out) {
    static float e[256]; /* n <= 256: the generator checks */
    int n = l->oc;
    int max = -128;
    for (int i = 0; i < n; i++) if (in[i] > max) max = in[i];
    for (int i = 0; i < n; i++) e[i] = bits_float(l->exp_table[max - in[i]]);
    float inv = 1.0f / (pairwise_sum(e, n) * bits_float(l->out_scale_bits));
    for (int i = 0; i < n; i++) {
        float v = e[i] * inv;                   /* 0 <= v <= 256 */
        float r = (v + 8388608.0f) - 8388608.0f; /* rint: round half to even below 2^23 */
        out[i] = clamp((int32_t)r + l->out_zp, -128, 127);
    }
}

void nn_invoke(const nn_model_t *m, const int8_t *input, int8_t *output) {
    const int8_t *x = input;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer_t *l = &m->layers[i];
        int8_t *y = (i == m->n_layers - 1) ? output : g_arena[i & 1];
        switch (l->op) {
        case NN_CONV: conv(l, x, y); break;
        case NN_DEPTHWISE: depthwise(l, x, y); break;
        case NN_FULLY_CONNECTED: fully_connected(l, x, y); break;
        case NN_MAX_POOL:
        case NN_AVERAGE_POOL: pool(l, x, y); break;
        case NN_SOFTMAX: softmax(l, x, y); break;
        default: break;
        }
        x = y;
    }
}
