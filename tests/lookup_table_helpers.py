"""A latency lookup table's fakes: a five-layer spec small enough to enumerate every arch,
a backend that describes models instead of converting and timing them, a small grid."""

import json
import types

from netadapt_tf.metrics import GridSettings
from netadapt_tf.space.spec import LayerSpec, NetworkSpec, PoolSpec
from netadapt_tf.supernet.network import build_supernet

GRID = GridSettings(max_x_points=2, calibration_archs=4, calibration_rounds=1)


def tiny_spec() -> NetworkSpec:
    """Five searchable layers with 3 widths each: small enough to enumerate every arch."""
    widths = (0, 4, 8)
    return NetworkSpec(
        name="tiny",
        input_size=8,
        num_classes=4,
        nodes=(
            LayerSpec("stem", "conv", 8, widths, kernel_size=3, strides=2, bypass_limit=2),
            LayerSpec("dw", "depthwise", 8, widths, 5, (3, 5), bypass_limit=float("inf")),
            LayerSpec("pw", "pointwise", 8, widths, bypass_limit=4),
            LayerSpec("pw2", "pointwise", 8, widths, strides=2, bypass_limit=8),
            PoolSpec(),
            LayerSpec("logits", "fc", 4, (4,), batch_norm=False, use_bias=True),
        ),
    )


class FakeConverter:
    """Describes a Keras model instead of converting it: its ops, shapes and weight count."""

    def __init__(self, spec):
        self.spec = spec
        self.supernet = build_supernet(spec)

    def convert_model(self, model) -> bytes:
        ops = [type(layer).__name__ for layer in model.layers]
        return json.dumps([ops, model.count_params(), str(model.outputs[0].shape)]).encode()

    def tflite(self, arch) -> bytes:
        from netadapt_tf.graphs.export import export_subnetwork

        return self.convert_model(export_subnetwork(self.supernet, arch))


class FakeBackend:
    """Latency = 0.01 ms + 1 ns per weight + 0.5 us per op; counts its measurements."""

    def __init__(self, spec, name="fake", fail_after=None):
        self.converter = FakeConverter(spec)
        self.name = name
        self.calls = 0
        self.fail_after = fail_after

    def fingerprint(self):
        return {"backend": self.name, "version": 1}

    def measure_tflite(self, model_bytes):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("power cut")
        ops, params, _ = json.loads(model_bytes)
        return types.SimpleNamespace(latency_ms=0.01 + 1e-6 * params + 5e-4 * len(ops))
