"""`fleet-guard`: the operator's command line, shaped like fly.

    fleet-guard scan -t ci                  scan the Concourse of fly target `ci`
    fleet-guard workers -t ci               every worker's facts, their sources, uptime, errors
    fleet-guard explain ADVISORY -t ci      why each worker got its outcome
    fleet-guard rules                       the built-in advisories
    fleet-guard rules draft --report FILE   a draft advisory from an emerging signature
    fleet-guard capture -t ci -o fleet.json what a scan reads, as a simulator scenario
    fleet-guard scan --replay fleet.json    scan a capture instead of the ATC
    fleet-guard rules test RULE --replay F  what a new rule finds in a capture
    fleet-guard simulate fleet.json         serve a capture (or a built-in scenario)
    fleet-guard demo                        check against the embedded simulator

Exit status, for cron and scripts: 0 healthy, 1 error (bad arguments, unreachable, refused),
2 affected, 3 incomplete (the scan could not see everything). Each subcommand is one `_NAME`
function taking the parsed arguments and returning the text to print and the exit status;
`_parser` wires them up, `main` prints and exits.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import yaml

from fleet_guard import __version__
from fleet_guard.advisories.loader import load_advisories, load_builtin_rules, rule_problems
from fleet_guard.capture import REPLAY_USER, RecordingClient, dumps, scenario
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import SourceConfig, load_source
from fleet_guard.errors import AuthError, ConfigError, UserError
from fleet_guard.facts import Fact
from fleet_guard.flyrc import load_target
from fleet_guard.log import Log
from fleet_guard.redact import Redactor
from fleet_guard.render import render_explanation, render_markdown, render_text
from fleet_guard.render.view import duration, outcome_rank, scan_time
from fleet_guard.report import Report, report_json
from fleet_guard.scan import scan_fleet, summary_line
from fleet_guard.schema import did_you_mean, problems
from fleet_guard.signatures.draft import draft_rule, pick_signature
from fleet_guard.simulator import SCENARIO_NAMES, ScenarioError, Simulator, load_scenario
from fleet_guard.terminal import Style, table, wants_colour, width_of
from fleet_guard.version import AFFECTED, HEALTHY, INCOMPLETE

DEMO_USER = ("admin", "admin-pass")
PASSWORD_ENV = "FLEET_GUARD_PASSWORD"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_AFFECTED = 2
EXIT_INCOMPLETE = 3
STATUS_EXIT: Mapping[str, int] = {
    HEALTHY: EXIT_OK,
    AFFECTED: EXIT_AFFECTED,
    INCOMPLETE: EXIT_INCOMPLETE,
}

# What a subcommand gives back: the text for stdout and the exit status.
Result = tuple[str, int]
Command = Callable[[argparse.Namespace], Result]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument exits 1 (2 means `affected` here) with a hint, not usage.

    Abbreviations are off: `--password` must not quietly mean `--password-env`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {message}\nRun `{self.prog} --help` for usage.\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Command = args.run
    code = EXIT_OK
    try:
        text, code = command(args)
        if text:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except UserError as exc:
        sys.stderr.write(f"fleet-guard: {exc.message}\n")
        code = EXIT_ERROR
    except BrokenPipeError:
        # `fleet-guard scan | head`: the reader left; say nothing, and keep the command's status.
        _silence_stdout()
    except KeyboardInterrupt:
        sys.stderr.write("fleet-guard: interrupted\n")
        code = 130
    sys.exit(code)


def _silence_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# --- the parser ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fleet-guard",
        description="Find known-bad worker software and the build failures it causes.",
        epilog="Exit status: 0 healthy, 1 error, 2 affected, 3 incomplete.",
    )
    parser.add_argument("--version", action="version", version=f"fleet-guard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="scan a Concourse and print the verdict")
    _connection_options(scan)
    _format_option(scan)
    scan.set_defaults(run=_scan)

    workers = commands.add_parser("workers", help="every worker's facts, sources and errors")
    _connection_options(workers)
    _format_option(workers)
    workers.set_defaults(run=_workers)

    explain = commands.add_parser("explain", help="why each worker got its outcome for a rule")
    explain.add_argument("advisory", help="advisory id, e.g. cni-netlink-eintr")
    explain.add_argument("--worker", action="append", help="only this worker (repeatable)")
    _connection_options(explain)
    explain.set_defaults(run=_explain)

    rules = commands.add_parser("rules", help="list the built-in advisories; test a new one")
    rules.set_defaults(run=_rules)
    rule_commands = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    rules_test = rule_commands.add_parser("test", help="what a rule file finds in a fleet")
    rules_test.add_argument("rule_file", type=Path, metavar="RULE-FILE", help="JSON or YAML")
    _connection_options(rules_test)
    _format_option(rules_test)
    rules_test.set_defaults(run=_rules_test)
    draft = rule_commands.add_parser(
        "draft", help="write a draft advisory from an emerging signature in a report.json"
    )
    draft.add_argument("--report", required=True, type=Path, help="a get's report.json")
    draft.add_argument("--signature", help="its id (emerging-...); default: the only one")
    draft.add_argument("--id", dest="rule_id", help="the rule's id (default: draft-SIGNATURE)")
    draft.add_argument("--output", type=Path, help="write the rule here instead of stdout")
    draft.set_defaults(run=_draft)

    capture = commands.add_parser("capture", help="write what a scan reads to a scenario file")
    _connection_options(capture, replay=False)
    capture.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    capture.add_argument(
        "--blank-logs", action="store_true", help="empty every log payload (keep error events)"
    )
    capture.set_defaults(run=_capture)

    simulate = commands.add_parser("simulate", help="serve a capture or a built-in scenario")
    simulate.add_argument(
        "scenario", help=f"a scenario file, or one of {', '.join(SCENARIO_NAMES)}"
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=0, help="0 picks a free port")
    simulate.set_defaults(run=_simulate)

    demo = commands.add_parser("demo", help="run check against the embedded simulator")
    demo.add_argument("--scenario", default="incident", help="a built-in scenario name")
    demo.set_defaults(run=_demo)
    return parser


def _connection_options(parser: argparse.ArgumentParser, *, replay: bool = True) -> None:
    group = parser.add_argument_group("which Concourse (like fly)")
    group.add_argument("-t", "--target", help="a fly target saved in ~/.flyrc by `fly login`")
    group.add_argument("-c", "--url", help="the Concourse URL (with --username)")
    group.add_argument(
        "-u",
        "--username",
        help=f"a local user; the password comes from ${PASSWORD_ENV} or a prompt",
    )
    group.add_argument(
        "--password-env",
        default=PASSWORD_ENV,
        metavar="VAR",
        help=f"the environment variable holding the password (default {PASSWORD_ENV})",
    )
    group.add_argument(
        "--source",
        type=Path,
        metavar="FILE",
        help="YAML or JSON: a resource `source`, or {source: ...} as check reads it; "
        "--target/--url override its URL and credentials",
    )
    if replay:
        group.add_argument(
            "--replay",
            type=Path,
            metavar="FILE",
            help="scan a file written by `fleet-guard capture` instead of a Concourse",
        )


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")


# --- subcommands -----------------------------------------------------------------------------


def _scan(args: argparse.Namespace) -> Result:
    with _fleet(args) as config:
        report = _scan_report(config)
    code = STATUS_EXIT.get(report.status, EXIT_ERROR)
    if args.format == "json":
        return json.dumps(report_json(report), indent=2), code
    if args.format == "markdown":
        return render_markdown(report), code
    return _scan_table(report), code


def _workers(args: argparse.Namespace) -> Result:
    with _fleet(args) as config:
        report = _scan_report(config)
    names = _worker_order(report)
    if args.format == "json":
        documents = {w["name"]: w for w in report_json(report)["workers"]}
        counts = _error_counts(report)
        for name in names:
            documents[name]["errors"] = counts.get(name, 0)
        return json.dumps([documents[n] for n in names], indent=2), EXIT_OK
    headers, rows = _worker_table(report, names)
    if args.format == "markdown":
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "---|" * len(headers),
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
        return "\n".join(lines), EXIT_OK
    out = sys.stdout
    style = Style(wants_colour(out))
    text = table(headers, rows, width=width_of(out), style=style, tones=(1,))
    legend = "sources: op = declared in source, obs = observed, inf = inferred from release"
    return f"{text}\n\n{style.paint(legend, 'dim')}", EXIT_OK


def _explain(args: argparse.Namespace) -> Result:
    with _fleet(args) as config:
        # The id is checked before anything is asked of the ATC: a typo costs no scan.
        advisories = {a.id: a for a in load_advisories(config)}
        if args.advisory not in advisories:
            hint = did_you_mean(args.advisory, advisories)
            raise UserError(f"no advisory {args.advisory!r}{hint}; `fleet-guard rules` lists them")
        report = _scan_report(config)
    workers: list[str] = args.worker or []
    unknown = [w for w in workers if w not in report.facts]
    if unknown:
        raise UserError(f"no worker {', '.join(unknown)} in {config.url}")
    chosen = workers or sorted(report.facts)
    return render_explanation(report, advisories[args.advisory], chosen), EXIT_OK


def _rules(args: argparse.Namespace) -> Result:
    rules = load_builtin_rules()
    width = max(len(r.id) for r in rules)
    lines = [
        f"{rule.id:<{width}}  {rule.severity!s:<8}  {rule.summary}"
        for rule in sorted(rules, key=lambda r: (-r.severity, r.id))
    ]
    return "\n".join(lines), EXIT_OK


def _draft(args: argparse.Namespace) -> Result:
    """A rule file from a signature, validated as source.rules would validate it."""
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read --report {args.report}: {exc}") from exc
    if not isinstance(report, dict):
        raise UserError(f"--report {args.report} is not a report.json (not a JSON object)")
    signature = pick_signature(report, args.signature)
    rule = draft_rule(signature, report.get("workers") or [], rule_id=args.rule_id)
    found = problems(rule, "rule", where="rule")
    if found:
        raise UserError("the draft is not a valid rule: " + "; ".join(found))
    text = json.dumps(rule, indent=2, ensure_ascii=False)
    if args.output is None:
        return text, EXIT_OK
    try:
        args.output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write --output {args.output}: {exc}") from exc
    sys.stderr.write(
        f"fleet-guard: wrote {args.output}; complete its TODOs, then add it to source.rules\n"
    )
    return "", EXIT_OK


def _rules_test(args: argparse.Namespace) -> Result:
    """The findings of one rule file alone: what it would add to this fleet (or capture)."""
    rule = _read_rule(args.rule_file)
    with _fleet(args, extra_rules=[rule]) as config:
        report = _scan_report(config)
    own = replace(report, findings=[f for f in report.findings if f.advisory.id == rule["id"]])
    code = STATUS_EXIT.get(own.status, EXIT_ERROR)
    if args.format == "json":
        return json.dumps(report_json(own), indent=2), code
    if args.format == "markdown":
        return render_markdown(own), code
    if not own.findings:
        return f"rule {rule['id']}: no worker matched, and no build showed its error", code
    return f"rule {rule['id']}:\n{render_text(own)}", code


def _capture(args: argparse.Namespace) -> Result:
    config = _config(args)
    if not args.output.parent.is_dir():
        # Said before the scan, so a typo in the path costs no API calls.
        raise UserError(
            f"cannot write --output {args.output}: {args.output.parent} is no directory"
        )
    redactor = Redactor(config.secrets)
    log = Log(debug=config.debug, redactor=redactor, stream=sys.stderr)
    client = RecordingClient(config, log)
    with client:
        report = scan_fleet(config, client, log)
        document = scenario(
            client, source_url=config.url, redactor=redactor, blank_logs=args.blank_logs
        )
    text = dumps(document)
    if any(secret in text for secret in config.secrets):
        text = redactor(text)  # belt and braces: nothing above should have let one through
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write --output {args.output}: {exc}") from None
    log.info(summary_line(report))
    log.info(
        f"fleet-guard: wrote {args.output} ({len(document['workers'])} workers, "
        f"{len(document['builds'])} builds); replay it with "
        f"`fleet-guard scan --replay {args.output}`"
    )
    return "", EXIT_OK


def _simulate(args: argparse.Namespace) -> Result:
    """Serves the scenario until Ctrl-C; the first line of stdout is its URL."""
    from fleet_guard.simulator.__main__ import main as serve

    _load_scenario(args.scenario)  # a bad file is a message here, not the server's exit 2
    sys.stderr.write(
        f"fleet-guard: log in as {REPLAY_USER[0]}/{REPLAY_USER[1]} to a capture, or as the "
        "built-in scenarios' users (README: The simulator); Ctrl-C stops it\n"
    )
    try:
        code = serve([args.scenario, "--host", args.host, "--port", str(args.port)])
    except OSError as exc:
        raise UserError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}; "
            "pick another --port, or 0 for a free one"
        ) from None
    return "", EXIT_OK if code == 0 else EXIT_ERROR


def _demo(args: argparse.Namespace) -> Result:
    """Starts the simulator, runs the real check entry point as Concourse does, shows the report."""
    if args.scenario not in SCENARIO_NAMES:
        hint = did_you_mean(args.scenario, SCENARIO_NAMES)
        raise UserError(
            f"no scenario {args.scenario!r}{hint}; the built-in ones are "
            f"{', '.join(SCENARIO_NAMES)}"
        )
    out: list[str] = []
    with Simulator(load_scenario(args.scenario)) as sim:
        source: dict[str, Any] = {
            "url": sim.url,
            "username": DEMO_USER[0],
            "password": DEMO_USER[1],
        }
        request = json.dumps({"source": source})
        out += [
            f"Simulated Concourse ({args.scenario} scenario) at {sim.url}; its users and their "
            "passwords are the simulator's own (README: The simulator).",
            "",
            "The exact JSON sent to check on stdin:",
            f"$ echo '{request}' | /opt/resource/check",
        ]
        done = subprocess.run(
            [sys.executable, "-m", "fleet_guard.resource", "check"],
            input=request,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out += [
            done.stderr.rstrip("\n"),
            f"stdout (the versions Concourse records): {done.stdout.strip() or '(none)'}",
            f"exit status: {done.returncode}",
            "",
        ]
        if done.returncode != 0:
            sys.stdout.write("\n".join(out) + "\n")
            raise UserError("the demo check failed; see its stderr above")
        config = load_source(source)
        log = Log(redactor=Redactor(config.secrets), stream=sys.stderr)
        with ConcourseClient(config, log) as client:
            report = scan_fleet(config, client, log)
        out.append(render_markdown(report))
    return "\n".join(out), EXIT_OK


# --- where the source comes from -------------------------------------------------------------


_CONNECTION_KEYS = ("url", "username", "password", "token", "ca_certs", "insecure")


@contextmanager
def _fleet(
    args: argparse.Namespace, *, extra_rules: Sequence[Mapping[str, Any]] = ()
) -> Iterator[SourceConfig]:
    """The source to scan: a real Concourse's, or a capture served on loopback (--replay)."""
    replay: Path | None = getattr(args, "replay", None)
    if replay is None:
        yield _config(args, extra_rules)
        return
    if args.target or args.url:
        raise UserError("--replay scans the file alone; leave out --target and --url")
    with Simulator(_load_scenario(str(replay))) as sim:
        raw = _read_source_file(args.source) if args.source else {}
        raw = {k: v for k, v in raw.items() if k not in _CONNECTION_KEYS}
        raw.update(url=sim.url, username=REPLAY_USER[0], password=REPLAY_USER[1])
        yield _validated(_with_rules(raw, extra_rules), f"--replay {replay}")


def _config(
    args: argparse.Namespace, extra_rules: Sequence[Mapping[str, Any]] = ()
) -> SourceConfig:
    raw, origin = _raw_source(args)
    return _validated(_with_rules(raw, extra_rules), origin)


def _with_rules(raw: dict[str, Any], rules: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if not rules:
        return raw
    return {**raw, "rules": [*(raw.get("rules") or []), *rules]}


def _validated(raw: Mapping[str, Any], origin: str) -> SourceConfig:
    try:
        return load_source(raw)
    except ConfigError as exc:
        lines = "\n".join(f"  - {p}" for p in exc.problems)
        raise UserError(f"the source from {origin} is not valid:\n{lines}") from None


def _load_scenario(name_or_path: str) -> Any:
    try:
        return load_scenario(name_or_path)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {name_or_path}: {exc}") from None


def _read_rule(path: Path) -> dict[str, Any]:
    try:
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read RULE-FILE {path}: {exc}") from None
    problems = rule_problems(rule, where=str(path), builtin=False)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise UserError(f"{path} is not a valid rule (README: Writing rules):\n{lines}")
    if not isinstance(rule, dict):  # rule_problems reports a non-object; mypy cannot know
        raise UserError(f"{path} is not a rule object")
    return rule


def _raw_source(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The `source` a scan uses: the file's, then the target's or the --url's on top of it."""
    raw: dict[str, Any] = {}
    origins = []
    if args.source is not None:
        raw = _read_source_file(args.source)
        origins.append(f"--source {args.source}")
    if args.target and args.url:
        raise UserError("give --target or --url, not both")
    if args.target:
        raw = {k: v for k, v in raw.items() if k not in ("username", "password", "token")}
        raw.update(load_target(args.target).source())
        origins.append(f"fly target {args.target!r}")
    elif args.url:
        if not args.username:
            raise UserError(
                "--url needs --username (the password comes from "
                f"${args.password_env} or a prompt); or use --target with a fly target"
            )
        raw = {k: v for k, v in raw.items() if k not in ("username", "password", "token")}
        raw.update(url=args.url, username=args.username, password=_password(args))
        origins.append("--url")
    elif args.username:
        raise UserError("--username goes with --url")
    if not raw.get("url"):
        raise UserError(
            "which Concourse? Give --target NAME (a fly target), --url URL --username USER, "
            "or --source FILE"
        )
    for key in ("password", "token"):
        value = raw.get(key)
        if isinstance(value, str) and value.startswith("((") and value.endswith("))"):
            raise UserError(
                f"source.{key} is the pipeline var {value}, which only Concourse can fill in: "
                "use --target (a fly login) or --url/--username with "
                f"${args.password_env} instead"
            )
    return raw, " and ".join(origins)


def _read_source_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read --source {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("source"), dict):
        data = data["source"]  # the {"source": ...} check reads on stdin
    if not isinstance(data, dict):
        raise UserError(
            f"--source {path} holds no mapping: give the resource's source keys (url, "
            "username, ...) or {source: {...}}"
        )
    return data


def _password(args: argparse.Namespace) -> str:
    """From the environment, else a prompt on a terminal: never from an argument."""
    value = os.environ.get(args.password_env)
    if value:
        return value
    if sys.stdin.isatty():
        entered = getpass.getpass(f"password for {args.username} at {args.url}: ")
        if entered:
            return entered
    raise UserError(
        f"no password for {args.username}: set ${args.password_env}, or run on a terminal to "
        "be asked for it"
    )


def _scan_report(config: SourceConfig) -> Report:
    log = Log(debug=config.debug, redactor=Redactor(config.secrets), stream=sys.stderr)
    try:
        with ConcourseClient(config, log) as client:
            report = scan_fleet(config, client, log)
    except AuthError as exc:
        if config.token and not config.password:
            raise UserError(
                f"{exc.message}\nFor a fly target, `fly -t TARGET login` saves a fresh token."
            ) from None
        raise
    log.info(summary_line(report))
    return report


# --- tables ----------------------------------------------------------------------------------


def _scan_table(report: Report) -> str:
    out = sys.stdout
    style = Style(wants_colour(out))
    width = width_of(out)
    text = render_text(report)
    first, *rest = text.splitlines()
    status = report.status
    lines = [first.replace(status, style.paint(status), 1), ""]
    rows = [
        [
            f.advisory.id,
            str(f.advisory.severity),
            f.outcome.value,
            str(len(f.workers)),
            str(len(f.evidence)),
            "yes" if f in report.affecting else "no",
        ]
        for f in report.findings
    ]
    if rows:
        rows.sort(key=lambda r: (r[5] != "yes", r[0], outcome_rank(r[2])))
        headers = ["ADVISORY", "SEVERITY", "OUTCOME", "WORKERS", "ERRORS", "AFFECTS"]
        lines += [table(headers, rows, width=width, style=style, tones=(2,)), ""]
    affected = report.affected_workers
    if affected:
        headers, worker_rows = _worker_table(report, affected)
        lines += [table(headers, worker_rows, width=width, style=style, tones=(1,)), ""]
    lines += [line for line in rest if line.startswith("  not seen: ")]
    lines.append("The whole report: --format markdown. Why: fleet-guard explain ADVISORY.")
    return "\n".join(lines)


def _worker_order(report: Report) -> list[str]:
    """Affected workers first (worst first), then the rest by name."""
    affected = report.affected_workers
    rest = sorted(
        n for n in {*report.facts, *(w.name for w in report.workers)} if n not in affected
    )
    return [*affected, *rest]


def _worker_table(report: Report, names: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    now = scan_time(report)
    registered = {w.name: w for w in report.workers}
    counts = _error_counts(report)
    newest = _newest_error(report)
    headers = ["WORKER", "STATE", "RELEASE", "RUNTIME", "CNI", "UPTIME", "ERRORS", "LAST ERR"]
    rows = []
    for name in names:
        worker = registered.get(name)
        facts = report.facts.get(name, {})
        started = worker.start_time if worker else 0
        rows.append(
            [
                name,
                worker.state if worker else "gone",
                _short_fact(facts.get("concourse")),
                _short_fact(facts.get("runtime")),
                _short_fact(facts.get("cni_plugins")),
                _coarse(now.timestamp() - started) if started else "-",
                str(counts.get(name, 0)),
                f"{_coarse(now.timestamp() - newest[name])} ago" if name in newest else "-",
            ]
        )
    return headers, rows


def _coarse(seconds: float) -> str:
    """`19 d`, `7 h`, `12 min`: the largest unit only, for narrow columns."""
    return " ".join(duration(seconds).split()[:2])


def _short_fact(fact: Fact | None) -> str:
    """`7.12.0 obs`: the value and where it came from, narrow enough for 80 columns."""
    return f"{fact.value} {fact.source.value[:3]}" if fact else "?"


def _error_counts(report: Report) -> dict[str, int]:
    """Matching errors per worker: distinct builds, whichever advisory they matched."""
    seen: dict[str, set[int]] = {}
    for finding in report.findings:
        for item in finding.evidence:
            if item.worker:
                seen.setdefault(item.worker, set()).add(item.build_id)
    return {name: len(builds) for name, builds in seen.items()}


def _newest_error(report: Report) -> dict[str, int]:
    newest: dict[str, int] = {}
    for finding in report.findings:
        for item in finding.evidence:
            if item.worker and item.time:
                newest[item.worker] = max(newest.get(item.worker, 0), item.time)
    return newest


if __name__ == "__main__":
    main()
