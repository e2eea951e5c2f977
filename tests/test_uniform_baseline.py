"""The uniformly shrunk baseline (the demo's stage runner: test_stage_runner.py)."""

import pathlib

import pytest

from netadapt_tf import builders
from netadapt_tf.discovered.uniform_baseline import uniform_arch, uniform_arch_for_resource
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch

LOG = pathlib.Path(__file__).parent / "fixtures" / "benchmark_model" / "info_prefix_cpu_and_gpu.txt"
SPEC = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)


def _macs(arch):
    return macs.count(SPEC, arch).macs


def test_uniform_arch_keeps_the_smallest_width_at_least_the_ratio():
    assert uniform_arch(SPEC, 1.0) == full_arch(SPEC)
    half = uniform_arch(SPEC, 0.5).as_dict()
    for layer in SPEC.layers():
        width = half[layer.name].width
        assert width in layer.widths and width >= 0.5 * layer.widths[-1]
        smaller = [w for w in layer.widths if w < width]
        assert not smaller or smaller[-1] < 0.5 * layer.widths[-1]
    # Every ratio above 0 keeps every layer.
    assert all(c.width > 0 for c in uniform_arch(SPEC, 0.01).choices)
    with pytest.raises(ValueError, match=r"ratio: 0 must be in \(0, 1\]"):
        uniform_arch(SPEC, 0)


def test_the_largest_uniform_shrink_within_a_target():
    full = _macs(full_arch(SPEC))
    found = uniform_arch_for_resource(SPEC, _macs, 0.5 * full)
    assert found.resource == _macs(found.arch) <= 0.5 * full
    # The next allowed widths up would break the target.
    assert _macs(uniform_arch(SPEC, min(1.0, found.ratio + 1 / 8))) > 0.5 * full
    assert uniform_arch_for_resource(SPEC, _macs, 2 * full).ratio == 1.0
    with pytest.raises(ValueError, match=r"target: 1 is below what any uniform shrink reaches"):
        uniform_arch_for_resource(SPEC, _macs, 1)
    with pytest.raises(ValueError, match=r"target: -1 must be a positive number"):
        uniform_arch_for_resource(SPEC, _macs, -1)
