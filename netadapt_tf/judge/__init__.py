"""Reading sub-networks' accuracies from the trained super-network (the search's judge).

- evaluation: accuracy (depth: delta1, RMSE) of archs on the super-network's shared
  weights, with batch-norm recalibration (`SubnetEvaluator`, `batch_norm_layers`).
- sliced_forward: one arch's forward pass on weights cut to its sizes, about the cost of
  the exported network (`SlicedForward`, `arch_sizes`).
- quality: how well those readings rank archs compared with training them alone
  (`kendall_tau`, `spearman`, `span_set`, `decision_set`, `rank_report`,
  `decision_report`, `train_standalone`).

Nothing is imported here: import the module you need.
"""
