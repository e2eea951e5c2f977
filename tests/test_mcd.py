"""The MCD optimizer on a tiny MobileNetV1 with MACs and a synthetic accuracy: targets,
the reduction schedule, the shrink rule, residual ties, samplers, failures, bad input."""

import threading

import numpy as np
import pytest
from search_helpers import SPEC, accuracy, resource, small_config

from netadapt_tf import builders
from netadapt_tf.search import (
    MCDOptimizer,
    SearchStalledError,
    StartFailedError,
    residual_streams,
    search_units,
)
from netadapt_tf.search.units import apply_move
from netadapt_tf.space.arch import full_arch, smallest_arch

FULL_MACS = 285376  # pinned: the full tiny network
SMALLEST_MACS = 12


def changed_layers(before, after) -> set[str]:
    b = before.as_dict()
    return {c.name for c in after.choices if c != b[c.name]}


def check_shrunk_only(before, after):
    b = before.as_dict()
    for c in after.choices:
        assert c.width <= b[c.name].width and c.kernel_size <= b[c.name].kernel_size


@pytest.fixture(scope="module")
def mcd_result():
    return MCDOptimizer(SPEC, small_config(), accuracy, resource).run()


def test_meets_the_target_with_decaying_reductions_and_j_samples(mcd_result):
    result = mcd_result
    initial = result.state.initial
    assert (initial.resource, initial.smallest_resource) == (FULL_MACS, SMALLEST_MACS)
    assert initial.final_target == 0.5 * FULL_MACS
    assert result.stop_reason == "target met"
    assert resource(result.arch) == result.state.best_resource <= initial.final_target
    assert 2 <= len(result.iterations) < 10
    previous = initial.resource
    for it in result.iterations:
        r = 0.15 * FULL_MACS * 0.8**it.iteration
        assert it.reduction == pytest.approx(r)
        assert it.previous_resource == previous
        assert it.target == pytest.approx(max(previous - r, initial.final_target))
        assert len(it.samples) == 4
        previous = it.best.resource
    # Every iteration but the last lowers the target by r_i; the last stops at the target.
    assert result.iterations[-1].target == initial.final_target


def test_samples_shrink_at_most_l_units_of_the_previous_best_and_the_best_is_kept(mcd_result):
    previous = mcd_result.state.initial.arch
    for it in mcd_result.iterations:
        ok = [s for s in it.samples if s.ok]
        assert ok, it
        for s in ok:
            assert s.resource == resource(s.arch) <= it.target
            assert len(s.units) <= 3
            assert changed_layers(previous, s.arch) <= set(s.units)  # units are layers here
            check_shrunk_only(previous, s.arch)
        assert it.best.accuracy == max(s.accuracy for s in ok)
        previous = it.best.arch


def test_a_small_reduction_moves_one_layer_one_notch():
    optimizer = MCDOptimizer(SPEC, small_config(), accuracy, resource)
    start = full_arch(SPEC)
    sample = optimizer.make_sample(0, 0, start, target=FULL_MACS - 1)
    (name,) = changed_layers(start, sample.arch)
    layer = SPEC.layer(name)
    assert sample.arch.choice(name).width == layer.widths[-2]
    assert sample.units[0] == name  # the first unit of the round robin


def test_round_robin_spreads_notches_evenly_over_the_chosen_units():
    optimizer = MCDOptimizer(SPEC, small_config(), accuracy, resource)
    units = [u for u in optimizer.units if u.name.endswith("pointwise")][1:4]
    start = full_arch(SPEC)
    arch, value = optimizer.shrink_to_target(
        units, start, 0.9 * FULL_MACS, np.random.default_rng(0)
    )
    assert value <= 0.9 * FULL_MACS
    notches = [
        SPEC.layer(u.name).widths.index(start.choice(u.name).width)
        - SPEC.layer(u.name).widths.index(arch.choice(u.name).width)
        for u in units
    ]
    assert min(notches) >= 1 and max(notches) - min(notches) <= 1, notches


def test_residual_streams_are_tie_groups_that_shrink_together():
    spec = builders.build(
        "netadaptv2_mobilenet_v3", input_size=32, num_classes=10, width_multiplier=0.25
    )
    streams = residual_streams(spec)
    assert streams[0] == ("block2/projection", "block3/projection")
    assert streams[1] == tuple(f"block{i}/projection" for i in (4, 5, 6, 7))
    assert len(streams) == 4
    tied, untied = search_units(spec), search_units(spec, tie_residual_streams=False)
    assert len(untied) == 71 and len(tied) == 71 - sum(len(s) - 1 for s in streams)
    unit = next(u for u in tied if u.name == "stream:block4/projection")
    arch = apply_move(spec, unit, full_arch(spec), "width")
    assert {arch.choice(n).width for n in unit.layers} == {14}  # 16 -> 14, all four
    assert search_units(SPEC) == search_units(SPEC, tie_residual_streams=False)  # no residual


def test_single_layer_sampler_is_netadapt_v1():
    config = small_config(sampler="single_layer", initial_reduction=0.02, max_iterations=1)
    optimizer = MCDOptimizer(SPEC, config, accuracy, resource)
    assert optimizer.samples_per_iteration == len(optimizer.units) == 27
    assert optimizer.layers_per_sample == 1
    result = optimizer.run()
    assert result.stop_reason == "max_iterations"
    (it,) = result.iterations
    start = result.state.initial.arch
    for unit, sample in zip(optimizer.units, it.samples, strict=True):
        assert sample.units == (unit.name,)
        if sample.ok:
            assert changed_layers(start, sample.arch) == {unit.name}
    # Layers too small to save 2% of the MACs on their own bottom out.
    assert it.count("infeasible") > 0 and it.count("ok") > 0


def test_random_sampler_draws_whole_archs_that_meet_the_final_target_at_once():
    config = small_config(sampler="random", samples_per_iteration=6)
    result = MCDOptimizer(SPEC, config, accuracy, resource).run()
    (it,) = result.iterations
    assert it.target == result.state.initial.final_target
    assert len(it.samples) == 6
    for s in it.samples:
        assert s.ok and s.units == () and s.resource <= it.target
    assert it.best.accuracy == max(s.accuracy for s in it.samples)
    assert len(changed_layers(full_arch(SPEC), result.arch)) > 10


def test_failing_samples_are_recorded_retried_and_never_chosen():
    full = full_arch(SPEC).as_dict()
    doomed = ["block12/pointwise", "block13/pointwise"]
    calls = {}

    def shrunk(arch, names):
        return any(arch.choice(n) != full[n] for n in names)

    def flaky(arch):
        calls[arch] = calls.get(arch, 0) + 1
        if shrunk(arch, doomed):
            raise RuntimeError("judge crashed")
        if shrunk(arch, ["stem", "block1/depthwise", "block2/depthwise"]) and calls[arch] == 1:
            raise OSError("transient")  # fails once, then the retry succeeds
        return accuracy(arch)

    config = small_config(max_iterations=3, layers_per_sample=6, samples_per_iteration=6)
    result = MCDOptimizer(SPEC, config, flaky, resource).run()
    samples = [s for it in result.iterations for s in it.samples]
    failed = [s for s in samples if s.status == "failed"]
    assert failed, "some sample should shrink a doomed layer"
    for s in failed:
        assert s.accuracy is None and s.attempts == 2
        assert s.error == "RuntimeError: judge crashed"
        assert shrunk(s.arch, doomed)
    assert any(s.ok and s.attempts == 2 for s in samples)
    for it in result.iterations:
        assert it.best.ok and not shrunk(it.best.arch, doomed)


def test_a_failing_resource_fails_the_sample_and_a_failing_start_is_reported():
    full = full_arch(SPEC)

    def meter(arch):
        if 0 < arch.choice("block13/pointwise").width < 256:  # not the smallest arch's 0
            raise TimeoutError("phone unplugged")
        return resource(arch)

    def unplugged(arch):
        raise TimeoutError("phone unplugged")

    config = small_config(max_iterations=2, layers_per_sample=6, samples_per_iteration=6)
    result = MCDOptimizer(SPEC, config, lambda a: 1.0 if a == full else 0.5, meter).run()
    failed = [s for it in result.iterations for s in it.samples if s.status == "failed"]
    assert failed and {(s.error, s.arch) for s in failed} == {
        ("TimeoutError: phone unplugged", None)
    }
    assert result.state.initial.accuracy == 1.0

    def judge(arch):
        raise RuntimeError("no GPU")

    initial = MCDOptimizer(SPEC, config, judge, resource).start()
    assert initial.accuracy is None
    assert (
        initial.accuracy_error
        == "accuracy of the initial arch failed 2 times: RuntimeError: no GPU"
    )
    with pytest.raises(StartFailedError, match=r"resource of the initial arch failed 2 times: Ti"):
        MCDOptimizer(SPEC, config, accuracy, unplugged).start()


def test_an_iteration_without_any_judged_sample_stops_the_search():
    def broken(arch):
        if arch != full_arch(SPEC):
            raise ValueError("no judge")
        return 1.0

    optimizer = MCDOptimizer(SPEC, small_config(max_attempts=1), broken, resource)
    with pytest.raises(SearchStalledError, match=r"iteration 0: none of the 4 samples .* 4 failed"):
        optimizer.run()


def test_the_same_seed_gives_the_same_search(mcd_result):
    again = MCDOptimizer(SPEC, small_config(), accuracy, resource).run()
    assert again.iterations == mcd_result.iterations
    other = MCDOptimizer(SPEC, small_config(seed=4, max_iterations=1), accuracy, resource).run()
    assert other.iterations[0] != mcd_result.iterations[0]


def test_bad_input_fails_before_the_search():
    def run(**fields):
        return MCDOptimizer(SPEC, small_config(**fields), accuracy, resource).start()

    with pytest.raises(ValueError, match=r"target: 10 is below what the smallest sub-network reac"):
        run(target=10.0, target_fraction=None)
    with pytest.raises(ValueError, match=r"layers_per_sample: 28 is more than the 27 search units"):
        run(layers_per_sample=28)
    with pytest.raises(ValueError, match=r"samples_per_iteration: 0 is not allowed; must be >= 1"):
        small_config(samples_per_iteration=0)
    with pytest.raises(ValueError, match=r"layers_per_sample: 0 is not allowed"):
        small_config(layers_per_sample=0)
    with pytest.raises(ValueError, match=r"target: 5.0 and target_fraction 0.5 are both set"):
        small_config(target=5.0)
    with pytest.raises(ValueError, match=r"target_fraction: 1.5 must be in \(0, 1\)"):
        small_config(target_fraction=1.5)
    with pytest.raises(ValueError, match=r"MCDConfig.target: no target"):
        run(target_fraction=None)
    with pytest.raises(ValueError, match=r"sampler: 'greedy' is not one of \('mcd'"):
        small_config(sampler="greedy")
    with pytest.raises(ValueError, match=r"initial_reduction: 3 must be a fraction"):
        small_config(initial_reduction=3)
    other = builders.build("mobilenet_v1", input_size=32, num_classes=4, width_multiplier=0.25)
    optimizer = MCDOptimizer(SPEC, small_config(), accuracy, resource)
    with pytest.raises(ValueError, match=r"arch: made for super-network 'mobilenet_v1'"):
        optimizer.start(smallest_arch(other))


def test_parallel_samples_make_the_same_search_and_measure_each_arch_once(mcd_result):
    calls = {"sequential": [], "parallel": []}
    meeting = threading.Barrier(2, timeout=120)
    met = []

    def meter(kind):
        def measure(arch):
            thread = threading.current_thread().name
            # The first two sample threads wait for each other: only parallel samples meet.
            if kind == "parallel" and thread.startswith("mcd-sample") and len(met) < 2:
                met.append(thread)
                meeting.wait()
            calls[kind].append(arch)
            return resource(arch)

        return measure

    sequential = MCDOptimizer(SPEC, small_config(), accuracy, meter("sequential")).run()
    parallel = MCDOptimizer(SPEC, small_config(), accuracy, meter("parallel"), workers=4).run()
    assert sequential.iterations == mcd_result.iterations
    assert parallel.iterations == mcd_result.iterations
    assert len(set(met)) == 2
    # The same archs, each as often: an arch two samples reach is measured once per iteration.
    assert sorted(map(str, calls["parallel"])) == sorted(map(str, calls["sequential"]))


def test_parallel_samples_share_a_failing_measurement_and_retry_it():
    failures = []

    def meter(arch):
        if 0 < arch.choice("block13/pointwise").width < 256 and len(failures) < 3:
            failures.append(arch)
            raise TimeoutError("phone unplugged")
        return resource(arch)

    config = small_config(max_iterations=2, layers_per_sample=6, samples_per_iteration=6)
    result = MCDOptimizer(SPEC, config, accuracy, meter, workers=3).run()
    assert len(failures) == 3 and len(result.iterations) == 2
    assert all(it.best.ok for it in result.iterations)
    with pytest.raises(ValueError, match="workers: 0 is not allowed"):
        MCDOptimizer(SPEC, config, accuracy, resource, workers=0)
