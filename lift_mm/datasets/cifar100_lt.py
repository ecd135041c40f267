"""CIFAR-100-LT (Cao et al., LDAM, NeurIPS 2019) as built by LIFT."""
import os.path as osp
import pickle
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.checkpoint_safety import AllowListUnpickler, numpy_safe_globals
from .long_tail_sizes import exponential_class_sizes

ARCHIVE_FOLDER = 'cifar-100-python'
NUM_CLASSES = 100


def select_long_tail_indices(labels: np.ndarray,
                             class_sizes: Sequence[int],
                             seed: int = 0) -> np.ndarray:
    """Pick the images of a long-tailed subset as LIFT does.

    One ``RandomState(seed)`` (LIFT seeds numpy's global generator with 0)
    is shared by all classes; for each class ``c`` in order, the indices of
    its images are shuffled and the first ``class_sizes[c]`` kept.

    Args:
        labels (np.ndarray): Label of every image.
        class_sizes (Sequence[int]): Images to keep per class.
        seed (int): Seed of the generator. Defaults to 0.

    Returns:
        np.ndarray: Indices into ``labels``, class by class.

    Raises:
        ValueError: If a class has fewer images than it should keep.
    """
    rng = np.random.RandomState(seed)
    kept = []
    for cls, size in enumerate(class_sizes):
        idx = np.where(labels == cls)[0]
        if idx.size < size:
            raise ValueError(f'class {cls} has {idx.size} images, fewer than '
                             f'the {size} to keep.')
        rng.shuffle(idx)
        kept.append(idx[:size])
    return np.concatenate(kept)


def _load_pickle(path: str, keys: Sequence[str]) -> dict:
    """Load one pickle of the CIFAR-100 python archive and check its keys."""
    if not osp.isfile(path):
        root = osp.dirname(osp.dirname(path))
        raise FileNotFoundError(
            f'{path!r} not found. CIFAR100LT reads the CIFAR-100 python '
            f'archive (cifar-100-python.tar.gz) extracted into data_root '
            f'({root!r}) as {ARCHIVE_FOLDER}/train, {ARCHIVE_FOLDER}/test and '
            f'{ARCHIVE_FOLDER}/meta; nothing is downloaded.')
    # The archive holds dicts, lists, strings and numpy arrays; a file that
    # names any other global is not the archive and could run code.
    with open(path, 'rb') as f:
        try:
            content = AllowListUnpickler(
                f, numpy_safe_globals(), encoding='latin1').load()
        except (pickle.UnpicklingError, EOFError) as err:
            raise pickle.UnpicklingError(
                f'{path} cannot be read as part of the CIFAR-100 python '
                f'archive ({err}). The archive holds only dicts, lists, '
                'strings and numpy arrays; extract cifar-100-python.tar.gz '
                'again.') from None
    if not isinstance(content, dict):
        raise ValueError(f'{path}: expected a dict, got '
                         f'{type(content).__name__}; is this the CIFAR-100 '
                         'python archive?')
    missing = [key for key in keys if key not in content]
    if missing:
        raise ValueError(f'{path}: missing {missing}; is this the CIFAR-100 '
                         'python archive?')
    return content


def _load_split(root: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Return the HWC RGB images and the fine labels of a split."""
    path = osp.join(root, ARCHIVE_FOLDER, split)
    content = _load_pickle(path, ('data', 'fine_labels'))
    data = np.asarray(content['data'])
    labels = np.asarray(content['fine_labels'], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or data.shape[0] != labels.size:
        raise ValueError(
            f'{path}: expected "data" as uint8 of shape ({labels.size}, '
            f'3072), got {data.dtype} {data.shape}.')
    if labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
        raise ValueError(f'{path}: fine labels must be in [0, {NUM_CLASSES}), '
                         f'got [{labels.min()}, {labels.max()}].')
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@DATASETS.register_module()
class CIFAR100LT(BaseDataset):
    """CIFAR-100-LT built from the CIFAR-100 python archive on disk.

    Training class ``i`` keeps ``floor(500 * imbalance_ratio ** (-i / 99))``
    images (500 down to 5 at ratio 100; 10,847 images in all), picked with
    :func:`select_long_tail_indices` exactly as LIFT does. The test split
    stays balanced (100 per class). ``imbalance_ratio=1`` keeps the whole,
    balanced CIFAR-100 training set. Nothing is downloaded; the expected
    layout is the extracted ``cifar-100-python.tar.gz``::

        data/cifar100/
        └── cifar-100-python/
            ├── train
            ├── test
            └── meta

    Images are 32x32 RGB arrays held in memory (no ``LoadImageFromFile``
    in the pipeline; use ``to_rgb=False`` in the data preprocessor).

    The dataset's ``metainfo`` holds ``classes`` (the fine label names),
    ``class_counts`` (training images per class at this ratio, for both
    splits) and ``group_counts``: the training counts at ``group_ratio``,
    which define the many / medium / few groups. LIFT groups every ratio by
    the ratio-100 counts (the default); LIFT+ groups each ratio by its own
    counts (``group_ratio=None``), which at ratio 10 leaves no few-shot
    class.

    Args:
        data_root (str): The folder holding ``cifar-100-python``.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        imbalance_ratio (float): Largest over smallest training class:
            100, 50, 10 in the literature, 1 for balanced CIFAR-100.
            Defaults to 100.
        group_ratio (float, optional): Imbalance ratio whose training counts
            define the many / medium / few groups: 100 as in LIFT, or None
            for ``imbalance_ratio`` itself, as in LIFT+. Defaults to 100.
        metainfo (dict, optional): Extra meta information; it must not set
            the keys above. Defaults to None.
        pipeline (Sequence): Processing pipeline. Defaults to ().
        test_mode (bool): Whether the dataset is used for evaluation.
            Defaults to False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`.

    The archive files are pickles, read by an unpickler that builds only
    dicts, lists, strings, numbers and numpy arrays, so a crafted file cannot
    run code.

    Raises:
        FileNotFoundError: If the archive files are missing.
        pickle.UnpicklingError: If an archive file is cut short or names
            anything else to build (the message names the file and what it
            names).
        ValueError: If an argument is invalid or the archive is malformed.
    """

    SPLITS = ('train', 'test')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 imbalance_ratio: float = 100,
                 group_ratio: Optional[float] = 100,
                 metainfo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'CIFAR100LT split must be one of {self.SPLITS}, '
                             f'got {split!r}.')
        derived = ('classes', 'class_counts', 'group_counts')
        clashes = [key for key in derived if key in (metainfo or {})]
        if clashes:
            raise ValueError(f'CIFAR100LT derives {clashes} from the archive; '
                             'remove them from the dataset config.')
        if group_ratio is not None and not (
                isinstance(group_ratio, (int, float)) and group_ratio >= 1):
            raise ValueError(
                f'CIFAR100LT group_ratio must be at least 1 (100 groups by '
                'the ratio-100 counts, as LIFT) or None (groups by '
                f'imbalance_ratio, as LIFT+), got {group_ratio!r}.')
        self.split = split
        self.imbalance_ratio = imbalance_ratio
        self.group_ratio = imbalance_ratio if group_ratio is None \
            else group_ratio
        root = osp.expanduser(data_root)
        classes = _load_pickle(
            osp.join(root, ARCHIVE_FOLDER, 'meta'),
            ('fine_label_names', ))['fine_label_names']
        if len(classes) != NUM_CLASSES:
            raise ValueError(f'{osp.join(root, ARCHIVE_FOLDER, "meta")}: '
                             f'expected {NUM_CLASSES} fine label names, got '
                             f'{len(classes)}.')
        # LIFT derives the largest class size from the archive (50000 / 100).
        max_count = _load_split(root, 'train')[1].size / NUM_CLASSES
        self.class_sizes = exponential_class_sizes(max_count, NUM_CLASSES,
                                                   imbalance_ratio)
        if min(self.class_sizes) < 1:
            raise ValueError(
                f'imbalance_ratio={imbalance_ratio} leaves class '
                f'{self.class_sizes.index(0)} without training images, as '
                f'the archive has {max_count:g} images per class; lower the '
                'ratio.')
        metainfo = dict(
            metainfo or {},
            classes=tuple(classes),
            class_counts=tuple(self.class_sizes),
            group_counts=tuple(
                exponential_class_sizes(max_count, NUM_CLASSES,
                                        self.group_ratio)))
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            data_root=root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Load ``dict(img, gt_label)`` for the images of the split.

        Returns:
            List[dict]: Training images class by class in selection order,
            or the whole test set in archive order.
        """
        images, labels = _load_split(self.data_root, self.split)
        if self.split == 'train':
            try:
                keep = select_long_tail_indices(labels, self.class_sizes)
            except ValueError as err:
                raise ValueError(
                    f'{osp.join(self.data_root, ARCHIVE_FOLDER, "train")}: '
                    f'{err} (imbalance_ratio={self.imbalance_ratio}); the '
                    'archive is not the full CIFAR-100 training set.'
                ) from None
            images, labels = images[keep], labels[keep]
        return [
            dict(img=img, gt_label=label)
            for img, label in zip(images, labels.tolist())
        ]

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Archive: \t{osp.join(self.data_root, ARCHIVE_FOLDER)}',
            f'Split: \t{self.split}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
            f'Groups by the counts of ratio: \t{self.group_ratio}',
        ]
