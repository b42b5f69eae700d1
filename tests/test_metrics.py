"""Metric values on fixed outputs, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.tasks.metrics import (
    MetricError,
    auc,
    get_metric,
    meets,
    mse,
    reconstruction_error,
    top1,
)


def test_top1_exact() -> None:
    out = np.array([[0.1, 0.7, 0.2],  # 1 right
                    [0.5, 0.2, 0.3],  # 0 right
                    [0.3, 0.3, 0.4],  # 2 wrong (label 1)
                    [0.4, 0.4, 0.2]])  # tie: the first index, 0 -> wrong (label 1)
    assert top1(out, np.array([1, 0, 1, 1])) == 0.5
    assert top1(out.astype(np.int8) + 0, np.array([0, 0, 0, 0])) == 1.0  # all zeros: index 0
    assert top1(out[:, None, :], [1, 0, 2, 0]) == 1.0  # [N, 1, C] outputs are rows too
    with pytest.raises(MetricError, match="4 outputs but 3 labels"):
        top1(out, [1, 0, 1])
    with pytest.raises(MetricError, match=r"class indices in \[0, 3\), got 0..3"):
        top1(out, [0, 1, 2, 3])
    with pytest.raises(MetricError, match="integers"):
        top1(out, [0.5, 1, 1, 1])


def test_auc_hand_checked_with_ties() -> None:
    # positives {0.35, 0.8, 0.4}, negatives {0.1, 0.4}: of the 6 pairs the positive wins
    # 0.35>0.1, 0.8>0.1, 0.8>0.4, 0.4>0.1 and ties 0.4=0.4 (counts 1/2): 4.5 / 6
    assert auc([0.1, 0.4, 0.35, 0.8, 0.4], [0, 0, 1, 1, 1]) == 0.75


def test_auc_edges() -> None:
    assert auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert auc([7, 7, 7, 7], [0, 1, 0, 1]) == 0.5  # all tied: chance
    # a brute-force pair count on random data with many ties
    rs = np.random.RandomState(0)
    s, lab = rs.randint(0, 5, 200), rs.randint(0, 2, 200)
    p, n = s[lab == 1], s[lab == 0]
    pairs = (p[:, None] > n[None]).sum() + 0.5 * (p[:, None] == n[None]).sum()
    assert auc(s, lab) == pytest.approx(pairs / (len(p) * len(n)), abs=1e-15)
    with pytest.raises(MetricError, match="both classes"):
        auc([1, 2], [1, 1])
    with pytest.raises(MetricError, match="0 .normal. or 1"):
        auc([1, 2], [0, 2])
    with pytest.raises(MetricError, match="NaN"):
        auc([np.nan, 2], [0, 1])


def test_mse_and_reconstruction_error() -> None:
    assert mse(np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.0, 0.0], [3.0, 3.0]])) == 2.0
    with pytest.raises(MetricError, match="cannot be compared"):
        mse(np.zeros((2, 3)), np.zeros((2, 2)))
    err = reconstruction_error(np.array([[1.0, 1.0], [0.0, 2.0]]), np.array([[1.0, 3.0],
                                                                          [0.0, 0.0]]))
    assert err.tolist() == [2.0, 2.0]


def test_targets_and_direction() -> None:
    t1, m = get_metric("top1"), get_metric("mse")
    assert meets(t1, 0.9, 0.9) and not meets(t1, 0.8999, 0.9)
    assert meets(m, 0.01, 0.02) and not meets(m, 0.03, 0.02)
    assert not meets(t1, float("nan"), 0.0) and not meets(m, float("nan"), 1.0)
    with pytest.raises(MetricError, match="unknown metric 'f1'; choose one of top1, auc, mse"):
        get_metric("f1")
