"""Sub-networks ("archs"): a search space with every choice made.

An `Arch` names the super-network it belongs to (name and fingerprint of its NetworkSpec)
and holds one `LayerChoice` (width, kernel size) per layer, in network order. It is what the
search samples, what the exporter builds and what the tools read and write as JSON.
"""

import dataclasses
import os

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.space.spec import NetworkSpec

FORMAT = "netadapt_tf.arch/1"


@dataclasses.dataclass(frozen=True)
class LayerChoice:
    name: str
    width: int
    kernel_size: int


@dataclasses.dataclass(frozen=True)
class Arch:
    space: str
    fingerprint: str
    choices: tuple[LayerChoice, ...]

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(self.choices))

    def choice(self, name: str) -> LayerChoice:
        for c in self.choices:
            if c.name == name:
                return c
        raise KeyError(f"arch has no layer named {name!r}")

    def as_dict(self) -> dict[str, LayerChoice]:
        return {c.name: c for c in self.choices}

    def with_choices(self, changes: dict[str, dict]) -> "Arch":
        """A copy with some layers changed: arch.with_choices({"conv1": {"width": 8}})."""
        unknown = set(changes) - {c.name for c in self.choices}
        if unknown:
            raise KeyError(f"arch has no layers named {sorted(unknown)}")
        choices = tuple(
            dataclasses.replace(c, **changes[c.name]) if c.name in changes else c
            for c in self.choices
        )
        return dataclasses.replace(self, choices=choices)

    def with_layer(self, name: str, **fields) -> "Arch":
        """A copy with one layer changed: arch.with_layer("block2/expansion", width=8)."""
        return self.with_choices({name: fields})

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "space": self.space,
            "fingerprint": self.fingerprint,
            "layers": {
                c.name: {"width": c.width, "kernel_size": c.kernel_size} for c in self.choices
            },
        }

    @classmethod
    def from_json(cls, d: dict, field: str = "arch") -> "Arch":
        """The arch of a JSON object (to_json's format); RecordError naming the field."""
        sj.obj(d, field, ("format", "space", "fingerprint", "layers"))
        sj.constant(d["format"], f"{field}.format", FORMAT)
        choices = []
        for name, c in sj.mapping(d["layers"], f"{field}.layers").items():
            where = f"{field}.layers[{name!r}]"
            sj.obj(c, where, ("width", "kernel_size"))
            width = sj.integer(c["width"], f"{where}.width", minimum=0)
            kernel_size = sj.integer(c["kernel_size"], f"{where}.kernel_size", minimum=1)
            choices.append(LayerChoice(name, width, kernel_size))
        return cls(
            space=sj.string(d["space"], f"{field}.space"),
            fingerprint=sj.string(d["fingerprint"], f"{field}.fingerprint"),
            choices=tuple(choices),
        )


def validate_arch(spec: NetworkSpec, arch: Arch) -> None:
    """Raises ValueError unless `arch` is a sub-network of `spec`."""
    if not isinstance(arch, Arch):
        raise TypeError(f"expected an Arch, got {type(arch).__name__}")
    if arch.space != spec.name or arch.fingerprint != spec.fingerprint():
        raise ValueError(
            f"arch: made for super-network {arch.space!r} (fingerprint {arch.fingerprint}), "
            f"not for {spec.name!r} (fingerprint {spec.fingerprint()}); sample or export it "
            "with the same builder and options"
        )
    names = [c.name for c in arch.choices]
    expected = list(spec.layer_names())
    if names != expected:
        missing = sorted(set(expected) - set(names))
        extra = sorted(set(names) - set(expected))
        raise ValueError(
            f"arch: layers do not match super-network {spec.name!r}: missing {missing}, "
            f"unknown {extra}" + ("" if missing or extra else ", order differs")
        )
    for layer, c in zip(spec.layers(), arch.choices, strict=True):
        if c.width not in layer.widths:
            raise ValueError(
                f"{layer.name}.width: {c.width} is not allowed; allowed widths are "
                f"{list(layer.widths)}"
            )
        if c.kernel_size not in layer.kernel_sizes:
            raise ValueError(
                f"{layer.name}.kernel_size: {c.kernel_size} is not allowed; allowed kernel sizes "
                f"are {list(layer.kernel_sizes)}"
            )
    choices = arch.as_dict()
    for skip in spec.skips():
        source, target = choices[skip.source].width, choices[skip.target].width
        if source != target:
            raise ValueError(
                f"{skip.name}: {skip.source}.width {source} and {skip.target}.width {target} "
                "differ; the skip ties them, so a sub-network gives both the same width"
            )


def _make(spec: NetworkSpec, pick) -> Arch:
    choices = tuple(LayerChoice(layer.name, *pick(layer)) for layer in spec.layers())
    return Arch(space=spec.name, fingerprint=spec.fingerprint(), choices=choices)


def full_arch(spec: NetworkSpec) -> Arch:
    """The initial network: every layer at its full width and kernel."""
    return _make(spec, lambda layer: (layer.widths[-1], layer.kernel_sizes[-1]))


def smallest_arch(spec: NetworkSpec) -> Arch:
    """Every layer at its smallest allowed width and kernel."""
    return _make(spec, lambda layer: (layer.widths[0], layer.kernel_sizes[0]))


def uniform_arch(spec: NetworkSpec, ratio: float) -> Arch:
    """Every layer at the smallest allowed width >= ratio x its full width (ratio in (0, 1];
    kernel sizes stay full): the initial network shrunk uniformly, the baseline the demo
    compares with and a kind of network the latency table is calibrated on."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio: {ratio} must be in (0, 1]")
    changes = {}
    for layer in spec.layers():
        floor = ratio * layer.widths[-1]
        width = next(w for w in layer.widths if w >= floor - 1e-9)
        changes[layer.name] = {"width": width}
    return full_arch(spec).with_choices(changes)


def random_arch(spec: NetworkSpec, rng: np.random.Generator) -> Arch:
    """Each layer's width and kernel size drawn uniformly from its allowed values; layers
    tied by a skip take the width drawn for the first of them."""
    drawn = {}

    def pick(layer):
        return int(rng.choice(layer.widths)), int(rng.choice(layer.kernel_sizes))

    arch = _make(spec, pick)
    choices = arch.as_dict()
    for group in spec.tie_groups():
        drawn.update({name: {"width": choices[group[0]].width} for name in group[1:]})
    return arch.with_choices(drawn) if drawn else arch


def save_arch(arch: Arch, path: str | os.PathLike) -> None:
    """Writes the arch as JSON, atomically (a kill leaves the old file or the new one)."""
    atomic_files.write_json(path, arch.to_json())


def load_arch(path: str | os.PathLike, spec: NetworkSpec | None = None) -> Arch:
    """Reads an arch JSON file; with `spec`, also checks that it belongs to that space.
    Every problem is a RecordError naming the file."""

    def parse(data) -> Arch:
        arch = Arch.from_json(data)
        if spec is not None:
            try:
                validate_arch(spec, arch)
            except ValueError as e:
                raise sj.RecordError(str(e)) from None
        return arch

    return sj.read(path, parse)
