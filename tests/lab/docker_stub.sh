#!/bin/sh
# Stand-in for the Docker CLI on a simulated Nomad client node (infraops lab).
#
# Supported:
#   docker image prune -f|--force [-a|--all] [--filter X | --filter=X ...]
#   docker version --format '{{.Server.Version}}'
#   docker version
# Anything else exits 1 like the real CLI does for an unknown command.
#
# State lives in STATE_DIR (one per node, filled by SSHNode helpers):
#   dangling     one image per line: "<64 hex id> <size bytes> [untagged ref]"
#   version      the daemon version printed by `docker version`
#   daemon-down  when present, every command fails as if dockerd were stopped
#   calls.log    every invocation's argv is appended here (for assertions)

STATE_DIR=${DOCKER_STUB_STATE_DIR:-@STATE_DIR@}
DANGLING="$STATE_DIR/dangling"

printf '%s\n' "$*" >> "$STATE_DIR/calls.log"

# go-units HumanSize: decimal units, %.4g (4 significant digits), no space.
human_size() {
    awk -v n="$1" 'BEGIN {
        split("B kB MB GB TB PB EB ZB YB", unit, " ")
        i = 1
        while (n >= 1000 && i < 9) { n = n / 1000; i++ }
        printf "%.4g%s\n", n, unit[i]
    }'
}

daemon_check() {
    if [ -e "$STATE_DIR/daemon-down" ]; then
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." \
            "Is the docker daemon running?" >&2
        exit 1
    fi
}

image_prune() {
    force=0
    while [ $# -gt 0 ]; do
        case $1 in
            -f | --force) force=1 ;;
            -a | --all) ;;
            --filter) shift ;;
            --filter=*) ;;
            *)
                echo "unknown flag: $1" >&2
                echo "See 'docker image prune --help'." >&2
                exit 125
                ;;
        esac
        shift
    done
    daemon_check
    if [ "$force" -ne 1 ]; then
        printf 'WARNING! This will remove all dangling images.\n'
        printf 'Are you sure you want to continue? [y/N] '
        read -r answer || answer=
        case $answer in
            y | Y | yes) ;;
            *)
                echo "Total reclaimed space: 0B"
                exit 0
                ;;
        esac
    fi
    # Take the state away atomically, so concurrent prunes never double count.
    taken="$DANGLING.$$"
    total=0
    if mv "$DANGLING" "$taken" 2>/dev/null && [ -s "$taken" ]; then
        echo "Deleted Images:"
        while read -r id size untagged; do
            [ -n "$id" ] || continue
            if [ -n "$untagged" ]; then
                echo "untagged: $untagged"
            fi
            echo "deleted: sha256:$id"
            total=$((total + size))
        done < "$taken"
        echo
    fi
    rm -f "$taken"
    : > "$DANGLING"
    echo "Total reclaimed space: $(human_size "$total")"
}

docker_version() {
    daemon_check
    version=$(cat "$STATE_DIR/version" 2>/dev/null || echo 24.0.7)
    case "$*" in
        "--format {{.Server.Version}}" | "--format={{.Server.Version}}" | \
            "-f {{.Server.Version}}")
            echo "$version"
            ;;
        "")
            printf 'Client:\n Version:           %s\n\n' "$version"
            printf 'Server:\n Engine:\n  Version:          %s\n' "$version"
            ;;
        *)
            echo "template: the infraops lab docker stub only supports" \
                "--format '{{.Server.Version}}'" >&2
            exit 1
            ;;
    esac
}

case "$1 $2" in
    "image prune")
        shift 2
        image_prune "$@"
        ;;
    "version "*)
        shift
        docker_version "$@"
        ;;
    *)
        echo "docker: '$*' is not a docker command." >&2
        echo "See 'docker --help'" >&2
        exit 1
        ;;
esac
