"""JSON Schema validation that reports problems the way an operator reads a pipeline.

The schemas in `fleet_guard/schemas/` are the single statement of what `source`, `params`, rules
and data files may contain. jsonschema's own messages point at schema internals; this module
turns each error into `path: message`, with the path written as in the pipeline
(`source.rules[0].severity`), so every problem can be fixed without reading the schema.

Two non-standard keywords help the messages (validators ignore unknown keywords):

- `errorMessage`: a string used instead of jsonschema's message for any failure of that
  subschema, or an object keyed by keyword (`{"maxProperties": "..."}`) as in ajv-errors.
  `{value}` in it is replaced by the offending value as JSON.
- unknown keys (`additionalProperties: false`) are reported one per key at the key's own path,
  with the allowed keys and a "did you mean" hint; an `errorMessage` for `additionalProperties`
  replaces the words "unknown key" (e.g. "unknown fact").
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource

_PACKAGE = "fleet_guard"
_DIRECTORY = "schemas"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MAX_MESSAGE = 300


def _file_name(name: str) -> str:
    return name if name.endswith(".json") else f"{name}.json"


@cache
def _raw_schema(name: str) -> dict[str, Any]:
    text = resources.files(_PACKAGE).joinpath(_DIRECTORY, _file_name(name)).read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"schema {name} is not a JSON object")
    return data


def load_schema(name: str) -> dict[str, Any]:
    """The schema `name` (`rule` or `rule.json`); a copy, so callers cannot alter the cache."""
    return copy.deepcopy(_raw_schema(_file_name(name)))


@cache
def _registry() -> Registry[Any]:
    """Every schema file, by file name and by `$id`, so schemas can `$ref` one another."""
    registry: Registry[Any] = Registry()
    directory = resources.files(_PACKAGE).joinpath(_DIRECTORY)
    for entry in directory.iterdir():
        if not entry.name.endswith(".json"):
            continue
        contents = _raw_schema(entry.name)
        resource = Resource.from_contents(contents)
        registry = registry.with_resource(entry.name, resource)
        if "$id" in contents:
            registry = registry.with_resource(str(contents["$id"]), resource)
    return registry


@cache
def _validator(name: str) -> Validator:
    schema = _raw_schema(_file_name(name))
    cls = validators.validator_for(schema)
    return cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


def problems(instance: Any, schema_name: str, where: str) -> list[str]:
    """Every way `instance` breaks schema `schema_name`, as `path: message`, in document order."""
    errors = sorted(_validator(schema_name).iter_errors(instance), key=_sort_key)
    found: list[str] = _invalid_text(instance, where)
    for error in errors:
        for problem in _render(error, where):
            if problem not in found:
                found.append(problem)
    return found


def join_path(where: str, parts: Iterable[str | int]) -> str:
    """`source` + ["rules", 0, "id"] → `source.rules[0].id`; odd keys are quoted."""
    out = where
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _invalid_text(instance: Any, where: str, depth: int = 0) -> list[str]:
    """Strings holding a lone surrogate (`"\\ud800"` in JSON) are no text: they cannot go
    into a URL, a header or a file. Named by path only, so a secret is never shown."""
    if depth > 50:
        return []
    if isinstance(instance, str):
        if any("\ud800" <= c <= "\udfff" for c in instance):
            return [
                f"{where or '(document)'}: holds a lone surrogate (an escape such as \\ud800 "
                "that is not text); fix the value in the pipeline or credential manager"
            ]
        return []
    found: list[str] = []
    if isinstance(instance, list):
        for index, item in enumerate(instance):
            found += _invalid_text(item, join_path(where, [index]), depth + 1)
    elif isinstance(instance, dict):
        for key, item in instance.items():
            path = join_path(where, [_short_key(str(key))])
            found += _invalid_text(key, path, depth + 1) + _invalid_text(item, path, depth + 1)
    return found


def _short_key(key: str) -> str:
    """Keys are echoed in messages; a huge unknown key is shown by its start only."""
    return key if len(key) <= 60 else f"{key[:40]}… ({len(key)} characters)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a choice is close to `word`, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sort_key(error: ValidationError) -> list[tuple[int, int | str]]:
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in error.absolute_path]


def _render(error: ValidationError, where: str) -> list[str]:
    path = join_path(where, list(error.absolute_path))
    keyword = str(error.validator)
    custom = _custom_message(error)
    if "propertyNames" in error.relative_schema_path and isinstance(error.instance, str):
        # jsonschema reports a bad key at its object; the key itself is where the fix goes.
        return [
            f"{join_path(path, [_short_key(error.instance)])}: {_shorten(custom or error.message)}"
        ]
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_keys(error, error.instance, path, custom or "unknown key")
    if keyword == "enum" and isinstance(error.instance, str) and not custom:
        values = error.validator_value if isinstance(error.validator_value, list) else []
        hint = did_you_mean(error.instance[:100], [str(v) for v in values])
        return [f"{path or '(document)'}: {_shorten(error.message)}{hint}"]
    if keyword == "required" and isinstance(error.instance, dict) and not custom:
        required = error.validator_value if isinstance(error.validator_value, list) else []
        return [
            f"{join_path(path, [str(key)])}: required key is missing"
            for key in required
            if key not in error.instance
        ]
    return [f"{path or '(document)'}: {_shorten(custom or error.message)}"]


def _custom_message(error: ValidationError) -> str | None:
    schema = error.schema if isinstance(error.schema, dict) else {}
    message = schema.get("errorMessage")
    if isinstance(message, dict):
        message = message.get(str(error.validator))
    if not isinstance(message, str):
        return None
    # The value is cut short first, so the words after it always survive the message limit.
    value = json.dumps(error.instance, default=str)
    return message.replace("{value}", value if len(value) <= 80 else value[:79] + "…")


def _unknown_keys(
    error: ValidationError, instance: dict[str, Any], path: str, label: str
) -> list[str]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = list(schema.get("properties") or {})
    patterns = [re.compile(p) for p in schema.get("patternProperties") or {}]
    unknown = [
        key for key in instance if key not in allowed and not any(p.search(key) for p in patterns)
    ]
    expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
    return [
        f"{join_path(path, [_short_key(key)])}: {label}{did_you_mean(key[:100], allowed)}{expected}"
        for key in unknown
    ]


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
