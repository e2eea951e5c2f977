"""The end-to-end demo (tools/demo.py): its stages, the comparison at equal training, the
report.

- demo: the demo's flow, which tools/demo.py runs: the search space's costs, export checks,
  then every stage as a tool (`check_search_space`, `run_flow`).
- stage_runner: runs the stages in order, each once for its command, resumable, recording
  what made them (`StageRunner`, `ToolStage`, `read_stages`, `StageFailedError`).
- comparison: which networks the comparison trains (uniform curve, discovered, random-search
  pick), their records and the verdict's arithmetic (`plan_networks`, `Network`, `Run`,
  `write_networks`/`read_networks`, `write_results`/`read_results`, `Margin`).
- comparison_training: one column of it, every planned network from one start
  (`train_column`).
- comparison_measure: host latency on LiteRT and the super-network's reading per network
  (`host_latencies`, `write_measured`, `read_measured`, `Measured`).
- comparison_report: its section of report.md: table, plot, verdict in words (`section`).
- judge_quality: how well the judge's readings rank archs compared with training them alone,
  on archs the MCD search draws (`kendall_tau`, `spearman`, `span_set`, `decision_set`,
  `rank_report`, `decision_report`, `train_standalone`; pareto_record and
  benchmarks/rank_correlation.py use it).
- demo_report: the demo's report.md from the files its stages wrote (`write_report`,
  `time_breakdown`, `shipping_table`).

Nothing is imported here: import the module you need.
"""
