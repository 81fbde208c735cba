# Fleet Guard resource image: /opt/resource/{check,in,out} on a slim Python base.
#
#   docker build -t fleet-guard .      or      buildah bud -t fleet-guard .
#                          no build arguments needed: the defaults below are the release's
#   make image             the same with buildah, with a local base image (docs/image.md)
#   ... --target tests .   runs the test suite inside the image's environment
#
# Stages: build (pinned wheels, /opt/venv, scripts) -> runtime (base + venv + scripts)
#         -> tests (runtime + test tools + tests) | final (runtime + labels; the default target)
#
# The base must provide python3 >= 3.11 with the venv module, and Debian's ca-certificates (so
# that OpenSSL's default CA directory is /etc/ssl/certs, where Concourse mounts the worker's
# certificates). The official python:*-slim images do, and so does a Debian base with python3,
# python3-venv and ca-certificates. The interpreter's path is never written here: it is
# /usr/local/bin/python3 in the official images and /usr/bin/python3 in Debian's.
# No step depends on the CPU architecture: the lock files carry the hashes of the wheels of
# every platform, so linux/amd64 and linux/arm64 build from the same steps.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
# A CA bundle file for pip, for an index reached through a TLS-inspecting proxy: mount it in
# (`-v host.crt:/tmp/host-ca.crt:ro --build-arg PIP_CERT=/tmp/host-ca.crt`). Only this stage
# declares it, and the final image does not derive from this stage.
ARG PIP_CERT=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_CONFIG_FILE=/dev/null
WORKDIR /src

# Every file fetched is pinned by version and sha256, and is a wheel: no compiler anywhere.
# The base's own pip (ensurepip's) only fetches the pinned pip, which does the rest.
COPY requirements.lock requirements-build.lock requirements-test.lock ./
RUN set -eu; \
    if [ -z "${PIP_CERT:-}" ]; then unset PIP_CERT; fi; \
    python3 -c 'import sys; v = sys.version_info; assert v >= (3, 11), f"fleet_guard needs Python >= 3.11, not {v}"'; \
    python3 -m venv /opt/build; \
    fetch() { /opt/build/bin/python -m pip download --quiet --require-hashes --only-binary=:all: \
                  --no-deps -d "$1" -r "$2"; }; \
    fetch /wheels/build requirements-build.lock; \
    /opt/build/bin/python -m pip install --quiet --no-index --find-links /wheels/build \
        --require-hashes -r requirements-build.lock; \
    fetch /wheels/runtime requirements.lock; \
    fetch /wheels/test requirements-test.lock

COPY . /src

# The image's version label. The default is kept equal to fleet_guard.__version__ by
# tests/unit/test_dockerfile.py, and the build checks it below, so a plain build is labelled
# right and a stale default or a wrong --build-arg fails here instead of mislabelling.
ARG VERSION=0.1.0
# The package's wheel (offline, with the pinned setuptools); then the runtime venv, made without
# pip and filled by the build venv's pip from the pinned wheels only; then the scripts. Their
# '#!/usr/bin/env python3' is rewritten to the venv's interpreter, so they run with the right
# Python whatever PATH the container is started with.
RUN set -eu; \
    for s in check in out; do \
        [ -f "assets/$s" ] || { echo "assets/$s is missing: the image needs assets/check, in and out" >&2; exit 1; }; \
        head -n 1 "assets/$s" | grep -q '^#!.*python' \
            || { echo "assets/$s: its first line must be a python3 shebang" >&2; exit 1; }; \
    done; \
    /opt/build/bin/python -m pip wheel --quiet --no-index --no-deps --no-build-isolation \
        -w /wheels/package /src; \
    python3 -m venv --without-pip /opt/venv; \
    pip_venv() { /opt/build/bin/python -m pip --python /opt/venv/bin/python "$@"; }; \
    pip_venv install --quiet --no-index --find-links /wheels/runtime --require-hashes \
        -r requirements.lock; \
    pip_venv install --quiet --no-index --no-deps /wheels/package/*.whl; \
    pip_venv check; \
    installed="$(/opt/venv/bin/python -c 'import fleet_guard; print(fleet_guard.__version__)')"; \
    if [ "$VERSION" != "$installed" ]; then \
        echo "VERSION=$VERSION does not match fleet_guard.__version__ ($installed): fix the Dockerfile's default (make test says so) or the --build-arg" >&2; \
        exit 1; \
    fi; \
    mkdir -p /opt/resource; \
    for s in check in out; do \
        sed '1s|^#!.*$|#!/opt/venv/bin/python3|' "assets/$s" > "/opt/resource/$s"; \
        chmod 0755 "/opt/resource/$s"; \
    done

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/resource /opt/resource
# For `fleet-guard` and `python3` in a shell in the image. The scripts don't need it.
ENV PATH=/opt/venv/bin:${PATH}

# ---------------------------------------------------------------------------------------------
# The test suite, run by the image's interpreter and packages as installed (not from lib/), with
# the pinned test tools added. `--target tests` builds it and fails if a test fails. Tests that
# need the built image itself (tests/image, marked `image`) run from the host instead.
FROM runtime AS tests
COPY --from=build /wheels /tmp/wheels
COPY . /src
WORKDIR /src
RUN set -eu; \
    set -- /tmp/wheels/build/pip-*.whl; \
    /opt/venv/bin/python "$1/pip" install --quiet --no-cache-dir --disable-pip-version-check \
        --root-user-action=ignore --no-index --find-links /tmp/wheels/test --require-hashes \
        -r requirements-test.lock; \
    /opt/venv/bin/python -m pytest -p no:cacheprovider -m 'not image' tests

# ---------------------------------------------------------------------------------------------
FROM runtime AS final
ARG BASE_IMAGE
# The same defaults as above (tests/unit/test_dockerfile.py): the release, and pyproject's
# [project.urls] Source.
ARG VERSION=0.1.0
ARG SOURCE_URL=https://github.com/fleet-guard/concourse-fleet-guard
# `make image` passes the description from pyproject.toml and the source from its URLs or git.
ARG DESCRIPTION="Fleet Guard, a Concourse resource type"
LABEL org.opencontainers.image.title="fleet-guard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
