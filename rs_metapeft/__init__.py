"""rs_metapeft: MetaPEFT fine-tuning of RGB-pretrained ViTs on multispectral and SAR imagery."""

from .api import fit, load_recipe

__version__ = "0.1.0"
__all__ = ["__version__", "fit", "load_recipe"]
