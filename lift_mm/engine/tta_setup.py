"""Test-time ensembling settings of a config, shared by ``tools/test.py --tta`` and TestTimeEnsembleHook.

They follow mmpretrain's convention: ``tta_model`` wraps ``model`` (``module`` is filled in) and ``tta_pipeline``
replaces the test pipeline. Both ways of switching TTE on read them through :func:`tta_settings`, so they test the
same thing.
"""
import copy
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config, ConfigDict

# LIFT averages logits, not the softmax scores mmpretrain's own AverageClsScoreTTA averages.
DEFAULT_TTA_MODEL = dict(type='AverageLogitsTTA')


def _tte_config_hint(filename: Optional[str]) -> str:
    """Where to find a ``tta_pipeline``: the ``*_tte.py`` config beside ``filename`` if there is one."""
    if filename:
        stem, ext = osp.splitext(filename)
        if osp.isfile(f'{stem}_tte{ext}'):
            return f'Test with {stem}_tte{ext}, which sets it.'
    # No sizes here: the views' size must be the model's input size, which differs between configs.
    return ('The configs/lift/*_tte.py configs set it (configs/_base_/tte/ holds the base files they use); '
            "otherwise add [dict(type='LoadImageFromFile'), dict(type='MultiViewCrop', crop_size=..., "
            'short_edge=...)] with crop_size the input size of the model.')


def tta_settings(cfg: Config) -> Tuple[dict, List[dict]]:
    """The ``tta_model`` (default :data:`DEFAULT_TTA_MODEL`) and ``tta_pipeline`` of ``cfg``, copied.

    Raises:
        KeyError: ``tta_pipeline`` is missing; it has no sensible default (the views depend on the resolution).
        ValueError: ``tta_model`` sets ``module``, which is always the config's ``model``.
    """
    if not cfg.get('tta_pipeline'):
        raise KeyError(f'Test-time ensembling needs `tta_pipeline` (the test pipeline that makes the views), which '
                       f'{cfg.filename or "the config"} does not set. {_tte_config_hint(cfg.filename)}')
    tta_model = copy.deepcopy(dict(cfg.get('tta_model') or DEFAULT_TTA_MODEL))
    if 'module' in tta_model:
        raise ValueError('`tta_model` must not set `module`: test-time ensembling wraps the config\'s `model`.')
    return tta_model, copy.deepcopy(list(cfg.tta_pipeline))


def enable_tta(cfg: Config) -> None:
    """Switch ``cfg`` to test-time ensembling in place, as mmpretrain's ``tools/test.py --tta`` does."""
    tta_model, tta_pipeline = tta_settings(cfg)
    cfg.model = ConfigDict(**tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = tta_pipeline
