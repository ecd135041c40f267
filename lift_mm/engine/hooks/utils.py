"""What hooks look through: the model's distributed wrapper and the training set's dataset wrappers."""
import copy
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.model import is_model_wrapper
from torch import nn

__all__ = ['inner_datasets', 'is_dataset_wrapper', 'per_class_indices', 'train_images_cfg', 'unwrap_model']


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside MMEngine's model wrappers (``MMDistributedDataParallel``, FSDP, ...), or ``model``.

    Args:
        model (nn.Module): A runner's model.

    Returns:
        nn.Module: The model that the config built.
    """
    return model.module if is_model_wrapper(model) else model


def _wrapped(dataset: Any, name: str) -> Any:
    """The ``dataset`` / ``datasets`` that a built wrapper or a wrapper's config holds, else None."""
    if isinstance(dataset, dict):
        inner = dataset.get(name)
        # In a config, a wrapper holds dataset configs; any other value under that key is a setting.
        is_config = isinstance(inner, dict) or (isinstance(inner, (list, tuple)) and bool(inner)
                                                and all(isinstance(part, dict) for part in inner))
        return inner if is_config else None
    return getattr(dataset, name, None)


def is_dataset_wrapper(dataset: Any) -> bool:
    """Whether ``dataset`` (built, or its config) wraps others: it has a ``dataset`` (``RepeatDataset``,
    ``ClassBalancedDataset``, torch's ``Subset``, ...) or ``datasets`` (``ConcatDataset``, MMEngine's or torch's).

    Args:
        dataset (Any): A dataset or a dataset config.

    Returns:
        bool: True for a wrapper.
    """
    return _wrapped(dataset, 'datasets') is not None or _wrapped(dataset, 'dataset') is not None


def inner_datasets(dataset: Any, prefix: str = '') -> List[Tuple[str, Any]]:
    """The datasets that hold the samples, under any number of wrappers (see :func:`is_dataset_wrapper`).

    Args:
        dataset (Any): A dataset or a dataset config.
        prefix (str): Prepended to the positions. Defaults to ``''``.

    Returns:
        list[tuple[str, Any]]: Each innermost dataset (or config) with its position: ``''`` for the one inside
        single-dataset wrappers, ``'0.'``, ``'1.'``, ... for the parts of a concatenation (``'1.0.'`` nested).
    """
    parts = _wrapped(dataset, 'datasets')
    if parts is not None:
        return [inner for index, part in enumerate(parts) for inner in inner_datasets(part, f'{prefix}{index}.')]
    inner = _wrapped(dataset, 'dataset')
    return [(prefix, dataset)] if inner is None else inner_datasets(inner, prefix)


def train_images_cfg(cfg, owner: str, pipeline: Optional[Sequence[dict]] = None) -> dict:
    """The config of the training images, once each (dataset wrappers such as ``RepeatDataset`` left out), with
    the test pipeline or ``pipeline`` instead of the training one: the images without augmentation.

    Args:
        cfg (Config): The run's config (``train_dataloader``, ``test_dataloader``).
        owner (str): Who asks, named in the error.
        pipeline (Sequence[dict], optional): The pipeline; None takes the test data loader's. Defaults to None.

    Returns:
        dict: A dataset config.

    Raises:
        TypeError: If the training dataset is not one dataset with a ``pipeline`` under its wrappers.
    """
    inner = inner_datasets(cfg.train_dataloader.dataset)
    dataset = copy.deepcopy(inner[0][1] if len(inner) == 1 else cfg.train_dataloader.dataset)
    if len(inner) != 1 or 'pipeline' not in dataset:
        raise TypeError(f'{owner} cannot find the pipeline of the training dataset {dataset.get("type")!r} '
                        'to replace it by the test pipeline.')
    dataset['pipeline'] = copy.deepcopy(pipeline or cfg.test_dataloader.dataset.pipeline)
    return dataset


def per_class_indices(labels: Sequence[int], shots: Optional[int], seed: int) -> List[int]:
    """Sorted indices of at most ``shots`` samples of each class, drawn at random per class with ``seed``.

    Args:
        labels (Sequence[int]): The label of every sample.
        shots (int, optional): Samples per class; None takes all.
        seed (int): Seed of the draw, so that every process draws the same.

    Returns:
        list[int]: Indices into ``labels``.
    """
    labels = np.asarray(labels).reshape(-1)
    if shots is None:
        return list(range(len(labels)))
    generator = np.random.default_rng(seed)
    chosen = [generator.permutation(np.flatnonzero(labels == label))[:shots] for label in np.unique(labels)]
    return sorted(np.concatenate(chosen).tolist())
