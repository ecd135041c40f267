"""Places-LT (Liu et al., OLTR, CVPR 2019)."""
from mmpretrain.registry import DATASETS

from .long_tail_benchmark import LongTailBenchmark


@DATASETS.register_module()
class PlacesLT(LongTailBenchmark):
    """Places-LT: 365 scene classes with 4980 to 5 training images each.

    Splits: train (62,500 images), val (7,300; 20 per class) and test
    (36,500; 100 per class). Expected layout, with the OLTR annotation files
    and a ``folder name`` class-name file (line ``i`` names class ``i``;
    names keep their underscores, e.g. ``airplane_cabin``)::

        data/places-lt/
        ├── Places_LT_train.txt   # train/airfield/00000001.jpg 0
        ├── Places_LT_val.txt
        ├── Places_LT_test.txt    # val/airfield/Places365_val_00000435.jpg 0
        ├── classnames.txt        # airfield airfield
        ├── train/airfield/...
        └── val/airfield/...

    Image paths in the annotation files are relative to
    ``data_root/data_prefix``; rewrite the files first if they start with
    ``/``.

    Args:
        data_root (str): The folder above.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
            Defaults to ``'train'``.
        **kwargs: Other arguments of
            :class:`~lift_mm.datasets.long_tail_benchmark.LongTailBenchmark`.
    """

    ANN_FILE = 'Places_LT_{split}.txt'
