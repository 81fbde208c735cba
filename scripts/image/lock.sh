#!/usr/bin/env bash
# Regenerate the image's pinned requirement files, with the hashes of every published file of
# each pinned version (so one lock serves linux/amd64 and linux/arm64, CPython 3.11 and 3.12):
#   requirements.lock        runtime dependencies of the package (from pyproject.toml)
#   requirements-build.lock  pip/setuptools/wheel used by the Dockerfile's build stage
#   requirements-test.lock   pytest & co. for the Dockerfile's `tests` target
# Needs PyPI. Run it after changing dependencies in pyproject.toml; review the diff; commit.
# Resolve with the oldest Python the image supports (3.11) so that dependencies that only older
# Pythons need (typing-extensions for referencing, say) are in the lock.
set -euo pipefail
cd "$(dirname "$0")/../.."

tools=.cache/image/locktools
if [ ! -x "$tools/bin/pip-compile" ]; then
    echo "==> installing pip-tools into $tools"
    python3 -m venv "$tools"
    PIP_CONFIG_FILE=/dev/null "$tools/bin/pip" install --quiet pip-tools
fi

# Only the public index: no machine-local find-links, extra indexes or constraints.
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT || true
export CUSTOM_COMPILE_COMMAND="scripts/image/lock.sh"

compile() {
    "$tools/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
        --no-emit-index-url --no-emit-find-links --rebuild "$@"
}
compile --output-file requirements.lock pyproject.toml
compile --output-file requirements-build.lock scripts/image/requirements-build.in
compile --output-file requirements-test.lock scripts/image/requirements-test.in
echo "==> wrote requirements.lock requirements-build.lock requirements-test.lock"

# Each lock must install from wheels alone on every platform the image is built for.
check_dir="$(mktemp -d)"
trap 'rm -rf "$check_dir"' EXIT
# pip takes --platform tags literally: list every manylinux tag a bookworm base (glibc 2.36) runs.
for python in 3.11 3.12 3.13; do
    for arch in x86_64 aarch64; do
        platforms=(--platform "manylinux2014_$arch")
        for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
        for lock in requirements.lock requirements-build.lock requirements-test.lock; do
            "$tools/bin/pip" download --quiet --no-deps --require-hashes --only-binary=:all: \
                --python-version "$python" --implementation cp "${platforms[@]}" \
                -d "$check_dir/$python-$arch" -r "$lock" \
                || { echo "error: $lock lacks a wheel for CPython $python on linux/$arch" >&2; exit 1; }
        done
    done
done
echo "==> every lock installs from wheels on CPython 3.11-3.13, linux x86_64 and aarch64"
