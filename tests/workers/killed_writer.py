"""Starts a write and stops at a given point, printing "ready", for the parent to SIGKILL.

python killed_writer.py file PATH          write_with: half the new content written
python killed_writer.py journal PATH       append_line, then half of the next line
python killed_writer.py pair:POINT DIR     save_supernet of the new network (NEW_CLASSES
                                           classes, weights first saved to DIR.npz), stopped
                                           at POINT: "weights" (half the weights file
                                           written), "before_swap" (both files complete in
                                           the new directory) or "after_swap" (the new
                                           directory in place, the old one not removed)
"""

import os
import sys
import time

from netadapt_tf.common import atomic_files

NEW_CLASSES = 5


def stop() -> None:
    print("ready", flush=True)
    time.sleep(600)


def write_half_a_file(path: str) -> None:
    def write(name: str) -> None:
        with open(name, "wb") as f:
            f.write(b'{"generation": "new", "padding": "')
            f.flush()
            os.fsync(f.fileno())
        stop()

    atomic_files.write_with(path, write)


def tear_a_journal_line(path: str) -> None:
    atomic_files.append_line(path, {"line": 3})
    with open(path, "a") as f:
        f.write('{"line": 4, "pad')
        f.flush()
    stop()


def save_a_pair(point: str, directory: str) -> None:
    import keras
    import numpy as np

    from netadapt_tf import builders
    from netadapt_tf.supernet import checkpoint
    from netadapt_tf.supernet.network import build_supernet

    keras.utils.set_random_seed(2)
    spec = builders.build(
        "mobilenet_v1", input_size=16, num_classes=NEW_CLASSES, width_multiplier=0.25
    )
    model = build_supernet(spec)
    np.savez(f"{directory}.npz", *model.get_weights())
    if point == "weights":
        save = model.save_weights

        def save_half(path):
            save(path)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            stop()

        model.save_weights = save_half
    else:
        swap = atomic_files._swap

        def stopping_swap(new, path):
            if point == "before_swap":
                stop()
            swap(new, path)
            stop()

        atomic_files._swap = stopping_swap
    checkpoint.save_supernet(model, directory)


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "file":
        write_half_a_file(target)
    elif mode == "journal":
        tear_a_journal_line(target)
    else:
        save_a_pair(mode.split(":", 1)[1], target)
    sys.exit("the writer was not stopped")
