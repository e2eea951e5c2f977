"""What the search records: the start, every sample and every iteration, as JSON-able values.

These records are the lines of a work directory's history.jsonl (see driver.py) and what a
resumed search is rebuilt from, so each one round-trips through JSON exactly (floats are
written with repr precision by json).
"""

import dataclasses

from netadapt_tf.common import strict_json as sj
from netadapt_tf.space.arch import Arch

STATUSES = ("ok", "failed", "infeasible")


def _arch_json(arch: Arch | None):
    return None if arch is None else arch.to_json()


def _number_or_none(value, field: str):
    return sj.optional(sj.number, value, field)


def _count(value, field: str) -> int:
    return sj.integer(value, field, minimum=0)


def _constructed(cls, field: str, **fields):
    """cls(**fields), its own checks' errors as RecordErrors naming `field`."""
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise sj.RecordError(f"{field}: {error}") from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampleRecord:
    """One sample of one iteration.

    status "ok": `arch` meets the iteration's target and has `accuracy` and `resource`.
    "failed": making or judging it raised on every attempt (`error` holds the last error).
    "infeasible": no draw met the target (the chosen units bottomed out `draws` times).
    `units` are the search units shrunk, in the round-robin order (empty for the random
    sampler); `attempts` counts evaluation attempts (the retry policy).
    """

    iteration: int
    index: int
    status: str
    arch: Arch | None = None
    accuracy: float | None = None
    resource: float | None = None
    units: tuple[str, ...] = ()
    draws: int = 0
    attempts: int = 0
    error: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"sample.status: {self.status!r} is not one of {STATUSES}")
        object.__setattr__(self, "units", tuple(self.units))
        if self.ok and (self.arch is None or self.accuracy is None or self.resource is None):
            raise ValueError(
                f"sample {self.iteration}/{self.index}: status 'ok' needs an arch, an accuracy "
                "and a resource"
            )

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return {
            "iteration": self.iteration,
            "index": self.index,
            "status": self.status,
            "accuracy": self.accuracy,
            "resource": self.resource,
            "units": list(self.units),
            "draws": self.draws,
            "attempts": self.attempts,
            "error": self.error,
            "arch": _arch_json(self.arch),
        }

    @classmethod
    def from_json(cls, data: dict, field: str = "sample") -> "SampleRecord":
        """The record of a JSON object; RecordError naming the field and the value."""
        names = [f.name for f in dataclasses.fields(cls)]
        sj.obj(data, field, names)
        return _constructed(
            cls,
            field,
            iteration=_count(data["iteration"], f"{field}.iteration"),
            index=_count(data["index"], f"{field}.index"),
            status=sj.string(data["status"], f"{field}.status", STATUSES),
            arch=sj.optional(Arch.from_json, data["arch"], f"{field}.arch"),
            accuracy=_number_or_none(data["accuracy"], f"{field}.accuracy"),
            resource=_number_or_none(data["resource"], f"{field}.resource"),
            units=tuple(sj.array(data["units"], f"{field}.units", sj.string)),
            draws=_count(data["draws"], f"{field}.draws"),
            attempts=_count(data["attempts"], f"{field}.attempts"),
            error=sj.optional(sj.string, data["error"], f"{field}.error", empty=True),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class IterationRecord:
    """Iteration `iteration`: it targets `target` = max(previous_resource - reduction, the
    final target), made `samples`, and kept sample `chosen` (an index into `samples`)."""

    iteration: int
    previous_resource: float
    reduction: float
    target: float
    samples: tuple[SampleRecord, ...]
    chosen: int

    def __post_init__(self):
        object.__setattr__(self, "samples", tuple(self.samples))
        if not 0 <= self.chosen < len(self.samples) or not self.samples[self.chosen].ok:
            raise ValueError(
                f"iteration {self.iteration}: chosen sample {self.chosen} is not an 'ok' sample "
                f"of the {len(self.samples)} samples"
            )

    @property
    def best(self) -> SampleRecord:
        return self.samples[self.chosen]

    def count(self, status: str) -> int:
        return sum(s.status == status for s in self.samples)

    def to_json(self) -> dict:
        return {
            "kind": "iteration",
            "iteration": self.iteration,
            "previous_resource": self.previous_resource,
            "reduction": self.reduction,
            "target": self.target,
            "chosen": self.chosen,
            "best": {"accuracy": self.best.accuracy, "resource": self.best.resource},
            "samples": [s.to_json() for s in self.samples],
        }

    @classmethod
    def from_json(cls, data: dict, field: str = "iteration") -> "IterationRecord":
        """The record of a JSON object; RecordError naming the field and the value."""
        keys = ("iteration", "previous_resource", "reduction", "target", "chosen", "samples")
        sj.obj(data, field, ("kind", *keys, "best"))
        sj.constant(data["kind"], f"{field}.kind", "iteration")
        samples = sj.array(data["samples"], f"{field}.samples", SampleRecord.from_json, 1)
        record = _constructed(
            cls,
            field,
            iteration=_count(data["iteration"], f"{field}.iteration"),
            previous_resource=sj.number(data["previous_resource"], f"{field}.previous_resource"),
            reduction=sj.number(data["reduction"], f"{field}.reduction"),
            target=sj.number(data["target"], f"{field}.target"),
            chosen=_count(data["chosen"], f"{field}.chosen"),
            samples=tuple(samples),
        )
        best = {"accuracy": record.best.accuracy, "resource": record.best.resource}
        if not sj.same(data["best"], best):
            raise sj.fail(f"{field}.best", data["best"], f"{best}, the chosen sample's numbers")
        return record


@dataclasses.dataclass(frozen=True, kw_only=True)
class InitialRecord:
    """Where the search starts: the initial arch and its numbers, the smallest sub-network's
    resource and the final target (absolute, in the metric's unit). `accuracy` is None when
    judging the initial arch failed (`accuracy_error`); that only affects reports."""

    arch: Arch
    resource: float
    accuracy: float | None
    smallest_resource: float
    final_target: float
    accuracy_error: str | None = None

    def to_json(self) -> dict:
        return {
            "kind": "initial",
            "resource": self.resource,
            "accuracy": self.accuracy,
            "accuracy_error": self.accuracy_error,
            "smallest_resource": self.smallest_resource,
            "final_target": self.final_target,
            "arch": self.arch.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict, field: str = "initial") -> "InitialRecord":
        """The record of a JSON object; RecordError naming the field and the value."""
        names = [f.name for f in dataclasses.fields(cls)]
        sj.obj(data, field, ("kind", *names))
        sj.constant(data["kind"], f"{field}.kind", "initial")
        return _constructed(
            cls,
            field,
            arch=Arch.from_json(data["arch"], f"{field}.arch"),
            resource=sj.number(data["resource"], f"{field}.resource"),
            accuracy=_number_or_none(data["accuracy"], f"{field}.accuracy"),
            smallest_resource=sj.number(data["smallest_resource"], f"{field}.smallest_resource"),
            final_target=sj.number(data["final_target"], f"{field}.final_target"),
            accuracy_error=sj.optional(
                sj.string, data["accuracy_error"], f"{field}.accuracy_error", empty=True
            ),
        )
