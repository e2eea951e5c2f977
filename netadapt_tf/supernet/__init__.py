"""The super-network and its training (paper Sec. 3.1: channel-level bypass, ordered dropout).

- network: one Keras model holding every sub-network of a NetworkSpec; the arch arrives as
  explicit mask and kernel inputs (`build_supernet`, `SuperNetwork`, `arch_inputs`,
  `full_out_channels`).
- layers: its Keras layers, registered for serialization (`OrderedDropout`,
  `ChannelBypass`, `SuperkernelDepthwiseConv2D`, `SqueezeExcite`,
  `MaskedBatchNormalization`, `ChannelSlice`); import it before loading a saved model.
- slices: where each weight of a sub-network lives in the super-network (`weight_slices`,
  `WeightSlice`, `SupernetWeights`, `assign_slices`).
- sampling: which sub-network each image of a batch trains (`OrderedDropoutSampler`,
  `SamplingConfig`, `replica_seed`).
- training: the trainer inside a tf.distribute strategy, resumable (`SupernetTrainer`,
  `TrainConfig`, `make_optimizer`, `check_batch_size`, `check_steps_per_epoch`,
  `check_run_record`).
- resume: verified training checkpoints of every variable and the log trimmed to them,
  for exact resume (`TrainingCheckpoints`, `model_state`, `trim_journal`).
- distribute: the strategy a run trains under, by name (`make_strategy`, `is_chief`,
  `worker_id`).
- checkpoint: super-network checkpoints and exported sub-networks on disk
  (`save_supernet`, `load_supernet`, `read_spec`, `save_subnetwork`).

Nothing is imported here: import the module you need.
"""
