"""Architecture search over a trained super-network: NetAdaptV2's multi-layer coordinate
descent (mcd.py), its resumable work-directory driver (driver.py) and what they record.

See docs/search.md.
"""

from netadapt_tf.search.driver import SearchDriver
from netadapt_tf.search.mcd import (
    SAMPLERS,
    MCDConfig,
    MCDOptimizer,
    SearchResult,
    SearchStalledError,
    SearchState,
    StartFailedError,
)
from netadapt_tf.search.records import InitialRecord, IterationRecord, SampleRecord
from netadapt_tf.search.units import SearchUnit, residual_streams, search_units

__all__ = [
    "SAMPLERS",
    "InitialRecord",
    "IterationRecord",
    "MCDConfig",
    "MCDOptimizer",
    "SampleRecord",
    "SearchDriver",
    "SearchResult",
    "SearchStalledError",
    "SearchState",
    "SearchUnit",
    "StartFailedError",
    "residual_streams",
    "search_units",
]
