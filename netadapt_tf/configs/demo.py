"""The config of `make demo` (tools/demo.py): what it profiles, builds, trains and ships.

The demo walks the NetAdaptV2 pipeline: the MACs of the paper's full-size search space, a
small super-network of the same design (export parity checks), then on Fashion-MNIST with
host latency: super-network training, a latency lookup table, the MCD search to 35% of the
initial latency, a random search with as many judged samples, the comparison at equal
training (the uniform width curve, the discovered network and the random pick, each trained
with the same recipe and steps from the super-network's weights and from scratch, measured
on LiteRT: netadapt_tf/pipeline/comparison.py), TFLite export of the discovered network (float32,
int8, int8 QAT) and report.md. `FlowConfig` sizes those stages (`flow_quick()`: synthetic
data and a tiny network, for tests). Flags override `seed`; other fields change here, and
the resolved config is written into the work directory.
"""

import dataclasses

from netadapt_tf import builders
from netadapt_tf.space.spec import NetworkSpec


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    """A builder and the options the demo sets (the others keep the builder's defaults)."""

    model: str
    input_size: int
    num_classes: int
    width_multiplier: float = 1.0

    def build(self) -> NetworkSpec:
        return builders.build(
            self.model,
            input_size=self.input_size,
            num_classes=self.num_classes,
            width_multiplier=self.width_multiplier,
        )


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """The training-to-shipping stages. Each list is extra flags of one tool; the
    super-network comes from the `supernet_preset` of tools/train_supernet.py.

    The search's target is 35% of the initial network's table latency, where the uniform
    curve falls and inside the latency range it covers. Measured in the full run of
    2026-12-02 (docs/benchmarks.md): the inherit column is flat (72-78%) from width 1.0 to
    0.5 (46% of the initial measured latency) and falls to 64% at 0.375 (40%), 52% at 0.25
    (29%) and 39% at 0.125 (24%, the width curve's floor: every block's per-layer cost stays
    at any width). The earlier 20% target put the discovered network (20% measured) below
    that floor, where no margin at equal latency can be interpolated. `random_flags` turn
    the same search into the random-search baseline (its sample count is set to the MCD
    search's judged samples). Every network of the comparison (`curve_fractions`, 1.0 being
    the initial network; 0.75 is left out, the curve is flat from 0.5 up; the discovered
    network and the random pick) is trained with `train_flags` in both columns; the
    discovered network and the curve point nearest to it get every seed offset of
    `seed_offsets`.
    """

    supernet_preset: str = "fashion_mnist_demo"
    supernet_flags: tuple[str, ...] = ("--epochs=3", "--steps_per_epoch=130")
    model_flags: tuple[str, ...] = (
        "--model=netadaptv2_mobilenet_v3",
        "--width_multiplier=0.25",
        "--input_size=32",
        "--num_classes=10",
    )
    table_flags: tuple[str, ...] = (
        "--clock=thread_cpu",  # the comparison's clock (tools/measure_comparison.py)
        "--max_x_points=2",
        "--calibration_archs=6",
        "--calibration_rounds=2",
        "--num_runs=20",
        "--warmup_runs=3",
    )
    search_flags: tuple[str, ...] = (
        "--preset=demo",
        "--target_fraction=0.35",
        "--initial_reduction=0.15",
    )
    random_flags: tuple[str, ...] = ("--sampler=random", "--max_draws=100")
    curve_fractions: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5, 1.0)
    seed_offsets: tuple[int, ...] = (0, 1)
    train_flags: tuple[str, ...] = (
        "--epochs=1",
        "--steps_per_epoch=80",
        "--batch_size=128",
        "--optimizer=adam",
        "--learning_rate=0.016",
        "--lr_decay=0.5",
        "--lr_decay_epochs=0.5",
        "--ema_decay=0",
        "--bn_momentum=0.9",
    )
    measure_flags: tuple[str, ...] = ("--rounds=5", "--latency_runs=30", "--warmup_runs=3")
    export_flags: tuple[str, ...] = ("--quantizations=float32,int8", "--latency_runs=30")
    qat_flags: tuple[str, ...] = ("--qat_epochs=1", "--qat_examples=2000")


def flow_quick() -> FlowConfig:
    """Seconds per stage: synthetic data, MobileNetV1 at width 0.25 and 16x16, few steps."""
    return FlowConfig(
        supernet_preset="test",
        supernet_flags=("--epochs=1", "--steps_per_epoch=2"),
        model_flags=(
            "--model=mobilenet_v1",
            "--width_multiplier=0.25",
            "--input_size=16",
            "--num_classes=4",
        ),
        table_flags=(
            "--max_x_points=2",
            "--calibration_archs=4",
            "--calibration_rounds=1",
            "--num_runs=5",
            "--warmup_runs=0",
        ),
        search_flags=(
            "--preset=demo",
            "--target_fraction=0.7",
            "--samples_per_iteration=4",
            "--layers_per_sample=6",
            "--initial_reduction=0.1",
            "--decay=1.0",
            "--max_eval_examples=32",
            "--eval_batch_size=16",
            "--judge_workers=1",  # a judge pool's start costs more than these few samples
        ),
        random_flags=("--sampler=random", "--max_draws=100"),
        curve_fractions=(0.25, 0.5, 0.75, 1.0),
        train_flags=("--epochs=1", "--steps_per_epoch=2", "--batch_size=16", "--ema_decay=0"),
        measure_flags=("--rounds=2", "--latency_runs=5", "--warmup_runs=0"),
        export_flags=(
            "--dataset=synthetic",
            "--synthetic_examples=64",
            "--calibration_examples=8",
            "--quantizations=float32,int8",
            "--latency_runs=5",
            "--warmup_runs=0",
        ),
        qat_flags=("--qat_epochs=1", "--qat_examples=16", "--qat_batch_size=8"),
    )


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """`initial_network` is profiled (full, `num_samples` random, smallest sub-networks);
    `supernet` is built, and `num_exports` random sub-networks of it are exported and
    compared with it on `parity_images` random images."""

    seed: int = 0
    initial_network: NetworkOptions = NetworkOptions("netadaptv2_mobilenet_v3", 224, 1000)
    num_samples: int = 5
    supernet: NetworkOptions = NetworkOptions("netadaptv2_mobilenet_v3", 32, 10, 0.25)
    num_exports: int = 2
    parity_images: int = 4
    flow: FlowConfig = FlowConfig()

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def get_config(**overrides) -> DemoConfig:
    """The demo preset, with `overrides` (field=value) applied."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(DemoConfig)})
    if unknown:
        raise ValueError(f"demo config: unknown fields {unknown}")
    return dataclasses.replace(DemoConfig(), **overrides)
