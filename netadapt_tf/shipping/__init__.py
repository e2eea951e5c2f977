"""Shipping a discovered network: TFLite files (float32, float16, int8 post-training and
quantization-aware-trained) with their accuracy, size and host latency.

`pipeline.export_tflite_variants` is the entry point (tools/export_tflite.py calls it).
Quantization-aware training runs in a separate process (`qat.py`, `qat_child.py`) because
tensorflow-model-optimization works on tf_keras models only and switches the whole process
to tf_keras when imported; docs/shipping.md says why and how. Under all of them, and under
the latency metrics, netadapt_tf.metrics.tflite converts a plain Keras model to TFLite and
runs it on LiteRT (`convert`, `write_tflite`, `make_interpreter`, `run_tflite`, `parity`,
`QUANTIZATIONS`).
"""
