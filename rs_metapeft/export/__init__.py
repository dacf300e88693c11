"""Export fine-tuned models: trained tensors + a manifest that references the base weights."""

from .artifact import (
    ADAPTER_FILE,
    MANIFEST_FILE,
    ExportError,
    adapter_state,
    base_section,
    load_export,
    read_manifest,
    save_export,
    tensor_groups,
    tensors_sha256,
    write_manifest,
)

__all__ = [
    "ADAPTER_FILE",
    "MANIFEST_FILE",
    "ExportError",
    "adapter_state",
    "base_section",
    "load_export",
    "read_manifest",
    "save_export",
    "tensor_groups",
    "tensors_sha256",
    "write_manifest",
]
