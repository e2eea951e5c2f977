"""Training the discovered network (paper Sec. 4: inherited weights, trajectory transfer),
and the uniformly shrunk baseline it is compared with.

- trainer: the exported sub-network trained as a plain Keras model, in phases, resumable
  (`DiscoveredRun`, `DiscoveredTrainer`, `DiscoveredOptions`, `DiscoveredResult`).
- outputs: the files of a run, written atomically, and the initial-model check
  (`save_outputs`, `append_log`, `check_initial_model`).
- recipe: KerasCV RandAugment / MixUp / CutMix and stochastic depth with its folding
  (`make_augmenter`, `stochastic_depth_rates`, `with_stochastic_depth`,
  `fold_stochastic_depth`).
- trajectory: a search trajectory read and checked against the spec
  (`read_trajectory`, `check_trajectory`).
- uniform_baseline: the initial network shrunk uniformly to a ratio or a resource
  (`uniform_arch`, `uniform_arch_for_resource`, `UniformBaseline`).

Nothing is imported here: import the module you need.
"""
