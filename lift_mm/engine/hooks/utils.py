"""What hooks look through: the model's distributed wrapper and the training set's dataset wrappers."""
from typing import Any, List, Tuple

from mmengine.model import is_model_wrapper
from torch import nn

__all__ = ['inner_datasets', 'is_dataset_wrapper', 'unwrap_model']


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
