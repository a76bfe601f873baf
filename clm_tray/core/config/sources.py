"""Where settings come from: the environment, a project's `.env` and the per-user file.

Precedence: process environment > `.env` (``--env-file``, else the working directory's, else
``QT_CLM_PROJECT_DIR``'s) > the per-user config file (``config.env`` in platformdirs' user
config dir) > defaults. `load_settings` reads every source and says where each value came
from; `write_user_settings` is the one writer (the Settings dialog, first-run setup). The
fields and their checks are `config.settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from dotenv import dotenv_values

from clm_tray.core.config.settings import (
    APP_NAME,
    FIELDS,
    PREFIX,
    Settings,
    closest_name,
    convert_raw,
    validate_value,
    validated,
)
from clm_tray.core.errors import ConfigError
from clm_tray.core.fsutil import atomic_write_text

USER_CONFIG_NAME = "config.env"


def user_config_file() -> Path:
    """The per-user settings file (``config.env`` in platformdirs' user config folder)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / USER_CONFIG_NAME


@dataclass
class LoadedSettings:
    """The settings plus where each value came from (for `clm-tray config` and the GUI)."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)  # field name -> "env" / path / default
    env_file: Path | None = None
    user_file: Path | None = None


def read_env_file(path: Path) -> dict[str, str]:
    """A .env-style file's variables (empty values as ""); unreadable is one clear line."""
    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc}); fix or remove the file.") from exc
    return {k: (v or "") for k, v in values.items()}


def _find_env_file(env_file: Path | None, environ: dict[str, str], cwd: Path,
                   user_values: dict[str, str], user_file: Path) -> Path | None:
    """--env-file, else ./.env, else the .env of QT_CLM_PROJECT_DIR (from the environment or
    the per-user file — so the tray started at login in $HOME still finds the project's)."""
    if env_file is not None:
        if not env_file.is_file():
            raise ConfigError(f"--env-file {env_file}: no such file; give the path of your .env.")
        return env_file
    if (cwd / ".env").is_file():
        return cwd / ".env"
    for project, base in ((environ.get("QT_CLM_PROJECT_DIR"), cwd),
                          (user_values.get("QT_CLM_PROJECT_DIR"), user_file.parent)):
        if project:
            folder = Path(project).expanduser()
            folder = folder if folder.is_absolute() else base / folder
            if (folder / ".env").is_file():
                return folder / ".env"
    return None


def load_settings(
    env_file: Path | str | None = None,
    *,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    user_file: Path | None = None,
) -> LoadedSettings:
    """Read every source in precedence order and return validated settings with sources.

    ``environ``, ``cwd`` and ``user_file`` exist so tests can drive every source for real.
    """
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    user_file = user_config_file() if user_file is None else user_file

    layers: list[tuple[str, dict[str, str]]] = []
    user_values = read_env_file(user_file) if user_file.is_file() else {}
    if user_values:
        layers.append((str(user_file), user_values))
    found_env = _find_env_file(Path(env_file) if env_file else None, environ, cwd,
                               user_values, user_file)
    env_layer: dict[str, str] = {}
    if found_env is not None:
        env_layer = read_env_file(found_env)
        layers.append((str(found_env), env_layer))
    layers.append(("environment", {k: v for k, v in environ.items() if k.startswith(PREFIX)}))

    # A project dir named only in the environment can also bring its .env (handled above);
    # one named inside the user file cannot bring another .env: keep it simple and explicit.
    raw: dict[str, tuple[str, str]] = {}
    for source, values in layers:
        for name, value in values.items():
            if not name.startswith(PREFIX):
                continue
            if name not in FIELDS:
                near = closest_name(name)
                hint = f" (did you mean {near}?)" if near else ""
                raise ConfigError(
                    f"{name} in {source} is not a clm-tray setting{hint}; "
                    f"remove it or see `clm-tray config` for the valid names."
                )
            raw[FIELDS[name]] = (value, source)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {n: "default" for n in Settings.model_fields}
    for fname, (value, source) in raw.items():
        values[fname] = convert_raw(fname, value)
        sources[fname] = source
    settings = validated(values, sources)
    # A relative path written in a file is relative to that file's folder.
    for fname in ("project_dir", "data_path", "store_dir", "deploy_dir", "log_dir"):
        p = getattr(settings, fname)
        src = sources[fname]
        if p is not None and src not in ("default", "environment") and not p.is_absolute():
            setattr(settings, fname, (Path(src).parent / p.expanduser()).resolve())
    return LoadedSettings(settings, sources, found_env, user_file if user_file.is_file() else None)


def write_user_settings(updates: dict[str, str], path: Path | None = None) -> Path:
    """Merge ``updates`` (VAR -> raw text) into the per-user config file, atomically.

    Values are validated first; the user's `.env` is never touched.
    """
    path = user_config_file() if path is None else path
    for name, value in updates.items():
        validate_value(name, value)
    current = read_env_file(path) if path.is_file() else {}
    current.update(updates)
    lines = ["# clm-tray per-user settings (written by clm-tray; .env and env vars win)"]
    lines += [f"{k}={_quote(v)}" for k, v in sorted(current.items()) if v is not None]
    atomic_write_text(path, "\n".join(lines) + "\n", private=True)  # may hold a password
    return path


def _quote(v: str) -> str:
    if v == "" or any(c in v for c in " #'\"\\"):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return v
