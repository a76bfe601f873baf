"""`clm-tray diagnose`: everything a bug report needs, gathered without changing anything.

Versions, OS, folders, settings with their sources, backend reachability, scheduler state and
the last errors in the log. Each section is gathered on its own: a broken part (bad setting,
no Docker, missing backend module) becomes a line in the report, never a crash of the report.
Qt is not imported (its version comes from package metadata).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from clm_tray import __version__
from clm_tray.core.config.secrets import redact, redact_obj
from clm_tray.core.config.settings import Settings, var_name
from clm_tray.core.config.sources import LoadedSettings, user_config_file
from clm_tray.core.serialize import to_jsonable

PACKAGES = ("xgboost", "pandas", "numpy", "scipy", "joblib", "PySide6-Essentials",
            "PySide6-Addons", "APScheduler", "docker", "pydantic", "platformdirs", "redis",
            "httpx", "python-dotenv", "filelock", "pyarrow", "scikit-learn", "dask",
            "distributed")
#: Not installed by default: their absence is normal (scikit-learn is not needed to write a
#: pickle; Dask is the [dask] extra).
OPTIONAL = frozenset({"scikit-learn", "dask", "distributed"})
STATE_FILE = "scheduler_state.json"


def package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ("not installed (optional)" if name in OPTIONAL
                         else _pyside_fallback() if name == "PySide6-Essentials"
                         else "not installed")
    out["xgboost"] = _xgboost_build(out["xgboost"])
    return out


def _xgboost_build(version: str) -> str:
    """Which XGBoost build is installed: the CPU-only wheel (`xgboost-cpu`, the default on
    Linux/Windows) or the CUDA one; QT_CLM_DEVICE=cuda needs the latter."""
    try:
        cpu = metadata.version("xgboost-cpu")
    except metadata.PackageNotFoundError:
        cpu = ""
    if cpu and version == "not installed":
        return f"{cpu} (xgboost-cpu, CPU only)"
    if cpu:  # both distributions: whichever was installed last owns the files
        return (f"{version} and xgboost-cpu {cpu} both installed; keep one "
                "(README \"Training on a GPU\")")
    return version


def _pyside_fallback() -> str:
    try:
        return f"PySide6 {metadata.version('PySide6')}"
    except metadata.PackageNotFoundError:
        return "not installed"


def _folder(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {"path": None, "exists": False}
    return {"path": str(path), "exists": path.exists()}


def _resources() -> dict[str, Any]:
    try:
        from importlib.resources import files

        root = Path(str(files("clm_tray.resources")))
        icons = sorted(p.name for p in root.rglob("*") if p.suffix in (".png", ".svg", ".ico"))
        return {"path": str(root), "icons": len(icons)}
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        return {"path": None, "icons": 0, "error": str(exc)}


def collect(loaded: LoadedSettings | None, *, settings_error: str = "",
            probe_backend: bool = True) -> dict[str, Any]:
    """The whole report as one JSON-able dict. ``loaded`` is None when settings do not load."""
    s = loaded.settings if loaded is not None else Settings()
    report: dict[str, Any] = {
        "clm_tray": {"version": __version__, "frozen": bool(getattr(sys, "frozen", False)),
                     "executable": sys.executable},
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation()},
        "packages": package_versions(),
        "os": {"platform": platform.platform(), "system": platform.system(),
               "release": platform.release(), "machine": platform.machine()},
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    report["folders"] = {
        "user_config_file": _folder(user_config_file()),
        "env_file": _folder(loaded.env_file if loaded else None),
        "project_dir": _folder(s.project_dir),
        "data_path": _folder(s.resolved_data_path),
        "deploy_dir": _folder(s.resolved_deploy_dir),
        "store_dir": _folder(s.resolved_store_dir),
        "log_dir": _folder(s.resolved_log_dir),
        "resources": _resources(),
    }
    report["settings"] = _settings_section(loaded, settings_error)
    report["backend"] = backend_section(s, probe=probe_backend) if loaded else \
        {"kind": s.resolved_backend, "ok": False, "line": "not checked: settings do not load"}
    report["scheduler"] = scheduler_section(s.resolved_store_dir)
    report["autostart"] = _autostart_section()
    from clm_tray.core.config.logsetup import last_errors, log_file

    report["log"] = {"file": str(log_file(s)), "last_errors": last_errors(s.resolved_log_dir)}
    return redact_obj(report)  # whatever a section forgot, no password leaves this function


def _settings_section(loaded: LoadedSettings | None, error: str) -> dict[str, Any]:
    if loaded is None:
        return {"error": error, "values": {}}
    values = {}
    for name, source in sorted(loaded.sources.items()):
        value = getattr(loaded.settings, name)
        if isinstance(value, list):
            value = ",".join(value)
        text = "" if value is None else redact(str(value))
        values[var_name(name)] = {"value": text, "source": source}
    return {"error": "", "env_file": str(loaded.env_file) if loaded.env_file else None,
            "user_file": str(loaded.user_file) if loaded.user_file else None,
            "values": values}


def backend_section(s: Settings, *, probe: bool = True) -> dict[str, Any]:
    """Preflight the configured backend and probe its health URL (each guarded)."""
    out: dict[str, Any] = {"kind": s.resolved_backend, "describe": "", "preflight": "",
                           "health": None, "ok": True}
    from clm_tray.core.backend.factory import make_backend
    from clm_tray.core.backend.health import probe_health
    try:
        backend = make_backend(s, s.resolved_store_dir)
        out["describe"] = str(backend.describe())
        if probe:
            backend.preflight()
        out["preflight"] = "ok" if probe else "not checked"
    except Exception as exc:  # noqa: BLE001 - BackendError or anything else: it is a finding
        out.update(ok=False, preflight=str(exc))
    if probe and s.resolved_backend != "none":
        try:
            report = probe_health(
                s.health_url, timeout=2.0, model_key=s.health_model_key,
                version_key=s.health_version_key)
            out["health"] = to_jsonable(report)
            out["ok"] = out["ok"] and bool(getattr(report, "ok", False))
        except Exception as exc:  # noqa: BLE001
            out["health"] = {"ok": False, "reason": str(exc)}
            out["ok"] = False
    health = out["health"]
    health_text = "not probed" if health is None else (
        f"{redact(s.health_url)} answered {health.get('status_code')} in "
        f"{health.get('latency_ms') or 0:.0f} ms" if health.get("ok")
        else f"{redact(s.health_url)} unhealthy: {health.get('reason', '')}")
    out["line"] = f"{out['kind']} ({out['describe'] or '-'}): preflight {out['preflight']}; " \
                  f"health {health_text}"
    return out


def scheduler_section(store_dir: Path) -> dict[str, Any]:
    path = store_dir / STATE_FILE
    if not path.is_file():
        return {"file": str(path), "present": False, "state": None}
    try:
        from clm_tray.core.schedule.scheduler import read_state  # the lead's reader knows liveness

        state = to_jsonable(read_state(path, time.time))
        if state is None:
            raise ValueError("not a scheduler state")
    except Exception:  # noqa: BLE001 - fall back to the raw file
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            state = {"error": f"unreadable ({exc})"}
    return {"file": str(path), "present": True, "state": state}


def _autostart_section() -> dict[str, Any]:
    try:
        from clm_tray.core.config import autostart

        return to_jsonable(autostart.status())
    except Exception as exc:  # noqa: BLE001
        return {"enabled": False, "note": f"cannot tell ({exc})"}


def format_text(r: dict[str, Any]) -> str:
    """The report as plain text, for pasting into a bug report."""
    out = [f"clm-tray {r['clm_tray']['version']} diagnose — {r['generated_at']}", ""]
    out.append("Versions")
    app = r["clm_tray"]
    built = " (built app)" if app["frozen"] else ""
    out.append(f"  clm-tray {app['version']}{built}: {app['executable']}")
    out.append(f"  Python {r['python']['version']} ({r['python']['implementation']})")
    out += [f"  {k} {v}" for k, v in r["packages"].items()]
    out.append(f"  OS {r['os']['platform']} ({r['os']['machine']})")
    out += ["", "Folders"]
    for name, f in r["folders"].items():
        if name == "resources":
            out.append(f"  resources: {f['path']} ({f['icons']} icons)")
        else:
            mark = "" if f["path"] is None else ("" if f["exists"] else "  (missing)")
            out.append(f"  {name}: {f['path'] or '-'}{mark}")
    out += ["", "Settings (non-default; value <- source)"]
    st = r["settings"]
    if st["error"]:
        out.append(f"  ERROR: {st['error']}")
    else:
        out.append(f"  .env: {st['env_file'] or 'none found'}; user file: "
                   f"{st['user_file'] or 'none'}")
        shown = {k: v for k, v in st["values"].items() if v["source"] != "default"}
        out += [f"  {k}={v['value']} <- {v['source']}" for k, v in shown.items()]
        out.append(f"  ({len(st['values']) - len(shown)} others at their defaults)")
    out += ["", "Backend", f"  {r['backend']['line']}"]
    out += ["", "Scheduler"]
    sch = r["scheduler"]
    if not sch["present"]:
        out.append(f"  no state file ({sch['file']}): the scheduler has not run here")
    else:
        state = sch["state"] or {}
        keys = ("running", "owner", "pid", "enabled", "paused", "paused_reason",
                "backoff_reason", "cycle_stage", "retrain_due", "updated_at")
        out += [f"  {k}: {state[k]}" for k in keys if k in state and state[k] not in ("", None)]
        for job in state.get("jobs", []) or []:
            out.append(f"  job {job.get('name')}: last {job.get('last_outcome') or '-'}")
    a = r["autostart"]
    out += ["", "Start at login",
            f"  {'enabled' if a.get('enabled') else 'disabled'}"
            f" ({a.get('location', '?')}){'; ' + a['note'] if a.get('note') else ''}"]
    out += ["", f"Last errors ({r['log']['file']})"]
    errors = r["log"]["last_errors"]
    out += [("  " + e.replace("\n", "\n    ")) for e in errors] or ["  none"]
    return "\n".join(out) + "\n"
