"""Which rows each check looks at: the one place the "new rows" rule is written.

A champion was trained on the data up to ``data_last_timestamp`` (in its manifest). The rows
after that are the only honest evidence about how it does today, so drift, live performance and
the shadow test all start from them; the drift check may instead look back over a fixed window
(``QT_CLM_DRIFT_WINDOW_HOURS``), and compares with the rows the champion trained on. Kept apart
from the checks themselves (checks.py works on whatever frames it is given) so the engine, the
cycle's shadow test and the replay cannot drift apart on where "new" starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from clm_tray.core.config.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

# PSI over 10 bins has a sampling floor of about 9 / rows even when nothing changed: below
# ~1,000 new rows that floor alone approaches the 0.05 threshold, so drift waits for more.
DRIFT_MIN_ROWS = 1000


def drift_min_rows(settings: Settings) -> int:
    """How many current rows the drift check needs before it says anything."""
    return max(settings.shadow_min, DRIFT_MIN_ROWS)


def rows_after_training(frame: pd.DataFrame, manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The rows newer than everything the model (``manifest``) was trained on."""
    import pandas as pd

    return frame[frame["timestamp"] > pd.Timestamp(manifest["data_last_timestamp"])]


def drift_frames(frame: pd.DataFrame, manifest: Mapping[str, Any],
                 window_hours: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current) for the drift check: the champion's training rows, and either the
    last ``window_hours`` of data or (0) every row after its training data."""
    import pandas as pd

    ts = frame["timestamp"]
    reference = frame[ts <= pd.Timestamp(manifest["split"]["train_end"])]
    if window_hours > 0:
        current = frame[ts > ts.max() - pd.Timedelta(hours=window_hours)]
    else:
        current = rows_after_training(frame, manifest)
    return reference, current
