"""Child-process entry point for the crash-safety and lock tests.

    python deploy_child.py STORE DEPLOY_DIR install VERSION [KILL_AT_STEP]
    python deploy_child.py STORE DEPLOY_DIR rollback VERSION|- [KILL_AT_STEP]
    python deploy_child.py STORE - hold-lock

With KILL_AT_STEP (one of deploy_steps.DEPLOY_STEPS) the child SIGKILLs itself at that step,
through the deployer's step observer: the fault is injected here, not in production code.

Imports only the store and the deployer (no xgboost), so each child starts fast. The pickle
for old backends is faked with bytes derived from the model's sha256: the crash tests exercise
every step of the journaled path, including the pickle's, without training anything.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.deploy import Deployer
from clm_tray.core.registry.deploy_steps import add_step_observer
from clm_tray.core.registry.store import ModelStore


class FakePickleDeployer(Deployer):
    """A deployer whose `xgb_model.pkl` is a cheap, predictable stand-in."""

    def _pickle_bytes(self, model_path: Path) -> bytes:
        return fake_pickle(sha256_file(model_path))


def fake_pickle(model_sha256: str) -> bytes:
    return b"fake-pickle:" + model_sha256.encode()


def kill_at(step: str) -> None:
    """SIGKILL this process when the deploy reaches ``step`` (what a power cut would do)."""

    def observe(reached: str) -> None:
        if reached == step:
            os.kill(os.getpid(), signal.SIGKILL)

    add_step_observer(observe)


def main(argv: list[str]) -> int:
    store = ModelStore(Path(argv[0]))
    if len(argv) > 4:
        kill_at(argv[4])
    op = argv[2]
    if op == "hold-lock":
        with store.cycle_lock():
            print("locked", flush=True)
            sys.stdin.read()  # hold until the parent closes our stdin
        return 0
    deployer = FakePickleDeployer(store, Path(argv[1]), backup_keep=3, write_pickle=True)
    if op == "install":
        deployer.install(store.get(argv[3]), reason="crash test")
    elif op == "rollback":
        target = None if argv[3] == "-" else store.get(argv[3])
        deployer.rollback(target, reason="crash test")
    else:
        raise SystemExit(f"unknown operation {op!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
