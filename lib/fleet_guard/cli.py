"""`fleet-guard`: the operator's command line — scan a fleet, list the rules, run the demo."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet_guard.advisories.loader import load_advisories, load_builtin_rules
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import SourceConfig, load_source
from fleet_guard.errors import UserError
from fleet_guard.log import Log
from fleet_guard.redact import Redactor
from fleet_guard.render import render_explanation, render_markdown
from fleet_guard.report import Report, report_json
from fleet_guard.scan import scan_fleet, summary_line
from fleet_guard.schema import did_you_mean

DEMO_USER = ("admin", "admin-pass")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fleet-guard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    scan = commands.add_parser("scan", help="scan a Concourse and print the report")
    scan.add_argument("--source", required=True, type=Path, help="JSON file holding `source`")
    scan.add_argument("--format", choices=("markdown", "json"), default="markdown")
    commands.add_parser("rules", help="list the built-in advisories")
    explain = commands.add_parser("explain", help="why each worker got its outcome for a rule")
    explain.add_argument("advisory", help="advisory id, e.g. cni-netlink-eintr")
    explain.add_argument("--source", required=True, type=Path, help="JSON file holding `source`")
    explain.add_argument("--worker", action="append", help="only this worker (repeatable)")
    demo = commands.add_parser("demo", help="run check against the embedded simulator")
    demo.add_argument("--scenario", default="incident")
    args = parser.parse_args(argv)
    try:
        if args.command == "scan":
            _scan(args.source, args.format)
        elif args.command == "explain":
            _explain(args.source, args.advisory, args.worker or [])
        elif args.command == "rules":
            _rules()
        else:
            _demo(args.scenario)
    except UserError as exc:
        sys.stderr.write(f"fleet-guard: {exc.message}\n")
        sys.exit(1)


def _scan_file(path: Path) -> tuple[SourceConfig, Report]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read --source {path}: {exc}") from exc
    config = load_source(raw)
    log = Log(debug=config.debug, redactor=Redactor(config.secrets))
    with ConcourseClient(config, log) as client:
        report = scan_fleet(config, client, log)
    log.info(summary_line(report))
    return config, report


def _scan(path: Path, output: str) -> None:
    _, report = _scan_file(path)
    if output == "json":
        print(json.dumps(report_json(report), indent=2))
    else:
        print(render_markdown(report))


def _explain(path: Path, advisory_id: str, workers: list[str]) -> None:
    config, report = _scan_file(path)
    advisories = {a.id: a for a in load_advisories(config)}
    if advisory_id not in advisories:
        hint = did_you_mean(advisory_id, advisories)
        raise UserError(f"no advisory {advisory_id!r}{hint}; `fleet-guard rules` lists them")
    unknown = [w for w in workers if w not in report.facts]
    if unknown:
        raise UserError(f"no worker {', '.join(unknown)} in {config.url}")
    print(render_explanation(report, advisories[advisory_id], workers or sorted(report.facts)))


def _rules() -> None:
    rules = load_builtin_rules()
    width = max(len(r.id) for r in rules)
    for rule in sorted(rules, key=lambda r: (-r.severity, r.id)):
        print(f"{rule.id:<{width}}  {rule.severity!s:<8}  {rule.summary}")


def _demo(scenario: str) -> None:
    """Starts the simulator, runs the real check entry point as Concourse does, shows the report."""
    from fleet_guard.simulator import Simulator, load_scenario

    with Simulator(load_scenario(scenario)) as sim:
        source: dict[str, Any] = {
            "url": sim.url,
            "username": DEMO_USER[0],
            "password": DEMO_USER[1],
        }
        print(f"Simulated Concourse ({scenario} scenario) at {sim.url}\n")
        print("$ echo '{\"source\": {...}}' | /opt/resource/check")
        done = subprocess.run(
            [sys.executable, "-m", "fleet_guard.resource", "check"],
            input=json.dumps({"source": source}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        sys.stdout.write(done.stderr)
        print(f"stdout (the versions Concourse records): {done.stdout.strip() or '(none)'}")
        print(f"exit status: {done.returncode}\n")
        if done.returncode != 0:
            raise UserError("the demo check failed; see its stderr above")
        config = load_source(source)
        log = Log(redactor=Redactor(config.secrets), stream=sys.stderr)
        with ConcourseClient(config, log) as client:
            report = scan_fleet(config, client, log)
        print(render_markdown(report))


if __name__ == "__main__":
    main()
