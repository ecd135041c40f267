"""Base of the long-tail benchmarks that ship one annotation file per split."""
from typing import Sequence, Tuple

from .long_tail_dataset import LongTailDataset


class LongTailBenchmark(LongTailDataset):
    """A :class:`LongTailDataset` whose files follow a fixed naming scheme.

    Subclasses set the file names; the ``split`` argument picks the
    annotation file, and the class counts always come from the train file.

    Args:
        data_root (str): Folder holding the annotation and class-name files
            and the images.
        split (str): One of :attr:`SPLITS`. Defaults to ``'train'``.
        data_prefix (str | dict): Image directory under ``data_root``.
            Defaults to ''.
        pipeline (Sequence): Processing pipeline. Defaults to ().
        test_mode (bool): Whether the dataset is used for evaluation.
            Defaults to False.
        **kwargs: Other arguments of :class:`LongTailDataset`, except the
            file arguments, which are fixed.
    """

    #: The splits, each with an annotation file.
    SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
    #: Annotation file name with a ``{split}`` placeholder.
    ANN_FILE: str
    #: Class-name file name.
    CLASSNAMES_FILE: str = 'classnames.txt'

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 data_prefix: str = '',
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'{type(self).__name__} split must be one of '
                             f'{self.SPLITS}, got {split!r}.')
        self.split = split
        super().__init__(
            ann_file=self.ANN_FILE.format(split=split),
            classnames_file=self.CLASSNAMES_FILE,
            class_counts_file=self.ANN_FILE.format(split='train'),
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)
