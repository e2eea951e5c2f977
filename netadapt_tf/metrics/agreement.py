"""How well a predicted metric agrees with a measured one: rank correlation and relative error.

Spearman's rho is the Pearson correlation of the ranks (ties get their average rank), so it
says whether the predictor orders sub-networks as the measurement does, which is what a
search that compares candidates needs.
"""

import numpy as np


def ranks(values) -> np.ndarray:
    """1-based ranks of `values`, ties sharing their average rank."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    result = np.empty(len(values), np.float64)
    result[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            result[tied] = result[tied].mean()
    return result


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (at least 2 values)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"spearman: needs two 1-D sequences of one length >= 2, got {a.shape}, {b.shape}"
        )
    ra, rb = ranks(a) - (len(a) + 1) / 2, ranks(b) - (len(b) + 1) / 2
    denominator = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def relative_errors(predicted, measured) -> np.ndarray:
    """(predicted - measured) / measured, element-wise."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    return (predicted - measured) / measured


def share_within(predicted, measured, tolerance: float = 0.10) -> float:
    """The share of predictions within +-tolerance (relative) of the measurement."""
    return float(np.mean(np.abs(relative_errors(predicted, measured)) <= tolerance))
