"""The bi-level (meta) step: hypergradients of the modulators gamma."""

from .config import MetaConfig
from .hypergrad import (
    HYPERGRADIENT_MODES,
    Hypergradient,
    OuterStepPlan,
    lookahead_hypergradient,
    outer_step_plan,
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
    "OuterStepPlan",
    "build_meta_optimizer",
    "lookahead_hypergradient",
    "outer_step_plan",
    "rule_from_optimizer",
    "step_hypergradient",
]
