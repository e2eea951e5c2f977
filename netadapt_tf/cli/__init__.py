"""What the tools/ programs share: how they start and fail, and their common flags.

- cli_flags: how every tool starts and fails (`run`: one-line usage errors, exit 2;
  `checked_by`, `require`, `positive`: flag validators; `lock_workdir`) and the absl flags
  of the tools that pick a super-network and an arch of it (`define_model_flags`,
  `spec_from_flags`, `define_arch_flag`, `read_arch`).

The top layer with pipeline/: library code never imports it. Nothing is imported here:
import the module you need.
"""
