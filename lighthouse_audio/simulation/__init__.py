"""Clotho-Moment-style simulation: captioned foregrounds overlaid on background clips.

``recipe`` (the official recipe format), ``preprocess`` (background cutting, foreground
trimming), ``sampler`` (Algorithm 1: placements and gains), ``render`` (mixing, datasets),
``manifest`` (user corpora) and ``pipeline`` (corpora -> dataset). Nothing here imports torch.
"""

from lighthouse_audio.simulation.recipe import (
    Background,
    ForegroundEvent,
    Recipe,
    RecipeError,
    load_recipes,
    save_recipes,
)
from lighthouse_audio.simulation.sampler import SimulationConfig, sample_recipes

__all__ = [
    "Background",
    "ForegroundEvent",
    "Recipe",
    "RecipeError",
    "SimulationConfig",
    "load_recipes",
    "sample_recipes",
    "save_recipes",
]
