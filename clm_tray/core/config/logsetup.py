"""Rotating log files in the platform log folder, set up once per command.

Every command calls ``configure(settings, verbose)``: records from the ``clm_tray`` loggers go
to ``<resolved_log_dir>/clm-tray.log`` (1 MB x 5 files) and, at WARNING (INFO/DEBUG with
``verbose``), to stderr. The tray, the daemon and one-off CLI commands may share the file; a
rollover that another process blocks (Windows keeps open files locked) is skipped, not fatal.
``last_errors()`` reads the newest ERROR records back for ``clm-tray diagnose``.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

from clm_tray.core.config.secrets import RedactingFormatter
from clm_tray.core.config.settings import Settings

LOGGER = "clm_tray"
# Their warnings and errors go to the same file, and to the terminal only with --verbose:
# a library's housekeeping ("job skipped: maximum number of running instances") is not
# something a trader should read in the terminal that started the app.
THIRD_PARTY = ("apscheduler", "py.warnings")
LOG_NAME = "clm-tray.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"
_RECORD_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (\w+) ")
_MARK = "_clm_tray_handler"


class _SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file that keeps logging when the rename is refused by another process."""

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        try:
            super().doRollover()
        except OSError:
            if self.stream is None:
                self.stream = self._open()


def log_file(settings: Settings) -> Path:
    return settings.resolved_log_dir / LOG_NAME


def configure(settings: Settings, verbose: bool | int = False) -> Path | None:
    """Attach the file and stderr handlers to the ``clm_tray`` logger (idempotent).

    Returns the log file, or None when its folder cannot be written (then stderr only, with
    one warning saying so).
    """
    loggers = [logging.getLogger(name) for name in (LOGGER, *THIRD_PARTY)]
    for lg in loggers:
        for h in list(lg.handlers):
            if getattr(h, _MARK, False):
                lg.removeHandler(h)
                h.close()
    logger = loggers[0]
    level = logging.DEBUG if int(verbose) > 1 else logging.INFO
    logger.setLevel(logging.DEBUG if int(verbose) > 1 else logging.INFO)
    logger.propagate = False

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level if verbose else logging.WARNING)
    console.setFormatter(RedactingFormatter("clm-tray: %(levelname)s: %(message)s",
                                            one_line=True))
    setattr(console, _MARK, True)
    for lg in loggers if verbose else loggers[:1]:
        lg.addHandler(console)
    logging.captureWarnings(True)  # Python warnings (pandas, xgboost) -> py.warnings
    for lg in loggers[1:]:
        lg.setLevel(logging.WARNING)

    path = log_file(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _SharedRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                             encoding="utf-8", delay=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        logger.warning("cannot write logs to %s (%s); set QT_CLM_LOG_DIR to a writable "
                       "folder", path.parent, exc)
        return None
    handler.setLevel(level)
    handler.setFormatter(RedactingFormatter(FORMAT))
    setattr(handler, _MARK, True)
    for lg in loggers:
        lg.addHandler(handler)
    return path


def last_errors(log_dir: Path, n: int = 10, max_lines: int = 12) -> list[str]:
    """The newest ``n`` ERROR/CRITICAL records (with their tracebacks, cut to ``max_lines``)."""
    files = sorted(Path(log_dir).glob(LOG_NAME + ".*"),
                   key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
                   reverse=True)
    files.append(Path(log_dir) / LOG_NAME)
    found: list[str] = []
    for f in files:  # oldest rotated file first, the live file last
        if not f.is_file():
            continue
        record: list[str] | None = None
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _RECORD_START.match(line)
            if m:
                if record:
                    found.append("\n".join(record[:max_lines]))
                record = [line] if m.group(1) in ("ERROR", "CRITICAL") else None
            elif record is not None:
                record.append(line)
        if record:
            found.append("\n".join(record[:max_lines]))
    return found[-n:]
