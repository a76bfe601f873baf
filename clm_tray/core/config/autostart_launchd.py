"""Start at login on macOS: a LaunchAgent, ``~/Library/LaunchAgents/com.clmtray.agent.plist``.

One module per platform mechanism, behind the small API in ``config.autostart``: the plist
written (pure, so its exact bytes are checked on any OS) and an existing one read back.
"""

from __future__ import annotations

import plistlib
from pathlib import Path

LAUNCH_AGENT_LABEL = "com.clmtray.agent"


def launch_agent_file(home: Path) -> Path:
    return Path(home) / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"


def launch_agent_plist(command: list[str]) -> bytes:
    return plistlib.dumps({
        "Label": LAUNCH_AGENT_LABEL,
        "ProgramArguments": command,
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
    }, sort_keys=True)


def read_launch_agent(path: Path) -> tuple[list[str], bool, str]:
    """What an existing agent starts, whether it is on, and a note when it is not."""
    try:
        data = plistlib.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - any damage means "not ours to trust"
        return [], False, "the LaunchAgent file is unreadable; enable again to rewrite it"
    disabled = bool(data.get("Disabled", False))
    return list(data.get("ProgramArguments", [])), not disabled, \
        "disabled in the plist" if disabled else ""
