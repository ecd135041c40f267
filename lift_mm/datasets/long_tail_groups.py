"""Many / medium / few class groups of a long-tailed training set."""
from typing import Dict, Sequence, Union

import numpy as np

GROUP_NAMES = ('many', 'medium', 'few')


def long_tail_groups(class_counts: Union[Sequence[int], np.ndarray],
                     many_thr: int = 100,
                     few_thr: int = 20) -> Dict[str, np.ndarray]:
    """Split classes into the many / medium / few groups by training count.

    The usual long-tail protocol (OLTR, LIFT): a class is *many-shot* with
    more than ``many_thr`` training images, *few-shot* with fewer than
    ``few_thr`` and *medium-shot* otherwise, i.e.
    ``few_thr <= count <= many_thr``.

    Args:
        class_counts (Sequence[int] | np.ndarray): Number of training images
            of each class; index ``i`` is class ``i``.
        many_thr (int): Classes with a count above this are many-shot.
            Defaults to 100.
        few_thr (int): Classes with a count below this are few-shot.
            Defaults to 20.

    Returns:
        Dict[str, np.ndarray]: Sorted ``int64`` class-index arrays under the
        keys ``'many'``, ``'medium'`` and ``'few'`` (in that order). Every
        class is in exactly one group; a group may be empty.

    Raises:
        ValueError: If ``class_counts`` is not a 1-D sequence of non-negative
            integers or ``few_thr > many_thr``.

    Examples:
        >>> groups = long_tail_groups([500, 100, 20, 19])
        >>> {name: idx.tolist() for name, idx in groups.items()}
        {'many': [0], 'medium': [1, 2], 'few': [3]}
    """
    if few_thr > many_thr:
        raise ValueError(f'few_thr ({few_thr}) must not exceed many_thr '
                         f'({many_thr}): otherwise a class could be both '
                         'many-shot and few-shot.')
    counts = np.asarray(class_counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError('class_counts must be a non-empty 1-D sequence of '
                         f'per-class training counts, got shape {counts.shape}.')
    if not np.issubdtype(counts.dtype, np.integer):
        raise ValueError('class_counts must hold integers, got dtype '
                         f'{counts.dtype}.')
    if (counts < 0).any():
        bad = int(np.flatnonzero(counts < 0)[0])
        raise ValueError(f'class_counts must be non-negative, but class {bad} '
                         f'has count {int(counts[bad])}.')
    return {
        'many': np.flatnonzero(counts > many_thr),
        'medium': np.flatnonzero((counts >= few_thr) & (counts <= many_thr)),
        'few': np.flatnonzero(counts < few_thr),
    }
