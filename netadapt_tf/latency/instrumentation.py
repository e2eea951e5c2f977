"""Read what `adb shell am instrument -w -r` prints, and pick out the harness app's results.

With `-r` the instrumentation reports in raw key/value form:

  INSTRUMENTATION_STATUS: key=value      a status value (a value may run over several lines)
  INSTRUMENTATION_STATUS_CODE: n         ends a status block: 1 a test starts, 0 it passed,
                                         -1 error, -2 failure, 2 a custom status in progress
  INSTRUMENTATION_RESULT: key=value      the run's final values (stream=, shortMsg=, ...)
  INSTRUMENTATION_CODE: n                the run ended (-1 for a completed run)
  INSTRUMENTATION_FAILED: component      the instrumentation could not start

The harness (android_benchmark/, ResultFormat.java) sends one status block with code 2 per
(model, delegate, threads) run, holding one JSON object under `netadapt_result`.
`harness_results` returns those objects and turns everything else (a crashed process, an
instrumentation that is not installed, a failed test without results, output cut off or not
from am instrument at all) into `HarnessError` with what the phone said.
"""

import dataclasses
import json
import re
from collections.abc import Mapping

__all__ = [
    "HARNESS_FORMAT",
    "HARNESS_VERSION",
    "HarnessError",
    "InstrumentationRun",
    "StatusBlock",
    "harness_results",
    "parse_instrumentation",
]

# Must equal ResultFormat.FORMAT / HARNESS_VERSION / RESULT_KEY / STATUS_CODE in the harness
# (tests/test_android_harness.py checks that they do).
HARNESS_FORMAT = "netadapt_tf.android_benchmark/1"
HARNESS_VERSION = "1.0"
RESULT_KEY = "netadapt_result"
RESULT_STATUS_CODE = 2
_FAILED_TEST_CODES = (-1, -2)

_LINE = re.compile(r"^INSTRUMENTATION_(STATUS|STATUS_CODE|RESULT|CODE|FAILED|ABORTED): ?(.*)$")


class HarnessError(RuntimeError):
    """The harness ran (or tried to) on the phone but produced no usable result."""


@dataclasses.dataclass(frozen=True)
class StatusBlock:
    """One status report: its values and the code that closed it."""

    code: int
    values: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class InstrumentationRun:
    """Everything one `am instrument -r` printed, parsed. `code` is None when the output
    never reached `INSTRUMENTATION_CODE` (cut off, or not am instrument output)."""

    statuses: tuple[StatusBlock, ...]
    result: Mapping[str, str]
    code: int | None
    failed: str | None
    last_line: str


def _integer(text: str, line_number: int, line: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise HarnessError(
            f"am instrument output line {line_number} has a non-numeric code: {line!r}"
        ) from None


def parse_instrumentation(text: str) -> InstrumentationRun:
    """Parses raw (`-r`) am instrument output; HarnessError for a malformed code line."""
    if not isinstance(text, str):
        raise TypeError(f"am instrument output must be a str, got {type(text).__name__}")
    statuses: list[StatusBlock] = []
    block: dict[str, str] = {}
    result: dict[str, str] = {}
    code = failed = None
    target: dict[str, str] | None = None  # where a continuation line goes
    key = None
    last_line = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if line.strip():
            last_line = line
        match = _LINE.match(line)
        if match is None:
            if target is not None and key is not None:
                target[key] += "\n" + line
            continue
        kind, rest = match.groups()
        target = key = None
        if kind in ("STATUS", "RESULT"):
            key, _, value = rest.partition("=")
            target = block if kind == "STATUS" else result
            target[key] = value
        elif kind == "STATUS_CODE":
            statuses.append(StatusBlock(_integer(rest, number, line), block))
            block = {}
        elif kind == "CODE":
            code = _integer(rest, number, line)
        else:  # FAILED, ABORTED
            failed = f"INSTRUMENTATION_{kind}: {rest}"
    return InstrumentationRun(tuple(statuses), result, code, failed, last_line)


def _decode(value: str, where: str) -> dict:
    try:
        document = json.loads(value)
    except json.JSONDecodeError as error:
        raise HarnessError(
            f"{where}: the harness result is not JSON ({error}): {value[:200]!r}"
        ) from None
    if not isinstance(document, dict):
        raise HarnessError(f"{where}: the harness result is not a JSON object: {value[:200]!r}")
    if document.get("format") != HARNESS_FORMAT:
        raise HarnessError(
            f"{where}: the harness reports format {document.get('format')!r}, this driver reads "
            f"{HARNESS_FORMAT!r}; build and install the harness of this checkout"
        )
    if document.get("harness_version") != HARNESS_VERSION:
        raise HarnessError(
            f"{where}: harness version {document.get('harness_version')!r} answered, this "
            f"driver needs {HARNESS_VERSION!r}; build and install the harness of this checkout"
        )
    return document


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def harness_results(run: InstrumentationRun, where: str) -> list[dict]:
    """The harness's JSON results, in the order sent; `where` names the phone for messages.

    Results with "status": "error" are returned too (the caller names the model). Raises
    HarnessError when the process crashed, the instrumentation failed to start, the output
    is incomplete, or the test failed without reporting why.
    """
    crash = run.result.get("shortMsg", "")
    if "crashed" in crash.lower():
        detail = _first_line(run.result.get("longMsg", ""))
        raise HarnessError(
            f"{where}: the harness process crashed ({crash.strip()}"
            + (f": {detail}" if detail else "")
            + "); see `adb logcat -b crash -d` on the phone"
        )
    if run.failed is not None:
        hints = [_first_line(s.values.get("Error", "")) for s in run.statuses]
        hint = next((h for h in hints if h), "")
        raise HarnessError(
            f"{where}: am instrument could not run the harness: {run.failed.strip()}"
            + (f" ({hint})" if hint else "")
        )
    results = [
        _decode(status.values[RESULT_KEY], where)
        for status in run.statuses
        if status.code == RESULT_STATUS_CODE and RESULT_KEY in status.values
    ]
    if run.code is None:
        raise HarnessError(
            f"{where}: am instrument stopped before INSTRUMENTATION_CODE (cut off, or not "
            f"instrumentation output); it ends with {run.last_line[-300:]!r}"
        )
    failures = [s for s in run.statuses if s.code in _FAILED_TEST_CODES and "stack" in s.values]
    if failures and not any(r.get("status") == "error" for r in results):
        # The test failed before it could report a run: bad arguments, no result directory.
        raise HarnessError(
            f"{where}: the harness test failed: {_first_line(failures[0].values['stack'])}"
        )
    return results
