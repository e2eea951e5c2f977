"""Tests of the data pipeline: sources, the held-out split and its record, and bad input.

Every source is tested on data the test makes: IDX files written here, PNG folders written
here, and the real TFDS loaders run on tfds.testing.mock_data examples.
"""

import gzip
import json
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from netadapt_tf import data
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.data import fashion_mnist, held_out, idx, synthetic


def config(name="synthetic", **fields):
    defaults = dict(image_size=16, channels=3, batch_size=8, held_out=40, synthetic_examples=200)
    return data.DataConfig(name=name, **{**defaults, **fields})


def arrays(ds):
    """(images, labels) of a whole unbatched dataset, as numpy arrays."""
    images, labels = [], []
    for x, y in ds.batch(256).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def rows(images):
    """The set of images, as bytes of their uint8 pixels (float [0, 1] ones are scaled back)."""
    if images.dtype != np.uint8:
        images = np.round(images * 255).astype(np.uint8)
    return {image.tobytes() for image in images}


# --- DataConfig and other bad input -------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"name": "mnist"},
            "DataConfig.name: unknown dataset 'mnist'; allowed: synthetic, fashion_mnist, "
            "cifar10, imagenet2012, nyu_depth_v2, procedural_depth, tfds:NAME, image_folder:PATH",
        ),
        ({"name": "tfds:"}, "DataConfig.name: 'tfds:' lacks the part after ':'"),
        ({"batch_size": 0}, "DataConfig.batch_size: 0 is not a positive integer"),
        ({"image_size": -32}, "DataConfig.image_size: -32 is not a positive integer"),
        ({"channels": 2}, "DataConfig.channels: 2 is not one of (1, 3)"),
        ({"held_out": -1}, "DataConfig.held_out: -1 is negative; a count must be >= 0"),
        ({"held_out": 1.5}, "DataConfig.held_out: 1.5 is not a fraction in [0, 1)"),
        ({"held_out_seed": -1}, "DataConfig.held_out_seed: -1 is not an integer in [0, 2**63)"),
        ({"fit": "stretch"}, "DataConfig.fit: 'stretch' is not one of ('auto', 'pad', "),
        ({"synthetic_classes": 1}, "DataConfig.synthetic_classes: 1 is not an integer >= 2"),
    ],
)
def test_config_rejects_bad_fields(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config(**fields)


def test_config_type_errors_and_json():
    with pytest.raises(TypeError, match=re.escape("DataConfig.held_out: '10' is neither")):
        config(held_out="10")
    with pytest.raises(TypeError, match=re.escape("DataConfig.augment: 1 is not a bool")):
        config(augment=1)
    with pytest.raises(TypeError, match=re.escape("load: config is a dict, not a DataConfig")):
        data.load({"name": "synthetic"})
    with pytest.raises(TypeError, match=re.escape("DataConfig.name: 3 is not a string")):
        config(name=3)
    with pytest.raises(TypeError, match=re.escape("DataConfig.data_dir: 5 is not a path or None")):
        config(data_dir=5)
    # A directory is read only by a dataset of files (a generated one refuses it).
    as_json = config(name="fashion_mnist", data_dir=pathlib.Path("/x")).to_json()
    assert as_json["data_dir"] == "/x" and as_json["held_out"] == 40
    json.dumps(as_json)


def test_held_out_must_leave_training_examples():
    message = (
        "DataConfig.held_out: 200 leaves no training examples: synthetic:200x16x16x3/10 has "
        "200 training examples and held_out must keep fewer than that"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(config(held_out=200))
    with pytest.raises(ValueError, match="held_out: 0.9999 leaves no training examples"):
        data.load(config(held_out=0.9999))


def test_batched():
    ds = tf.data.Dataset.range(10)
    assert [len(b) for b in data.batched(ds, 4, training=True)] == [4, 4]
    assert [len(b) for b in data.batched(ds, 4, training=False)] == [4, 4, 2]
    shuffled = data.batched(ds, 10, training=True, shuffle_buffer=10, seed=3)
    again = data.batched(ds, 10, training=True, shuffle_buffer=10, seed=3)
    first = next(iter(shuffled)).numpy()
    assert sorted(first) == list(range(10)) and list(first) != list(range(10))
    assert list(first) == list(next(iter(again)).numpy())
    with pytest.raises(ValueError, match=re.escape("batched: batch_size 0 is not a positive")):
        data.batched(ds, 0, training=True)
    with pytest.raises(ValueError, match=re.escape("batched: shuffle_buffer -1 is negative")):
        data.batched(ds, 2, training=True, shuffle_buffer=-1)
    with pytest.raises(TypeError, match=re.escape("batched: shuffle_buffer '2' is not an integer")):
        data.batched(ds, 2, training=True, shuffle_buffer="2")


# --- synthetic ----------------------------------------------------------------------------


def test_synthetic_shapes_and_counts():
    d = data.load(config(channels=1, held_out=0.25))
    assert (d.num_train, d.num_held_out, d.num_validation) == (150, 50, 40)
    assert d.image_shape == (16, 16, 1) and d.num_classes == 10 and d.task == "classification"
    for ds, count in ((d.train, 150), (d.held_out, 50), (d.validation, 40)):
        assert ds.element_spec[0] == tf.TensorSpec((16, 16, 1), tf.float32)
        assert ds.element_spec[1] == tf.TensorSpec((), tf.int32)
        images, labels = arrays(ds)
        assert len(labels) == count and images.min() >= 0.0 and images.max() <= 1.0
        assert set(labels) <= set(range(10))
    batch = next(iter(data.batched(d.train, 8, training=True)))
    assert batch[0].shape == (8, 16, 16, 1)


def test_synthetic_is_deterministic():
    a, b = data.load(config()), data.load(config())
    for name in ("train", "held_out", "validation"):
        np.testing.assert_array_equal(arrays(getattr(a, name))[0], arrays(getattr(b, name))[0])
    other = data.load(config(shuffle_seed=1))
    assert not np.array_equal(arrays(a.train)[1], arrays(other.train)[1])
    plain = data.load(config(augment=False))
    assert not np.array_equal(arrays(a.train)[0], arrays(plain.train)[0])
    # The training order and augmentation change from one pass to the next.
    first, second = arrays(a.train.repeat(2).take(320))[0][:160], arrays(a.train.repeat(2))[0][160:]
    assert not np.array_equal(first, second)


def test_training_set_per_epoch_is_fixed():
    d = data.load(config(held_out=100))
    first = arrays(d.train_for_epoch(3))
    np.testing.assert_array_equal(arrays(d.train_for_epoch(3))[0], first[0])
    ds = d.train_for_epoch(3)
    np.testing.assert_array_equal(arrays(ds)[0], arrays(ds)[0])  # Every pass, the same.
    np.testing.assert_array_equal(
        arrays(data.load(config(held_out=100)).train_for_epoch(3))[0], first[0]
    )
    assert not np.array_equal(arrays(d.train_for_epoch(4))[1], first[1])
    assert sorted(first[1]) == sorted(arrays(d.train_for_epoch(0))[1])
    with pytest.raises(ValueError, match="train_for_epoch: epoch -1 is not an integer >= 0"):
        d.train_for_epoch(-1)


def test_synthetic_classes_are_learnable():
    d = data.load(config(augment=False, synthetic_examples=400, held_out=100))
    images, labels = arrays(d.train)
    means = np.stack([images[labels == k].mean(axis=0) for k in range(10)])
    gaps = [np.abs(means[i] - means[j]).mean() for i in range(10) for j in range(i)]
    assert min(gaps) > 0.05  # The pixel noise averages out; the class patterns do not.
    test_images, test_labels = arrays(d.held_out)
    distances = ((test_images[:, None] - means[None]) ** 2).sum(axis=(2, 3, 4))
    assert (distances.argmin(axis=1) == test_labels).mean() > 0.9
    patterns = synthetic.class_patterns(16, 3, 10)
    assert patterns.shape == (10, 16, 16, 3) and len(rows(patterns)) == 10


# --- the held-out split -------------------------------------------------------------------


def test_held_out_indices_are_pinned():
    # Pinned: a change would move examples between held-out and training sets.
    assert held_out.held_out_indices(100, 5, 0).tolist() == [7, 14, 45, 52, 95]
    assert held_out.held_out_indices(100, 5, 1).tolist() == [4, 5, 15, 40, 81]
    ids = [str(i) for i in held_out.held_out_indices(1000, 10, 0)]
    assert held_out.fingerprint(ids) == (
        "a2293fa89369daa6806c0d53cbd4b18227088ce30a63b762479226102bb363ea"
    )
    assert len(held_out.held_out_indices(1000, 0, 0)) == 0


def test_held_out_split_is_disjoint_and_deterministic():
    d = data.load(config(augment=False))
    train, held = rows(arrays(d.train)[0]), rows(arrays(d.held_out)[0])
    assert len(train) == 160 and len(held) == 40 and not train & held
    pool, _ = synthetic.generate(200, 16, 3, 10, synthetic.TRAIN_SEED)
    assert train | held == rows(pool)
    again = data.load(config(augment=False, shuffle_seed=5))
    assert again.split == d.split and rows(arrays(again.held_out)[0]) == held
    other = data.load(config(held_out_seed=1))
    assert other.split.fingerprint != d.split.fingerprint
    assert rows(arrays(other.held_out)[0]) != held
    assert d.split.to_json() == {
        "format": "netadapt_tf.held_out_split/1",
        "dataset": "synthetic:200x16x16x3/10",
        "seed": 0,
        "num_examples": 200,
        "num_held_out": 40,
        "num_train": 160,
        "fingerprint": d.split.fingerprint,
    }
    assert data.HeldOutSplit.from_json(d.split.to_json()) == d.split
    nothing = data.load(config(held_out=0))
    assert nothing.num_held_out == 0 and len(list(nothing.held_out)) == 0


def test_split_record_write_check(tmp_path):
    split = data.load(config()).split
    work = tmp_path / "work"
    with pytest.raises(ValueError, match="held_out_split.json does not exist; a work directory"):
        data.check_split(work, split)
    path = data.write_split(work, split)
    assert [p.name for p in work.iterdir()] == ["held_out_split.json"]
    data.check_split(work, split)
    assert data.read_split(work) == split and data.record_split(work, split) == path
    other = data.load(config(held_out_seed=1)).split
    message = (
        "was made with a different held-out split: seed 0 (this run: 1), "
        f"fingerprint '{split.fingerprint}'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        data.check_split(work, other)
    with pytest.raises(ValueError, match="Training on would mix held-out images into training"):
        data.record_split(work, other)
    data.record_split(tmp_path / "fresh", other)
    data.check_split(tmp_path / "fresh", other)
    path.write_text("{")
    with pytest.raises(RecordError, match=r"held_out_split\.json: malformed JSON"):
        data.check_split(work, split)
    path.write_text(json.dumps({**split.to_json(), "format": "other/1"}))
    with pytest.raises(RecordError, match=re.escape("split.format: 'other/1' is not allowed")):
        data.check_split(work, split)
    path.write_text(json.dumps({"format": held_out.FORMAT, "seed": 0}))
    with pytest.raises(RecordError, match=re.escape("fields ['dataset', 'num_examples'")):
        data.check_split(work, split)


# --- IDX files and Fashion-MNIST ----------------------------------------------------------


def write_idx(path, array, *, gz=False, type_code=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    payload = header + array.astype(idx.DTYPES[type_code]).tobytes()
    path = pathlib.Path(f"{path}.gz" if gz else path)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_fashion(directory, *, gz=False, num_train=30, num_test=10, size=28):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    made = {}
    for split, count in (("train", num_train), ("test", num_test)):
        images = rng.integers(1, 256, size=(count, size, size), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        write_idx(directory / fashion_mnist.FILES[f"{split}_images"], images, gz=gz)
        write_idx(directory / fashion_mnist.FILES[f"{split}_labels"], labels, gz=gz)
        made[split] = (images, labels)
    return made


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_data_dir(tmp_path, gz):
    made = write_fashion(tmp_path, gz=gz)
    d = data.load(
        config("fashion_mnist", data_dir=tmp_path, image_size=32, held_out=6, augment=False)
    )
    assert (d.num_train, d.num_held_out, d.num_validation, d.num_classes) == (24, 6, 10, 10)
    images, labels = arrays(d.validation)
    assert images.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(labels, made["test"][1])
    # 28 -> 32 by zero padding: every pixel exact, repeated into 3 channels, a 2-pixel border.
    expected = made["test"][0].astype(np.float32) / 255
    for c in range(3):
        np.testing.assert_array_equal(images[:, 2:30, 2:30, c], expected)
    assert not images[:, :2].any() and not images[:, 30:].any() and not images[:, :, :2].any()
    held, _ = arrays(d.held_out)
    chosen = held_out.held_out_indices(30, 6, 0)
    np.testing.assert_array_equal(
        held[:, 2:30, 2:30, 0], made["train"][0][chosen] / np.float32(255)
    )


def test_fashion_mnist_default_places(tmp_path, monkeypatch):
    """The real files' names, format and shapes, in the places searched without data_dir."""
    keras_home, system = tmp_path / "keras", tmp_path / "system"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", system)
    fm_config = config("fashion_mnist", image_size=28, channels=1, held_out=0.1)
    message = (
        f"searched {keras_home}/datasets/fashion-mnist (does not exist); {system} (does not "
        "exist). Get them with `apt-get install dataset-fashion-mnist`"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(fm_config)
    with pytest.raises(ValueError, match=re.escape("keras.datasets.fashion_mnist.load_data()")):
        data.load(fm_config)
    write_fashion(system, gz=True, num_train=40)
    d = data.load(fm_config)
    assert (d.num_train, d.num_held_out, d.image_shape) == (36, 4, (28, 28, 1))
    write_fashion(keras_home / "datasets" / "fashion-mnist", num_train=20)
    assert data.load(fm_config).num_train == 18  # The Keras cache comes first.


def test_fashion_mnist_file_errors(tmp_path):
    write_fashion(tmp_path)
    labels_path = tmp_path / "t10k-labels-idx1-ubyte"
    labels_path.unlink()
    with pytest.raises(ValueError, match=f"searched {tmp_path} \\(lacks t10k-labels-idx1-ubyte\\)"):
        data.load(config("fashion_mnist", data_dir=tmp_path, image_size=32))
    write_idx(labels_path, np.arange(9, dtype=np.uint8))
    with pytest.raises(ValueError, match="has 10 images but .*t10k-labels-idx1-ubyte has 9 labels"):
        data.load(config("fashion_mnist", data_dir=tmp_path, image_size=32))
    write_idx(labels_path, np.full(10, 10, np.uint8))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte has label 10; labels are 0..9"):
        data.load(config("fashion_mnist", data_dir=tmp_path, image_size=32))
    write_idx(labels_path, np.arange(10), type_code=0x0C)
    with pytest.raises(
        ValueError, match="t10k-labels-idx1-ubyte must hold uint8 values, not uint8 and >i4"
    ):
        data.load(config("fashion_mnist", data_dir=tmp_path, image_size=32))
    write_fashion(tmp_path)
    write_fashion(tmp_path / "small", size=20)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / "small" / name).replace(tmp_path / name)
    with pytest.raises(ValueError, match=re.escape("training images are (20, 20) but test")):
        data.load(config("fashion_mnist", data_dir=tmp_path, image_size=32))
    write_fashion(tmp_path)
    message = (
        "DataConfig.image_size: 24 is smaller than the 28x28 images of fashion_mnist, and "
        "fit='pad' never crops"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(config("fashion_mnist", data_dir=tmp_path, image_size=24))
    cropped = data.load(
        config("fashion_mnist", data_dir=tmp_path, image_size=24, fit="resize", held_out=3)
    )
    assert cropped.validation.element_spec[0].shape == (24, 24, 3)


def test_idx_reader_errors(tmp_path):
    good = write_idx(tmp_path / "good", np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    assert idx.read_idx(good, ndim=3).tolist() == np.arange(24).reshape(2, 3, 4).tolist()
    wide = write_idx(tmp_path / "wide", np.array([1, -2, 70000]), type_code=0x0C)
    assert idx.read_idx(wide).tolist() == [1, -2, 70000]
    with pytest.raises(ValueError, match="good: has 3 dimensions, expected 1"):
        idx.read_idx(good, ndim=1)
    raw = good.read_bytes()
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ValueError, match="bad: bad magic number 01020803"):
        idx.read_idx(bad)
    bad.write_bytes(raw[:2] + b"\x07" + raw[3:])
    with pytest.raises(ValueError, match="bad: type code 0x07 is not one of 0x08"):
        idx.read_idx(bad)
    bad.write_bytes(raw[:-5])
    with pytest.raises(
        ValueError,
        match=re.escape("bad: truncated: 19 bytes of values, expected 24 for shape (2, 3, 4)"),
    ):
        idx.read_idx(bad)
    bad.write_bytes(raw + b"\x00")
    with pytest.raises(ValueError, match="bad: longer than its header says"):
        idx.read_idx(bad)
    bad.write_bytes(raw[:9])
    with pytest.raises(ValueError, match=re.escape("bad: truncated in the header (9 bytes)")):
        idx.read_idx(bad)
    bad.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="bad: 1 bytes, too short for the 4-byte magic"):
        idx.read_idx(bad)
    bad.write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(ValueError, match="bad: corrupt or truncated gzip data"):
        idx.read_idx(bad)


# --- image folders ------------------------------------------------------------------------


def write_pngs(root, counts, *, seed=0):
    """counts: {class: n}; images of mixed sizes, gray and RGB, PNG and JPEG files."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (20 + i, 24, 1 if i % 2 else 3)
            image = rng.integers(0, 256, size=shape, dtype=np.uint8)
            if i == 2:
                (root / name / f"{i}.JPG").write_bytes(tf.io.encode_jpeg(image).numpy())
            else:
                (root / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    (root / next(iter(counts)) / "notes.txt").write_text("not an image")


def test_image_folder_with_a_further_validation_split(tmp_path):
    write_pngs(tmp_path / "train", {"cat": 6, "dog": 4})
    d = data.load(config(f"image_folder:{tmp_path / 'train'}", held_out=2))
    assert (d.num_train, d.num_held_out, d.num_validation, d.num_classes) == (7, 2, 1, 2)
    root = (tmp_path / "train").resolve()
    assert d.split.dataset == f"image_folder:{root} (validation 1 of 10 images)"
    for ds, count in ((d.train, 7), (d.held_out, 2), (d.validation, 1)):
        images, labels = arrays(ds)
        assert images.shape == (count, 16, 16, 3) and set(labels) <= {0, 1}
    assert data.load(config(f"image_folder:{tmp_path / 'train'}", held_out=2)).split == d.split
    other_seed = data.load(config(f"image_folder:{root}", held_out=2, held_out_seed=1))
    assert other_seed.split.fingerprint != d.split.fingerprint
    # The fingerprint covers the file names: the same indices under new names differ.
    for png in root.glob("*/*.*"):
        png.rename(png.with_name(f"x{png.name}"))
    renamed = data.load(config(f"image_folder:{root}", held_out=2))
    assert renamed.split.num_held_out == 2 and renamed.split.fingerprint != d.split.fingerprint


def test_image_folder_with_val_sibling(tmp_path):
    write_pngs(tmp_path / "train", {"a": 3, "b": 3, "c": 2})
    write_pngs(tmp_path / "val", {"a": 1, "c": 2}, seed=1)
    d = data.load(config(f"image_folder:{tmp_path / 'train'}", held_out=0.25, channels=1))
    assert (d.num_train, d.num_held_out, d.num_validation) == (6, 2, 3)
    images, labels = arrays(d.validation)
    assert images.shape == (3, 16, 16, 1) and labels.tolist() == [0, 2, 2]
    write_pngs(tmp_path / "val", {"zebra": 1})
    with pytest.raises(ValueError, match=re.escape("has classes ['zebra'] that the training")):
        data.load(config(f"image_folder:{tmp_path / 'train'}", held_out=1))


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match=f"image_folder: {tmp_path / 'none'} is not a directory"):
        data.load(config(f"image_folder:{tmp_path / 'none'}"))
    write_pngs(tmp_path / "one", {"only": 2})
    with pytest.raises(ValueError, match=re.escape("has 1 class sub-directories (['only'])")):
        data.load(config(f"image_folder:{tmp_path / 'one'}"))
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(ValueError, match="has no .png/.jpg/.jpeg images"):
        data.load(config(f"image_folder:{tmp_path / 'empty'}"))
    write_pngs(tmp_path / "single", {"a": 1})
    (tmp_path / "single" / "b").mkdir()
    with pytest.raises(ValueError, match="single has 1 image; a validation split needs 2"):
        data.load(config(f"image_folder:{tmp_path / 'single'}"))
    write_pngs(tmp_path / "two", {"a": 2, "b": 2})
    with pytest.raises(ValueError, match="'pad' needs images of one known size, but image_fold"):
        data.load(config(f"image_folder:{tmp_path / 'two'}", fit="pad", held_out=1))


# --- TFDS, through tfds.testing.mock_data -------------------------------------------------


def test_cifar10_through_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        d = data.load(config("cifar10", data_dir=tmp_path, image_size=32, held_out=3))
        plain = data.load(
            config("cifar10", data_dir=tmp_path, image_size=32, held_out=3, augment=False)
        )
        assert (d.num_train, d.num_held_out, d.num_validation, d.num_classes) == (9, 3, 12, 10)
        assert d.split.dataset == (
            "tfds:cifar10/3.0.2 (train split, shard files in order, interleave 16x16)"
        )
        train, held = arrays(plain.train), arrays(d.held_out)
        assert train[0].shape == (9, 32, 32, 3) and held[0].shape == (3, 32, 32, 3)
        assert not rows(train[0]) & rows(held[0])
        assert len(rows(train[0]) | rows(held[0])) == 12
        assert arrays(d.train)[0].shape == (9, 32, 32, 3)
        assert arrays(d.held_out)[1].tolist() == held[1].tolist()
        with pytest.raises(ValueError, match="24 is smaller than the 32x32 images of cifar10"):
            data.load(config("cifar10", data_dir=tmp_path, image_size=24, held_out=3))


def test_imagenet_through_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        d = data.load(config("imagenet2012", data_dir=tmp_path, image_size=24, held_out=2))
        assert (d.num_train, d.num_held_out, d.num_validation, d.num_classes) == (4, 2, 6, 1000)
        for ds, count in ((d.train, 4), (d.held_out, 2), (d.validation, 6)):
            images, labels = arrays(ds)
            assert images.shape == (count, 24, 24, 3) and images.dtype == np.float32
            assert images.min() >= 0.0 and images.max() <= 1.0 and labels.max() < 1000
        centred = config("imagenet2012", data_dir=tmp_path, fit="crop_or_pad", held_out=2)
        assert arrays(data.load(centred).train)[0].shape == (4, 16, 16, 3)
        gray = data.load(config("imagenet2012", data_dir=tmp_path, channels=1, held_out=2))
        assert arrays(gray.train)[0].shape == (4, 16, 16, 1)
        with pytest.raises(ValueError, match="'pad' needs images of one known size, but imagen"):
            data.load(config("imagenet2012", data_dir=tmp_path, fit="pad", held_out=2))


def test_nyu_depth_through_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=3):
        d = data.load(config("nyu_depth_v2", data_dir=tmp_path, image_size=24, held_out=1))
        assert (d.task, d.num_classes, d.num_train, d.num_held_out) == ("depth", None, 2, 1)
        for ds in (d.train, d.held_out, d.validation):
            image, depth = next(iter(ds))
            assert image.shape == (24, 24, 3) and depth.shape == (24, 24, 1)
            assert depth.dtype == tf.float32
        with pytest.raises(ValueError, match="'pad' does not apply to the depth set nyu_depth"):
            data.load(config("nyu_depth_v2", data_dir=tmp_path, image_size=24, fit="pad"))


def test_other_tfds_dataset(tmp_path):
    with tfds.testing.mock_data(num_examples=5):
        d = data.load(config("tfds:mnist", data_dir=tmp_path, image_size=32, held_out=1))
        images, _ = arrays(d.held_out)
        assert images.shape == (1, 32, 32, 3) and not images[:, :2].any()
        assert d.split.dataset.startswith("tfds:mnist/3.0.1 (train split")
        with pytest.raises(
            ValueError,
            match=re.escape("speech_commands: features ['audio', 'label'] lack an 'image'"),
        ):
            data.load(config("tfds:speech_commands", data_dir=tmp_path, held_out=1))


def test_tfds_missing_and_unknown(tmp_path):
    message = f"cifar10: not prepared in {tmp_path} and downloads are off; prepare it once"
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(config("cifar10", data_dir=tmp_path))
    with pytest.raises(ValueError, match="put ILSVRC2012_img_train.tar and ILSVRC2012_img_val"):
        data.load(config("imagenet2012", data_dir=tmp_path))
    with pytest.raises(ValueError, match="DataConfig.name: TFDS has no dataset 'no_such_set'"):
        data.load(config("tfds:no_such_set", data_dir=tmp_path))
