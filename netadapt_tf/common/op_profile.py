"""CPU time per TensorFlow op, read from a profiler trace (`tf.profiler.experimental`).

A trace directory holds `plugins/profile/<run>/<host>.xplane.pb`, an XSpace. On the host
plane every executor thread (`tf_Compute/...` lines, and the collective threads) records
one event per op it ran, named `<op name>:<op type>`; framework events (`ExecutorState::
Process`, `ThreadpoolListener::...`) have `::` in their names and are not ops, nor is the
`EagerLocalExecute: __inference_...` event around a whole function call. Summing op
events over threads gives CPU time, so two threads running ops side by side count twice:
that is the cost a step puts on the machine, which is what a comparison of variants needs.

`op_seconds` returns that CPU time by op type and by layer part (`layer_part`: `bn`,
`bypass`, `conv`, ...), and how much of it is backward (`gradient_tape/` ops), so that two
traces of the same number of steps can be subtracted.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import re

_TRAILING_INDEX = re.compile(r"_\d+$")


@dataclasses.dataclass(frozen=True)
class OpTimes:
    """Seconds of CPU time in one trace: `by_type[op_type]`, `by_part[part]`, `total`,
    `backward` (the part of total spent in gradient ops) and `ops` (events counted)."""

    by_type: dict[str, float]
    by_part: dict[str, float]
    total: float
    backward: float
    ops: int

    def per_step(self, steps: int) -> OpTimes:
        if steps < 1:
            raise ValueError(f"steps: {steps} must be >= 1")
        return OpTimes(
            {k: v / steps for k, v in self.by_type.items()},
            {k: v / steps for k, v in self.by_part.items()},
            self.total / steps,
            self.backward / steps,
            self.ops // steps,
        )


def trace_file(logdir: str | pathlib.Path) -> pathlib.Path:
    """The one `*.xplane.pb` under `logdir` (a trace of one profiler session)."""
    found = sorted(pathlib.Path(logdir).glob("plugins/profile/*/*.xplane.pb"))
    if len(found) != 1:
        raise ValueError(
            f"trace directory {logdir}: {len(found)} *.xplane.pb files under "
            "plugins/profile/; expected exactly one (one profiler session per directory)"
        )
    return found[0]


# The sublayers of a super-network layer (supernet/network.SuperLayer) and the parts of a
# plain model's layer names (graphs/subnet_graph: f"{layer}__{part}").
SUPER_PARTS = ("conv", "depthwise", "bn", "act", "bypass", "ordered_dropout", "se", "dense")
PLAIN_PARTS = (
    *("conv", "bn", "act", "dense", "bypass", "bypass_pool", "inputs", "concat", "flatten"),
    *("squeeze", "excite", "gate", "scale", "pool", "add", "add_x", "add_y", "add_rest"),
)


def layer_part(op_name: str) -> str:
    """The layer part an op belongs to, without Keras's `_N` suffixes: a super-network's
    sublayer (`replica_1/supernet_1/block2__depthwise_1/bn_1/Sub` -> `bn`) or a plain
    model's layer part (`model_1/block2__depthwise__conv_1/depthwise` -> `conv`); `other`
    for ops outside a layer (optimizer, loss, input)."""
    segments = [_TRAILING_INDEX.sub("", s) for s in op_name.split("/")][:-1]
    for segment in segments:
        if "__" in segment and segment.rsplit("__", 1)[1] in PLAIN_PARTS:
            return segment.rsplit("__", 1)[1]
    for segment in segments:
        if segment in SUPER_PARTS:
            return segment
    return "other"


def op_seconds(logdir: str | pathlib.Path) -> OpTimes:
    """CPU time per op type and layer part over every thread of the host plane."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(trace_file(logdir).read_bytes())
    hosts = [plane for plane in space.planes if plane.name == "/host:CPU"]
    if not hosts:
        raise ValueError(f"trace {trace_file(logdir)}: no /host:CPU plane")
    by_type: dict[str, float] = collections.defaultdict(float)
    by_part: dict[str, float] = collections.defaultdict(float)
    total = backward = 0.0
    ops = 0
    for plane in hosts:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if "::" in name or name.count(":") != 1 or " " in name:
                    continue  # framework events, and the function call around the ops
                op_name, op_type = name.split(":")
                seconds = event.duration_ps * 1e-12
                by_type[op_type] += seconds
                by_part[layer_part(op_name)] += seconds
                total += seconds
                ops += 1
                if op_name.startswith("gradient_tape/"):
                    backward += seconds
    if ops == 0:
        raise ValueError(f"trace {trace_file(logdir)}: no op events on the host plane")
    return OpTimes(dict(by_type), dict(by_part), total, backward, ops)


def compare(base: OpTimes, other: OpTimes, top: int = 8) -> dict:
    """What `other` spends over `base` (both per step): the total difference and the op
    types and layer parts that differ most, largest first, in milliseconds."""

    def diff(a: dict, b: dict) -> list:
        keys = set(a) | set(b)
        rows = [(k, (b.get(k, 0.0) - a.get(k, 0.0)) * 1e3) for k in keys]
        rows.sort(key=lambda row: -abs(row[1]))
        return [[k, round(ms, 2)] for k, ms in rows[:top]]

    return {
        "extra_ms": round((other.total - base.total) * 1e3, 2),
        "by_type": diff(base.by_type, other.by_type),
        "by_part": diff(base.by_part, other.by_part),
    }
