"""Seeded fleets for the emerging-signature scenarios, generated rather than written by hand.

Twenty workers, a day of ordinary builds placed uniformly, background errors of five kinds
spread over the whole fleet, the CNI EINTR (a known failure) on two workers, and one unknown
failure whose placement is the point of each kind:

- `planted`: on 2 of the 20 workers (`w-7`, `w-13`);
- `uniform`: the same number of builds, spread over the whole fleet;
- `release`: on the 2 external workers (`ext-1`, `ext-2`), which register the bundled
  resource types of another release (7.11.0) than the web node and the others (7.13.2).

The same kind and seed always give the same scenario (relative times, see scenarios/README.md),
so "ten differently seeded fleets" is ten calls.
"""

from __future__ import annotations

import random
from typing import Any

KINDS = ("planted", "uniform", "release")
PLANTED_WORKERS = ("w-7", "w-13")
EXTERNAL_WORKERS = ("ext-1", "ext-2")
PLANTED_BUILDS = 16
# Seconds before load time of the first planted failure's build.
PLANTED_STARTED_AGO = 30_000

# A failure no built-in advisory explains (worker-volume-create-failed explains baggageclaim's
# `failed to create volume`), so that it can only surface as an emerging signature.
PLANTED = (
    "find or create container on worker {worker}: fetch image: extracting layer {handle}: "
    "write /var/lib/concourse/volumes/live/{handle}/volume/rootfs/usr/lib/libc.so.6: "
    "no space left on device"
)
EINTR = (
    "find or create container on worker {worker}: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)
BACKGROUND = (
    "find or create container on worker {worker}: fetch image: GET "
    "https://registry.example.com/v2/library/golang/manifests/{n}: 503 Service Unavailable",
    "get repo: git clone https://git.example.com/org/app-{n}.git: exit status 128",
    "find or create container on worker {worker}: timed out after {n}s waiting for "
    "baggageclaim volume {handle}",
    "no workers satisfying: platform 'linux', tags 'gpu-{n}'",
    "failed to stream out {handle} from worker {worker}: unexpected EOF after {n} bytes",
)
BACKGROUND_PER_KIND = 6

# Bundled base resource types (shared/reference/observing-workers.md §1, from concourse/ci
# pipelines/reconfigure.yml pin commits), so a worker's release class can be observed.
_BUNDLES = {
    "7.13.2": {
        "git": "1.18.3", "registry-image": "1.12.0", "s3": "2.2.0", "time": "1.8.0",
        "semver": "1.9.0", "pool": "1.4.1", "mock": "0.13.0", "docker-image": "1.10.1",
        "github-release": "1.11.0", "hg": "1.3.2", "bosh-io-release": "1.2.3",
        "bosh-io-stemcell": "1.4.2",
    },
    "7.11.0": {
        "git": "1.15.0", "registry-image": "1.9.0", "s3": "1.3.0", "time": "1.7.0",
        "semver": "1.7.0", "pool": "1.4.0", "mock": "0.13.0", "docker-image": "1.8.1",
        "github-release": "1.9.0", "hg": "1.3.0", "bosh-io-release": "1.2.2",
        "bosh-io-stemcell": "1.2.0", "tracker": "1.1.0",
    },
}  # fmt: skip
WEB_RELEASE = "7.13.2"
EXTERNAL_RELEASE = "7.11.0"


def emerging_fleet(kind: str, seed: int = 1) -> dict[str, Any]:
    """A scenario document (the simulator's format) for one kind and seed."""
    if kind not in KINDS:
        raise ValueError(f"unknown fleet kind {kind!r}; one of {', '.join(KINDS)}")
    rng = random.Random(f"{kind}-{seed}")
    names = [f"w-{i}" for i in range(20)]
    if kind == "release":
        names = names[: 20 - len(EXTERNAL_WORKERS)] + list(EXTERNAL_WORKERS)
    builds: list[dict[str, Any]] = []

    def add(started_ago: int, steps: list[dict[str, Any]]) -> None:
        job = rng.choice(("unit", "integration", "lint", "package"))
        builds.append(
            {
                "id": 5001 + len(builds),
                "team": "main",
                "pipeline": rng.choice(("app", "api", "web")),
                "job": job,
                "started_ago": started_ago,
                "duration": 300,
                "steps": steps,
            }
        )

    def failing(worker: str, message: str) -> list[dict[str, Any]]:
        return [
            {"get": "repo", "worker": rng.choice(names)},
            {"task": "test", "worker": worker, "error": message},
        ]

    def fill(template: str, worker: str) -> str:
        return template.format(worker=worker, handle=_handle(rng), n=rng.randrange(1, 9999))

    for _ in range(240):
        steps = [
            {"get": "repo", "worker": rng.choice(names)},
            {"task": "test", "worker": rng.choice(names)},
        ]
        add(rng.randrange(3_600, 80_000), steps)
    for template in BACKGROUND:
        for _ in range(BACKGROUND_PER_KIND):
            worker = rng.choice(names)
            add(rng.randrange(3_600, 80_000), failing(worker, fill(template, worker)))
    for i in range(6):
        worker = ("w-2", "w-5")[i % 2]
        add(rng.randrange(3_600, 80_000), failing(worker, fill(EINTR, worker)))
    carriers = {"planted": PLANTED_WORKERS, "release": EXTERNAL_WORKERS}.get(kind)
    for i in range(PLANTED_BUILDS):
        worker = carriers[i % len(carriers)] if carriers else rng.choice(names)
        started_ago = PLANTED_STARTED_AGO - i * (PLANTED_STARTED_AGO - 3_600) // PLANTED_BUILDS
        add(started_ago, failing(worker, fill(PLANTED, worker)))
    builds.sort(key=lambda b: -b["started_ago"])
    for number, build in enumerate(builds):
        build["id"] = 5001 + number
    return {
        "description": f"Emerging-signature fleet, kind {kind}, seed {seed} (simulator/fleets.py)",
        "info": {"version": WEB_RELEASE, "worker_version": "2.5"},
        "users": [{"username": "admin", "password": "admin-pass", "teams": {"main": ["owner"]}}],
        "pipelines": [
            {"id": 1, "team": "main", "name": "app"},
            {"id": 2, "team": "main", "name": "api"},
            {"id": 3, "team": "main", "name": "web"},
        ],
        "workers": [_worker(name) for name in names],
        "builds": builds,
    }


def _worker(name: str) -> dict[str, Any]:
    release = EXTERNAL_RELEASE if name in EXTERNAL_WORKERS else WEB_RELEASE
    types = [
        {
            "type": kind,
            "image": f"/usr/local/concourse/resource-types/{kind}/rootfs.tgz",
            "version": version,
            "privileged": False,
            "unique_version_history": kind == "time",
        }
        for kind, version in _BUNDLES[release].items()
    ]
    return {"name": name, "resource_types": types}


def _handle(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
