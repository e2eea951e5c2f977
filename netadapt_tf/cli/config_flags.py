"""Flags that override a preset's fields, defined from the config record and applied one way.

A tool's settings come from a preset (netadapt_tf/configs/) and flags that override single
fields of it. Each default is written once, in the preset: an override flag's own default
is None (unset: the preset's value stays). The rule a value must meet is written once too,
in the record's checks: a set flag is checked by building the record with it
(cli_flags.checked_by), so `--ema_decay=1` fails with the record's own words.

    TRAIN = config_flags.define(TrainConfig, {"epochs": "Epochs.", ...})
    ...
    config = TRAIN.apply(preset.train)

`define` makes one flag per field, named as the field unless `names` maps it, typed by the
field's annotation (int, float, bool, str, and those or None). `Overrides(record_type,
{field: holder})` wraps flags a tool defines itself (a differently named flag, an enum);
it refuses a field the record does not have, so a flag cannot drift from its field.
"""

import dataclasses
import types
import typing

from absl import app, flags

from netadapt_tf.cli import cli_flags

_DEFINE = {
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    bool: flags.DEFINE_bool,
    str: flags.DEFINE_string,
}


def _flag_type(record_type: type, field: str) -> type:
    """The field's type for a flag: its annotation with an optional None dropped."""
    hint = typing.get_type_hints(record_type)[field]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    if hint not in _DEFINE:
        raise TypeError(
            f"{record_type.__name__}.{field}: type {hint!r} has no flag kind; allowed: "
            f"{[t.__name__ for t in _DEFINE]} (or one of them | None)"
        )
    return hint


def _check_fields(record_type: type, fields) -> None:
    known = {f.name for f in dataclasses.fields(record_type)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"{record_type.__name__} has no field(s) {unknown}; its fields: {sorted(known)}"
        )


class Overrides:
    """Flags (holders by the field they set) that override fields of a `record_type`."""

    def __init__(self, record_type: type, holders: dict[str, flags.FlagHolder]):
        _check_fields(record_type, holders)
        self.record_type = record_type
        self.holders = dict(holders)

    def values(self) -> dict:
        """{field: value} of the flags that are set."""
        return {field: h.value for field, h in self.holders.items() if h.value is not None}

    def apply(self, record, **extra):
        """`record` with the set flags' values (and `extra` fields); a combination the
        record refuses is a usage error in the record's words."""
        if not isinstance(record, self.record_type):
            raise TypeError(f"{record!r} is not a {self.record_type.__name__}")
        try:
            return dataclasses.replace(record, **self.values(), **extra)
        except (TypeError, ValueError) as error:
            raise app.UsageError(str(error)) from None


def define(
    record_type: type,
    helps: dict[str, str],
    names: dict[str, str] | None = None,
    flag_values: flags.FlagValues = flags.FLAGS,
) -> Overrides:
    """One override flag per field in `helps` ({field: help}), named `names.get(field,
    field)`, default None, checked by the record; the preset's value is the default."""
    _check_fields(record_type, helps)
    names = names or {}
    holders = {}
    for field, help_text in helps.items():
        name = names.get(field, field)
        kind = _flag_type(record_type, field)
        holders[field] = _DEFINE[kind](
            name, None, f"{help_text} (default: the preset's)", flag_values=flag_values
        )
        if kind is not bool:
            cli_flags.checked_by(record_type, {name: field}, flag_values)
    return Overrides(record_type, holders)
