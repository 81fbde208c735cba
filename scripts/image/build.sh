#!/usr/bin/env bash
# Build the resource image with buildah (no Docker engine needed). Needs root.
#   scripts/image/build.sh [--target final|tests]
# Env:
#   IMAGE          the tag to build (default localhost/fleet-guard:latest; the final target is
#                  also tagged with the package's version)
#   BASE_IMAGE     the Dockerfile's base; default: a local Debian bookworm base made by base.sh
#                  (this workplace reaches no container registry). With a registry, e.g.
#                  BASE_IMAGE=docker.io/library/python:3.12-slim-bookworm
#   PIP_CA_BUNDLE  a CA bundle for pip inside the build (default: this machine's
#                  /etc/ssl/certs/ca-certificates.crt); mounted read-only for the build's RUN
#                  steps only, never part of an image. Empty: mount none.
set -euo pipefail
# shellcheck source=scripts/image/lib.sh
. "$(dirname "$0")/lib.sh"

target=final
case "${1:-}" in
    "") ;;
    --target) target="${2:?--target needs a stage name}" ;;
    *) die "usage: $0 [--target final|tests]" ;;
esac

require_root
ensure_tools buildah

cd "$REPO_ROOT"
base="${BASE_IMAGE:-}"
[ -n "$base" ] || base="$("$REPO_ROOT/scripts/image/base.sh")"

version="$(package_version)"
source_url="$(project_field source-url)"
if [ -z "$source_url" ]; then
    source_url="$(git -C "$REPO_ROOT" remote get-url origin 2>/dev/null || true)"
    case "$source_url" in git@*:*) source_url="https://${source_url#git@}"; source_url="${source_url/://}" ;; esac
    source_url="${source_url%.git}"
fi
[ -n "$source_url" ] || log "warning: no [project.urls] Source in pyproject.toml and no git remote: the image's source label is empty"

ca_args=()
if [ -n "${PIP_CA_BUNDLE+set}" ]; then
    ca="$PIP_CA_BUNDLE"
    [ -z "$ca" ] || [ -r "$ca" ] || die "PIP_CA_BUNDLE=$ca is not a readable file"
else
    ca=/etc/ssl/certs/ca-certificates.crt
    [ -r "$ca" ] || ca=""
fi
[ -z "$ca" ] || ca_args=(-v "$ca:/tmp/host-ca.crt:ro" --build-arg PIP_CERT=/tmp/host-ca.crt)

# The final image is tagged $IMAGE and NAME:VERSION; another target NAME:TARGET.
if [ "$target" = final ]; then
    tags=(--tag "$IMAGE" --tag "${IMAGE%:*}:$version")
else
    tags=(--tag "${IMAGE%:*}:$target")
fi

# --layers keeps each step's result, so the `tests` target and rebuilds reuse the build stage.
timed "build ${tags[1]} (target $target, version $version, base $base)" \
    buildah bud --layers --force-rm --isolation chroot --target "$target" \
        --build-arg BASE_IMAGE="$base" \
        --build-arg VERSION="$version" \
        --build-arg SOURCE_URL="$source_url" \
        --build-arg DESCRIPTION="$(project_field description)" \
        "${ca_args[@]}" "${tags[@]}" \
        --file Dockerfile "$REPO_ROOT" >&2
