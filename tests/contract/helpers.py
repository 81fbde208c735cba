"""Running the assets as Concourse does: a subprocess, JSON on stdin, the venv python on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet_guard.evidence_cache import CACHE_DIR_ENV
from fleet_guard.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
PASSWORD = "admin-pass"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run_asset(
    name: str,
    payload: Any,
    *args: str,
    timeout: float = 60,
    raw: bool = False,
    cache_dir: Path | None = None,
) -> Result:
    """`assets/NAME ARGS` with JSON on stdin and the venv's python first on PATH, like the image.

    `raw=True` sends `payload` as it is, to test what happens with stdin that is not JSON.
    Each run gets an empty evidence cache unless `cache_dir` shares one between runs, as a
    reused check container does.
    """
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory() as fresh:
        env[CACHE_DIR_ENV] = str(cache_dir or fresh)
        done = subprocess.run(
            [str(ASSETS / name), *args],
            input=payload if raw else json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    return Result(done.returncode, done.stdout, done.stderr)


def source_for(sim: Simulator, **extra: Any) -> dict[str, Any]:
    return {"url": sim.url, "username": "admin", "password": PASSWORD, **extra}
