#!/usr/bin/env bash
# Regenerate the README's dashboard screenshots from a real demo workspace.
#
# Run from the repository root:  bash docs/screenshots/make.sh
# It builds the demo (91 symbols x 1,500 hourly bars) in a temp folder, trains, feeds new
# bars, retrains (two versions, a shadow decision), runs the performance and drift checks
# before and after a regime shift, then renders each dashboard view offscreen into
# docs/screenshots/<view>.png and the tray icon sheet into docs/screenshots/icons.png.
# Takes about a minute. CLM=path/to/clm-tray overrides which clm-tray runs; KEEP=1 keeps the
# workspace (its path is printed) to re-render: cd there, clm-tray gui --screenshot F --view V.
set -euo pipefail

repo="$(pwd)"
out="$repo/docs/screenshots"
[[ -f "$repo/pyproject.toml" && -d "$out" ]] || { echo "run from the repository root" >&2; exit 2; }
if [[ -z "${CLM:-}" ]]; then
    if [[ -x "$repo/.venv/bin/clm-tray" ]]; then CLM="$repo/.venv/bin/clm-tray"; else CLM=clm-tray; fi
fi
py="$(dirname "$CLM")/python"; [[ -x "$py" ]] || py=python3

ws="$(mktemp -d "${TMPDIR:-/tmp}/clm-screens.XXXXXX")"
cleanup() {
    # stop the demo's reference backend (demo --headless leaves it running), then clean up
    if [[ -f "$ws/demo/.env" ]]; then
        "$CLM" demo stop --workspace "$ws/demo" >/dev/null 2>&1 || true
    fi
    if [[ -n "${KEEP:-}" ]]; then echo "kept the workspace: $ws/demo" >&2; else rm -rf "$ws"; fi
}
trap cleanup EXIT
# A private, empty per-user config: the user's own config.env must not leak into the pictures.
export XDG_CONFIG_HOME="$ws/.config" XDG_DATA_HOME="$ws/.data" XDG_STATE_HOME="$ws/.state"
for v in $(env | grep -o '^QT_CLM_[A-Z_]*' || true); do unset "$v"; done
export QT_QPA_PLATFORM=offscreen

step() { echo "== $*" >&2; }
step "demo workspace in $ws/demo"
"$CLM" demo --headless --workspace "$ws/demo"
cd "$ws/demo"
step "40 h of new bars, retrain (a second version, shadow-tested)"
"$CLM" demo feed --hours 40 --workspace "$ws/demo"
"$CLM" retrain || true
"$CLM" performance || true
"$CLM" drift || true
step "30 h of a shifted regime"
"$CLM" demo feed --hours 30 --shift --workspace "$ws/demo"
"$CLM" performance || true
"$CLM" drift || true
"$CLM" status || true

for view in overview drift versions activity; do
    step "screenshot $view"
    "$CLM" gui --screenshot "$out/$view.png" --view "$view"
done

step "tray icon sheet"
"$py" - "$out/icons.png" <<'PY'
# every state at the tray's sizes (16, 22, 32, 64 px) on a light and on a dark panel
import sys

from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication

from clm_tray.core.app.status import Health
from clm_tray.gui import icons

app = QApplication([])
gap, pad, row_h = 10, 8, 76
group = sum(icons.SIZES) + gap * (len(icons.SIZES) - 1)
width = pad + len(Health) * (group + 3 * gap) - 2 * gap
img = QImage(width, 2 * row_h, QImage.Format.Format_ARGB32)
p = QPainter(img)
for r, panel in enumerate(("#f2f2f2", "#26272b")):
    p.fillRect(0, r * row_h, width, row_h, QColor(panel))
    x = pad
    for h in Health:
        for size in icons.SIZES:
            p.drawPixmap(x, r * row_h + (row_h - size) // 2, icons.state_icon(h).pixmap(size, size))
            x += size + gap
        x += 2 * gap
p.end()
if not img.save(sys.argv[1]):
    raise SystemExit(f"could not write {sys.argv[1]}")
print(f"saved {sys.argv[1]} (icons)")
PY
echo "done: $out/{overview,drift,versions,activity,icons}.png" >&2
