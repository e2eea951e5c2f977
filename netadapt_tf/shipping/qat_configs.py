"""tf_keras pieces of the quantization-aware-training process: activations, the channel
slice and the QuantizeConfigs that tensorflow-model-optimization (TFMOT) lacks.

Import this module only in that process (netadapt_tf.shipping.qat_child): importing TFMOT
switches `tf.keras` to tf_keras for the whole process (TF_USE_LEGACY_KERAS=1), which breaks
Keras 3 and keras_cv.

TFMOT's default 8-bit scheme refuses `Multiply` (the squeeze-and-excitation gate) and every
activation it does not know by name; tf_keras has no hard-swish, and its hard_sigmoid is
0.2 x + 0.5 where Keras 3 (and MobileNetV3) use relu6(x + 3) / 6. So the rebuilt network
uses the functions below, and `quantize_config_for(layer)` gives the layers TFMOT cannot
quantize a config that fake-quantizes their output (what TFLite's int8 kernels for MUL and
HARD_SWISH expect) or, for a channel slice, leaves the tensor's range as it is.

Two of TFMOT 0.8.1's own behaviours are corrected in `quantize`: a depthwise kernel gets
one range per channel (`Scheme`, `DepthwiseKernelQuantizer`), and a concatenation whose
inputs its layout transformer swapped is wired back (`restore_input_order`).
"""

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry as _registry,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_scheme as _scheme,
)

_quantizers = tfmot.quantization.keras.quantizers


def netadapt_hard_sigmoid(x):
    """relu6(x + 3) / 6, Keras 3's and MobileNetV3's hard sigmoid."""
    return tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


def netadapt_hard_swish(x):
    """x * relu6(x + 3) / 6, Keras 3's hard_swish."""
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


ACTIVATIONS = {"hard_sigmoid": netadapt_hard_sigmoid, "hard_swish": netadapt_hard_swish}


def activation(name: str):
    """What tf_keras.layers.Activation gets for a spec activation name."""
    return ACTIVATIONS.get(name, name)


class ChannelSlice(tf_keras.layers.Layer):
    """x[..., start:stop] (netadapt_tf.supernet.layers.ChannelSlice for tf_keras)."""

    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = int(stop)

    def call(self, x):
        return x[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(list(input_shape[:-1]) + [self.stop - self.start])

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """No weights; the output is fake-quantized to 8 bits (asymmetric, per tensor) with a
    range learnt as a moving average: for the SE gate's Multiply and hard activations."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [
            _quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self):
        return {}


class PassThroughQuantizeConfig(OutputQuantizeConfig):
    """Nothing is quantized: a channel slice keeps its input's range."""

    def get_output_quantizers(self, layer):
        return []


class DepthwiseKernelQuantizer(_quantizers.LastValueQuantizer):
    """8-bit symmetric fake quantization of a depthwise kernel [k, k, C, M] with one range
    per output channel (C x M ranges), as TFLite's int8 DEPTHWISE_CONV_2D and the
    post-training converter quantize it.

    TFMOT 0.8.1's own depthwise quantizer is "per axis" over the kernel's last axis, the
    depth multiplier M = 1: one range for every channel (its min/max variables have shape
    (1,)). A channel whose weights are small then gets a few of the 255 levels, an error
    the fine-tune has to train around and the int8 kernel (per channel) does not make. On
    the demo's network, whose channels' ranges are close, it moved nothing measurable
    (docs/shipping.md). The kernel is viewed as [k, k, 1, C x M] (the same memory order)
    so that the last axis is the channel."""

    def __init__(self):
        super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        channels = int(tensor_shape[2]) * int(tensor_shape[3])
        return {
            key: layer.add_weight(
                f"{name}_{key[:3]}",
                shape=(channels,),
                initializer=tf_keras.initializers.Constant(value),
                trainable=False,
            )
            for key, value in (("min_var", -6.0), ("max_var", 6.0))
        }

    def __call__(self, inputs, training, weights, **kwargs):
        k_h, k_w, channels, multiplier = inputs.shape
        flat = tf.reshape(inputs, (k_h, k_w, 1, channels * multiplier))
        return tf.reshape(super().__call__(flat, training, weights, **kwargs), inputs.shape)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls()


class DepthwiseQuantizeConfig(_registry.Default8BitConvQuantizeConfig):
    """TFMOT's config for a depthwise layer with the kernel quantized per channel."""

    def __init__(self, weight_attrs, activation_attrs, quantize_output):
        super().__init__(weight_attrs, activation_attrs, quantize_output)
        self.weight_quantizer = DepthwiseKernelQuantizer()


class Registry(_registry.Default8BitQuantizeRegistry):
    """TFMOT's default 8-bit registry, except depthwise layers (DepthwiseQuantizeConfig).

    A registry, not an annotation: TFMOT's layout transforms (no fake quantization between
    a convolution and its batch norm, one after the activation that follows) skip every
    layer annotated with its own config, while the registry is read after them. (TFMOT's
    concatenation transform looks up the configs of a concatenation's inputs in its own
    registry; a depthwise layer feeding a concatenation directly, without a batch norm,
    would keep TFMOT's one range there; the exporter puts a batch norm after every
    depthwise layer of a spec with `batch_norm`.)"""

    def get_quantize_config(self, layer):
        if isinstance(layer, tf_keras.layers.DepthwiseConv2D):
            return DepthwiseQuantizeConfig(["depthwise_kernel"], ["activation"], False)
        return super().get_quantize_config(layer)


class Scheme(_scheme.Default8BitQuantizeScheme):
    """TFMOT's default 8-bit scheme with our Registry."""

    def get_quantize_registry(self):
        return Registry(disable_per_axis=self._disable_per_axis)


def custom_objects() -> dict:
    """What quantize_scope needs to clone the annotated model."""
    return {
        "ChannelSlice": ChannelSlice,
        "OutputQuantizeConfig": OutputQuantizeConfig,
        "PassThroughQuantizeConfig": PassThroughQuantizeConfig,
        "DepthwiseQuantizeConfig": DepthwiseQuantizeConfig,
        "DepthwiseKernelQuantizer": DepthwiseKernelQuantizer,
        "netadapt_hard_sigmoid": netadapt_hard_sigmoid,
        "netadapt_hard_swish": netadapt_hard_swish,
    }


def quantize_config_for(layer):
    """Our config for a layer TFMOT's default scheme cannot quantize; None: TFMOT's own."""
    if isinstance(layer, ChannelSlice):
        return PassThroughQuantizeConfig()
    if isinstance(layer, tf_keras.layers.Multiply):
        return OutputQuantizeConfig()
    if isinstance(layer, tf_keras.layers.Activation) and layer.activation in (
        netadapt_hard_sigmoid,
        netadapt_hard_swish,
    ):
        return OutputQuantizeConfig()
    return None


def annotate(model: tf_keras.Model) -> tf_keras.Model:
    """The model with every layer annotated for quantization (ours where TFMOT has none)."""
    annotate_layer = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        return annotate_layer(layer, quantize_config=quantize_config_for(layer))

    return tf_keras.models.clone_model(model, clone_function=clone)


class WiringError(ValueError):
    """The quantization-aware model is not wired as the float model."""


def _inputs_by_layer(config: dict, strip: str = "") -> dict:
    """{layer name: its inbound [layer name, node, tensor] entries} of a functional
    config, with the prefix `strip` taken off every name."""

    def name(value: str) -> str:
        return value[len(strip) :] if strip and value.startswith(strip) else value

    return {
        name(layer["name"]): [
            [name(entry[0]), *entry[1:3]] for node in layer["inbound_nodes"] for entry in node
        ]
        for layer in config["layers"]
    }


def restore_input_order(model: tf_keras.Model, qat_model: tf_keras.Model) -> tf_keras.Model:
    """`qat_model` with every layer's inputs in the order they have in `model`.

    TFMOT 0.8.1's layout transformer can swap a Concatenate's inputs: when the first
    input ends a pattern it rewrites (a convolution, its batch norm and activation) and the
    second does not, the rewritten branch comes second. In a block with a channel-level
    bypass that puts the bypassed channels first, so every later layer reads permuted
    channels (issue 21: the QAT graph of the demo's network, before any training step,
    agreed with the float network on 89% of the images; its concatenation's output
    differed from the float one by 121% of its norm). Add and Multiply are commutative,
    but every multi-input layer is checked, and any difference other than the order is
    an error. The model is wired again from the same (built) layer objects, so the
    variables and quantizers are the ones TFMOT made."""
    want = _inputs_by_layer(model.get_config())
    config = qat_model.get_config()
    prefix = "quant_"
    inputs = {}
    swapped = []
    for layer in config["layers"]:
        got = [[entry[0], *entry[1:3]] for node in layer["inbound_nodes"] for entry in node]
        inputs[layer["name"]] = got
        name = layer["name"][len(prefix) :] if layer["name"].startswith(prefix) else layer["name"]
        if name not in want or len(got) < 2:
            continue
        stripped = _inputs_by_layer({"layers": [layer]}, prefix)[name]
        if stripped == want[name]:
            continue
        if sorted(map(str, stripped)) != sorted(map(str, want[name])):
            raise WiringError(
                f"qat: layer {layer['name']!r} takes {stripped} in the quantization-aware "
                f"model but {want[name]} in the network"
            )
        order = {str(entry): raw for entry, raw in zip(stripped, got, strict=True)}
        inputs[layer["name"]] = [order[str(entry)] for entry in want[name]]
        swapped.append(layer["name"])
    if not swapped:
        return qat_model
    tensors = {}
    for layer in config["layers"]:
        name = layer["name"]
        if not inputs[name]:
            tensors[name] = tf_keras.Input(batch_shape=qat_model.get_layer(name).output.shape)
            continue
        if any(node != 0 or index != 0 for _, node, index in inputs[name]):
            raise WiringError(f"qat: layer {name!r} reads a shared layer or a second output")
        args = [tensors[source] for source, _, _ in inputs[name]]
        tensors[name] = qat_model.get_layer(name)(args if len(args) > 1 else args[0])
    return tf_keras.Model(
        [tensors[entry[0]] for entry in config["input_layers"]],
        [tensors[entry[0]] for entry in config["output_layers"]],
        name=qat_model.name,
    )


def quantize(model: tf_keras.Model) -> tf_keras.Model:
    """The quantization-aware model of a float tf_keras model (its weights are kept)."""
    with tfmot.quantization.keras.quantize_scope(custom_objects()):
        qat_model = tfmot.quantization.keras.quantize_apply(annotate(model), scheme=Scheme())
        return restore_input_order(model, qat_model)
