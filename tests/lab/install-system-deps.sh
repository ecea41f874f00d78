#!/usr/bin/env bash
# Install the Debian packages the lab runs for real, when any is missing.
# Safe to run again: it does nothing when everything is present.
set -euo pipefail

declare -A wanted=(
    [/usr/sbin/sshd]=openssh-server
    [/usr/bin/ssh-keygen]=openssh-client
    [/usr/bin/docker-registry]=docker-registry
    [/usr/bin/sshfs]=sshfs
    [/usr/bin/fusermount3]=fuse3
    [/usr/bin/faketime]=faketime
    [/usr/bin/unshare]=util-linux
    [/usr/bin/nsenter]=util-linux
    [/usr/bin/pg_dump]=postgresql-client
)
missing=()
for path in "${!wanted[@]}"; do
    [ -e "$path" ] || missing+=("${wanted[$path]}")
done
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "infraops lab: missing packages: ${missing[*]}" >&2
    echo "Install them as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "infraops lab: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# docker-registry's package starts a service on :5000 unless policy-rc.d says no.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created_policy=1
fi
trap '[ "$created_policy" -eq 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
