#!/usr/bin/env bash
# Build the one-folder app dist/clm-tray/ (executable dist/clm-tray/clm-tray) with PyInstaller,
# and on Linux dist/clm-tray-<version>-linux-x86_64.tar.gz (app + .desktop file + icon +
# install.sh/uninstall.sh for ~/.local). Run from the repository root:
#   installer/build.sh            (uses .venv/bin/python, else python3; PYTHON=... to choose)
# Needs PyInstaller in that Python: pip install -e '.[build]'
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -m PyInstaller --version >/dev/null 2>&1; then
  echo "build.sh: PyInstaller is not installed in $PY; run: $PY -m pip install -e '.[build]'" >&2
  exit 2
fi
VERSION=$("$PY" -c 'import clm_tray; print(clm_tray.__version__)')
echo "build.sh: clm-tray $VERSION with $("$PY" --version) and PyInstaller $("$PY" -m PyInstaller --version)"

t0=$(date +%s)
rm -rf dist/clm-tray
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller installer/clm-tray.spec
t1=$(date +%s)
APP=dist/clm-tray/clm-tray
[ -x "$APP" ] || [ -x "$APP.exe" ] || { echo "build.sh: $APP was not produced" >&2; exit 1; }
echo "build.sh: built dist/clm-tray/ in $((t1 - t0)) s, $(du -sh dist/clm-tray | cut -f1) on disk"

case "$(uname -s)" in
  Linux) ;;
  *) echo "build.sh: not Linux: no .tar.gz (see installer/README.md for this OS)"; exit 0 ;;
esac

ARCH=$(uname -m)
PKG=clm-tray-$VERSION-linux-$ARCH
STAGE=build/$PKG
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -a dist/clm-tray "$STAGE/clm-tray"
cp resources/clm-tray.desktop "$STAGE/clm-tray.desktop"

# The app icon: the first of these that resources/ holds; a plain fallback otherwise.
ICON=""
for cand in resources/clm-tray.svg resources/clm-tray.png resources/icons/clm-tray.svg \
            resources/icons/clm-tray.png resources/icons/healthy.svg resources/icons/healthy.png \
            resources/healthy.svg resources/healthy.png; do
  if [ -f "$cand" ]; then ICON=$cand; break; fi
done
if [ -z "$ICON" ]; then
  ICON=$(ls resources/*.svg resources/icons/*.svg resources/*.png resources/icons/*.png 2>/dev/null | head -n1 || true)
fi
if [ -n "$ICON" ]; then
  cp "$ICON" "$STAGE/clm-tray.${ICON##*.}"
else
  echo "build.sh: warning: no icon in resources/; using a plain placeholder" >&2
  cat > "$STAGE/clm-tray.svg" <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><circle cx="32" cy="32" r="28" fill="#2e7d32"/><path d="M18 34l9 9 19-21" fill="none" stroke="#fff" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/></svg>
SVG
fi
ICON_FILE=$(cd "$STAGE" && ls clm-tray.svg clm-tray.png 2>/dev/null | head -n1 || true)

cat > "$STAGE/install.sh" <<'SH'
#!/bin/sh
# Install clm-tray for this user: ~/.local/opt/clm-tray, ~/.local/bin/clm-tray, app menu entry.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
OPT=$HOME/.local/opt/clm-tray
rm -rf "$OPT" && mkdir -p "$HOME/.local/opt" "$HOME/.local/bin" "$DATA/applications"
cp -a "$HERE/clm-tray" "$OPT"
ln -sf "$OPT/clm-tray" "$HOME/.local/bin/clm-tray"
for ext in svg png; do
  if [ -f "$HERE/clm-tray.$ext" ]; then
    if [ $ext = svg ]; then dir=scalable; else dir=256x256; fi
    mkdir -p "$DATA/icons/hicolor/$dir/apps"
    cp "$HERE/clm-tray.$ext" "$DATA/icons/hicolor/$dir/apps/clm-tray.$ext"
  fi
done
sed "s|^Exec=clm-tray|Exec=$OPT/clm-tray|" "$HERE/clm-tray.desktop" > "$DATA/applications/clm-tray.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$DATA/applications" || true
echo "Installed: $OPT (command: ~/.local/bin/clm-tray). Next: clm-tray setup, clm-tray autostart enable"
SH
cat > "$STAGE/uninstall.sh" <<'SH'
#!/bin/sh
# Remove what install.sh installed and the start-at-login entry. Settings, logs and the model
# store stay (see the README's "Uninstall" to remove them too).
set -eu
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
CFG=${XDG_CONFIG_HOME:-$HOME/.config}
"$HOME/.local/opt/clm-tray/clm-tray" autostart disable 2>/dev/null || rm -f "$CFG/autostart/clm-tray.desktop"
rm -rf "$HOME/.local/opt/clm-tray"
rm -f "$HOME/.local/bin/clm-tray" "$DATA/applications/clm-tray.desktop" \
      "$DATA/icons/hicolor/scalable/apps/clm-tray.svg" "$DATA/icons/hicolor/256x256/apps/clm-tray.png"
echo "Removed clm-tray. Kept: $CFG/clm-tray (settings), $DATA/clm-tray (model store), logs."
SH
chmod +x "$STAGE/install.sh" "$STAGE/uninstall.sh"

TARBALL=dist/$PKG.tar.gz
tar -C build -czf "$TARBALL" "$PKG"
t2=$(date +%s)
echo "build.sh: $TARBALL ($(du -h "$TARBALL" | cut -f1), icon $ICON_FILE) in $((t2 - t1)) s"
echo "build.sh: total $((t2 - t0)) s"
