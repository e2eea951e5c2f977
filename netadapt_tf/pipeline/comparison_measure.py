"""What the demo's comparison measures per network besides training: host latency on LiteRT
and the accuracy read from the super-network (tools/measure_comparison.py).

Latency: every network's arch is converted once to float32 TFLite (the same converter as
the search's host metric and the latency table) and timed with the same settings, in
`rounds` rounds that each visit every network in a shuffled order; a network's latency is
its fastest round median. Interleaving spreads the slow spells of a shared machine over all
networks instead of biasing the ones timed during them, and another process can only add
time, so the fastest round is the one it disturbed least: in the demo run of 2026-12-02
(15:47 UTC) uniform width 0.125 measured 0.155, 0.150, 0.155, 0.085 and 0.085 ms in its five
rounds while width 0.25 measured 0.102-0.129 ms, so the median of the rounds (the figure
until then) put the narrower network 35% above the wider one. Latency depends on
the arch only, so one figure serves both training columns.

Read accuracy: the search's judge (held_out_accuracy with the search's recorded
EvalSettings: the same held-out images, batch and BN recalibration), so the column says
what the search believed of each network.
"""

import dataclasses
import pathlib

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.metrics.host import HostSettings, time_tflite
from netadapt_tf.metrics.subnet_tflite import SubnetConverter
from netadapt_tf.search.held_out_accuracy import EvalSettings
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec


@dataclasses.dataclass(frozen=True, kw_only=True)
class Measured:
    """One network: host latency (the fastest round's median, and each round's median, in
    ms) and the accuracy the search's judge reads for it."""

    name: str
    host_ms: float
    rounds_ms: tuple[float, ...]
    read_accuracy: float

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "rounds_ms": list(self.rounds_ms)}

    @classmethod
    def from_json(cls, data, field: str) -> "Measured":
        sj.obj(data, field, ("name", "host_ms", "rounds_ms", "read_accuracy"))
        rounds = sj.array(
            data["rounds_ms"], f"{field}.rounds_ms", lambda v, f: sj.number(v, f, 0), 1
        )
        return cls(
            name=sj.string(data["name"], f"{field}.name"),
            host_ms=sj.number(data["host_ms"], f"{field}.host_ms", minimum=0),
            rounds_ms=tuple(rounds),
            read_accuracy=sj.number(data["read_accuracy"], f"{field}.read_accuracy", 0, 1),
        )


def host_latencies(
    spec: NetworkSpec, archs: dict[str, Arch], settings: HostSettings, rounds: int, seed: int
) -> dict[str, tuple[float, tuple[float, ...]]]:
    """name -> (the fastest round median, the round medians), in ms."""
    if rounds < 1:
        raise ValueError(f"rounds: {rounds} must be >= 1")
    converter = SubnetConverter(spec, "float32")
    models = {name: converter.tflite(arch) for name, arch in archs.items()}
    rng = np.random.default_rng(seed)
    timed: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            name = names[int(i)]
            timed[name].append(time_tflite(models[name], settings).latency_ms)
    return {name: (min(ms), tuple(ms)) for name, ms in timed.items()}


def search_eval_settings(search_json) -> EvalSettings:
    """The EvalSettings a search recorded in its search.json (accuracy.settings)."""

    def parse(data) -> EvalSettings:
        sj.mapping(data, "search")
        accuracy = sj.mapping(sj.obj(data, "search", ("accuracy",), data)["accuracy"], "accuracy")
        sj.obj(accuracy, "accuracy", ("settings",), accuracy)
        return sj.dataclass_record(accuracy["settings"], "accuracy.settings", EvalSettings)

    return sj.read(search_json, parse)


def write_measured(path, settings: dict, networks) -> pathlib.Path:
    data = {"settings": settings, "networks": [m.to_json() for m in networks]}
    return atomic_files.write_json(path, data)


def _parse_measured(data) -> dict[str, Measured]:
    sj.obj(data, "measured.json", ("settings", "networks"))
    sj.mapping(data["settings"], "settings")
    found = sj.array(data["networks"], "networks", Measured.from_json)
    return {m.name: m for m in found}


def read_measured(path) -> dict[str, Measured]:
    return sj.read(path, _parse_measured)
