"""The state the tray and the dashboard show: one ``Snapshot`` of plain engine data.

Read in one go off the GUI thread (``take_snapshot``, on the task runner) after events and
once a minute, so every card, tab, tooltip and menu line shows the same moment; the figures
shown in more than one place are made into text once per snapshot (``Snapshot.facts``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from clm_tray.core.app import wording
from clm_tray.core.app.port import EnginePort
from clm_tray.core.app.status import BackupRow, CycleRecord, EngineStatus, VersionRow

LOG_NAME = "retraining_log.txt"


@dataclass
class Snapshot:
    """Everything the tray and the dashboard show, read in one go off the GUI thread."""

    status: EngineStatus
    versions: list[VersionRow] = field(default_factory=list)
    backups: list[BackupRow] = field(default_factory=list)
    history: list[CycleRecord] = field(default_factory=list)
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    log_tail: str = ""
    importance: dict[str, float] = field(default_factory=dict)  # the champion's, by gain
    taken_at: float = 0.0

    @cached_property
    def facts(self) -> wording.Facts:
        """The figures shown in more than one place, as text, made once for this snapshot:
        every card, tab, tooltip and menu line reads them here (one truth on screen)."""
        return wording.facts(self.status)


def tail_text(path: Path | None, lines: int = 200, max_bytes: int = 256_000) -> str:
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def take_snapshot(engine: EnginePort, history_n: int = 50, log_lines: int = 200) -> Snapshot:
    """Read the engine's state (blocking: call it from the task runner)."""
    deploy_dir = engine.settings.resolved_deploy_dir
    status = engine.status()
    return Snapshot(
        status=status,
        importance=engine.champion_importance() if status.champion is not None else {},
        versions=engine.versions(),
        backups=engine.backups(),
        history=engine.history_rows(history_n),
        accuracy=engine.accuracy_history(),
        log_tail=tail_text(deploy_dir / LOG_NAME if deploy_dir else None, log_lines),
        taken_at=time.time(),
    )
