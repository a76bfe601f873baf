#!/usr/bin/env bash
# The Debian/Ubuntu packages the test suite uses: Qt's libraries (offscreen and Xvfb), a
# private D-Bus for notification tests, redis-server, a Docker engine and busybox for the
# container backend tests, and venv support. Uses sudo when not root.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    python3-venv \
    libegl1 libgl1 libx11-xcb1 libdbus-1-3 libfontconfig1 libglib2.0-0 libxkbcommon-x11-0 \
    libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
    libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libxcb-sync1 libxcb-shm0 \
    libxcb-glx0 xvfb xauth dbus trayer fonts-dejavu-core \
    redis-server docker.io busybox-static >/dev/null
# Debian starts redis-server as a service on install; the tests start their own on free ports.
$SUDO service redis-server stop >/dev/null 2>&1 || true
