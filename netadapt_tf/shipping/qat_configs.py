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
"""

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

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


def custom_objects() -> dict:
    """What quantize_scope needs to clone the annotated model."""
    return {
        "ChannelSlice": ChannelSlice,
        "OutputQuantizeConfig": OutputQuantizeConfig,
        "PassThroughQuantizeConfig": PassThroughQuantizeConfig,
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


def quantize(model: tf_keras.Model) -> tf_keras.Model:
    """The quantization-aware model of a float tf_keras model (its weights are kept)."""
    with tfmot.quantization.keras.quantize_scope(custom_objects()):
        return tfmot.quantization.keras.quantize_apply(annotate(model))
