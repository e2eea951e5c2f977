"""Reading the JSON files the package writes, strictly, with one exception type.

Every file a run reads back (a spec, an arch, a run record, the demo's stages, a held-out
split, a latency table, a measurement cache entry, a search's records) is parsed by
`read(path, parse)` and checked field by field by the record's own `from_json`, built from
the checks here. Whatever is wrong (the file is missing or cut short, a field is missing,
unknown or of the wrong type, a value is out of range, the file was made for another
super-network) raises `RecordError`, a ValueError whose message names the file, the field,
the value and what is allowed:

    run/spec.json: nodes[3].filters: True is not allowed; allowed: an integer >= 1

Booleans are not integers or numbers here (Python's `True == 1` would let them through).
"""

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import types
import typing
from collections.abc import Callable, Iterable

# How much of a bad value a message shows.
_SHOWN = 80


class RecordError(ValueError):
    """A JSON record that cannot be read, is malformed, or belongs to something else; the
    message names the file (when there is one), the field, the value and what is allowed."""


def show(value) -> str:
    """repr(value), cut to a readable length."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def fail(field: str, value, allowed: str, problem: str = "is not allowed") -> RecordError:
    """The error for `field` holding `value`; callers `raise fail(...)`."""
    return RecordError(f"{field}: {show(value)} {problem}; allowed: {allowed}")


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def integer(value, field: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (not a bool) within the bounds."""
    allowed = "an integer" + _bounds(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field, value, allowed)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise fail(field, value, allowed)
    return value


def number(value, field: str, minimum: float | None = None, maximum: float | None = None):
    """A finite int or float (not a bool) within the bounds."""
    allowed = "a finite number" + _bounds(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(field, value, allowed)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise fail(field, value, allowed)
    return value


def string(value, field: str, choices: Iterable[str] | None = None, empty: bool = False) -> str:
    """A str; one of `choices` when given; non-empty unless `empty`."""
    if choices is not None:
        choices = tuple(choices)
        if not isinstance(value, str) or value not in choices:
            raise fail(field, value, f"one of {list(choices)}")
        return value
    if not isinstance(value, str) or (not empty and not value):
        raise fail(field, value, "a string" if empty else "a non-empty string")
    return value


def boolean(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise fail(field, value, "true or false")
    return value


def constant(value, field: str, expected) -> object:
    """`value` must be exactly `expected` (a format tag, a version)."""
    if type(value) is not type(expected) or value != expected:
        raise fail(field, value, show(expected))
    return value


def optional(check: Callable, value, field: str, *args, **kwargs):
    """None, or what `check(value, field, ...)` accepts."""
    return None if value is None else check(value, field, *args, **kwargs)


def array(
    value, field: str, item: Callable | None = None, min_length: int = 0, length=None
) -> list:
    """A list, each element checked by item(element, "field[i]") when given."""
    if not isinstance(value, list):
        raise fail(field, value, "a list")
    if length is not None and len(value) != length:
        raise fail(field, value, f"a list of exactly {length} elements")
    if len(value) < min_length:
        raise fail(field, value, f"a list of at least {min_length} elements")
    if item is None:
        return value
    return [item(element, f"{field}[{i}]") for i, element in enumerate(value)]


def obj(value, field: str, required: Iterable[str] = (), optional: Iterable[str] = ()) -> dict:
    """A JSON object with every `required` key, and no keys but those and `optional`."""
    required, optional = tuple(required), tuple(optional)
    if not isinstance(value, dict):
        raise fail(
            field, value, "an object" + (f" with fields {list(required)}" if required else "")
        )
    missing = [key for key in required if key not in value]
    if missing:
        raise RecordError(
            f"{field}: fields {missing} are missing; allowed: an object with fields "
            f"{list(required)}" + (f" and optionally {list(optional)}" if optional else "")
        )
    known = set(required) | set(optional)
    unknown = sorted(str(key) for key in value if key not in known)
    if unknown:
        raise RecordError(
            f"{field}: unknown fields {unknown}; allowed: {sorted(known) or 'no fields'}"
        )
    return value


def mapping(value, field: str, item: Callable | None = None) -> dict:
    """An object with any keys, each value checked by item(value, "field.key") when given."""
    if not isinstance(value, dict):
        raise fail(field, value, "an object")
    if item is None:
        return value
    return {key: item(element, f"{field}.{key}") for key, element in value.items()}


def scalar(value, field: str):
    """A JSON string, number, true/false or null (the values of free-form option records)."""
    if value is not None and not isinstance(value, str | int | float | bool):
        raise fail(field, value, "a string, number, true/false or null")
    return value


def _typed(annotation) -> Callable:
    """The check of a dataclass field annotated with `annotation` (int, float, bool, str,
    paths, None, and unions of them)."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    if options:
        checks = [(option, _typed(option)) for option in options if option is not type(None)]
        nullable = type(None) in options
        names = dict.fromkeys(_ALLOWED[option] for option, _ in checks)
        allowed = " or ".join(names) + (" or null" if nullable else "")

        def check_union(value, field):
            if value is None and nullable:
                return None
            for _, check in checks:
                try:
                    return check(value, field)
                except RecordError:
                    continue
            raise fail(field, value, allowed)

        return check_union
    if annotation is bool:
        return boolean
    if annotation is int:
        return integer
    if annotation is float:
        return number
    if annotation is str or annotation is os.PathLike:
        return lambda value, field: string(value, field, empty=True)
    raise TypeError(f"no JSON check for fields annotated {annotation!r}")


_ALLOWED = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a string",
    os.PathLike: "a string",
}


def dataclass_fields(value, field: str, cls) -> dict:
    """The fields of dataclass `cls` in JSON object `value` (its `dataclasses.asdict`), each
    checked against its annotation; fields with defaults may be absent."""
    fields = dataclasses.fields(cls)
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    obj(value, field, required, [f.name for f in fields if f.name not in required])
    return {
        f.name: _typed(f.type)(value[f.name], f"{field}.{f.name}")
        for f in fields
        if f.name in value
    }


def dataclass_record(value, field: str, cls):
    """`cls(**fields)` of JSON object `value`; its own checks' errors become RecordErrors."""
    fields = dataclass_fields(value, field, cls)
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise RecordError(f"{field}: {error}") from None


def same(a, b) -> bool:
    """Whether two JSON values are the same, types included (True is not 1, 1 is not 1.0
    written as 1.0)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def differences(old, new, prefix: str = "") -> list[str]:
    """The leaves where two JSON values differ, e.g. "train.batch_size (16 vs 32)"."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                found.append(f"{where} ({show(old.get(key))} vs {show(new.get(key))})")
            else:
                found += differences(old[key], new[key], where)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = enumerate(zip(old, new, strict=True))
        return [d for i, (a, b) in pairs for d in differences(a, b, f"{prefix}[{i}]")]
    if same(old, new):
        return []
    return [f"{prefix or 'the value'} ({show(old)} vs {show(new)})"]


def parse_text(text: str | bytes, source: str):
    """The JSON value of `text`; RecordError naming `source` when it is not JSON."""
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(
            f"{source}: malformed JSON ({error}); allowed: the whole file as written (a file "
            "cut short by a crash, or edited by hand, cannot be read)"
        ) from None


def load(path: str | os.PathLike):
    """The JSON value in file `path`; RecordError when it cannot be read or parsed."""
    path = pathlib.Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file") from None
    except OSError as error:
        raise RecordError(f"{path}: cannot read it ({error.strerror or error})") from None
    return parse_text(text, str(path))


@contextlib.contextmanager
def source(name: str | os.PathLike):
    """RecordErrors raised inside get `name` (the file) in front of their message."""
    name = os.fspath(name)
    try:
        yield
    except RecordError as error:
        message = str(error)
        if message.startswith(name):
            raise
        raise type(error)(f"{name}: {message}") from None  # subclasses stay what they are


def read(path: str | os.PathLike, parse: Callable):
    """parse(the JSON value in `path`), every RecordError naming the file."""
    data = load(path)
    with source(path):
        return parse(data)
