"""Test-time ensembling settings of a config, shared by ``tools/test.py --tta`` and TestTimeEnsembleHook.

They follow mmpretrain's convention: ``tta_model`` wraps ``model`` (``module`` is filled in) and ``tta_pipeline``
replaces the test pipeline. Both ways of switching TTE on read them through :func:`tta_settings`, so they test the
same thing.
"""
import copy
from typing import List, Tuple

from mmengine.config import Config, ConfigDict

# LIFT averages logits, not the softmax scores mmpretrain's own AverageClsScoreTTA averages.
DEFAULT_TTA_MODEL = dict(type='AverageLogitsTTA')


def tta_settings(cfg: Config) -> Tuple[dict, List[dict]]:
    """The ``tta_model`` (default :data:`DEFAULT_TTA_MODEL`) and ``tta_pipeline`` of ``cfg``, copied.

    Raises:
        KeyError: ``tta_pipeline`` is missing; it has no sensible default (the views depend on the resolution).
        ValueError: ``tta_model`` sets ``module``, which is always the config's ``model``.
    """
    if not cfg.get('tta_pipeline'):
        raise KeyError('Test-time ensembling needs `tta_pipeline` in the config: the test pipeline that makes the '
                       "views, e.g. [dict(type='LoadImageFromFile'), dict(type='MultiViewCrop', crop_size=224, "
                       "short_edge=248)]. The configs/lift/*_tte.py configs define it.")
    tta_model = copy.deepcopy(dict(cfg.get('tta_model') or DEFAULT_TTA_MODEL))
    if 'module' in tta_model:
        raise ValueError('`tta_model` must not set `module`: test-time ensembling wraps the config\'s `model`.')
    return tta_model, copy.deepcopy(list(cfg.tta_pipeline))


def enable_tta(cfg: Config) -> None:
    """Switch ``cfg`` to test-time ensembling in place, as mmpretrain's ``tools/test.py --tta`` does."""
    tta_model, tta_pipeline = tta_settings(cfg)
    cfg.model = ConfigDict(**tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = tta_pipeline
