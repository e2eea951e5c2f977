"""A synthetic search: the tiny MobileNetV1, its MACs as the resource, a deterministic
accuracy, a small MCD config, and a search driver on them that logs and plots nothing."""

import functools

from netadapt_tf import builders
from netadapt_tf.search import MCDConfig, SearchDriver
from netadapt_tf.space import macs

SPEC = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)
_FILTERS = {layer.name: layer.filters for layer in SPEC.layers()}
# Pointwise layers matter three times more than the others, later layers more than early.
_PREFERENCE = {
    name: (3.0 if "pointwise" in name else 1.0) * (1 + i % 4) for i, name in enumerate(_FILTERS)
}


@functools.cache
def resource(arch) -> float:
    return float(macs.count(SPEC, arch).macs)


def accuracy(arch) -> float:
    """Deterministic: the preference-weighted share of filters kept."""
    return round(sum(_PREFERENCE[c.name] * c.width / _FILTERS[c.name] for c in arch.choices), 9)


def small_config(**fields) -> MCDConfig:
    base = dict(
        samples_per_iteration=4,
        layers_per_sample=3,
        initial_reduction=0.15,
        decay=0.8,
        target_fraction=0.5,
        seed=3,
    )
    return MCDConfig(**{**base, **fields})


# tools/search.py flags of a small search of SPEC (the demo preset recalibrates BN on 2
# batches of 96 images; these judge at batch 16).
SMALL_SEARCH_FLAGS = (
    "--samples_per_iteration=4",
    "--layers_per_sample=3",
    "--initial_reduction=0.2",
    "--decay=0.8",
    "--eval_batch_size=16",
)

RESOURCE = {"metric": "macs", "counter": "netadapt_tf.macs/1", "spec": SPEC.fingerprint()}


def make_driver(workdir, config=None, judge=accuracy, spec=SPEC, **options):
    """A driver of the synthetic search in `workdir`; `options` override its settings."""
    settings = dict(
        resource_fingerprint=RESOURCE,
        accuracy_fingerprint={"judge": "synthetic/1"},
        log=lambda line: None,
        plot=False,
        tensorboard=False,
    )
    return SearchDriver(
        spec, config or small_config(), judge, resource, workdir, **{**settings, **options}
    )
