"""One run per work directory (common/workdir_lock.py): two processes, a killed holder's
stale lock taken over, and every tool that writes a work directory refusing a held one
with one line and exit status 3 before writing anything."""

import json
import os
import signal
import subprocess
import sys

import pytest

from netadapt_tf.common import workdir_lock

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
HOLDER = (
    "import sys; from netadapt_tf.common import workdir_lock; "
    "workdir_lock.hold(sys.argv[1], sys.argv[2]); print('held', flush=True); sys.stdin.read()"
)


def _holder(workdir, tool="train_supernet"):
    """A process that holds `workdir` until its stdin closes (or it is killed)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir), tool],
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "held\n"
    return child


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    child = _holder(tmp_path)
    try:
        with pytest.raises(workdir_lock.WorkdirLockedError) as error:
            workdir_lock.hold(tmp_path, "search")
        message = str(error.value)
        assert message.startswith(f"{tmp_path}: in use by train_supernet (pid {child.pid} on ")
        assert "one run per work directory" in message and "\n" not in message
    finally:
        child.stdin.close()
        child.wait()
    # Released on exit: the next run takes it without a word about a stale lock.
    said = []
    workdir_lock.hold(tmp_path, "search", log=said.append)
    workdir_lock.release(tmp_path)
    assert said == []


def test_the_lock_of_a_killed_holder_is_taken_over_with_a_message(tmp_path):
    child = _holder(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    said = []
    path = workdir_lock.hold(tmp_path, "search", log=said.append)
    try:
        [message] = said
        assert message.startswith(
            f"{path}: taking over the lock of train_supernet (pid {child.pid}"
        )
        assert "killed" in message
        assert json.loads(path.read_text())["pid"] == os.getpid()
        # Held by this process now: another process is refused.
        other = subprocess.run(
            [sys.executable, "-c", HOLDER, str(tmp_path), "x"],
            env=ENV,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert other.returncode == 1 and f"in use by search (pid {os.getpid()}" in other.stderr
    finally:
        workdir_lock.release(tmp_path)


TOOLS = {
    "train_supernet": ["--preset=test", "--model=mobilenet_v1", "--input_size=16"],
    "search": ["--supernet_checkpoint={ckpt}"],
    "train_discovered": ["--supernet_checkpoint={ckpt}", "--mode=inherit"],
    "train_comparison": [
        "--supernet_checkpoint={ckpt}",
        "--networks={networks}",
        "--mode=inherit",
    ],
    "demo": ["--quick"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A super-network checkpoint in a trainer's work directory, and a comparison plan."""
    from training_helpers import tiny_spec, trainer_workdir

    from netadapt_tf import data
    from netadapt_tf.pipeline import comparison
    from netadapt_tf.space.arch import full_arch, save_arch

    root = tmp_path_factory.mktemp("trained")
    config = data.DataConfig(
        name="synthetic",
        channels=3,
        image_size=16,
        batch_size=16,
        held_out=32,
        synthetic_examples=96,
        synthetic_classes=4,
    )
    workdir = trainer_workdir(root, tiny_spec(), config)
    save_arch(full_arch(tiny_spec()), str(root / "a.json"))
    network = comparison.Network(
        name="discovered",
        kind="discovered",
        ratio=None,
        arch="a.json",
        seeds=(0,),
        macs=1,
        params=1,
        table_ms=1.0,
    )
    networks = comparison.write_networks(root, [network])
    return workdir / "supernet", networks


@pytest.mark.slow
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_refuses_a_held_work_directory_before_writing(tool, tmp_path, trained):
    ckpt, networks = trained
    workdir = tmp_path / "work"
    workdir.mkdir()
    child = _holder(workdir, "an earlier run")
    try:
        flags = [f.format(ckpt=ckpt, networks=networks) for f in TOOLS[tool]]
        done = subprocess.run(
            [
                sys.executable,
                os.path.join(REPO, "tools", f"{tool}.py"),
                f"--workdir={workdir}",
                *flags,
            ],
            env=ENV,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
    finally:
        child.stdin.close()
        child.wait()
    assert done.returncode == 3, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{tool}: {workdir}: in use by an earlier run (pid {child.pid} on ")
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(workdir)) == [".lock"]  # nothing written
