#!/usr/bin/env bash
# Prove that the Dockerfile builds with no build arguments and still labels the image right:
# `buildah bud .` as an operator runs it, then the version and source labels are checked
# against fleet_guard.__version__ and pyproject's [project.urls] Source. Needs root.
# Only what this machine needs is passed: BASE_IMAGE (this workplace reaches no container
# registry, so the local base from base.sh stands in for python:3.12-slim-bookworm) and the
# pip CA bundle mount, as build.sh does. Env: BASE_IMAGE, PIP_CA_BUNDLE (see build.sh).
set -euo pipefail
# shellcheck source=scripts/image/lib.sh
. "$(dirname "$0")/lib.sh"

require_root
ensure_tools buildah
cd "$REPO_ROOT"
base="${BASE_IMAGE:-}"
[ -n "$base" ] || base="$("$REPO_ROOT/scripts/image/base.sh")"

machine_args=(--build-arg BASE_IMAGE="$base")
ca="${PIP_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$ca" ] && [ -r "$ca" ]; then
    machine_args+=(-v "$ca:/tmp/host-ca.crt:ro" --build-arg PIP_CERT=/tmp/host-ca.crt)
fi

tag=localhost/fleet-guard:plain
timed "plain build (no VERSION, SOURCE_URL or DESCRIPTION)" \
    buildah bud --layers --force-rm --isolation chroot "${machine_args[@]}" --tag "$tag" . >&2

labels() { buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$1\"}}" "$tag"; }
want_version="$(package_version)"
want_source="$(project_field source-url)"
got_version="$(labels org.opencontainers.image.version)"
got_source="$(labels org.opencontainers.image.source)"
[ "$got_version" = "$want_version" ] || die "version label '$got_version', want '$want_version'"
[ "$got_source" = "$want_source" ] || die "source label '$got_source', want '$want_source'"
[ -n "$(labels org.opencontainers.image.description)" ] || die "empty description label"
log "plain build labelled version $got_version, source $got_source"
buildah rmi "$tag" >/dev/null 2>&1 || true
