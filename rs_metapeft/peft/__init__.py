"""PEFT modules with learnable modulators (gamma), and their injection into timm ViTs."""

from .adaptformer import AdaptFormer
from .config import LORA_POSITIONS, POSITIONS, PeftConfig
from .inject import gamma_map, gamma_table, inject_peft, peft_modules
from .lora import LoRA, LoRALinear
from .modulator import GAMMA_SUFFIX, ModulatedModule, gamma_parameters, is_gamma

__all__ = [
    "GAMMA_SUFFIX",
    "LORA_POSITIONS",
    "POSITIONS",
    "AdaptFormer",
    "LoRA",
    "LoRALinear",
    "ModulatedModule",
    "PeftConfig",
    "gamma_map",
    "gamma_parameters",
    "gamma_table",
    "inject_peft",
    "is_gamma",
    "peft_modules",
]
