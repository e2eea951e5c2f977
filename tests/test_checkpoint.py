"""Super-network checkpoints: round trip, the fingerprint check and errors naming paths."""

import json
import re

import numpy as np
import pytest
from conftest import small_spec

from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.space.arch import random_arch
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import arch_inputs, build_supernet


@pytest.fixture(scope="module")
def spec():
    return small_spec("mobilenet_v1")


@pytest.fixture(scope="module")
def saved(spec, tmp_path_factory):
    model = build_supernet(spec)
    directory = checkpoint.save_supernet(model, tmp_path_factory.mktemp("ckpt") / "supernet")
    return model, directory


def _outputs(model, archs, images):
    inputs = arch_inputs(model.spec, archs)
    inputs["image"] = images
    return np.asarray(model(inputs, training=False))


def test_round_trip_gives_identical_weights_and_outputs(spec, saved):
    model, directory = saved
    assert sorted(p.name for p in directory.iterdir()) == ["spec.json", "supernet.weights.h5"]
    loaded = checkpoint.load_supernet(directory, expected_spec=spec)
    assert loaded.spec == spec
    assert len(loaded.weights) == len(model.weights)
    for mine, theirs in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs), err_msg=mine.path)
    rng = np.random.default_rng(0)
    archs = [random_arch(spec, rng) for _ in range(3)]
    images = rng.standard_normal((3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(_outputs(loaded, archs, images), _outputs(model, archs, images))


def test_other_spec_is_refused_before_building_weights(saved, monkeypatch):
    _, directory = saved
    found = checkpoint.read_spec(directory)
    other = small_spec("mobilenet_v1", input_size=64)

    def must_not_build(_):
        raise AssertionError("weights were built for a checkpoint of the wrong spec")

    monkeypatch.setattr(checkpoint, "build_supernet", must_not_build)
    with pytest.raises(ValueError) as error:
        checkpoint.load_supernet(directory, expected_spec=other)
    message = str(error.value)
    assert found.fingerprint() in message and other.fingerprint() in message
    assert "input_size (32 vs 64)" in message
    assert "Pass the builder options the checkpoint was made with" in message


def test_other_model_is_named(saved):
    _, directory = saved
    other = small_spec("mobilenet_v2")
    with pytest.raises(ValueError, match=r"'mobilenet_v1' .*'mobilenet_v2'"):
        checkpoint.load_supernet(directory, expected_spec=other)


def test_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=re.escape(f"{missing}: no such checkpoint directory")):
        checkpoint.load_supernet(missing)


def test_missing_spec_file(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "spec.json"))):
        checkpoint.load_supernet(tmp_path)


def test_malformed_spec_file(tmp_path):
    (tmp_path / "spec.json").write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'spec.json'}: malformed JSON")):
        checkpoint.load_supernet(tmp_path)


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"format": "something/else"}, "format: 'something/else' is not allowed; allowed: 'net"),
        ({"name": None}, "spec: fields ['name'] are missing; allowed: an object with fields"),
        ({"input_size": "32"}, "input_size: '32' is not allowed; allowed: an integer >= 1"),
        ({"num_classes": True}, "num_classes: True is not allowed; allowed: an integer >= 1"),
    ],
)
def test_invalid_spec_file(spec, tmp_path, change, cause):
    data = {**spec.to_json(), **change}
    data = {key: value for key, value in data.items() if value is not None}
    (tmp_path / "spec.json").write_text(json.dumps(data))
    with pytest.raises(RecordError) as error:
        checkpoint.load_supernet(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'spec.json'}: {cause}")


def test_missing_weights_file(spec, tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_json()))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'supernet.weights.h5'}: no such")):
        checkpoint.load_supernet(tmp_path)


def test_failed_write_leaves_no_temporary_file(spec, tmp_path):
    class Broken:
        def __init__(self):
            self.spec = spec

        def save_weights(self, path):
            with open(path, "w") as f:
                f.write("half a file")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_supernet(Broken(), tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
