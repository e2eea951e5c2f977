"""The search space and what a point in it costs (paper Sec. 3: the architecture description).

- spec: the declarative description of a super-network, the one source of truth
  (`NetworkSpec` of `LayerSpec`, `BlockSpec`, `PoolSpec`, `UpsampleSpec`, `SkipSpec`;
  `load_spec`); the node records with their JSON are spec_nodes's (`node_from_json`), the
  checks that follow channels and resolution through a whole network network_checks's
  (`validate_network`).
- arch: a sub-network, the spec with every choice made (`Arch`, `LayerChoice`,
  `full_arch`, `smallest_arch`, `random_arch`, `validate_arch`, `save_arch`, `load_arch`).
- keras_names: the Keras names of a spec's layers and their parts with weights, shared by
  the super-network, the exporter and the sliced forward (`layer_name`, `weight_parts`).
- subnet: the concrete channels, kept filters and bypasses of an arch (`resolve`,
  `SubNetwork`, `ResolvedLayer`, `ResolvedBlock`).
- channel_math: the arithmetic of ordered dropout, channel bypass and the superkernel
  (`ordered_mask`, `bypass_mask`, `superkernel_crop`, ...), shared by layers and exporter.
- macs: MACs and parameters of an arch (`count`, `layer_counts`, `Counts`).
- cost_report: those counts as per-layer and sampled reports (`cost_report`,
  `format_table`, `sample_counts`, `spread`).
- arch_table: an arch as the paper's Tables 8-10 (`architecture_table`,
  `architecture_markdown`).
- task: what a spec is trained for, classification or depth (`task_of`, `check_task`,
  `check_depth_metric`).

Nothing is imported here: import the module you need.
"""
