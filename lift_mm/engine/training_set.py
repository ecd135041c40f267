"""The training images seen as a test set: the training dataset's config with the test pipeline, and a
deterministic draw of at most N images per class. Shared by head initialisation, training accuracy and
``tools/test.py --split train``."""
import copy
from typing import List, Optional, Sequence

import numpy as np
from mmengine.config import Config

from .hooks.utils import inner_datasets

__all__ = ['sample_per_class', 'training_set_config']


def training_set_config(cfg: Config, pipeline: Optional[Sequence[dict]] = None, user: str = 'lift_mm') -> dict:
    """The config of the dataset inside ``cfg.train_dataloader`` with the test pipeline in place of its own.

    Dataset wrappers (``RepeatDataset``, ``ClassBalancedDataset``, ...) are left out, so every training image is
    seen once; a concatenation of several datasets has no single pipeline to replace and is refused.

    Args:
        cfg (Config): A training config.
        pipeline (Sequence[dict], optional): The pipeline to use; None takes ``cfg.test_dataloader``'s.
            Defaults to None.
        user (str): Who asks, named in errors. Defaults to ``'lift_mm'``.

    Returns:
        dict: A dataset config, copied.
    """
    if not cfg.get('train_dataloader'):
        raise KeyError(f'{user} needs the training set, but {cfg.filename or "the config"} has no `train_dataloader`.')
    inner = inner_datasets(cfg.train_dataloader.dataset)
    dataset = copy.deepcopy(inner[0][1] if len(inner) == 1 else cfg.train_dataloader.dataset)
    if len(inner) != 1 or 'pipeline' not in dataset:
        raise TypeError(f'{user} cannot find the pipeline of the training dataset {dataset.get("type")!r} '
                        'to replace it by the test pipeline.')
    if pipeline is None:
        if not cfg.get('test_dataloader'):
            raise KeyError(f'{user} takes the test pipeline from `test_dataloader`, which '
                           f'{cfg.filename or "the config"} does not set.')
        pipeline = cfg.test_dataloader.dataset.pipeline
    dataset['pipeline'] = copy.deepcopy(list(pipeline))
    return dataset


def sample_per_class(labels: Sequence[int], max_per_class: Optional[int], seed: int) -> List[int]:
    """Indices of at most ``max_per_class`` samples of each class, drawn at random per class with ``seed``.

    The draw depends on the labels and the seed alone, so every process of a distributed run (and every later
    call) picks the same samples.

    Args:
        labels (Sequence[int]): The class of each sample.
        max_per_class (int, optional): Samples to keep per class; None keeps all.
        seed (int): Seed of the draw.

    Returns:
        list[int]: The chosen indices in increasing order.
    """
    labels = np.asarray(labels).reshape(-1)
    if max_per_class is None:
        return list(range(len(labels)))
    generator = np.random.default_rng(seed)
    chosen = [generator.permutation(np.flatnonzero(labels == label))[:max_per_class] for label in np.unique(labels)]
    return sorted(np.concatenate(chosen).tolist()) if chosen else []
