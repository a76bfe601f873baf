"""The tray-state and app icons, loaded once from the installed resources package."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from PySide6.QtGui import QIcon

from clm_tray.core.app.status import Health

SIZES = (16, 22, 32, 64)


def resource_path(name: str) -> Path:
    return Path(str(files("clm_tray.resources").joinpath(name)))


@cache
def state_icon(health: Health | str) -> QIcon:
    """A QIcon for a tray state: the SVG, plus the pre-rendered PNG sizes for crisp pixels."""
    name = Health(health).value
    icon = QIcon()
    for size in SIZES:
        png = resource_path(f"{name}-{size}.png")
        if png.is_file():
            icon.addFile(str(png))
    svg = resource_path(f"{name}.svg")
    if svg.is_file():
        icon.addFile(str(svg))
    return icon


@cache
def app_icon() -> QIcon:
    icon = QIcon()
    for name in ("clm-tray.svg", "clm-tray.png"):
        p = resource_path(name)
        if p.is_file():
            icon.addFile(str(p))
    return icon
