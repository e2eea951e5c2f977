"""Adam, RMSprop and SGD whose update of a variable is one fused TensorFlow kernel.

Keras 3 writes each variable's update as 15-30 small ops and computes Adam's bias corrections
again for every variable. Tracing a training step costs Python time per op: on the demo's
network (231 trainable variables) Keras' Adam made 8,300 of the step graph's 17,200 ops and
half of its 12 s trace, which the demo's comparison pays once per network it trains
(docs/benchmarks.md, "The training columns' fixed costs"). These subclasses compute the
step's shared scalars once and update each variable with TensorFlow's own kernel for the
same rule (`ResourceApplyAdam`, `ResourceApplyRMSProp`, `ResourceApplyKerasMomentum`):

    Adam:     m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
              w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)
    RMSprop:  v = rho v + (1 - rho) g^2; mom = momentum mom + lr g / sqrt(v + eps); w -= mom
    SGD:      m = momentum m - lr g; w += momentum m - lr g (Nesterov) or m

which are Keras' formulas term for term, so results agree to float rounding (the kernels
order a few products differently; tests/test_fused_optimizers.py bounds the difference).
The variables, their names and the checkpoints are Keras' own: a checkpoint written with
the Keras class resumes with these and back. Cases without a kernel for Keras' rule take
Keras' own update: sparse gradients, AMSGrad, centred RMSprop, RMSprop without momentum,
SGD without momentum.
"""

import keras
import tensorflow as tf


class _SharedScalars:
    """Computes the step's scalars once per apply, for every variable's update_step.

    Under tf.distribute each replica computes them before the merge that runs the updates
    (identical values); they are dropped after the apply, so no trace reads another's."""

    _shared = None

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        self._shared = self._step_scalars(learning_rate)
        try:
            super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._shared = None

    def _step_scalars(self, learning_rate) -> dict:
        return {"lr": tf.cast(learning_rate, tf.float32)}

    def _fused(self, gradient, variable) -> bool:
        """Whether `variable`'s update can take the fused kernel."""
        return (
            self._shared is not None
            and not isinstance(gradient, tf.IndexedSlices)
            and tf.as_dtype(variable.dtype) == tf.float32
        )

    def _slot(self, slots, variable):
        """The handle of `variable`'s slot in `slots` (the replica's copy under a strategy)."""
        return slots[self._get_variable_index(variable)].value.handle


def _const(value) -> tf.Tensor:
    return tf.constant(value, tf.float32)


class FusedAdam(_SharedScalars, keras.optimizers.Adam):
    """keras.optimizers.Adam, each variable updated by ResourceApplyAdam."""

    def _step_scalars(self, learning_rate) -> dict:
        step = tf.cast(self.iterations + 1, tf.float32)
        return {
            **super()._step_scalars(learning_rate),
            "beta1_power": tf.pow(_const(self.beta_1), step),
            "beta2_power": tf.pow(_const(self.beta_2), step),
        }

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not self._fused(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._slot(self._momentums, variable),
            v=self._slot(self._velocities, variable),
            beta1_power=self._shared["beta1_power"],
            beta2_power=self._shared["beta2_power"],
            lr=self._shared["lr"],
            beta1=_const(self.beta_1),
            beta2=_const(self.beta_2),
            epsilon=_const(self.epsilon),
            grad=tf.cast(gradient, tf.float32),
        )


class FusedRMSprop(_SharedScalars, keras.optimizers.RMSprop):
    """keras.optimizers.RMSprop with momentum, each variable updated by ResourceApplyRMSProp."""

    def update_step(self, gradient, variable, learning_rate):
        if self.centered or self.momentum <= 0 or not self._fused(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle,
            ms=self._slot(self._velocities, variable),
            mom=self._slot(self._momentums, variable),
            lr=self._shared["lr"],
            rho=_const(self.rho),
            momentum=_const(self.momentum),
            epsilon=_const(self.epsilon),
            grad=tf.cast(gradient, tf.float32),
        )


class FusedSGD(_SharedScalars, keras.optimizers.SGD):
    """keras.optimizers.SGD with momentum, each variable updated by
    ResourceApplyKerasMomentum."""

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or not self._fused(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=self._slot(self.momentums, variable),
            lr=self._shared["lr"],
            grad=tf.cast(gradient, tf.float32),
            momentum=_const(self.momentum),
            use_nesterov=self.nesterov,
        )


KERAS_CLASSES = {
    FusedAdam: keras.optimizers.Adam,
    FusedRMSprop: keras.optimizers.RMSprop,
    FusedSGD: keras.optimizers.SGD,
}


def keras_twin(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """A new optimizer of Keras' own class with `optimizer`'s configuration (a fused class
    against its rule in the benchmarks and tests)."""
    if type(optimizer) not in KERAS_CLASSES:
        raise ValueError(
            f"optimizer: {type(optimizer).__name__} is not one of "
            f"{sorted(cls.__name__ for cls in KERAS_CLASSES)}"
        )
    return KERAS_CLASSES[type(optimizer)].from_config(optimizer.get_config())
