"""lift_mm: LIFT long-tail fine-tuning of CLIP as an mmpretrain plugin.

Importing this package registers every component in mmpretrain's registries, so configs enable it with
``custom_imports = dict(imports=['lift_mm'], allow_failed_imports=False)``.
"""
import warnings

# mmcv-lite (what lift_mm installs) has none of mmcv's compiled ops, and mmcv's transformer bricks, which
# mmpretrain imports, warn on every import that one of them (MultiScaleDeformableAttention, a detection op that
# neither mmpretrain's classifiers nor lift_mm use) is missing. Installed before the imports below reach mmpretrain.
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``', category=UserWarning,
                        module='mmcv.cnn.bricks.transformer')

from . import datasets, engine, evaluation, models, utils  # noqa: E402,F401

__version__ = '0.1.0'
__all__ = ['datasets', 'engine', 'evaluation', 'models', 'utils', '__version__']
