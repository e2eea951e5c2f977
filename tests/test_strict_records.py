"""Every JSON file the package reads back, fed truncated, with a wrong type in each field,
and made for another super-network: each reader fails with strict_json.RecordError naming
the file and the field (journals drop a torn last line by design and read the rest)."""

import copy
import dataclasses
import json
import pathlib

import numpy as np
import pytest
from lookup_table_helpers import GRID, FakeBackend, tiny_spec
from search_helpers import SPEC, make_driver, small_config

from netadapt_tf import builders, data
from netadapt_tf.common import atomic_files
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.data import held_out
from netadapt_tf.discovered.trainer import DiscoveredOptions
from netadapt_tf.discovered.trajectory import read_trajectory
from netadapt_tf.metrics import LookupTable, build_table, measurement_cache
from netadapt_tf.pipeline.stage_runner import StageRunner, read_stages
from netadapt_tf.search import SearchDriver
from netadapt_tf.search.driver import read_summary
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, load_arch, random_arch, save_arch
from netadapt_tf.space.spec import NetworkSpec, load_spec
from netadapt_tf.supernet import checkpoint
from netadapt_tf.training import run_record
from netadapt_tf.training.supernet_trainer import TrainConfig, check_run_record

OTHER = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.5)
DATA = data.DataConfig(name="synthetic", image_size=16, channels=3, batch_size=8, held_out=32)


def _split(seed: int = 0) -> data.HeldOutSplit:
    ids = [str(i) for i in held_out.held_out_indices(1024, 32, seed)]
    return data.HeldOutSplit(
        dataset="synthetic/1024", seed=seed, num_examples=1024, num_held_out=32,
        num_train=992, fingerprint=held_out.fingerprint(ids),
    )  # fmt: skip


def _trainer_record(spec) -> dict:
    return {
        "spec": spec.to_json(),
        "spec_fingerprint": spec.fingerprint(),
        "train": dataclasses.asdict(TrainConfig()),
        "data": {"config": DATA.to_json(), "split": _split().to_json()},
        "replicas": 1,
    }


def _discovered_record(spec) -> dict:
    archs = [full_arch(spec), random_arch(spec, np.random.default_rng(0))]
    return {
        **_trainer_record(spec),
        "arch": archs[-1].to_json(),
        "initial_arch": archs[0].to_json(),
        "trajectory": [a.to_json() for a in archs],
        "discovered": dataclasses.asdict(DiscoveredOptions(mode="trajectory")),
        "sources": {"supernet_checkpoint": "/ckpt", "initial_model": None},
    }


# -- wrong values ---------------------------------------------------------------------------


def _wrong_values(value, free: bool) -> list:
    """Values of another JSON type than `value` (bools are not numbers). A free-form field
    (any string, number, bool or null) only gets non-scalars."""
    if free:
        return [[1], {"x": 1}]
    if isinstance(value, bool):
        return [1, "true"]
    if isinstance(value, int | float):
        return [True, str(value), [value]]
    if isinstance(value, str):
        return [True, ["x"]] if value == "inf" else [1, True, [value]]
    if value is None:
        return [{"x": [1]}]
    if isinstance(value, dict):
        return [[], "x", 1]
    return [{}, "x", 1]


def _places(value, path=()):
    """(path, value) of the fields to spoil: every key of an object with few keys; the first
    elements of lists and of big objects (many values of one kind)."""
    if isinstance(value, dict):
        keys = list(value)[: 3 if len(value) > 12 else None]
        for key in keys:
            yield path + (key,), value[key]
            yield from _places(value[key], path + (key,))
    elif isinstance(value, list):
        for i, element in enumerate(value[:2]):
            yield path + (i,), element
            yield from _places(element, path + (i,))


def _replaced(document, path, value):
    document = copy.deepcopy(document)
    holder = document
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return document


def _field_name(path) -> str:
    """The innermost object key on `path` (list indices name no field)."""
    return [key for key in path if isinstance(key, str)][-1]


@dataclasses.dataclass
class Case:
    """A file, how the package reads it, what its fields are, and what a read must say."""

    path: pathlib.Path
    read: object  # read(path)
    free: tuple = ()  # paths (prefixes) of free-form scalar fields
    lines: bool = False  # a JSON-lines journal
    fix: object = None  # fix(document) recomputes derived fields (checksums)

    def documents(self):
        text = self.path.read_text()
        return [json.loads(x) for x in text.splitlines()] if self.lines else [json.loads(text)]

    def write(self, documents) -> None:
        if self.fix is not None:
            documents = [self.fix(d) for d in documents]
        text = "".join(json.dumps(d) + "\n" for d in documents)
        self.path.write_text(text if self.lines else json.dumps(documents[0]))


def _check_truncated(case: Case) -> None:
    whole = case.path.read_bytes()
    for cut in sorted({1, len(whole) // 3, len(whole) // 2, len(whole) - 2}):
        case.path.write_bytes(whole[:cut])
        if case.lines:  # a torn last line is dropped (and cut off the file), the rest read
            intact = whole[:cut].rsplit(b"\n", 1)[0] + b"\n" if b"\n" in whole[:cut] else b""
            case.read(case.path)
            assert case.path.read_bytes() == intact
        else:
            with pytest.raises(RecordError) as error:
                case.read(case.path)
            assert str(error.value).startswith(f"{case.path}: malformed JSON"), cut
    case.path.write_bytes(whole)


def _check_wrong_types(case: Case) -> int:
    documents = case.documents()
    spoiled = 0
    for i, document in enumerate(documents):
        for path, value in list(_places(document)):
            free = any(len(path) > len(p) and path[: len(p)] == p for p in case.free)
            for wrong in _wrong_values(value, free):
                changed = [*documents[:i], _replaced(document, path, wrong), *documents[i + 1 :]]
                case.write(changed)
                try:
                    case.read(case.path)
                except RecordError as error:
                    message = str(error)
                else:
                    pytest.fail(f"{case.path.name}: {path} = {wrong!r} was accepted")
                assert message.startswith(str(case.path)), (path, wrong, message)
                assert _field_name(path) in message, (path, wrong, message)
                spoiled += 1
    case.write(documents)
    case.read(case.path)  # untouched again
    return spoiled


def _check(case: Case) -> None:
    case.read(case.path)
    _check_truncated(case)
    assert _check_wrong_types(case) > 10


# -- the files --------------------------------------------------------------------------------


def test_spec_files(tmp_path):
    directory = tmp_path / "supernet"
    directory.mkdir()
    atomic_files.write_json(directory / checkpoint.SPEC_FILE, SPEC.to_json())
    _check(Case(directory / "spec.json", load_spec, free=(("origin",),)))
    assert checkpoint.read_spec(directory, SPEC) == SPEC
    with pytest.raises(RecordError, match=rf"{directory}: the checkpoint holds .*fingerprint"):
        checkpoint.read_spec(directory, OTHER)


def test_arch_files(tmp_path):
    path = tmp_path / "arch.json"
    save_arch(random_arch(SPEC, np.random.default_rng(0)), path)
    _check(Case(path, lambda p: load_arch(p, SPEC)))
    save_arch(full_arch(OTHER), path)
    with pytest.raises(RecordError, match=rf"{path}: arch: made for super-network .*fingerprint"):
        load_arch(path, SPEC)


@pytest.mark.parametrize("kind", ["trainer", "discovered"])
def test_run_records(tmp_path, kind):
    record, options = _trainer_record(SPEC), None
    if kind == "discovered":
        record, options = _discovered_record(SPEC), DiscoveredOptions
    check_run_record(str(tmp_path), record, overwrite=False)
    path = tmp_path / run_record.RUN_FILE
    free = (("spec", "origin"),)
    _check(Case(path, lambda p: run_record.read(p, TrainConfig, options), free=free))
    other = _trainer_record(OTHER) if kind == "trainer" else _discovered_record(OTHER)
    with pytest.raises(RecordError, match=r"holds a run with other settings .*spec_fingerprint"):
        run_record.check(tmp_path, other, False, TrainConfig, options)
    # A field of another type is not "the same settings" either.
    changed = _replaced(record, ("train", "batch_size"), True)
    with pytest.raises(RecordError, match=r"recorded vs now: train\.batch_size \(128 vs True\)"):
        run_record.check(tmp_path, changed, False, TrainConfig, options)


def test_stage_records(tmp_path):
    runner = StageRunner(tmp_path, log=lambda line: None)
    runner.run_step("first", lambda: None, outputs=[tmp_path / "a"])
    runner.run_step("second", lambda: None)
    _check(Case(tmp_path / "stages.json", read_stages))  # (no super-network to differ)


def test_held_out_split_records(tmp_path):
    data.write_split(tmp_path, _split())
    _check(Case(tmp_path / held_out.SPLIT_FILE, lambda p: data.read_split(p.parent)))
    with pytest.raises(RecordError, match=r"was made with a different held-out split: seed 0"):
        data.check_split(tmp_path, _split(seed=1))


def test_latency_tables(tmp_path):
    tiny = tiny_spec()
    backend = FakeBackend(tiny)
    path = tmp_path / "table.json"
    build_table(tiny, backend, path, GRID)
    fingerprint = backend.fingerprint()
    _check(Case(path, lambda p: LookupTable.load(p, tiny, fingerprint, GRID)))
    document = tiny.to_json()
    document["num_classes"] = 5
    document["nodes"][-1].update(filters=5, widths=[5])
    other = NetworkSpec.from_json(document)
    with pytest.raises(RecordError, match=rf"{path}: spec: built for super-network 'tiny'"):
        LookupTable.load(path, other)


def test_measurement_cache_entries(tmp_path):
    cache = measurement_cache.MeasurementCache(tmp_path)
    fingerprint = {"backend": "host", "threads": 1}
    cache.put(b"model", fingerprint, 3.25)
    path = cache.entry_path(b"model", fingerprint)
    key = measurement_cache._model_key(b"model")

    def read(p, wanted=fingerprint):
        canonical = measurement_cache._canonical_json(wanted)
        return measurement_cache._decode(p.read_bytes(), key, canonical, p)

    def with_checksum(document):  # a checksum that fits: the fields themselves are checked
        if not isinstance(document.get("sha256"), str):
            return document  # the checksum field is what is spoiled
        try:
            body = measurement_cache._canonical_json(document["entry"])
        except (KeyError, TypeError, ValueError):
            return document
        import hashlib

        return {**document, "sha256": hashlib.sha256(body.encode()).hexdigest()}

    _check(Case(path, read, fix=with_checksum))
    with pytest.raises(RecordError, match=r"entry\.fingerprint: .* is not allowed"):
        read(path, {"backend": "adb"})
    # The cache itself treats a bad entry as a miss: it is measured again.
    path.write_text('{"entry": 1')
    assert cache.get(b"model", fingerprint) is None and not path.exists()


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory) -> pathlib.Path:
    workdir = tmp_path_factory.mktemp("search")
    make_driver(workdir, small_config(max_iterations=2)).run()
    return workdir


def _copy_search(search_dir, tmp_path) -> tuple[pathlib.Path, object]:
    workdir = tmp_path / "search"
    workdir.mkdir()
    for name in ("search.json", "history.jsonl", "summary.json", "trajectory.json"):
        (workdir / name).write_bytes((search_dir / name).read_bytes())
    return workdir, make_driver(workdir, small_config(max_iterations=2))


def test_search_history_and_samples(search_dir, tmp_path):
    workdir, driver = _copy_search(search_dir, tmp_path)
    history = workdir / "history.jsonl"
    lines = history.read_text().splitlines()
    _check(Case(history, lambda p: driver.load_state(), lines=True))
    # Samples of the unfinished iteration, from the last finished one's.
    samples = json.loads(lines[-1])["samples"][:2]
    pending = workdir / "samples.jsonl"
    pending.write_text("".join(json.dumps({**s, "iteration": 2}) + "\n" for s in samples))
    assert len(driver.load_state().pending) == 2
    _check(Case(pending, lambda p: driver.load_state(), lines=True))
    # The history of a search of another super-network.
    other = tmp_path / "other"
    SearchDriver(
        OTHER,
        small_config(max_iterations=1),
        lambda arch: float(sum(c.width for c in arch.choices)),
        lambda arch: float(macs.count(OTHER, arch).macs),
        other,
        resource_fingerprint={"metric": "macs"},
        log=lambda line: None,
        plot=False,
        tensorboard=False,
    ).run()
    history.write_bytes((other / "history.jsonl").read_bytes())
    with pytest.raises(RecordError, match=rf"{history}: line 1\.arch: arch: made for super-net"):
        driver.load_state()


def test_search_settings_summary_and_trajectory(search_dir, tmp_path):
    workdir, driver = _copy_search(search_dir, tmp_path)
    settings = workdir / "search.json"
    _check(Case(settings, lambda p: driver.check_workdir(), free=()))
    with pytest.raises(RecordError, match=r"recorded vs now: spec_fingerprint"):
        make_driver(workdir, small_config(max_iterations=2), spec=OTHER).check_workdir()
    _check(Case(workdir / "summary.json", read_summary))
    trajectory = workdir / "trajectory.json"
    _check(Case(trajectory, lambda p: read_trajectory(p, SPEC)))
    with pytest.raises(RecordError, match=rf"{trajectory}: trajectory\.points\[0\]\.arch: arch"):
        read_trajectory(trajectory, OTHER)
