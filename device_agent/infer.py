"""The accuracy-mode operation: run each requested sample once, stream the raw outputs back.

No timing matters here. Outputs go back in EVENT frames of at most ``max_event_bytes`` each
(one sample's outputs always travel whole) and at least every half second, so neither end
buffers a whole accuracy set's outputs in one frame and a slow model never looks like a dead
link; the host pushes the set itself in bounded windows. Float outputs
are checked for NaN and infinity on the way, so a broken model is named on the device.
This module must run on Python 3.9.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List

import numpy as np

from .backends import Backend, BackendError

MAX_EVENT_BYTES = 1 << 20
MAX_EVENT_INTERVAL_NS = 500_000_000  # a slow model still reports (and keeps the link alive)
MAX_NONFINITE_LISTED = 100


class InferError(BackendError):
    """An infer request that cannot be served."""


def sample_indices(req: Dict[str, Any], n_samples: int) -> List[int]:
    """The samples a request names: ``indices`` (a list), or ``first`` and ``count``."""
    if req.get("indices") is not None:
        raw = req["indices"]
        if not isinstance(raw, list):
            raise InferError("infer: indices must be a list of sample indices")
        indices = [int(i) for i in raw]
    else:
        first = int(req.get("first", 0))
        count = int(req.get("count", n_samples - first))
        indices = list(range(first, first + count))
    bad = [i for i in indices if not 0 <= i < n_samples]
    if bad:
        raise InferError("infer: sample indices %s are outside the sample set of %d"
                         % (bad[:10], n_samples))
    return indices


def run_infer(backend: Backend, indices: List[int],
              emit: Callable[[Dict[str, Any], bytes], None],
              max_event_bytes: int = MAX_EVENT_BYTES) -> Dict[str, Any]:
    """Run ``indices`` in order; emit {"first", "count", "sample_bytes"} + outputs frames."""
    outputs_of = backend.outputs_fn()
    pending: List[bytes] = []
    first = 0
    size = -1
    nonfinite: List[int] = []
    n_nonfinite = 0
    events = 0
    last = time.perf_counter_ns()

    def flush() -> None:
        if pending:
            emit({"first": first, "count": len(pending), "sample_bytes": size},
                 b"".join(pending))
            del pending[:]

    for k, s in enumerate(indices):
        arrays = outputs_of(s)
        data = b"".join(a.tobytes() for a in arrays)
        if size < 0:
            size = len(data)
        elif len(data) != size:
            raise InferError("infer: sample %d gave %d output bytes, earlier samples %d; "
                             "output shapes must not change between samples" % (s, len(data),
                                                                                   size))
        if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in arrays):
            n_nonfinite += 1
            if len(nonfinite) < MAX_NONFINITE_LISTED:
                nonfinite.append(s)
        now = time.perf_counter_ns()
        if pending and ((len(pending) + 1) * size > max_event_bytes
                        or now - last >= MAX_EVENT_INTERVAL_NS):
            flush()
            events += 1
            first, last = k, now
        pending.append(data)
    flush()
    return {"count": len(indices), "sample_bytes": max(size, 0),
            "events": events + (1 if indices else 0),
            "nonfinite": nonfinite, "nonfinite_count": n_nonfinite}
