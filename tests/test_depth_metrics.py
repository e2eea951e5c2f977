"""Tests of the depth task's loss and metrics against values computed by hand, and of
tools/evaluate_depth.py run as a program."""

import json
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from netadapt_tf import depth
from netadapt_tf.depth import metrics as depth_metrics

REPO = pathlib.Path(__file__).resolve().parent.parent

# One image: five valid pixels and one unmeasured (0) whose prediction must not count.
GROUND_TRUTH = np.array([[1.0, 2.0, 4.0], [5.0, 3.0, 0.0]], np.float32)
PREDICTION = np.array([[1.2, 2.0, 3.0], [9.0, -3.0, 7.0]], np.float32)
# By hand, over the five valid pixels:
#   errors 0.2, 0, -1, 4, -6: squares sum to 0.04 + 0 + 1 + 16 + 36 = 53.04
#   ratios max(p/g, g/p): 1.2, 1, 4/3, 1.8, and -3 (negative: never within a threshold)
#   relative errors 0.2, 0, 0.25, 0.8, 2: sum 3.25
EXPECTED = {
    "rmse": math.sqrt(53.04 / 5),
    "delta1": 2 / 5,  # 1.2, 1 < 1.25
    "delta2": 3 / 5,  # and 4/3 < 1.5625
    "delta3": 4 / 5,  # and 1.8 < 1.953125
    "abs_rel": 3.25 / 5,
}


def _metrics(prediction, ground_truth):
    values, pixels = depth.per_image_metrics(prediction, ground_truth)
    return dict(zip(depth.METRIC_NAMES, np.asarray(values).T, strict=True)), np.asarray(pixels)


def test_metrics_of_one_image_by_hand():
    values, pixels = _metrics(PREDICTION[None, ..., None], GROUND_TRUTH[None, ..., None])
    assert pixels.tolist() == [5]
    for name, expected in EXPECTED.items():
        assert values[name][0] == pytest.approx(expected, rel=1e-6), name


def test_metrics_inside_a_graph_match_eager():
    graph = tf.function(depth.per_image_metrics)
    values, pixels = graph(tf.constant(PREDICTION[None]), tf.constant(GROUND_TRUTH[None]))
    assert np.asarray(pixels).tolist() == [5]
    expected = [EXPECTED[name] for name in depth.METRIC_NAMES]
    np.testing.assert_allclose(np.asarray(values)[0], expected, rtol=1e-6)


def test_metrics_average_per_image_and_skip_images_without_depth():
    exact = np.full((2, 2), 2.5, np.float32)  # a perfect prediction of a 4-pixel image
    batch_gt = np.zeros((3, 2, 3), np.float32)
    batch_pred = np.ones((3, 2, 3), np.float32)
    batch_gt[0], batch_pred[0] = GROUND_TRUTH, PREDICTION
    batch_gt[1, :, :2] = batch_pred[1, :, :2] = exact  # its third column is unmeasured
    # batch_gt[2] is all 0: no valid pixel, left out of the average.
    accumulator = depth.MetricsAccumulator()
    accumulator.add(batch_pred[:2], batch_gt[:2])
    accumulator.add(batch_pred[2:], batch_gt[2:])
    result = accumulator.result()
    assert (result.num_images, result.num_skipped) == (2, 1)
    # Per image, then averaged (pooling the 9 pixels would weigh the images 5:4).
    assert result.rmse == pytest.approx(EXPECTED["rmse"] / 2, rel=1e-6)
    assert result.delta1 == pytest.approx((0.4 + 1.0) / 2)
    assert result.delta2 == pytest.approx((0.6 + 1.0) / 2)
    assert result.delta3 == pytest.approx((0.8 + 1.0) / 2)
    assert result.abs_rel == pytest.approx(0.65 / 2, rel=1e-6)
    assert set(result.values()) == {"rmse", "delta1", "delta2", "delta3", "abs_rel"}


def test_evaluate_runs_a_predictor_over_batches():
    images = np.stack([GROUND_TRUTH, 2 * GROUND_TRUTH])[..., None]
    batches = tf.data.Dataset.from_tensor_slices((images, images)).batch(1)
    # Predicting 1.1 x the truth: rmse per image = 0.1 * sqrt(mean(g^2)), abs_rel 0.1.
    result = depth.evaluate(lambda x: 1.1 * x, batches)
    root_mean_square = math.sqrt((1 + 4 + 16 + 25 + 9) / 5)
    assert result.rmse == pytest.approx(0.1 * root_mean_square * 1.5, rel=1e-5)
    assert result.abs_rel == pytest.approx(0.1, rel=1e-5)
    assert (result.delta1, result.delta2, result.delta3) == (1.0, 1.0, 1.0)


def test_metric_errors():
    with pytest.raises(ValueError, match=re.escape("prediction shape (1, 2, 3) differs from")):
        depth.per_image_metrics(PREDICTION[None], GROUND_TRUTH[None, :1])
    with pytest.raises(ValueError, match="none of the 1 images has a valid pixel"):
        accumulator = depth.MetricsAccumulator()
        accumulator.add(np.ones((1, 2, 2)), np.zeros((1, 2, 2)))
        accumulator.result()


def test_compare_maps_aligns_leading_axes_and_checks_input():
    result = depth.compare_maps(PREDICTION[None, None], GROUND_TRUTH)
    assert result.values() == pytest.approx(EXPECTED, rel=1e-6)
    assert depth.compare_maps(PREDICTION[None, ..., None], GROUND_TRUTH[..., None]).values() == (
        pytest.approx(EXPECTED, rel=1e-6)
    )
    names = ("--prediction", "--ground_truth")
    cases = [
        (PREDICTION.T, GROUND_TRUTH, "--prediction: shape (3, 2) does not match --ground_truth "),
        (PREDICTION[None, None].repeat(2, 0), GROUND_TRUTH, "--prediction: shape (2, 1, 2, 3)"),
        (PREDICTION[0], GROUND_TRUTH, "--prediction: shape (3,) does not match"),
        (PREDICTION[0], GROUND_TRUTH[0], "--ground_truth: shape (3,) is not a depth map"),
        (PREDICTION, np.zeros_like(GROUND_TRUTH), "--ground_truth: none of its 6 pixels"),
        (np.full_like(PREDICTION, np.nan), GROUND_TRUTH, "--prediction: has NaN or infinite"),
    ]
    for prediction, ground_truth, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            depth.compare_maps(prediction, ground_truth, names)
    with pytest.raises(TypeError, match=re.escape("--ground_truth: dtype <U1 is not a real")):
        depth.compare_maps(PREDICTION, np.array([["a"]]), names)


def test_masked_l1_by_hand_and_its_gradient():
    # Valid pixels' absolute errors 0.2, 0, 1, 4, 6 -> 11.2 / 5; the unmeasured pixel's 7
    # counts for nothing.
    prediction = tf.Variable(PREDICTION[None, ..., None])
    with tf.GradientTape() as tape:
        loss = depth.masked_l1(GROUND_TRUTH[None, ..., None], prediction)
    assert float(loss) == pytest.approx(11.2 / 5, rel=1e-6)
    gradient = tape.gradient(loss, prediction).numpy()[0, ..., 0]
    np.testing.assert_allclose(gradient, [[0.2, 0.0, -0.2], [0.2, -0.2, 0.0]], atol=1e-7)
    # Pooled over the batch's valid pixels: (11.2 + 4 * 1) / 9, not an average per image.
    batch_gt = np.stack([GROUND_TRUTH, np.array([[1, 1, 1], [1, 0, 0]], np.float32)])
    batch_pred = np.stack([PREDICTION, np.array([[2, 0, 2], [0, 5, 5]], np.float32)])
    assert float(depth.masked_l1(batch_gt, batch_pred)) == pytest.approx(15.2 / 9, rel=1e-6)
    assert float(depth.masked_l1(np.zeros((1, 2, 2)), np.ones((1, 2, 2)))) == 0.0
    with pytest.raises(ValueError, match=re.escape("masked_l1: prediction shape (1, 3, 2)")):
        depth.masked_l1(GROUND_TRUTH[None], PREDICTION.T[None])


# --- tools/evaluate_depth.py, as a program ----------------------------------------------


def _run_tool(*args) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "evaluate_depth.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_evaluate_depth_tool(tmp_path):
    prediction, ground_truth = tmp_path / "p.npy", tmp_path / "g.npy"
    np.save(prediction, PREDICTION[None, ..., None])  # a network's [1, H, W, 1] output
    np.save(ground_truth, GROUND_TRUTH[..., None])
    done = _run_tool(f"--prediction={prediction}", f"--ground_truth={ground_truth}", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert list(printed) == ["rmse", "delta1", "delta2", "delta3", "abs_rel"]
    assert printed == pytest.approx(EXPECTED, rel=1e-7)  # the inputs are float32
    # Compared in float64, so fractions print as themselves (0.4, not 0.4000000059604645).
    assert (printed["delta1"], printed["delta2"], printed["delta3"]) == (0.4, 0.6, 0.8)

    np.save(ground_truth, GROUND_TRUTH[:, :2])
    done = _run_tool(f"--prediction={prediction}", f"--ground_truth={ground_truth}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "evaluate_depth: --prediction: shape (1, 2, 3, 1) does not match --ground_truth shape "
        "(2, 2); allowed: the same shape, optionally with extra leading axes of size 1 on the "
        "prediction"
    )


def test_nan_ground_truth_is_no_measurement_and_said_so():
    ground_truth = GROUND_TRUTH.copy()
    ground_truth[0, 0] = np.nan  # of the five valid pixels: four left, and one 0
    assert depth_metrics.pixel_rule(ground_truth, "--ground_truth") == (
        "--ground_truth: metrics over its 4 pixels > 0; 1 at <= 0 and 1 NaN are no "
        "measurement and are left out"
    )
    nan_left_out = depth_metrics.compare_maps(PREDICTION, ground_truth)
    without = GROUND_TRUTH.copy()
    without[0, 0] = 0.0
    assert nan_left_out == depth_metrics.compare_maps(PREDICTION, without)


@pytest.mark.slow  # two TensorFlow processes
def test_evaluate_depth_states_the_nan_rule_and_refuses_an_empty_file(tmp_path):
    prediction, ground_truth = tmp_path / "p.npy", tmp_path / "g.npy"
    np.save(prediction, PREDICTION)
    with_nan = GROUND_TRUTH.astype(np.float64).copy()
    with_nan[0, 0] = np.nan
    np.save(ground_truth, with_nan)
    done = _run_tool(f"--prediction={prediction}", f"--ground_truth={ground_truth}", "--json")
    assert done.returncode == 0, done.stderr
    assert "1 NaN are no measurement and are left out" in done.stderr
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    done = _run_tool(f"--prediction={prediction}", f"--ground_truth={empty}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"evaluate_depth: --ground_truth: cannot read {empty} as a numpy array")
    )
