"""ROC AUC, log loss and the binomial tail in plain numpy: no scikit-learn, no SciPy.

Why: scikit-learn (with the parts of SciPy it pulls in) is more than half of a training
process's import time, and the cycle starts a fresh training process each time; and SciPy's
statistics are ~0.5 s to import and most of the ~74 MB SciPy adds to the built app. These
functions agree with ``sklearn.metrics.roc_auc_score`` / ``log_loss`` for binary labels and
with ``scipy.stats.binom.cdf`` at p = 1/2 (the tests check them against those libraries'
results).
"""

from __future__ import annotations

import math

import numpy as np


def roc_auc_score(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties count
    half): the Mann-Whitney statistic, which equals the area under the ROC curve."""
    y = np.asarray(y_true).ravel() == 1
    score = np.asarray(y_score, dtype=np.float64).ravel()
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("Only one class present in y_true; ROC AUC is not defined.")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # 1-based mean rank of each distinct score
    rank_sum = float(average_rank[inverse][y].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(y_true: np.ndarray, y_pred: np.ndarray, labels: object = None) -> float:
    """Mean negative log-likelihood of 0/1 labels under P(1) = ``y_pred``, probabilities
    clipped to [eps, 1 - eps] with eps of their float type (as scikit-learn does).
    ``labels`` is accepted for call compatibility; the labels are always 0 and 1."""
    p = np.asarray(y_pred).ravel()
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    eps = np.finfo(p.dtype).eps
    p = np.clip(p, eps, 1 - eps).astype(np.float64)
    y = np.asarray(y_true).ravel() == 1
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def binomial_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), for 0 <= k < n / 2: the tail of the exact McNemar
    test (monitor.mcnemar_exact).

    P(X = k) comes from Loader's saddle-point formula (C. Loader, "Fast and Accurate
    Computation of Binomial Probabilities", 2000; the method of R's ``dbinom``), accurate to
    ~1e-15 relative at any n, where ``math.comb`` on big integers takes seconds at n = 200,000.
    The terms below follow by the exact ratio P(X = j - 1) / P(X = j) = j / (n - j + 1).
    """
    if not 0 <= k < n / 2:
        raise ValueError(f"binomial_half_cdf needs 0 <= k < n / 2, got k={k}, n={n}")
    head = _binomial_half_pmf(k, n)
    if head == 0.0 or k == 0:
        return head
    j = np.arange(k, 0, -1, dtype=np.float64)
    return head * (1.0 + float(np.cumprod(j / (n - j + 1.0)).sum()))


def _binomial_half_pmf(k: int, n: int) -> float:
    """P(X = k) for X ~ Binomial(n, 1/2), 0 <= k <= n (Loader's formula)."""
    if k == 0 or k == n:
        return math.ldexp(1.0, -n)
    half = n / 2.0
    lc = _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, half) - _bd0(n - k, half)
    lf = math.log(2.0 * math.pi) + math.log(k) + math.log1p(-k / n)
    return math.exp(lc - 0.5 * lf)


def _stirlerr(n: int) -> float:
    """log(n!) - log(sqrt(2 pi n) (n / e)**n), the error of Stirling's formula."""
    if n <= 15:  # small: lgamma is exact enough here
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - 0.5 * math.log(2 * math.pi)
    nn = float(n) * n
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    if n > 500:
        return (s0 - s1 / nn) / n
    if n > 80:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, mean: float) -> float:
    """x log(x / mean) + mean - x, without cancellation when x is close to mean."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        ej = 2.0 * x * v
        v *= v
        j = 1
        while True:
            ej *= v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return x * math.log(x / mean) + mean - x
