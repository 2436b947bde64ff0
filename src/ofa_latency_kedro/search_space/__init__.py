"""What a subnet is: `Arch`, the search spaces, and the static network OFA would run."""

from ofa_latency_kedro.search_space.arch import Arch, ArchError, ArchLike
from ofa_latency_kedro.search_space.batch import ArchBatch
from ofa_latency_kedro.search_space.network import (
    block_specs,
    build_subnet,
    cost_table,
    net_config,
    subnet_stats,
)
from ofa_latency_kedro.search_space.spaces import (
    SPACE_NAMES,
    SearchSpace,
    get_space,
    infer_space,
    spaces_holding,
)
from ofa_latency_kedro.search_space.table import subnet_table

__all__ = [
    "SPACE_NAMES",
    "infer_space",
    "spaces_holding",
    "Arch",
    "ArchBatch",
    "ArchError",
    "ArchLike",
    "SearchSpace",
    "block_specs",
    "build_subnet",
    "cost_table",
    "get_space",
    "net_config",
    "subnet_stats",
    "subnet_table",
]
