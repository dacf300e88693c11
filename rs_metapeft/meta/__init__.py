"""The bi-level (meta) step: hypergradients of the modulators gamma."""

from .config import MetaConfig
from .hypergrad import (
    HYPERGRADIENT_MODES,
    Hypergradient,
    lookahead_hypergradient,
    step_hypergradient,
)
from .optim import META_OPTIMIZERS, NormalizedSGD, build_meta_optimizer
from .update_rules import LOOKAHEAD_RULES, LookaheadRule, rule_from_optimizer

__all__ = [
    "HYPERGRADIENT_MODES",
    "LOOKAHEAD_RULES",
    "META_OPTIMIZERS",
    "Hypergradient",
    "LookaheadRule",
    "MetaConfig",
    "NormalizedSGD",
    "build_meta_optimizer",
    "lookahead_hypergradient",
    "rule_from_optimizer",
    "step_hypergradient",
]
