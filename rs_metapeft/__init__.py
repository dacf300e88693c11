"""rs_metapeft: MetaPEFT fine-tuning of RGB-pretrained ViTs on multispectral and SAR imagery."""

from ._version import __version__
from .api import evaluate, fit, load_model, load_recipe, predict

__all__ = ["__version__", "evaluate", "fit", "load_model", "load_recipe", "predict"]
