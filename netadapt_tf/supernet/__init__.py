"""The super-network (paper Sec. 3.1: channel-level bypass, ordered dropout) and what its
training runs on; the trainer itself is netadapt_tf.training.supernet_trainer.

- network: one Keras model holding every sub-network of a NetworkSpec; the arch arrives as
  explicit mask and kernel inputs (`build_supernet`, `SuperNetwork`, `arch_inputs`,
  `full_out_channels`, `batch_norm_layers`).
- layers: its Keras layers, registered for serialization (`OrderedDropout`,
  `ChannelBypass`, `SuperkernelDepthwiseConv2D`, `SqueezeExcite`,
  `MaskedBatchNormalization`, `ChannelSlice`); import it before loading a saved model.
- slices: where each weight of a sub-network lives in the super-network (`weight_slices`,
  `WeightSlice`, `SupernetWeights`, `assign_slices`), and a plain model of an arch written
  back into them (`load_into_supernet`).
- sampling: which sub-network each image of a batch trains (`OrderedDropoutSampler`,
  `SamplingConfig`, `replica_seed`).
- resume: verified training checkpoints of every variable and the log trimmed to them,
  for exact resume (`TrainingCheckpoints`, `model_state`, `trim_journal`).
- distribute: the strategy a run trains under, by name (`make_strategy`, `is_chief`,
  `worker_id`).
- checkpoint: super-network checkpoints and exported sub-networks on disk
  (`save_supernet`, `load_supernet`, `read_spec`, `save_subnetwork`).

Nothing is imported here: import the module you need.
"""
