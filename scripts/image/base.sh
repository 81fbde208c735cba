#!/usr/bin/env bash
# Print the name of a local base image for the Dockerfile's BASE_IMAGE, making it if needed:
# Debian bookworm (minbase) with python3, python3-venv and ca-certificates, from Debian's own
# packages, for machines that reach Debian's mirror but no container registry.
# Reuses, in order: the image in containers-storage; the root filesystem tarball cached in
# .cache/image/ (gitignored); else runs debootstrap (about 35 s) and caches its tarball.
# Needs root. Env: BASE_NAME (image name), DEBIAN_SUITE (bookworm), DEBIAN_MIRROR.
set -euo pipefail
# shellcheck source=scripts/image/lib.sh
. "$(dirname "$0")/lib.sh"

suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
name="${BASE_NAME:-localhost/fleet-guard-base:$suite}"
tarball="$CACHE_DIR/$suite-python3-rootfs.tar"

require_root
ensure_tools buildah

if image_exists "$name"; then
    log "base image $name: present"
    echo "$name"
    exit 0
fi

rootfs="" ctr=""
cleanup() {
    [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
    [ -z "$rootfs" ] || rm -rf "$rootfs"
    rm -f "$tarball.tmp"
}
trap cleanup EXIT

if [ ! -s "$tarball" ]; then
    ensure_tools debootstrap
    mkdir -p "$CACHE_DIR"
    rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
    debootstrap_rootfs() {
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$suite" "$rootfs" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
            || { tail -n 20 "$CACHE_DIR/debootstrap.log" >&2; return 1; }
        # What an image needs no copy of: package caches and lists, log files, device nodes
        # (the container runtime provides /dev).
        rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
            "$rootfs"/var/lib/apt/lists/* "${rootfs:?}"/dev/*
        find "$rootfs/var/log" -type f -delete
        tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
    }
    timed "debootstrap $suite (minbase + python3, python3-venv, ca-certificates)" debootstrap_rootfs
fi

commit_base() {
    local mnt
    ctr="$(buildah from scratch)"
    mnt="$(buildah mount "$ctr")"
    tar --numeric-owner --xattrs -C "$mnt" -xf "$tarball"
    buildah umount "$ctr" >/dev/null
    buildah config \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 \
        --cmd python3 \
        --label org.opencontainers.image.description="Debian $suite minbase with python3, python3-venv and ca-certificates (Fleet Guard's local base)" \
        "$ctr"
    buildah commit --quiet --rm "$ctr" "$name" >/dev/null
    ctr=""
}
timed "base image $name from $(basename "$tarball")" commit_base
echo "$name"
