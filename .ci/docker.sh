# A private Docker engine for the tests, on its own socket in a temp folder.
#
# Source it, then:   docker_start    # exports DOCKER_HOST, returns once the engine answers
#                    ...tests...
#                    docker_stop     # stops that dockerd (by its pid file) and removes the folder
#
# Needs root and Debian's docker.io (dockerd, docker-init, containerd, runc). No registry is
# used: the tests build their image with `docker import` (tests/docker/build_image.sh).
# No iptables, no bridge: containers use the host network (or none), so nothing on the host's
# firewall or network setup changes.

docker_start() {
    if ! command -v dockerd >/dev/null 2>&1; then
        echo "docker_start: dockerd not found; apt-get install -y --no-install-recommends docker.io" >&2
        return 1
    fi
    # Keep the path short: containerd puts unix sockets under the exec-root (108-byte limit).
    CLM_DOCKER_DIR="$(mktemp -d /tmp/clm-dk.XXXXXX)"
    export CLM_DOCKER_DIR
    dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
        --data-root "$CLM_DOCKER_DIR/data" --exec-root "$CLM_DOCKER_DIR/exec" \
        --pidfile "$CLM_DOCKER_DIR/dockerd.pid" --host "unix://$CLM_DOCKER_DIR/docker.sock" \
        >"$CLM_DOCKER_DIR/dockerd.log" 2>&1 &
    export DOCKER_HOST="unix://$CLM_DOCKER_DIR/docker.sock"
    local i
    for i in $(seq 1 150); do   # up to 30 s; usually < 5 s
        if docker version >/dev/null 2>&1; then
            echo "docker_start: engine ready on $DOCKER_HOST (${i}x0.2 s)" >&2
            return 0
        fi
        sleep 0.2
    done
    echo "docker_start: dockerd did not answer within 30 s; its log:" >&2
    tail -n 30 "$CLM_DOCKER_DIR/dockerd.log" >&2
    docker_stop
    return 1
}

docker_stop() {
    [ -n "${CLM_DOCKER_DIR:-}" ] || return 0
    local pidfile="$CLM_DOCKER_DIR/dockerd.pid" pid="" i
    [ -f "$pidfile" ] && pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # Remove containers first so their shims go away with the engine.
        docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
        kill -TERM "$pid"
        for i in $(seq 1 100); do   # up to 20 s
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    # dockerd leaves its default network namespace mounted under the exec-root.
    grep -o " $CLM_DOCKER_DIR/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n 1 umount -l 2>/dev/null || true
    rm -rf "$CLM_DOCKER_DIR" 2>/dev/null || true
    unset DOCKER_HOST CLM_DOCKER_DIR
}
