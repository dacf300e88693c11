"""PEFT modules with learnable modulators (gamma), baselines, and their injection into timm ViTs."""

from .adapter import Adapter
from .adaptformer import AdaptFormer
from .baselines import VPTPrompts
from .config import DEFAULT_POSITIONS, LORA_POSITIONS, METHODS, POSITIONS, PeftConfig
from .inject import inject_peft
from .lora import LoRA, LoRALinear
from .modulator import (
    PARAMETRISATIONS,
    ModulatedModule,
    clamp_modulators,
    effective_scale_map,
    gamma_map,
    gamma_parameters,
    gamma_table,
    initial_scale_map,
    modulators,
    peft_modules,
    split_parameters,
    switched_off,
)

__all__ = [
    "DEFAULT_POSITIONS",
    "LORA_POSITIONS",
    "METHODS",
    "PARAMETRISATIONS",
    "POSITIONS",
    "AdaptFormer",
    "Adapter",
    "LoRA",
    "LoRALinear",
    "ModulatedModule",
    "PeftConfig",
    "VPTPrompts",
    "clamp_modulators",
    "effective_scale_map",
    "gamma_map",
    "gamma_parameters",
    "gamma_table",
    "initial_scale_map",
    "inject_peft",
    "modulators",
    "peft_modules",
    "split_parameters",
    "switched_off",
]
