"""Small things a trader notices (issue 13, point 10)."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QApplication

from clm_tray.core.app.status import JobState
from clm_tray.gui.cards import JOB_NAMES
from clm_tray.gui.snapshot import take_snapshot
from clm_tray.gui.tray import next_check, tooltip_text


def test_open_logs_folder_shows_the_path_when_nothing_can_open_it(qtbot, make_tray_app):
    app = make_tray_app()
    app.controller.open_url = lambda _url: False  # no xdg-open, no file manager
    folder = str(app.controller.loaded.settings.resolved_log_dir)
    with qtbot.waitSignal(app.controller.info) as said:
        assert app.controller.open_logs() is False
    assert folder in said.args[0]
    box = app.path_box
    assert box is not None and box.isVisible() and folder in box.text()
    copy = next(b for b in box.buttons() if b.text() == "Copy path")
    copy.click()
    assert QApplication.clipboard().text() == folder
    box.close()


def test_the_window_title_names_the_workspace_once(qtbot, make_tray_app):
    app = make_tray_app()
    dash = app.open_dashboard()
    assert dash.windowTitle() == "clm-tray — ws"


def test_the_demo_data_feed_is_not_shown_as_a_check(qtbot, make_tray_app):
    app = make_tray_app()
    dash = app.open_dashboard()
    snap = take_snapshot(app.controller.engine)
    snap.status.scheduler.running = True
    snap.status.scheduler.jobs = [JobState("age", next_run=2_000_000_000.0),
                                  JobState("demo-feed", next_run=1_900_000_000.0)]
    dash.cards.show_scheduler(snap)
    shown = [name.text() for name, _val in dash.cards.scheduler._rows if name.isVisibleTo(dash)]
    assert shown == [JOB_NAMES["age"]]
    assert next_check(snap) == 2_000_000_000.0  # the feed's earlier run is not "next check"
    app.controller.snapshot = snap
    assert "feed" not in tooltip_text(app.controller).lower()


def test_library_warnings_go_to_the_log_file_not_the_terminal(small_workspace, capsys):
    from clm_tray.core.config import logsetup
    from clm_tray.core.config.sources import load_settings

    s = load_settings(small_workspace / ".env", cwd=small_workspace).settings
    names = (logsetup.LOGGER, *logsetup.THIRD_PARTY)
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    try:
        path = logsetup.configure(s)
        logging.getLogger("apscheduler.scheduler").warning("job skipped: max instances")
        logging.getLogger("clm_tray.test").warning("our own warning")
        err = capsys.readouterr().err
        assert "job skipped" not in err and "our own warning" in err
        assert "job skipped" in path.read_text()
    finally:
        logging.captureWarnings(False)
        for n, (handlers, level) in saved.items():
            lg = logging.getLogger(n)
            for h in lg.handlers[:]:
                if h not in handlers:
                    lg.removeHandler(h)
                    h.close()
            lg.setLevel(level)
