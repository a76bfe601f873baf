"""Step 4 of the cycle: shadow-test a candidate against the champion on rows neither trained on.

Which rows is the cycle's rule: newer than the champion's training data and inside the
candidate's own held-out test period. Two models with different feature sets cannot be
compared row by row, so such a candidate waits for the user, unless the user changed the
feature list on purpose (QT_CLM_FEATURES). An adopted champion (a model clm-tray never trained)
is judged by adopt.py. The verdict itself is monitor/shadow.py's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from clm_tray.core.app import decide
from clm_tray.core.app.cycle_run import CycleContext
from clm_tray.core.app.status import ShadowResult
from clm_tray.core.registry.adopt import shadow_against_adopted

if TYPE_CHECKING:  # pandas is imported when the shadow test runs, never at import
    import pandas as pd


def shadow_against_champion(ctx: CycleContext, candidate: Any, frame: pd.DataFrame
                            ) -> ShadowResult:
    """Shadow-test ``candidate`` against the champion on rows neither has trained on.

    Rows: newer than the champion's training data AND inside the candidate's own held-out
    test period (so the candidate never saw them). No champion → promote.
    """
    import pandas as pd

    s = ctx.settings
    champion_id = ctx.store.aliases().get("champion")
    if not champion_id or champion_id == candidate.id:
        return ShadowResult("promote", "no champion yet")
    champion = ctx.store.get(champion_id)
    if champion.adopted:
        return shadow_against_adopted(ctx.settings, candidate, champion, frame)
    from clm_tray.core.monitor.windows import rows_after_training

    new = rows_after_training(frame, champion.manifest)
    rows = new[new["timestamp"] >= pd.Timestamp(candidate.manifest["split"]["test_start"])]
    if list(champion.manifest["features"]) != list(candidate.manifest["features"]):
        # Different feature sets cannot be compared row by row. Only a change the user made on
        # purpose (QT_CLM_FEATURES) may be judged on the candidate's own out-of-time test.
        diff = decide.feature_difference(champion.features, candidate.features)
        if decide.features_chosen_on_purpose(s, candidate.features):
            return ShadowResult("promote", f"feature set changed by QT_CLM_FEATURES ({diff}); "
                                "judged on its own out-of-time test", features_differ=diff)
        return ShadowResult("wait", f"features differ from the champion's ({diff}); waits for "
                            "`clm-tray promote` or a QT_CLM_FEATURES change",
                            features_differ=diff, champion=champion_id)
    from clm_tray.core.ml.modelfile import load_booster  # XGBoost: only with two models
    from clm_tray.core.monitor.shadow import shadow_test

    res = shadow_test(
        load_booster(candidate.model_path), load_booster(champion.model_path), rows,
        candidate.manifest["features"], candidate.manifest["target"],
        min_rows=s.shadow_min, logloss_tol=s.shadow_logloss_tol,
    )
    return dataclasses.replace(res, champion=champion_id)
