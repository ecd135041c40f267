"""Image classification dataset read from long-tail annotation files."""
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.classnames import parse_classnames_file
from .annotation_files import file_sha256, parse_annotation_file

# Keys this dataset derives from its files; accepting them from the config
# too would let two sources disagree about the label space.
_DERIVED_META_KEYS = ('classes', 'class_counts')
UNREADABLE_POLICIES = ('error', 'skip')
# Metainfo key of the data sample that replaces skipped unreadable images:
# the paths of those images, counted by SkippedImagesHook.
SKIPPED_IMAGES_KEY = 'skipped_images'


class UnreadableImageError(OSError):
    """A listed image that cannot be read or decoded."""


def image_problem(path: str) -> Optional[str]:
    """Why the image at ``path`` cannot be read or decoded, or None.

    The one test of readability: the dataset tells unreadable images by it and
    ``tools/analysis/check_dataset.py`` checks image files by it, both
    decoding as ``LoadImageFromFile`` does by default (MMCV, OpenCV backend).

    Args:
        path (str): Path or URI of the image.

    Returns:
        str | None: The reason, for messages.
    """
    try:
        image = mmcv.imfrombytes(fileio.get(path))
    except Exception as err:  # any failure to read or decode is the answer
        # On one line: OpenCV's messages end in a newline.
        return f'{type(err).__name__}: {" ".join(str(err).split())}'
    return None if image is not None else 'it cannot be decoded as an image'


@DATASETS.register_module()
class LongTailDataset(BaseDataset):
    """A long-tailed dataset listed in ImageNet-LT style annotation files.

    The annotation file has one ``relative/path label`` line per image
    (the ImageNet-LT / Places-LT / iNaturalist 2018 format), with paths
    relative to ``data_root/data_prefix`` and labels in ``[0, num_classes)``.
    The class-name file has one ``key name with spaces`` line per class, line
    ``i`` naming class ``i`` (e.g. ``n01440764 tench``).

    The per-class *training* counts define the long-tail groups, so they come
    from ``class_counts_file``: the train annotation file. It defaults to
    ``ann_file``, which is right for the train split; val/test configs must
    point it at the train file. Every file is validated once when the dataset
    is built; whether the images exist is left to
    ``tools/analysis/check_dataset.py`` to keep loading fast.

    Samples are the listed images in file order, one each (no re-sampling).

    Args:
        ann_file (str): Annotation file of this split, relative to
            ``data_root`` unless absolute.
        classnames_file (str): Class-name file, relative to ``data_root``
            unless absolute.
        data_root (str): Root directory of the files and images.
            Defaults to ''.
        data_prefix (str | dict): Image directory under ``data_root``, or
            ``dict(img_path=...)``. Defaults to ''.
        class_counts_file (str, optional): Annotation file whose label counts
            are the per-class training counts, relative to ``data_root``
            unless absolute. Defaults to None, meaning ``ann_file``.
        metainfo (dict, optional): Extra meta information. It must not set
            ``classes`` or ``class_counts``, which come from the files.
            Defaults to None.
        pipeline (Sequence): Processing pipeline. Defaults to ().
        test_mode (bool): Whether the dataset is used for evaluation.
            Defaults to False.
        on_unreadable (str): What to do when the pipeline fails on an image
            that cannot be read or decoded (missing, empty, corrupt):
            ``'error'`` raises :class:`UnreadableImageError` naming it;
            ``'skip'`` logs a warning naming it and, as MMEngine does for a
            pipeline that returns None, uses another random sample instead
            (at most ``max_refetch`` times in a row). The replacement sample
            carries the skipped paths in its metainfo ``skipped_images``,
            which :class:`~lift_mm.engine.hooks.SkippedImagesHook` counts.
            ``'skip'`` is for training only: evaluating without some images
            would change the results. Defaults to ``'error'``.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            such as ``lazy_init``, ``indices`` or ``serialize_data``.

    The dataset's ``metainfo`` holds:

    - ``classes`` (tuple[str]): class names in label order.
    - ``class_counts`` (tuple[int]): training images per class.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If a file is malformed (the message names the file and
            line), a label is out of range, an image is listed twice, a class
            has no training images, ``metainfo`` sets a derived key, or
            ``on_unreadable`` is unknown or ``'skip'`` in test mode.
    """

    def __init__(self,
                 ann_file: str,
                 classnames_file: str,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 class_counts_file: Optional[str] = None,
                 metainfo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 on_unreadable: str = 'error',
                 **kwargs) -> None:
        if on_unreadable not in UNREADABLE_POLICIES:
            raise ValueError(f'`on_unreadable` must be one of '
                             f'{UNREADABLE_POLICIES}, got {on_unreadable!r}.')
        if on_unreadable == 'skip' and test_mode:
            raise ValueError(
                "`on_unreadable='skip'` is for training datasets: skipping "
                'images of an evaluation set would change its results.')
        self.on_unreadable = on_unreadable
        # Paths skipped since the last sample this process produced.
        self._skipped: List[str] = []
        clashes = [key for key in _DERIVED_META_KEYS if key in (metainfo or {})]
        if 'classes' in kwargs:
            clashes.append('classes')
        if clashes:
            raise ValueError(
                f'{type(self).__name__} reads {clashes} from classnames_file '
                'and class_counts_file; remove them from the dataset config.')
        self.classnames_file = self._resolve(data_root, classnames_file)
        self.class_counts_file = self._resolve(
            data_root, ann_file if class_counts_file is None else
            class_counts_file)

        classes = self.load_classnames()
        class_counts = self._count_training_images(classes)
        metainfo = dict(
            metainfo or {},
            classes=tuple(classes),
            class_counts=tuple(class_counts.tolist()))
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=osp.expanduser(data_root),
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    @staticmethod
    def _resolve(data_root: str, path: str) -> str:
        """Join ``path`` onto ``data_root`` like ``BaseDataset`` does for
        ``ann_file``."""
        path = osp.expanduser(path)
        if data_root and not osp.isabs(path):
            return osp.join(osp.expanduser(data_root), path)
        return path

    def load_classnames(self) -> List[str]:
        """Read the class names, in label order, from ``classnames_file``.

        Subclasses whose names come in another format override this.

        Returns:
            List[str]: One name per class.
        """
        return parse_classnames_file(self.classnames_file)

    def _count_training_images(self, classes: List[str]) -> np.ndarray:
        """Count the images of each class in ``class_counts_file``."""
        _, labels = parse_annotation_file(
            self.class_counts_file, len(classes),
            f'the class-name file {self.classnames_file!r}')
        counts = np.bincount(labels, minlength=len(classes))
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            shown = ', '.join(f'{i} ({classes[i]!r})' for i in empty[:5])
            more = f' and {empty.size - 5} more' if empty.size > 5 else ''
            raise ValueError(
                f'{self.class_counts_file}: class {shown}{more} has no '
                'training images. class_counts_file must be the train '
                'annotation file of the dataset named by '
                f'{self.classnames_file!r}.')
        return counts

    def load_data_list(self) -> List[dict]:
        """Load one ``dict(img_path, gt_label)`` per line of ``ann_file``.

        Returns:
            List[dict]: The samples in file order.
        """
        if 'img_path' not in self.data_prefix:
            raise ValueError('data_prefix must be a str or a dict with the '
                             f'key "img_path", got {self.data_prefix}.')
        paths, labels = parse_annotation_file(
            self.ann_file, len(self.CLASSES),
            f'the class-name file {self.classnames_file!r}')
        prefix = self.img_prefix
        return [
            dict(img_path=osp.join(prefix, path), gt_label=label)
            for path, label in zip(paths, labels.tolist())
        ]

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``, following ``on_unreadable``
        if it fails on an image that cannot be read.

        Args:
            idx (int): Index of the sample.

        Returns:
            Any: The pipeline's output, or None for a skipped image.
        """
        try:
            data = super().prepare_data(idx)
        except Exception as err:
            path = self.get_data_info(idx)['img_path']
            problem = image_problem(path)
            if problem is None:
                raise
            if self.on_unreadable == 'error':
                raise UnreadableImageError(
                    f'Cannot read the image {path} ({problem}). Fix or '
                    "remove it, or set `on_unreadable='skip'` on the "
                    'training dataset to skip such images.') from err
            print_log(
                f'Skipping the unreadable image {path} ({problem}); '
                'another sample takes its place.',
                logger='current',
                level=logging.WARNING)
            self._skipped.append(path)
            return None
        if self._skipped and data is not None:
            # BaseDataset refetches at once in this process, so this sample
            # is the replacement of the skipped ones.
            samples = data.get('data_samples') if isinstance(data,
                                                             dict) else None
            if hasattr(samples, 'set_metainfo'):
                samples.set_metainfo(
                    {SKIPPED_IMAGES_KEY: tuple(self._skipped)})
            self._skipped = []
        return data

    def annotation_fingerprint(self) -> Dict[str, Tuple[str, str]]:
        """SHA-256 of each file the samples and classes are read from.

        Returns:
            Dict[str, Tuple[str, str]]: ``(path, hex digest)`` by argument
            name (``ann_file``, ``classnames_file``, ``class_counts_file``).
        """
        files = dict(
            ann_file=self.ann_file,
            classnames_file=self.classnames_file,
            class_counts_file=self.class_counts_file)
        return {
            name: (path, file_sha256(path))
            for name, path in files.items()
        }

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Class-name file: \t{self.classnames_file}',
            f'Class counts from: \t{self.class_counts_file}',
        ]
