"""Sub-networks ("archs"): a search space with every choice made.

An `Arch` names the super-network it belongs to (name and fingerprint of its NetworkSpec)
and holds one `LayerChoice` (width, kernel size) per layer, in network order. It is what the
search samples, what the exporter builds and what the tools read and write as JSON.
"""

import dataclasses
import json
import os

import numpy as np

from netadapt_tf.spec import NetworkSpec

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
    def from_json(cls, d: dict) -> "Arch":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"arch: format {got!r} is not {FORMAT!r}")
        for key in ("space", "fingerprint", "layers"):
            if key not in d:
                raise ValueError(f"arch: missing field {key!r}")
        if not isinstance(d["layers"], dict):
            raise ValueError(f"arch.layers: expected an object, got {d['layers']!r}")
        choices = []
        for name, c in d["layers"].items():
            if not isinstance(c, dict) or set(c) != {"width", "kernel_size"}:
                raise ValueError(
                    f"arch.layers[{name!r}]: {c!r} must be an object with exactly "
                    "'width' and 'kernel_size'"
                )
            for key in ("width", "kernel_size"):
                if isinstance(c[key], bool) or not isinstance(c[key], int):
                    raise ValueError(f"{name}.{key}: {c[key]!r} is not an integer")
            choices.append(LayerChoice(name, c["width"], c["kernel_size"]))
        return cls(space=d["space"], fingerprint=d["fingerprint"], choices=tuple(choices))


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


def _make(spec: NetworkSpec, pick) -> Arch:
    choices = tuple(LayerChoice(layer.name, *pick(layer)) for layer in spec.layers())
    return Arch(space=spec.name, fingerprint=spec.fingerprint(), choices=choices)


def full_arch(spec: NetworkSpec) -> Arch:
    """The initial network: every layer at its full width and kernel."""
    return _make(spec, lambda layer: (layer.widths[-1], layer.kernel_sizes[-1]))


def smallest_arch(spec: NetworkSpec) -> Arch:
    """Every layer at its smallest allowed width and kernel."""
    return _make(spec, lambda layer: (layer.widths[0], layer.kernel_sizes[0]))


def random_arch(spec: NetworkSpec, rng: np.random.Generator) -> Arch:
    """Each layer's width and kernel size drawn uniformly from its allowed values."""

    def pick(layer):
        return int(rng.choice(layer.widths)), int(rng.choice(layer.kernel_sizes))

    return _make(spec, pick)


def save_arch(arch: Arch, path: str) -> None:
    """Writes the arch as JSON through a temporary file, so a crash leaves no half file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(arch.to_json(), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def load_arch(path: str, spec: NetworkSpec | None = None) -> Arch:
    """Reads an arch JSON file; with `spec`, also checks that it belongs to that space."""
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read the arch file ({e.strerror or e})") from None
    try:
        arch = Arch.from_json(data)
        if spec is not None:
            validate_arch(spec, arch)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return arch
