"""The chief of a judging cluster (TF_CONFIG in the environment): builds the ClusterJudge of
the checkpoint argv[1] with EvalSettings(**json argv[2]), reads the archs of argv[3] (a JSON
list) locally through the serial judge's code (the same evaluator, so the same
recalibration batches) and on the cluster, SIGKILLs the process argv[4] (a worker) after
the first half, and writes {"serial": [...], "cluster": [...]} to argv[5]."""

import json
import os
import pathlib
import signal
import sys

from netadapt_tf.search.cluster_judge import ClusterJudge
from netadapt_tf.search.held_out_accuracy import EvalSettings
from netadapt_tf.space.arch import Arch

checkpoint, settings, archs_file, victim, out = sys.argv[1:6]
archs = [Arch.from_json(a) for a in json.loads(pathlib.Path(archs_file).read_text())]
judge = ClusterJudge((checkpoint, EvalSettings(**json.loads(settings)), None, False))
serial = [judge.evaluator.accuracy(arch) for arch in archs]
half = len(archs) // 2
cluster = [judge(arch) for arch in archs[:half]]
os.kill(int(victim), signal.SIGKILL)
cluster += [judge(arch) for arch in archs[half:]]
with open(out, "w") as f:
    json.dump({"serial": serial, "cluster": cluster, "workers": judge.workers}, f)
os._exit(0)  # the coordinator keeps trying to reach the killed worker; do not wait for it
