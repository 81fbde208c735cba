#!/usr/bin/env bash
# Prove the built image ($IMAGE, default localhost/fleet-guard:latest; `make image` builds it):
#   1. its size over the base (scripts/image/size.sh; fails over MAX_ADDED_MB, default 30);
#   2. the Dockerfile's `tests` target: the test suite inside the image's environment
#      (skipped with SKIP_TESTS_TARGET=1);
#   3. tests/image: /opt/resource/{check,in,out} run in a container of the image against the
#      simulator on the host, plus checks of what the image holds.
# Needs root, buildah, openssl, and the project's venv (.venv, `make venv`) for pytest and the
# simulator. Env: IMAGE, VENV_PYTHON (default .venv/bin/python), PYTEST_ARGS.
set -euo pipefail
# shellcheck source=scripts/image/lib.sh
. "$(dirname "$0")/lib.sh"

require_root
ensure_tools buildah openssl
cd "$REPO_ROOT"
python="${VENV_PYTHON:-.venv/bin/python}"
"$python" -c 'import pytest, fleet_guard' 2>/dev/null \
    || die "$python cannot import pytest and fleet_guard: run 'make venv' first"
image_exists "$IMAGE" || die "no image $IMAGE: run 'make image' first"

# tests/image removes its containers itself; this catches those of a run that was killed.
remove_test_containers() {
    local name
    for name in $(buildah containers --notruncate --format '{{.ContainerName}}' 2>/dev/null); do
        case "$name" in fleet-guard-image-test-*) buildah rm "$name" >/dev/null 2>&1 || true ;; esac
    done
}
trap remove_test_containers EXIT

timed "size of $IMAGE" scripts/image/size.sh "$IMAGE"

if [ "${SKIP_TESTS_TARGET:-}" != 1 ]; then
    timed "test suite inside the image (Dockerfile target 'tests')" scripts/image/build.sh --target tests
fi

# shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
timed "tests/image against $IMAGE" \
    env FLEET_GUARD_IMAGE="$IMAGE" "$python" -m pytest -p no:cacheprovider -m image tests/image ${PYTEST_ARGS:-}
