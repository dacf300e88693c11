"""Export fine-tuned models: adapter-only safetensors + manifest, LoRA merging, pruning."""

from .artifact import (
    ADAPTER_FILE,
    MANIFEST_FILE,
    ExportError,
    adapter_state,
    load_export,
    read_manifest,
    save_export,
    write_manifest,
)

__all__ = [
    "ADAPTER_FILE",
    "MANIFEST_FILE",
    "ExportError",
    "adapter_state",
    "load_export",
    "read_manifest",
    "save_export",
    "write_manifest",
]
