"""The judge benchmark's pieces: rank statistics, the MCD-made arch sets, the reports, the
stand-alone trainer and its cache."""

import numpy as np
import pytest
import scipy.stats
from training_helpers import shallow_spec, tiny_data

from netadapt_tf import builders
from netadapt_tf.pipeline import judge_quality as jq
from netadapt_tf.search.mcd import MCDConfig
from netadapt_tf.search.units import search_units
from netadapt_tf.space.arch import full_arch

SEARCH = MCDConfig(
    samples_per_iteration=1,
    layers_per_sample=4,
    initial_reduction=0.1,
    decay=0.9,
    target_fraction=0.5,
)


def _spec():
    return builders.build(
        "mobilenet_v1",
        input_size=16,
        num_classes=4,
        width_multiplier=0.25,
        dropout=0.0,
        tie_depthwise=True,
    )


@pytest.mark.parametrize("seed", range(4))
def test_rank_statistics_agree_with_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, 14).astype(float)  # ties on purpose
    b = a + rng.normal(0, 2, 14)
    b[:3] = b[0]
    assert jq.kendall_tau(a, b) == pytest.approx(scipy.stats.kendalltau(a, b).statistic)
    assert jq.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_the_span_set_follows_shrink_paths_down_to_the_stop():
    spec = _spec()
    archs = jq.span_set(spec, SEARCH, 8, 2, 0.1, seed=3)
    fraction = jq.mac_fraction(spec)
    macs = [fraction(a) for a in archs]
    assert archs[0] == full_arch(spec) and len(set(archs)) == 8
    levels = np.geomspace(1, 0.1, 8)
    # Each arch lies near its level (the path's nearest arch; MCD steps are about 10%).
    assert np.all(np.abs(np.log(np.asarray(macs) / levels)) < 0.35), macs
    # Archs come from MCD's own moves: only search units' layers differ from the full net.
    units = {name for u in search_units(spec) for name in u.layers}
    for arch in archs[1:]:
        changed = {c.name for c in arch.choices if c != full_arch(spec).choice(c.name)}
        assert changed and changed <= units
    # Two paths: consecutive archs alternate between them, so they are not nested shrinks.
    path0 = jq.shrink_path(spec, SEARCH, 0.1, 3)
    path1 = jq.shrink_path(spec, SEARCH, 0.1, 4)
    assert archs[1] in path0 and archs[2] in path1 and path0 != path1


def test_the_decision_set_is_one_iteration_from_one_parent():
    spec = _spec()
    parent, candidates = jq.decision_set(spec, SEARCH, 0.7, 6, seed=1)
    fraction = jq.mac_fraction(spec)
    assert 0.6 < fraction(parent) <= 0.7
    assert len(set(candidates)) == 6
    targets = {round(fraction(parent) - fraction(c), 2) for c in candidates}
    assert all(fraction(c) < fraction(parent) for c in candidates)
    assert max(targets) - min(targets) < 0.05  # one target, overshot a little at most
    walk = jq.shrink_path(spec, SEARCH, 0.7, 1)
    assert walk[-1] == parent


def test_reports_count_in_points_against_the_seed_mean():
    standalone = np.array([[0.80, 0.78, 0.70, 0.60], [0.82, 0.76, 0.72, 0.62]])
    report = jq.rank_report([0.79, 0.70, 0.71, 0.50], standalone, [1.0, 0.5, 0.3, 0.1])
    assert report["ceiling_tau"] == 1.0 and report["macs_tau"] == 1.0
    assert report["tau"] == pytest.approx(4 / 6)
    assert report["read_gap"] == pytest.approx((2 + 7) / 2)  # archs at >= 40% of the MACs
    decision = jq.decision_report([0.5, 0.9, 0.1, 0.2], standalone)
    assert decision["regret"] == pytest.approx(81 - 77)
    assert decision["random_regret"] == pytest.approx(81 - np.mean([81, 77, 71, 61]))
    with pytest.raises(ValueError, match="needs at least 2 seeds"):
        jq.seed_ceiling(standalone[:1])


def test_a_network_trained_alone_learns_and_its_accuracy_is_cached(tmp_path):
    spec = shallow_spec()
    pairs = list(tiny_data(512, seed=1).as_numpy_iterator())
    images = np.stack([x for x, _ in pairs])
    labels = np.array([y for _, y in pairs])
    arrays = (images[:384], labels[:384], images[384:], labels[384:])
    schedule = jq.StandaloneSchedule(steps=100, batch_size=32, learning_rate=1e-2)
    accuracy = jq.train_standalone(spec, full_arch(spec), schedule, arrays, seed=0)
    assert accuracy > 0.6, accuracy  # 4 classes: chance is 0.25
    assert jq.train_standalone(spec, full_arch(spec), schedule, arrays, seed=0) == accuracy
    cache = jq.StandaloneCache(str(tmp_path / "cache.json"))
    key = cache.key(spec, full_arch(spec), schedule, {"data": "tiny"}, 0)
    assert key != cache.key(spec, full_arch(spec), schedule, {"data": "tiny"}, 1)
    cache.put(key, accuracy)
    assert jq.StandaloneCache(str(tmp_path / "cache.json")).get(key) == accuracy
    with pytest.raises(ValueError, match=r"StandaloneSchedule\.steps: 0 must be an int >= 1"):
        jq.StandaloneSchedule(steps=0)
