"""Child process for the engine-level crash test: promote VERSION, SIGKILLed at STEP.

    python cycle_child.py WORKSPACE VERSION STEP

STEP is a journal step (deploy_steps.DEPLOY_STEPS, via the step observer), ``restart``
(after the old backend was stopped, before the new one starts: the backend is down) or
``verify`` (the new backend runs, nobody has checked it). The faults are injected around the
real functions from here; nothing in production code knows about them.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _die(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    from clm_tray.core.app.service import Engine
    from clm_tray.core.backend import health
    from clm_tray.core.backend import process as process_backend
    from clm_tray.core.config.sources import load_settings
    from clm_tray.core.registry import deploy_steps

    workspace, version, step = Path(argv[0]), argv[1], argv[2]
    if step == "restart":
        process_backend.ProcessBackend._start_locked = _die  # type: ignore[method-assign]
    elif step == "verify":
        health.verify_backend = _die  # type: ignore[assignment]
    else:
        deploy_steps.add_step_observer(lambda reached: _die() if reached == step else None)
    engine = Engine(load_settings(workspace / ".env", cwd=workspace))
    result = engine.promote(version)
    print(result.outcome, result.reason, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
