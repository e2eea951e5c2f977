"""Training the super-network (paper Sec. 3.1), above the judge that monitors it.

- supernet_trainer: the trainer inside a tf.distribute strategy, resumable
  (`SupernetTrainer`, `TrainConfig`, `make_optimizer`, `check_batch_size`,
  `check_steps_per_epoch`, `check_run_record`).
- step: the training step's recipe both trainers use: the loss, weight decay, the score,
  the cross-replica sum and the loop over steps with its non-finite check
  (`classification_loss`, `depth_loss`, `run_steps`, `NonFiniteLossError`).
- fused_optimizers: Keras' Adam, RMSprop and SGD with each variable's update one fused
  TensorFlow kernel, for a cheaper trace (`FusedAdam`, `FusedRMSprop`, `FusedSGD`).
- run_record: the `run.json` of a training work directory, written by both trainers and
  read by the search (`parse`, `read`, `check`, `RUN_FILE`).

Nothing is imported here: import the module you need.
"""
