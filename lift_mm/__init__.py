"""lift_mm: LIFT long-tail fine-tuning of CLIP as an mmpretrain plugin.

Importing this package registers every component in mmpretrain's registries, so configs enable it with
``custom_imports = dict(imports=['lift_mm'], allow_failed_imports=False)``.
"""
from . import datasets, engine, evaluation, models, utils  # noqa: F401

__version__ = '0.1.0'
__all__ = ['datasets', 'engine', 'evaluation', 'models', 'utils', '__version__']
