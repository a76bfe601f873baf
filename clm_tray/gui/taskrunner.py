"""The one way the GUI runs engine calls: off the GUI thread, results back as signals.

Modelled on Anki's task manager: ``Op(fn, key="retrain").success(cb).failure(cb).run()``.
A key names the action; while it runs, every widget or action bound to that key is disabled
and a second submit of the same key is refused. Failures without their own handler land in
one place, the runner's ``failed`` signal (the controller shows it and notifies).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from clm_tray.core.errors import ClmError

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """One sentence for the user: a ClmError's own message, else the exception's text."""
    if isinstance(exc, ClmError):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Op:
    """One engine call: what to run, what to do with the result or the error."""

    def __init__(self, fn: Callable[[], Any], *, key: str = "", label: str = "") -> None:
        self.fn = fn
        self.key = key
        self.label = label or key or getattr(fn, "__name__", "task")
        self.on_success: Callable[[Any], None] | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.on_done: Callable[[], None] | None = None

    def success(self, cb: Callable[[Any], None]) -> Op:
        self.on_success = cb
        return self

    def failure(self, cb: Callable[[BaseException], None]) -> Op:
        self.on_failure = cb
        return self

    def then(self, cb: Callable[[], None]) -> Op:
        """Run ``cb`` after the task, whatever its outcome (after success/failure handling)."""
        self.on_done = cb
        return self

    def run(self, runner: TaskRunner | None = None) -> bool:
        """Submit to ``runner`` (default: the app's runner). False if the key is busy."""
        runner = runner or TaskRunner.default
        if runner is None:
            raise RuntimeError("no TaskRunner exists yet")
        return runner.submit(self)


class _Job(QRunnable):
    def __init__(self, runner: TaskRunner, task_id: int, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._runner = runner
        self._id = task_id
        self._fn = fn

    def run(self) -> None:  # on a pool thread
        try:
            result = self._fn()
        except BaseException as exc:  # handed to the GUI thread, never lost
            log.debug("task %s failed", self._id, exc_info=True)
            self._runner._finished.emit(self._id, False, exc)
        else:
            self._runner._finished.emit(self._id, True, result)


class TaskRunner(QObject):
    """A private thread pool plus the book-keeping that keeps buttons honest."""

    busy_changed = Signal(str, bool)  # key, running
    failed = Signal(str, str)  # label, one-sentence message (unhandled failures)
    _finished = Signal(int, bool, object)  # internal: task id, ok, result or exception

    default: TaskRunner | None = None

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._ids = itertools.count(1)
        self._ops: dict[int, Op] = {}
        self._busy: dict[str, int] = {}
        self._bound: dict[str, list[Any]] = {}
        self._finished.connect(self._on_finished)
        if TaskRunner.default is None:
            TaskRunner.default = self

    def submit(self, op: Op) -> bool:
        if op.key and self._busy.get(op.key):
            log.info("%s is already running; ignored a second request", op.label)
            return False
        task_id = next(self._ids)
        self._ops[task_id] = op
        if op.key:
            self._set_busy(op.key, +1)
        self._pool.start(_Job(self, task_id, op.fn))
        return True

    def is_busy(self, key: str) -> bool:
        return bool(self._busy.get(key))

    def active(self) -> int:
        return len(self._ops)

    def bind(self, key: str, *widgets: Any) -> None:
        """Disable these widgets/actions while a task with ``key`` runs."""
        self._bound.setdefault(key, []).extend(widgets)
        for w in widgets:
            if self.is_busy(key):
                w.setEnabled(False)

    def unbind(self, *widgets: Any) -> None:
        for items in self._bound.values():
            for w in widgets:
                while w in items:
                    items.remove(w)

    def wait(self, msecs: int = -1) -> bool:
        """Block until every task ended (used at quit, after the engine was told to stop)."""
        return self._pool.waitForDone(msecs)

    def _set_busy(self, key: str, delta: int) -> None:
        before = bool(self._busy.get(key))
        self._busy[key] = max(0, self._busy.get(key, 0) + delta)
        after = bool(self._busy[key])
        if before != after:
            for w in list(self._bound.get(key, [])):
                try:
                    w.setEnabled(not after)
                except RuntimeError:  # the widget was deleted
                    self._bound[key].remove(w)
            self.busy_changed.emit(key, after)

    def _on_finished(self, task_id: int, ok: bool, payload: object) -> None:
        op = self._ops.pop(task_id, None)
        if op is None:
            return
        if op.key:
            self._set_busy(op.key, -1)
        try:
            if ok:
                if op.on_success is not None:
                    op.on_success(payload)
            elif op.on_failure is not None:
                op.on_failure(payload)  # type: ignore[arg-type]
            else:
                exc = payload if isinstance(payload, BaseException) else RuntimeError(payload)
                if not isinstance(exc, ClmError):
                    log.error("%s failed", op.label, exc_info=exc)
                self.failed.emit(op.label, describe_error(exc))
        except Exception:  # a broken callback must not kill the event loop
            log.exception("callback of %s failed", op.label)
        if op.on_done is not None:
            try:
                op.on_done()
            except Exception:
                log.exception("after-callback of %s failed", op.label)
