"""Image classification dataset read from long-tail annotation files."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .annotation_files import parse_annotation_file, parse_classnames_file

# Keys this dataset derives from its files; accepting them from the config
# too would let two sources disagree about the label space.
_DERIVED_META_KEYS = ('classes', 'class_counts')


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
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            such as ``lazy_init``, ``indices`` or ``serialize_data``.

    The dataset's ``metainfo`` holds:

    - ``classes`` (tuple[str]): class names in label order.
    - ``class_counts`` (tuple[int]): training images per class.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If a file is malformed (the message names the file and
            line), a label is out of range, an image is listed twice, a class
            has no training images, or ``metainfo`` sets a derived key.
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
                 **kwargs) -> None:
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

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Class-name file: \t{self.classnames_file}',
            f'Class counts from: \t{self.class_counts_file}',
        ]
