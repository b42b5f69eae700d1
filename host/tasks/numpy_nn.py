"""Layers with hand-written gradients and an Adam loop: enough numpy to train the reference
tasks' small models (training.py), deterministically, without a deep-learning framework.

Only what those models use: SAME convolutions with stride 1 (3x3 and pointwise), depthwise
3x3, 2x2 max pool, global average pool, dense; RELU or no activation; float64 throughout.
Each layer exports itself as the host.models.network layer that to_tflite writes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgeperf.models.network import Conv, Dense, Depthwise, Pool


class Layer:
    params: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params, self.grads = {}, {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _relu_back(y: np.ndarray, dy: np.ndarray, act: str) -> np.ndarray:
    if act == "RELU":
        return dy * (y > 0)
    return dy


class ConvLayer(Layer):
    """SAME convolution, stride 1, weights [out, kh, kw, in] as TFLite stores them."""

    def __init__(self, rs: np.random.RandomState, cin: int, cout: int, k: int, act: str) -> None:
        super().__init__()
        limit = np.sqrt(6.0 / (cin * k * k))  # He uniform
        self.params = {"w": rs.uniform(-limit, limit, (cout, k, k, cin)), "b": np.zeros(cout)}
        self.k, self.act = k, act

    def forward(self, x: np.ndarray) -> np.ndarray:
        w, k = self.params["w"], self.k
        n, h, wd, c = x.shape
        p = k // 2
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        cols = sliding_window_view(xp, (k, k), axis=(1, 2)).reshape(n * h * wd, c * k * k)
        wmat = w.transpose(3, 1, 2, 0).reshape(c * k * k, -1)
        y = (cols @ wmat + self.params["b"]).reshape(n, h, wd, -1)
        if self.act == "RELU":
            y = np.maximum(y, 0)
        self.cache = (x.shape, cols, wmat, y)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (n, h, wd, c), cols, wmat, y = self.cache
        k, p = self.k, self.k // 2
        dy = _relu_back(y, dy, self.act).reshape(n * h * wd, -1)
        self.grads["w"] = (cols.T @ dy).reshape(c, k, k, -1).transpose(3, 1, 2, 0)
        self.grads["b"] = dy.sum(axis=0)
        dcols = (dy @ wmat.T).reshape(n, h, wd, c, k, k)
        dxp = np.zeros((n, h + 2 * p, wd + 2 * p, c))
        for i in range(k):
            for j in range(k):
                dxp[:, i:i + h, j:j + wd, :] += dcols[..., i, j]
        return dxp[:, p:p + h, p:p + wd, :]

    def export(self) -> Conv:
        return Conv(self.params["w"].astype(np.float32), self.params["b"].astype(np.float32),
                    (1, 1), "SAME", self.act)


class DepthwiseLayer(Layer):
    """SAME depthwise 3x3 convolution, multiplier 1, weights [1, kh, kw, channels]."""

    def __init__(self, rs: np.random.RandomState, c: int, k: int, act: str) -> None:
        super().__init__()
        limit = np.sqrt(6.0 / (k * k))
        self.params = {"w": rs.uniform(-limit, limit, (1, k, k, c)), "b": np.zeros(c)}
        self.k, self.act = k, act

    def forward(self, x: np.ndarray) -> np.ndarray:
        k, p = self.k, self.k // 2
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        win = sliding_window_view(xp, (k, k), axis=(1, 2))  # [n, h, w, c, k, k]
        wt = self.params["w"][0].transpose(2, 0, 1)  # [c, k, k]
        y = np.einsum("nhwcij,cij->nhwc", win, wt) + self.params["b"]
        if self.act == "RELU":
            y = np.maximum(y, 0)
        self.cache = (x.shape, win, wt, y)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (n, h, wd, c), win, wt, y = self.cache
        k, p = self.k, self.k // 2
        dy = _relu_back(y, dy, self.act)
        self.grads["w"] = np.einsum("nhwcij,nhwc->cij", win, dy).transpose(1, 2, 0)[None]
        self.grads["b"] = dy.sum(axis=(0, 1, 2))
        dxp = np.zeros((n, h + 2 * p, wd + 2 * p, c))
        for i in range(k):
            for j in range(k):
                dxp[:, i:i + h, j:j + wd, :] += dy * wt[:, i, j]
        return dxp[:, p:p + h, p:p + wd, :]

    def export(self) -> Depthwise:
        return Depthwise(self.params["w"].astype(np.float32), self.params["b"].astype(np.float32),
                         (1, 1), "SAME", self.act)


class MaxPool2(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        n, h, w, c = x.shape
        blocks = x.reshape(n, h // 2, 2, w // 2, 2, c)
        y = blocks.max(axis=(2, 4))
        mask = blocks == y[:, :, None, :, None, :]
        self.cache = (x.shape, mask / mask.sum(axis=(2, 4), keepdims=True))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, share = self.cache
        return (share * dy[:, :, None, :, None, :]).reshape(shape)

    def export(self) -> Pool:
        return Pool("MAX", (2, 2), (2, 2), "VALID")


class GlobalAvgPool(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = x.shape
        return x.mean(axis=(1, 2))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self.cache
        return np.broadcast_to(dy[:, None, None, :] / (h * w), self.cache)

    def export_pool(self, h: int, w: int) -> Pool:
        return Pool("AVERAGE", (h, w), (h, w), "VALID")


class DenseLayer(Layer):
    def __init__(self, rs: np.random.RandomState, fan_in: int, fan_out: int, act: str) -> None:
        super().__init__()
        limit = np.sqrt(6.0 / fan_in) if act == "RELU" else np.sqrt(6.0 / (fan_in + fan_out))
        self.params = {"w": rs.uniform(-limit, limit, (fan_out, fan_in)), "b": np.zeros(fan_out)}
        self.act = act

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.params["w"].T + self.params["b"]
        if self.act == "RELU":
            y = np.maximum(y, 0)
        self.cache = (x, y)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, y = self.cache
        dy = _relu_back(y, dy, self.act)
        self.grads["w"] = dy.T @ x
        self.grads["b"] = dy.sum(axis=0)
        return dy @ self.params["w"]

    def export(self) -> Dense:
        return Dense(self.params["w"].astype(np.float32), self.params["b"].astype(np.float32),
                     self.act)


class Adam:
    def __init__(self, layers: list[Layer], lr: float) -> None:
        self.layers, self.lr, self.t = layers, lr, 0
        self.m = [{k: np.zeros_like(v) for k, v in la.params.items()} for la in layers]
        self.v = [{k: np.zeros_like(v) for k, v in la.params.items()} for la in layers]

    def step(self, lr: float) -> None:
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for la, m, v in zip(self.layers, self.m, self.v, strict=True):
            for k, p in la.params.items():
                g = la.grads[k]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mhat = m[k] / (1 - b1 ** self.t)
                vhat = v[k] / (1 - b2 ** self.t)
                p -= lr * mhat / (np.sqrt(vhat) + eps)


def train(layers: list[Layer], x: np.ndarray, loss_grad: Callable[[np.ndarray, np.ndarray],
           np.ndarray], y: np.ndarray, rs: np.random.RandomState, epochs: int, batch: int,
           lr: float) -> None:
    """Mini-batch Adam with a cosine learning-rate decay; the order of batches is seeded."""
    opt = Adam(layers, lr)
    steps = epochs * -(-len(x) // batch)
    step = 0
    for _ in range(epochs):
        order = rs.permutation(len(x))
        for lo in range(0, len(x), batch):
            idx = order[lo:lo + batch]
            h = x[idx]
            for la in layers:
                h = la.forward(h)
            g = loss_grad(h, y[idx])
            for la in reversed(layers):
                g = la.backward(g)
            opt.step(lr * 0.5 * (1 + np.cos(np.pi * step / steps)))
            step += 1


def softmax_xent_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p / len(labels)


def mse_grad(out: np.ndarray, target: np.ndarray) -> np.ndarray:
    return 2.0 * (out - target) / out.size
