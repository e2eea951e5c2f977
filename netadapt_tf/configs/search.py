"""Presets for the architecture search (tools/search.py): configs as code.

The paper's settings (Sec. 4.1.1 and 4.2.1, all with a reduction decay of 0.98):

* `paper_latency`: ImageNet, latency-guided: J = 200 samples per iteration, L = 10 layers
  per sample, 3% initial latency reduction. The latency comes from a lookup table
  (NetAdaptV1's practice; build one with tools/build_latency_table.py).
* `paper_macs`: ImageNet, MAC-guided: J = 200, L = 15, 2.5% initial reduction.
* `nyu_fastdepth_paper`: NYU Depth V2 with phone latency: J = 150 and 1.5% as in the
  paper, which does not give L. We use L = 6: the ImageNet latency setting shrinks 10 of
  about 70 search units (~14%), the MobileNetV1 ablation (App. D.2) 4 of 27 layers (~15%),
  and 15% of FastDepth's 37 searchable layers (27 in its MobileNetV1 encoder, 10 in its
  decoder; the one-channel output layer has nothing to search) is about 6. Samples are
  judged by delta1 on the 2K held-out images (--depth_metric=rmse: by RMSE).
* `depth_quick`: the tiny FastDepth of the supernet preset `depth_quick` on the procedural
  rooms, MAC-guided, a few iterations of 4 samples: for tests and demos on a CPU.
* `depth_quick_latency`: `depth_quick` searched by a latency lookup table (--latency_table)
  with the paper's kind of schedule (3% first reduction, decay 0.98, up to 20 iterations):
  on a host table of that network the 10% steps of `depth_quick` took whole layers out and
  held-out delta1 from 0.78 to 0.22 in 3 iterations (docs/depth.md).

A preset of one task (`task`) refuses a super-network of the other before any work.

The paper presets do not tie residual streams: its discovered networks (Tables 8 and 9)
have different widths within one stream and single removed blocks, which a tied search
cannot produce. `demo` keeps the ties (the default), sized for `make demo` on a 2-core CPU.
None of the paper presets sets a target (the paper reports several); pass --target or
--target_fraction. Flags override fields; the resolved settings go into search.json.
"""

import dataclasses

from netadapt_tf import configs
from netadapt_tf.search.held_out_accuracy import EvalSettings
from netadapt_tf.search.mcd import MCDConfig


@dataclasses.dataclass(frozen=True)
class SearchPreset:
    """The optimizer's settings, the resource it minimizes and how samples are judged."""

    search: MCDConfig
    metric: str
    evaluation: EvalSettings = EvalSettings()
    task: str = "classification"  # what the super-network must be (netadapt_tf.space.task)

    def to_json(self) -> dict:
        return {
            "search": self.search.to_json(),
            "metric": self.metric,
            "evaluation": self.evaluation.to_json(),
            "task": self.task,
        }


def paper_latency() -> SearchPreset:
    return SearchPreset(
        search=MCDConfig(
            samples_per_iteration=200,
            layers_per_sample=10,
            initial_reduction=0.03,
            decay=0.98,
            tie_residual_streams=False,
        ),
        metric="table",
    )


def paper_macs() -> SearchPreset:
    return SearchPreset(
        search=MCDConfig(
            samples_per_iteration=200,
            layers_per_sample=15,
            initial_reduction=0.025,
            decay=0.98,
            tie_residual_streams=False,
        ),
        metric="macs",
    )


def nyu_fastdepth_paper() -> SearchPreset:
    return SearchPreset(
        search=MCDConfig(
            samples_per_iteration=150,
            layers_per_sample=6,
            initial_reduction=0.015,
            decay=0.98,
            tie_residual_streams=False,
        ),
        metric="table",
        evaluation=EvalSettings(batch_size=16, depth_metric="delta1"),
        task="depth",
    )


def depth_quick() -> SearchPreset:
    """A 30% MAC cut of the tiny procedural-room FastDepth in a few iterations, each sample
    judged on the 64 held-out scenes after BN recalibration on 2 training batches."""
    return SearchPreset(
        search=MCDConfig(
            samples_per_iteration=4,
            layers_per_sample=3,
            initial_reduction=0.1,
            decay=0.9,
            target_fraction=0.7,
            max_iterations=6,
        ),
        metric="macs",
        evaluation=EvalSettings(
            batch_size=32,
            max_examples=64,
            recalibration_batches=2,
            recalibration_average="cumulative",
            depth_metric="delta1",
        ),
        task="depth",
    )


def depth_quick_latency() -> SearchPreset:
    """depth_quick by latency (a lookup table: --latency_table) in steps of 3% decayed by
    0.98, at most 20 iterations, to 70% of the initial latency."""
    quick = depth_quick()
    search = dataclasses.replace(
        quick.search, initial_reduction=0.03, decay=0.98, max_iterations=20
    )
    return dataclasses.replace(quick, search=search, metric="table")


def demo() -> SearchPreset:
    """Half the MACs of the Fashion-MNIST demo super-network in about 7 iterations of 16
    samples, each judged on all 5,000 held-out images (binomial sd of a reading about 0.6
    points at 80%; on 512 it was 1.8, larger than most margins the search decides, which the
    search log states per iteration) after BN recalibration on 4 training batches averaged
    alike (a super-network trained briefly with ordered dropout has moving BN statistics
    that fit no single sub-network: docs/training.md)."""
    return SearchPreset(
        search=MCDConfig(
            samples_per_iteration=16,
            layers_per_sample=4,
            initial_reduction=0.1,
            decay=0.9,
            target_fraction=0.5,
            max_iterations=50,
        ),
        metric="macs",
        evaluation=EvalSettings(
            batch_size=250,
            max_examples=5000,
            recalibration_batches=4,
            recalibration_average="cumulative",
        ),
    )


PRESETS = {
    "paper_latency": paper_latency,
    "paper_macs": paper_macs,
    "nyu_fastdepth_paper": nyu_fastdepth_paper,
    "depth_quick": depth_quick,
    "depth_quick_latency": depth_quick_latency,
    "demo": demo,
}


def get_config(preset: str) -> SearchPreset:
    return configs.from_table(PRESETS, preset)
