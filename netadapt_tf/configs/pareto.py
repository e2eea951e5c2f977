"""The config of benchmarks/pareto.py: the converged comparison of the discovered networks
with the uniform width curve and random search (issue 21).

`ParetoConfig` sizes the full run (Fashion-MNIST, the demo's super-network design and
recipe); `quick()` shrinks it to synthetic data, a tiny MobileNetV1 and a few steps, for the
tests (two seeds allowed only there). Every network is trained from scratch with one recipe
(`recipe_flags`, tools/train_comparison.py's flags) for the budget the learning curve
chooses; the learning curve is the initial network trained `probe_epochs` epochs and scored
after each on `held_out` training images kept out.
"""

import dataclasses

from netadapt_tf.configs import supernet as supernet_presets


@dataclasses.dataclass(frozen=True)
class ParetoConfig:
    """`supernet_preset` (tools/train_supernet.py) gives the network and the data; the
    latency table is built from `model_flags`, which must build the same network.
    `targets` are fractions of the initial network's table latency (one MCD search and one
    random search each); the random search judges as many samples as the MCD search.
    `decision_candidates` of the first target's search iteration `decision_iteration` are
    trained too (the judge's decision regret)."""

    supernet_preset: str = "fashion_mnist_demo"
    supernet_flags: tuple[str, ...] = ("--epochs=3", "--steps_per_epoch=130")
    model_flags: tuple[str, ...] = (
        "--model=netadaptv2_mobilenet_v3",
        "--width_multiplier=0.25",
        "--input_size=32",
        "--num_classes=10",
    )
    held_out: int = 5000
    probe_epochs: int = 16
    recipe_flags: tuple[str, ...] = (
        "--batch_size=128",
        "--optimizer=adam",
        "--learning_rate=0.016",
        "--lr_decay=0.8",
        "--lr_decay_epochs=1",
        "--ema_decay=0",
        "--bn_momentum=0.9",
    )
    steps_per_epoch: int | None = None  # None: every training image once per epoch
    seeds: tuple[int, ...] = (0, 1, 2)
    targets: tuple[float, ...] = (0.5, 0.3)
    curve_fractions: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
    table_flags: tuple[str, ...] = (
        "--max_x_points=2",
        "--calibration_archs=6",
        "--calibration_rounds=2",
        "--num_runs=20",
        "--warmup_runs=3",
    )
    search_flags: tuple[str, ...] = ("--preset=demo", "--initial_reduction=0.15")
    random_flags: tuple[str, ...] = ("--sampler=random", "--max_draws=100")
    measure_flags: tuple[str, ...] = ("--rounds=5", "--latency_runs=30", "--warmup_runs=3")
    decision_iteration: int = 1
    decision_candidates: int = 4
    quick: bool = False

    def __post_init__(self):
        minimum = 2 if self.quick else 3
        if len(set(self.seeds)) < minimum:
            raise ValueError(
                f"ParetoConfig.seeds: {self.seeds}; allowed: at least {minimum} distinct seeds "
                "(2 only in the quick run)"
            )
        if not self.quick and len(set(self.curve_fractions) | {1.0}) < 5:
            raise ValueError(
                f"ParetoConfig.curve_fractions: {self.curve_fractions}; allowed: at least 5 "
                "widths (1.0 counted)"
            )
        for target in self.targets:
            if not 0 < target < 1:
                raise ValueError(f"ParetoConfig.targets: {target} is not in (0, 1)")

    def supernet(self) -> supernet_presets.SupernetConfig:
        return supernet_presets.get_config(self.supernet_preset)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def quick() -> ParetoConfig:
    """Minutes in all: synthetic data, MobileNetV1 at width 0.25 and 16x16, two seeds."""
    return ParetoConfig(
        supernet_preset="test",
        supernet_flags=("--epochs=1", "--steps_per_epoch=2"),
        model_flags=(
            "--model=mobilenet_v1",
            "--width_multiplier=0.25",
            "--input_size=16",
            "--num_classes=4",
        ),
        held_out=32,
        probe_epochs=4,
        recipe_flags=("--batch_size=16", "--ema_decay=0", "--max_eval_examples=32"),
        steps_per_epoch=2,
        seeds=(0, 1),
        targets=(0.8, 0.6),
        curve_fractions=(0.25, 0.5, 1.0),
        table_flags=(
            "--max_x_points=2",
            "--calibration_archs=4",
            "--calibration_rounds=1",
            "--num_runs=5",
            "--warmup_runs=0",
        ),
        search_flags=(
            "--preset=demo",
            "--samples_per_iteration=3",
            "--layers_per_sample=6",
            "--initial_reduction=0.15",
            "--decay=1.0",
            "--max_eval_examples=32",
            "--eval_batch_size=16",
            "--judge_workers=1",  # a judge pool's start costs more than these few samples
        ),
        measure_flags=("--rounds=1", "--latency_runs=5", "--warmup_runs=0"),
        decision_candidates=2,
        quick=True,
    )
