"""Lightning tasks."""

from .metapeft import GroupsConfig, MetaPEFTTask, OptimizerConfig

__all__ = ["GroupsConfig", "MetaPEFTTask", "OptimizerConfig"]
