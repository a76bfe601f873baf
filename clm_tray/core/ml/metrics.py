"""ROC AUC and log loss in plain numpy, so the training process never imports scikit-learn.

Why: scikit-learn (with the parts of SciPy it pulls in) is more than half of a training
process's import time, and the cycle starts a fresh training process each time. These two
functions agree with ``sklearn.metrics.roc_auc_score`` / ``log_loss`` for binary labels (the
tests check it against scikit-learn).
"""

from __future__ import annotations

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
