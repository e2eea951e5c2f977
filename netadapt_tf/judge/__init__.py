"""Reading sub-networks' accuracies from the trained super-network (the search's judge).

- evaluation: accuracy (depth: delta1, RMSE) of archs on the super-network's shared
  weights, with batch-norm recalibration (`SubnetEvaluator`).
- sliced_forward: one arch's forward pass on weights cut to its sizes, about the cost of
  the exported network (`SlicedForward`, `arch_sizes`).

Nothing is imported here: import the module you need.
"""
