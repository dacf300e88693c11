"""rs_metapeft: MetaPEFT fine-tuning of RGB-pretrained ViTs on multispectral and SAR imagery."""

from .api import evaluate, fit, load_model, load_recipe, predict

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate", "fit", "load_model", "load_recipe", "predict"]
