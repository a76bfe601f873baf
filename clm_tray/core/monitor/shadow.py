"""May a freshly trained candidate replace the champion? The shadow test.

Both models predict the same new labelled rows that neither trained on; the exact McNemar
test on their paired right/wrong outcomes says whether the candidate is significantly worse,
and log loss catches a candidate that is right as often but overconfident. Too few rows means
"wait", never a guess. The verdict is a ``status.ShadowResult``: plain data for the version's
notes, history and ``--json`` that the GUI process reads without numpy or pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clm_tray.core.app.status import ShadowResult
from clm_tray.core.ml.metrics import binomial_half_cdf
from clm_tray.core.monitor.predictions import (
    Model,
    clipped_log_loss,
    labelled_rows,
    probabilities,
)

MCNEMAR_ALPHA = 0.05


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for discordant counts b and c (1.0 when both are 0).

    Under "both models are equally good" each discordant pair is a fair coin, so the p-value
    is the two-sided binomial test of min(b, c) successes in b + c trials with p = 0.5.
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n, k = b + c, min(b, c)
    if 2 * k == n:  # as balanced as it gets (b = c = 0 included)
        return 1.0
    # With p = 1/2 the two tails mirror each other: this is scipy.stats.binomtest's two-sided
    # p-value (tests/monitor/test_monitor_shadow.py holds values it computed), without SciPy.
    return min(1.0, 2.0 * binomial_half_cdf(k, n))


def shadow_test(
    candidate: Model,
    champion: Model | None,
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    min_rows: int,
    logloss_tol: float,
    *,
    alpha: float = MCNEMAR_ALPHA,
) -> ShadowResult:
    """Decide whether a candidate may replace the champion, on rows both could be judged on.

    The caller selects ``frame``: labelled rows newer than the champion's training data that the
    candidate did not use for training (its train, validation or early-stopping rows), so
    neither model has seen them. Models are Boosters or callables ``fn(frame, features)``
    returning P(target = 1).

    Decision: fewer than ``min_rows`` rows -> "wait" (the candidate stays challenger). Otherwise
    "promote" unless the candidate is significantly worse (c > b and exact McNemar p < alpha)
    or its log loss exceeds the champion's by more than ``logloss_tol`` -> "reject".
    ``champion=None`` (nothing deployed yet) -> "promote".
    """
    labelled, y = labelled_rows(frame, target)
    rows = int(y.size)
    if champion is None:
        cand_acc = cand_loss = None
        if rows:
            p = probabilities(candidate, labelled, features)
            cand_acc = float(np.mean((p >= 0.5) == y))
            cand_loss = clipped_log_loss(y, p)
        return ShadowResult("promote", "promote: no champion yet", rows,
                            candidate_accuracy=cand_acc, candidate_only=0, champion_only=0,
                            p_value=1.0, candidate_log_loss=cand_loss, min_rows=int(min_rows))
    if rows == 0:
        return ShadowResult("wait",
                            f"wait: no new labelled rows yet (QT_CLM_SHADOW_MIN={min_rows})",
                            0, candidate_only=0, champion_only=0, p_value=1.0,
                            min_rows=int(min_rows))
    p_cand = probabilities(candidate, labelled, features)
    p_champ = probabilities(champion, labelled, features)
    cand_right = (p_cand >= 0.5).astype(np.int64) == y
    champ_right = (p_champ >= 0.5).astype(np.int64) == y
    b = int(np.sum(cand_right & ~champ_right))
    c = int(np.sum(champ_right & ~cand_right))
    p_value = mcnemar_exact(b, c)
    cand_acc, champ_acc = float(cand_right.mean()), float(champ_right.mean())
    cand_loss, champ_loss = clipped_log_loss(y, p_cand), clipped_log_loss(y, p_champ)
    figures = (f"accuracy {cand_acc:.3f} vs champion {champ_acc:.3f} on {rows} rows "
               f"(b={b}, c={c}, McNemar p={p_value:.3g}), "
               f"log loss {cand_loss:.4f} vs {champ_loss:.4f}")
    if rows < min_rows:
        decision = "wait"
        why = f"only {rows} shadow rows, QT_CLM_SHADOW_MIN={min_rows}"
    elif c > b and p_value < alpha:
        decision, why = "reject", f"candidate significantly worse (p < {alpha:g})"
    elif cand_loss > champ_loss + logloss_tol:
        decision, why = "reject", f"candidate log loss worse by more than {logloss_tol:g}"
    else:
        decision, why = "promote", "candidate not worse"
    return ShadowResult(
        rows=rows, candidate_accuracy=cand_acc, champion_accuracy=champ_acc, candidate_only=b,
        champion_only=c, p_value=p_value, candidate_log_loss=cand_loss,
        champion_log_loss=champ_loss, decision=decision, reason=f"{decision}: {why}; {figures}",
        min_rows=int(min_rows),
    )
