"""Sub-networks as TFLite models for latency backends: arch -> exported model -> bytes.

Latency does not depend on weight values, so the models come from a super-network with
freshly initialized weights, built once (on first use) and shared by every arch. The
conversion settings are part of what a latency backend measures, so they go into its
fingerprint through `settings()`.
"""

import keras

from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.metrics import tflite
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.supernet.network import SuperNetwork, build_supernet


class SubnetConverter:
    """Converts archs of `spec` to TFLite with `quantization` along `route` (see
    shipping/tflite.py).

    int8 models are calibrated on random inputs (tflite.random_representative_data): right
    for latency, meaningless for accuracy.
    """

    def __init__(
        self, spec: NetworkSpec, quantization: str = "float32", route: str = "frozen_function"
    ):
        if quantization not in tflite.QUANTIZATIONS:
            raise ValueError(f"quantization: {quantization!r} is not one of {tflite.QUANTIZATIONS}")
        if route not in tflite.ROUTES:
            raise ValueError(f"route: {route!r} is not one of {tflite.ROUTES}")
        self.spec = spec
        self.quantization = quantization
        self.route = route
        self._supernet: SuperNetwork | None = None

    @property
    def supernet(self) -> SuperNetwork:
        if self._supernet is None:
            self._supernet = build_supernet(self.spec)
        return self._supernet

    def keras_model(self, arch: Arch) -> keras.Model:
        return export_subnetwork(self.supernet, arch)

    def convert_model(self, model: keras.Model) -> bytes:
        """Any Keras model (a whole sub-network or one layer) with these settings."""
        data = None
        if self.quantization == "int8":
            data = tflite.random_representative_data(model)
        return tflite.convert(model, self.quantization, data, route=self.route)

    def tflite(self, arch: Arch) -> bytes:
        return self.convert_model(self.keras_model(arch))

    def settings(self) -> dict:
        return {
            "spec": self.spec.fingerprint(),
            "quantization": self.quantization,
            "route": self.route,
            "batch": 1,
        }
