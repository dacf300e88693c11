"""PEFT modules with learnable modulators (gamma), baselines, and their injection into timm ViTs."""

from .adapter import Adapter
from .adaptformer import AdaptFormer
from .baselines import VPTPrompts
from .config import DEFAULT_POSITIONS, LORA_POSITIONS, METHODS, POSITIONS, PeftConfig
from .inject import gamma_map, gamma_table, inject_peft, peft_modules
from .lora import LoRA, LoRALinear
from .modulator import GAMMA_SUFFIX, ModulatedModule, gamma_parameters, is_gamma

__all__ = [
    "DEFAULT_POSITIONS",
    "GAMMA_SUFFIX",
    "LORA_POSITIONS",
    "METHODS",
    "POSITIONS",
    "AdaptFormer",
    "Adapter",
    "LoRA",
    "LoRALinear",
    "ModulatedModule",
    "PeftConfig",
    "VPTPrompts",
    "gamma_map",
    "gamma_parameters",
    "gamma_table",
    "inject_peft",
    "is_gamma",
    "peft_modules",
]
