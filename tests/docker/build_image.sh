#!/bin/sh
# Build the test backend image without a registry: a busybox-static root filesystem imported
# with `docker import`. Usage: tests/docker/build_image.sh [NAME:TAG]  (default clm-test-backend:1)
# The pytest fixture (tests/backend/conftest.py) builds the same image through the docker SDK.
set -eu
IMAGE="${1:-clm-test-backend:1}"
HERE="$(cd "$(dirname "$0")" && pwd)"
BUSYBOX="$(command -v busybox || true)"
[ -x /bin/busybox ] && BUSYBOX=/bin/busybox
[ -n "$BUSYBOX" ] || { echo "busybox not found; apt-get install -y busybox-static" >&2; exit 1; }
ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/models" "$ROOT/www/cgi-bin"
cp "$BUSYBOX" "$ROOT/bin/busybox"
# Relative links: `busybox --install -s` would point them at this temp folder.
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$ROOT/bin/$applet"
done
install -m 0755 "$HERE/entrypoint.sh" "$ROOT/entrypoint.sh"
install -m 0755 "$HERE/health.cgi" "$ROOT/www/cgi-bin/health"
chmod 1777 "$ROOT/tmp"
tar -C "$ROOT" -c . | docker import --change 'ENTRYPOINT ["/entrypoint.sh"]' - "$IMAGE"
