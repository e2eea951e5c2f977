"""How well the per-layer latency lookup table predicts measured whole-network latency.

For each case, builds (or reuses: building resumes) the table of a super-network on the host
backend (float32 TFLite, 1 thread) or a phone (--backend=adb or android_app, docs/on_device.md;
--table checks a table built before, e.g. the one a search will use), then measures the
networks the project makes with a table (netadapt_tf/pipeline/table_check.py): the uniform
width curve (10 ratios), one MCD trajectory with its candidates (guided by the table), and
random sub-networks of a seed the table's calibration does not use, and compares. Cases:
  demo   netadaptv2_mobilenet_v3, width 0.25, 32x32 input, 10 classes
  paper  netadaptv2_mobilenet_v3, width 1.0, 224x224 input, 1000 classes (the paper's
         initial network)
Each sub-network is exported and converted once (kept under --table_dir, so a rerun only
times) and timed in `--rounds` rounds interleaved over all sub-networks; its measured latency
is the median of the round medians. The table's calibration networks are timed in the same
rounds and the table is re-calibrated on them (not on the test networks), so that the
calibration sees the machine in the same state as the test; the figures with the calibration
made at build time are reported too (`build_calibration`). Reported per
case: the share of predictions within +-10% of the measurement, Spearman's rho, the mean and
largest relative error, how well the measurement agrees with itself (the share of single
rounds within +-10% of the median of the other rounds, and Spearman's rho between the
medians of the even and the odd rounds: ceilings for any predictor), and the cost of one
prediction against one measurement (export, conversion and one timing round).

  python benchmarks/latency_lut_accuracy.py [--json] [--quick] [--cases=demo,paper]
      [--num_archs=50] [--rounds=7] [--table_dir=/tmp/netadapt_latency_tables]

Per set (`sets.uniform`, `sets.trajectory`, `sets.random`, the table as stored, as the search
uses it; each network's latency the fastest of the rounds, as the demo's comparison takes
it): `median_ratio` (predicted / measured), `within_10pct`, `spearman`, and `repeatability`,
the same figures for the fastest of the even rounds against the fastest of the odd ones
(the ceiling of any predictor on this machine).

--quick: the demo case only, 12 random sub-networks, a 2-point grid, 6 calibration networks,
a shorter trajectory. --json prints one object: per case `cases.<name>` and, at the top level,
the figures of the paper case (the demo case when only it ran): `within_10pct`, `spearman`,
`n`, `predict_ms`, `measure_ms` (random set, session calibration, as before) and `sets`.
"""

import dataclasses
import json
import os
import sys
import time

import numpy as np
from absl import app, flags

from netadapt_tf import builders
from netadapt_tf.common import atomic_files, strict_json
from netadapt_tf.metrics import GridSettings, LookupTable, backend_flags, build_table, tflite
from netadapt_tf.metrics.agreement import relative_errors, share_within, spearman
from netadapt_tf.metrics.cached import arch_digest
from netadapt_tf.metrics.lookup_table import calibration_set
from netadapt_tf.pipeline import table_check

CASES = {
    "demo": {"input_size": 32, "num_classes": 10, "width_multiplier": 0.25},
    "paper": {"input_size": 224, "num_classes": 1000, "width_multiplier": 1.0},
}

backend_flags.define_backend_flags(("host", "adb", "android_app"))
# The benchmark's own defaults for two of those flags (set in main: absl validates the
# flags as soon as a default changes, before they are parsed).
_DEFAULTS = {"clock": "thread_cpu", "warmup_runs": 10}
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")
_QUICK = flags.DEFINE_bool("quick", False, "Demo case only, small grid, 12 sub-networks.")
_CASES = flags.DEFINE_list("cases", ["demo", "paper"], f"Cases to run, of {sorted(CASES)}.")
_NUM_ARCHS = flags.DEFINE_integer("num_archs", 50, "Random sub-networks per case.", lower_bound=2)
_ROUNDS = flags.DEFINE_integer("rounds", 6, "Timing rounds per sub-network.", lower_bound=1)
_TABLE = flags.DEFINE_string(
    "table", None, "Check this table (built for the one case run) instead of building one."
)
_SEED = flags.DEFINE_integer("seed", 2024, "Seed of the random sub-networks.")
_TABLE_DIR = flags.DEFINE_string(
    "table_dir", "/tmp/netadapt_latency_tables", "Where the tables are kept (and resumed)."
)
_MAX_X = flags.DEFINE_integer("max_x_points", 4, "Grid points along input channels.")


def _parse_times(data) -> dict:
    return strict_json.mapping(data, "times", lambda v, f: strict_json.number(v, f, minimum=0))


def converted(host, archs, directory: str) -> tuple[list[bytes], float]:
    """The TFLite model of each arch and the seconds one export and conversion took, kept in
    `directory` so that a rerun only times them."""
    os.makedirs(directory, exist_ok=True)
    times_path = os.path.join(directory, "convert_seconds.json")
    times = {}
    if os.path.exists(times_path):
        times = strict_json.read(times_path, _parse_times)
    models = []
    for arch in archs:
        name = f"{arch_digest(arch)[:20]}_{host.converter.quantization}"
        path = os.path.join(directory, f"{name}.tflite")
        if name not in times or not os.path.exists(path):
            start = time.perf_counter()
            tflite.write_tflite(host.converter.tflite(arch), path)
            times[name] = time.perf_counter() - start
            atomic_files.write_json(times_path, times)
        with open(path, "rb") as handle:
            models.append(handle.read())
    names = [f"{arch_digest(arch)[:20]}_{host.converter.quantization}" for arch in archs]
    return models, float(np.mean([times[n] for n in names]))


def agreement(predicted: np.ndarray, latency: np.ndarray) -> dict:
    errors = relative_errors(predicted, latency)
    return {
        "within_10pct": share_within(predicted, latency),
        "spearman": spearman(predicted, latency),
        "mean_abs_rel_error": float(np.mean(np.abs(errors))),
        "max_abs_rel_error": float(np.max(np.abs(errors))),
        "mean_rel_error": float(np.mean(errors)),
    }


def repeatability(rounds: np.ndarray) -> float | None:
    """Mean share of single rounds within +-10% of the median of the other rounds."""
    if len(rounds) < 2:
        return None
    shares = []
    for r in range(len(rounds)):
        others = np.median(np.delete(rounds, r, axis=0), axis=0)
        shares.append(share_within(rounds[r], others))
    return float(np.mean(shares))


def split_half_spearman(rounds: np.ndarray) -> float | None:
    """Spearman's rho between the medians of the even and the odd rounds: how well the
    measurement agrees with itself on the order of the networks."""
    if len(rounds) < 2:
        return None
    return spearman(np.median(rounds[0::2], axis=0), np.median(rounds[1::2], axis=0))


def _table(name: str, spec, backend, grid: GridSettings) -> tuple[LookupTable, str]:
    """--table (checked against this spec and backend), or the case's table built (or
    resumed) in --table_dir."""
    if _TABLE.value:
        return LookupTable.load(_TABLE.value, spec, backend.fingerprint()), _TABLE.value
    os.makedirs(_TABLE_DIR.value, exist_ok=True)
    measured_by = backend.settings.clock if flags.FLAGS.backend == "host" else flags.FLAGS.backend
    path = os.path.join(
        _TABLE_DIR.value, f"{name}_{spec.fingerprint()}_x{grid.max_x_points}_{measured_by}.json"
    )
    table = build_table(
        spec, backend, path, grid, progress=lambda m: print(f"[{name}] {m}", file=sys.stderr)
    )
    return table, path


def run_case(name: str, grid: GridSettings, num_archs: int, check: table_check.CheckSettings):
    spec = builders.build("netadaptv2_mobilenet_v3", **CASES[name])
    backend = backend_flags.latency_metric_from_flags(spec)
    table, path = _table(name, spec, backend, grid)
    check = dataclasses.replace(check, num_random=num_archs, random_seed=_SEED.value)
    reference = calibration_set(spec, table.grid)
    models_dir = os.path.join(_TABLE_DIR.value, f"models_{spec.fingerprint()}")
    convert_s = []

    def convert(archs):
        models, seconds = converted(backend, archs, models_dir)
        convert_s.append(seconds)
        return models

    # Every network (the three sets and the table's calibration networks) is timed in the
    # same interleaved rounds, so that the re-calibration below sees the machine as the test.
    start = time.perf_counter()
    found = table_check.check_table(
        table,
        backend,
        check,
        _ROUNDS.value,
        convert,
        [(f"cal_{i}", a) for i, a in enumerate(reference)],
    )
    total_s = time.perf_counter() - start
    random = found["sets"]["random"]
    archs = table_check.random_set(spec, num_archs, _SEED.value)
    latency = np.array(random["measured_ms"])
    start = time.perf_counter()
    predicted = np.array([table.predict(arch) for _, arch in archs])
    predict_ms = 1000 * (time.perf_counter() - start) / num_archs
    build_fit = table.calibration["fit"]
    # Session calibration: refit on the calibration networks timed with the test (not
    # saved), the figures the benchmark reported before the sets (random archs only).
    table.calibrate(reference, found["extra"]["measured_ms"])
    session = np.array([table.predict(arch) for _, arch in archs])
    random_rounds = np.array(random["rounds_ms"])
    timed = sum(len(f["names"]) for f in found["sets"].values()) + len(reference)
    return {
        "model": "netadaptv2_mobilenet_v3",
        "options": CASES[name],
        "table": path,
        "table_entries": table.num_entries,
        "table_build_s": table.build_seconds,
        "grid": table.grid.to_json(),
        "n": num_archs,
        **agreement(session, latency),
        "calibration": "session: the table's calibration networks re-timed with the test",
        "calibration_fit": table.calibration["fit"],
        "build_calibration": {**agreement(predicted, latency), "calibration_fit": build_fit},
        "measurement_repeatability_10pct": repeatability(random_rounds),
        "measurement_split_half_spearman": split_half_spearman(random_rounds),
        "measured_ms": {
            "min": float(latency.min()),
            "median": float(np.median(latency)),
            "max": float(latency.max()),
        },
        "sets": found["sets"],
        "check": found["settings"],
        "rounds": found["rounds"],
        "predict_ms": predict_ms,
        "measure_ms": 1000 * (float(np.mean(convert_s)) + total_s / _ROUNDS.value / timed),
        "convert_ms": 1000 * float(np.mean(convert_s)),
        "backend": backend.fingerprint(),
    }


def _print_case(name: str, r: dict) -> None:
    built = r["table_build_s"] / 60
    print(f"\n== {name}: {r['options']} ({r['table_entries']} entries, built in {built:.1f} min)")
    print(f"within +-10%      {100 * r['within_10pct']:.0f}% of {r['n']}")
    print(f"Spearman rho      {r['spearman']:.3f}")
    mean, largest = 100 * r["mean_abs_rel_error"], 100 * r["max_abs_rel_error"]
    print(f"mean |error|      {mean:.1f}% (max {largest:.1f}%)")
    rep = r["measurement_repeatability_10pct"]
    if rep is not None:
        print(f"measurement repeatability (single round within +-10%): {100 * rep:.0f}%")
        half = r["measurement_split_half_spearman"]
        print(f"measurement split-half Spearman rho: {half:.3f}")
    print(f"one prediction    {r['predict_ms']:.3f} ms; one measurement {r['measure_ms']:.0f} ms")
    print("per set, the table as stored against the fastest of the rounds (repeatability):")
    print("set          n  median ratio  within 10%  Spearman")
    for set_name, f in r["sets"].items():
        rep = f["repeatability"] or {}

        def show(key, form, f=f, rep=rep):
            mine = form.format(f[key]) if f[key] is not None else "-"
            return f"{mine} ({form.format(rep[key]) if rep.get(key) is not None else '-'})"

        print(
            f"{set_name:<11}{f['n']:>3}  {show('median_ratio', '{:.3f}')}  "
            f"{show('within_10pct', '{:.0%}')}  {show('spearman', '{:.3f}')}"
        )


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    unknown = sorted(set(_CASES.value) - set(CASES))
    if unknown:
        raise app.UsageError(f"--cases: unknown {unknown}; allowed are {sorted(CASES)}")
    for name, value in _DEFAULTS.items():
        if not flags.FLAGS[name].present:
            flags.FLAGS[name].value = value
    cases = ["demo"] if _QUICK.value else _CASES.value
    if _TABLE.value and len(cases) != 1:
        raise app.UsageError(f"--table: checks one case's table; --cases names {cases}")
    num_archs = 12 if _QUICK.value else _NUM_ARCHS.value
    check = table_check.CheckSettings()
    if _QUICK.value:
        grid = GridSettings(max_x_points=2, calibration_archs=6)
        check = dataclasses.replace(check, max_iterations=4)
    else:
        grid = GridSettings(max_x_points=_MAX_X.value)
    results = {name: run_case(name, grid, num_archs, check) for name in cases}
    headline = results.get("paper", results.get("demo"))
    summary = {
        key: headline[key]
        for key in ("within_10pct", "spearman", "n", "predict_ms", "measure_ms", "sets")
    }
    if _JSON.value:
        print(json.dumps({**summary, "cases": results}, indent=1))
    else:
        for name, r in results.items():
            _print_case(name, r)
    return 0


if __name__ == "__main__":
    app.run(main)
