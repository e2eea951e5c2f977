"""Sub-network graphs: one set of rules, built as the exported model, the QAT rebuild and
the sliced forward, and the checks that the export computes what the super-network does.

- subnet_graph: the graph of a sub-network, written once for every way it is computed
  (`build_network`, `build_graph`, `KerasOps`, `Flavour`, `FreshWeights`); its Keras names
  are space.keras_names's.
- export: a sub-network as a plain, smaller Keras model with inherited weights
  (`export_subnetwork`, `max_abs_diff`, `KERAS3`); the way back is
  supernet.slices.load_into_supernet.
- parity: does the export compute what the masked super-network computes
  (`check_export`, `Parity`, `random_images`).
- weight_transfer: the overlapping weights of one exported arch copied into another
  (`copy_overlapping_weights`, `overlap_copy`).

Nothing is imported here: import the module you need.
"""
