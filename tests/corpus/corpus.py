"""The message corpus: loading it, running each row through the real evidence matcher, scoring.

Shared by the corpus test (every row must be classified right) and scripts/corpus_report.py
(precision and recall per advisory). A row becomes the events Concourse would send for it: the
step is placed on a worker (`selected-worker`); a container-creation failure is an `error` right
after that, anything else comes after the step started (`start-task`), as a `log` or an `error`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.advisories.model import Advisory
from fleet_guard.concourse.models import Build, Event
from fleet_guard.evidence import Evidence, EvidenceMatcher

HERE = Path(__file__).resolve().parent
MESSAGES = HERE / "messages.yaml"
SCHEMA = HERE / "schema.json"

# The worker the step is placed on; rows whose message names another worker say so (`worker`).
PLACED = "placed-worker"
NONE = "none"
_TIME = 1747915500
_BUILD = Build(
    id=1, team_name="corpus", name="1", status="errored", job_name="job", pipeline_name="corpus"
)


@dataclass(frozen=True)
class Row:
    id: str
    source: str
    event: str
    container_creation: bool
    expect: str
    message: str
    worker: str | None = None
    adapted: str | None = None

    @property
    def expected_worker(self) -> str:
        return self.worker or PLACED


def problems(raw: Any) -> list[str]:
    """Schema violations and duplicate ids, each as `rows[i].path: message`."""
    validator = Draft202012Validator(json.loads(SCHEMA.read_text("utf-8")))
    found = [
        f"rows{''.join(f'[{p}]' if isinstance(p, int) else f'.{p}' for p in e.absolute_path)}: "
        f"{e.message}"
        for e in validator.iter_errors(raw)
    ]
    if isinstance(raw, list):
        ids = Counter(r.get("id") for r in raw if isinstance(r, dict))
        found += [f"rows: id {i!r} is used {n} times" for i, n in ids.items() if n > 1]
    return found


def load_rows(path: Path = MESSAGES) -> list[Row]:
    raw = yaml.safe_load(path.read_text("utf-8"))
    wrong = problems(raw)
    if wrong:
        raise ValueError(f"{path.name}: " + "; ".join(wrong))
    return [Row(**r) for r in raw]


def events_for(row: Row) -> list[Event]:
    """The events a build with this message would carry, in Concourse's order."""
    origin = {"id": "step"}
    events = [
        Event("selected-worker", {"origin": origin, "time": _TIME, "selected_worker": PLACED})
    ]
    if not row.container_creation:
        events.append(Event("start-task", {"origin": origin, "time": _TIME}))
    if row.event == "error":
        events.append(Event("error", {"origin": origin, "time": _TIME, "message": row.message}))
    else:
        data = {"origin": {**origin, "source": "stdout"}, "time": _TIME, "payload": row.message}
        events.append(Event("log", data))
    return events


def matcher(advisories: Sequence[Advisory] | None = None) -> EvidenceMatcher:
    rules = list(advisories) if advisories is not None else load_builtin_rules()
    return EvidenceMatcher(rules, base_url="https://ci.example.com")


def evidence(row: Row, using: EvidenceMatcher) -> list[Evidence]:
    return using.match_build(_BUILD, iter(events_for(row)))


def verdict(found: Iterable[Evidence]) -> str:
    """What the matcher made of a row, written like `expect`: an id, `a+b`, or `none`."""
    ids = sorted({e.advisory for e in found})
    return "+".join(ids) or NONE


@dataclass(frozen=True)
class Score:
    advisory: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        seen = self.true_positives + self.false_positives
        return self.true_positives / seen if seen else None

    @property
    def recall(self) -> float | None:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else None


def scores(results: Sequence[tuple[Row, str]], advisories: Iterable[str]) -> list[Score]:
    """Per advisory, over every row: matched where expected, matched elsewhere, missed."""
    table = []
    for advisory in sorted(advisories):
        tp = fp = fn = 0
        for row, got in results:
            hit = advisory in got.split("+")
            if hit and row.expect == advisory:
                tp += 1
            elif hit:
                fp += 1
            elif row.expect == advisory:
                fn += 1
        table.append(Score(advisory, tp, fp, fn))
    return table
