"""Render the tray-state SVGs (and the app icon) to PNGs with QtSvg.

Run after editing an SVG: ``python resources/render_icons.py``. Writes ``<state>-<size>.png``
for 16/22/32/64 px, ``clm-tray.png`` (256 px) and a preview sheet on light and dark panels
(``docs/screenshots/icons.png``) to check readability by eye.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

HERE = Path(__file__).resolve().parent
STATES = ("healthy", "attention", "working", "error", "paused")
SIZES = (16, 22, 32, 64)


def render(svg: Path, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(svg)).render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def preview(folder: Path) -> QImage:
    """All states at every size on a light and a dark panel strip."""
    pad, rows = 8, (QColor("#f0f0f0"), QColor("#202124"))
    width = pad + len(STATES) * (sum(SIZES) + pad * len(SIZES)) + pad
    height = pad + len(rows) * (max(SIZES) + pad)
    sheet = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    sheet.fill(QColor("#808080"))
    p = QPainter(sheet)
    for r, bg in enumerate(rows):
        y = pad + r * (max(SIZES) + pad)
        p.fillRect(0, y - pad // 2, width, max(SIZES) + pad, bg)
        x = pad
        for state in STATES:
            for size in SIZES:
                p.drawImage(x, y + (max(SIZES) - size) // 2, render(folder / f"{state}.svg", size))
                x += size + pad
    p.end()
    return sheet


def main(folder: Path = HERE) -> int:
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    for state in STATES:
        for size in SIZES:
            render(folder / f"{state}.svg", size).save(str(folder / f"{state}-{size}.png"))
    render(folder / "clm-tray.svg", 256).save(str(folder / "clm-tray.png"))
    sheet = folder.parent / "docs" / "screenshots" / "icons.png"
    sheet.parent.mkdir(parents=True, exist_ok=True)
    preview(folder).save(str(sheet))
    print(f"rendered {len(STATES) * len(SIZES) + 1} icons into {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
