"""The bi-level (meta) step: hypergradients of the modulators gamma."""

from .config import MetaConfig
from .hypergrad import (
    HYPERGRADIENT_MODES,
    Hypergradient,
    lookahead_hypergradient,
    split_parameters,
    step_hypergradient,
)

__all__ = [
    "HYPERGRADIENT_MODES",
    "Hypergradient",
    "MetaConfig",
    "lookahead_hypergradient",
    "split_parameters",
    "step_hypergradient",
]
