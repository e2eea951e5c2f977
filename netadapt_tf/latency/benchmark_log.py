"""Read the text printed by TensorFlow Lite's `benchmark_model` into per-run records.

The tool's output changed over the years and arrives through different loggers, so the parser
accepts every generation seen in the wild:

* summary lines: `Average inference timings in us: Warmup: X, Init: Y, no stats: Z` (oldest),
  `... Warmup: X, Init: Y, Inference: Z` (TF 1.x) and
  `Inference timings in us: Init: A, First inference: B, Warmup (avg): C, Inference (avg): D`;
* line prefixes: `INFO: `/`ERROR: ` (TFLite minimal logging), Android logcat (`I tflite  : `,
  `I/tflite( 123): `, or date, time, pid and tid first) and glog (`I0102 03:04:05.6 7 f.cc:8] `);
* stats lines `count= first= curr= min= max= avg= std=`, newer ones with `p5= median= p95=`;
* memory lines `Peak memory footprint (MB): init= overall=` and
  `Memory footprint delta from the start of the tool (MB): init= overall=`;
* several runs in one log (for example a CPU run, then a GPU run).

A latency search must never rank a network by a number from a failed run, so a log that
reports a failure, or has no complete summary, or stops in the middle of a run, raises
`BenchmarkLogError` naming the cause instead of returning anything.
"""

import dataclasses
import math
import re

__all__ = ["BenchmarkLogError", "BenchmarkRun", "format_runs_table", "parse_benchmark_log"]


class BenchmarkLogError(ValueError):
    """The log does not hold a complete, successful benchmark run."""


@dataclasses.dataclass(frozen=True)
class BenchmarkRun:
    """The numbers one benchmark run printed; a field the log does not print is None.

    `median_us` and `std_us` come from the stats line of the timed (not the warm-up) runs;
    `memory_mb` is the `overall=` value of the memory line that follows the summary.
    `p90_us` is reported by the Android harness app (android_benchmark/), not by
    `benchmark_model`.
    """

    inference_avg_us: float
    init_us: float
    first_inference_us: float | None
    warmup_avg_us: float | None
    median_us: float | None = None
    memory_mb: float | None = None
    std_us: float | None = None
    p90_us: float | None = None

    # Printed only by some generations, so they are left out of the JSON rather than null.
    _OMITTED_WHEN_NONE = ("median_us", "memory_mb", "std_us", "p90_us")

    def to_json(self) -> dict[str, float | None]:
        """Returns a JSON-able dict; median, memory, std and p90 appear only when known."""
        result = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in self._OMITTED_WHEN_NONE:
                continue
            result[field.name] = value
        return result

    @classmethod
    def from_json(cls, data: dict) -> "BenchmarkRun":
        """Inverse of `to_json`."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"BenchmarkRun JSON has unknown keys {unknown}; allowed: {sorted(known)}"
            )
        return cls(**data)


# Tokens are taken up to the next comma or blank so that a bad value (`nan`, `-inf`) is
# reported as such instead of making the whole line look absent.
_VALUE = r"([^\s,]+)"
_CURRENT_SUMMARY = re.compile(
    rf"Inference timings in us: Init: {_VALUE}, First inference: {_VALUE}, "
    rf"Warmup \(avg\): {_VALUE}, Inference \(avg\): {_VALUE}\s*$"
)
_OLD_SUMMARY = re.compile(
    rf"Average inference timings in us: Warmup: {_VALUE}, Init: {_VALUE}, "
    rf"(?:Inference|no stats): {_VALUE}\s*$"
)
_SUMMARY_START = re.compile(r"(?:Average inference|Inference) timings in us:")
_STATS = re.compile(r"count=\S+")
_STATS_FIELD = re.compile(r"(\w+)=(\S+)")
_MEMORY = re.compile(
    r"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
    rf"init={_VALUE} overall={_VALUE}\s*$"
)
# Lines that only appear once a benchmark run has begun; seeing one after the last summary
# means the log was cut off (or the process died) in the middle of another run.
_RUN_STARTED = re.compile(r"STARTING!|Loaded model|Initialized session in|Running benchmark for")

_LOGCAT = re.compile(
    r"^(?:(?:\d{4}-)?\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}\.\d+\s+)?"  # date and time
    r"(?:\d+\s+\d+\s+)?"  # pid and tid (threadtime format)
    r"(?P<priority>[VDIWEFA])[ /]"
    r"(?:[^\s:(][^:(]*?)?\s*"  # tag
    r"(?:\(\s*\d+\)\s*)?"  # (pid) in the brief and time formats
    r":(?:\s|$)"
)
_GLOG = re.compile(r"^(?P<priority>[IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+[^\]\s]+\]\s?")
_TFLITE_SEVERITY = re.compile(r"^(?P<severity>INFO|WARNING|ERROR|VERBOSE): ")
_ERROR_PRIORITIES = frozenset("EFA")


def _strip_prefixes(line: str) -> tuple[bool, str]:
    """Returns (whether the line was logged as an error, the message without logger prefixes)."""
    is_error = False
    for prefix in (_LOGCAT, _GLOG):
        match = prefix.match(line)
        if match:
            is_error = match.group("priority") in _ERROR_PRIORITIES
            line = line[match.end() :]
            break
    match = _TFLITE_SEVERITY.match(line)
    if match:
        is_error = is_error or match.group("severity") == "ERROR"
        line = line[match.end() :]
    return is_error, line.strip()


def _number(token: str, what: str, line_number: int, line: str) -> float:
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BenchmarkLogError(
            f"line {line_number}: {what} is {token!r}, not a finite non-negative number: {line!r}"
        )
    return value


@dataclasses.dataclass
class _OpenRun:
    """What has been seen of the run whose summary has not been printed yet."""

    first_line: int | None = None
    stats: list[dict[str, str]] = dataclasses.field(default_factory=list)


def _summary_run(message: str, line_number: int, open_run: _OpenRun) -> BenchmarkRun:
    match = _CURRENT_SUMMARY.search(message)
    if match:
        init, first, warmup, avg = match.groups()
        first_us = _number(first, "First inference", line_number, message)
    else:
        match = _OLD_SUMMARY.search(message)
        if not match:
            raise BenchmarkLogError(
                f"line {line_number}: incomplete timing summary (truncated log?): {message!r}"
            )
        warmup, init, avg = match.groups()
        first_us = None
    avg_us = _number(avg, "Inference avg", line_number, message)
    if avg_us == 0:  # benchmark_model prints integer microseconds: no run takes 0
        raise BenchmarkLogError(
            f"line {line_number}: Inference avg is 0 us, which is no timing (the rule: a run "
            f"must take > 0 us; a 0 means the timer did not run): {message!r}"
        )
    median_us = std_us = None
    # The warm-up and the timed runs each print a stats line; the summary repeats the timed
    # runs' avg with the same formatting, which tells the two apart whatever else was logged.
    for stats in reversed(open_run.stats):
        if _float_or_none(stats.get("avg")) == avg_us:
            if "median" in stats:
                median_us = _number(stats["median"], "median", line_number, message)
            if "std" in stats:
                std_us = _number(stats["std"], "std", line_number, message)
            break
    return BenchmarkRun(
        inference_avg_us=avg_us,
        init_us=_number(init, "Init", line_number, message),
        first_inference_us=first_us,
        warmup_avg_us=_number(warmup, "Warmup avg", line_number, message),
        median_us=median_us,
        std_us=std_us,
    )


def _float_or_none(token: str | None) -> float | None:
    try:
        return float(token)
    except (TypeError, ValueError):
        return None


def parse_benchmark_log(text: str) -> tuple[BenchmarkRun, ...]:
    """Returns one `BenchmarkRun` per timing summary in `text`, in order.

    Raises:
      BenchmarkLogError: the log reports a failure (`Benchmarking failed.`, an `ERROR:` line or
        an error-priority logcat line), has no complete timing summary, or ends inside a run.
      TypeError: `text` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"benchmark log must be a str, got {type(text).__name__}")
    runs: list[BenchmarkRun] = []
    open_run = _OpenRun()
    previous = ""
    last = (0, "")
    for line_number, raw in enumerate(text.splitlines(), start=1):
        is_error, message = _strip_prefixes(raw.strip())
        if not message:
            continue
        if "Benchmarking failed" in message:
            cause = f" after {previous!r}" if previous else ""
            raise BenchmarkLogError(
                f"line {line_number}: benchmark_model failed{cause}: {message!r}"
            )
        if is_error or message.startswith("ERROR:"):
            raise BenchmarkLogError(
                f"line {line_number}: benchmark_model logged an error: {raw.strip()!r}"
            )
        previous = message
        last = (line_number, message)
        if _SUMMARY_START.search(message):
            runs.append(_summary_run(message, line_number, open_run))
            open_run = _OpenRun()
            continue
        if _STATS.match(message):
            open_run.stats.append(dict(_STATS_FIELD.findall(message)))
        memory = _MEMORY.search(message)
        if memory and runs and open_run.first_line is None and runs[-1].memory_mb is None:
            overall = _number(memory.group(2), "memory overall", line_number, message)
            runs[-1] = dataclasses.replace(runs[-1], memory_mb=overall)
        if open_run.first_line is None and (_STATS.match(message) or _RUN_STARTED.search(message)):
            open_run.first_line = line_number
    if not runs:
        if not last[1]:
            raise BenchmarkLogError("the benchmark log is empty")
        raise BenchmarkLogError(
            "no complete timing summary ('Inference timings in us: ...') in the log; "
            f"it ends at line {last[0]}: {last[1]!r}"
        )
    if open_run.first_line is not None:
        raise BenchmarkLogError(
            f"run {len(runs) + 1} starts at line {open_run.first_line} but has no timing summary; "
            f"the log ends at line {last[0]}: {last[1]!r} (truncated, or the run crashed)"
        )
    return tuple(runs)


_TABLE_COLUMNS = (
    ("inference avg (us)", "inference_avg_us"),
    ("median (us)", "median_us"),
    ("std (us)", "std_us"),
    ("init (us)", "init_us"),
    ("first (us)", "first_inference_us"),
    ("warmup avg (us)", "warmup_avg_us"),
    ("memory (MB)", "memory_mb"),
)


def format_runs_table(runs: tuple[BenchmarkRun, ...]) -> str:
    """Returns a fixed-width text table of `runs`, one row per run, `-` where not printed."""
    header = ["run"] + [title for title, _ in _TABLE_COLUMNS]
    rows = [header]
    for index, run in enumerate(runs, start=1):
        cells = [str(index)]
        for _, name in _TABLE_COLUMNS:
            value = getattr(run, name)
            cells.append("-" if value is None else format(value, ".10g"))
        rows.append(cells)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
