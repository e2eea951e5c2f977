"""NetAdaptV2 in TensorFlow/Keras, one subpackage per step of the paper's pipeline.

- space: the search space (`NetworkSpec`, `Arch`) and its costs (MACs, parameters).
- builders: the reference networks as specs (MobileNetV1/V2/V3, FastDepth).
- supernet: the super-network (channel-level bypass, ordered dropout) and its training.
- judge: sub-networks' accuracies read from the trained super-network.
- search: multi-layer coordinate descent over a resource (MACs, latency).
- metrics, latency: the resources: MACs, host, lookup-table and phone latency.
- graphs: a sub-network's graph, exported as a plain Keras model.
- discovered: training the discovered network (inherited weights, trajectory transfer).
- shipping: TFLite float/int8 and int8 QAT files, judged on LiteRT.
- pipeline: the end-to-end demo, its comparison at equal training and its report.
- data, depth, configs, common: datasets, the depth task, presets, files and flags.

Nothing is imported here: import the module you need.
"""
