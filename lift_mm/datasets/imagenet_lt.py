"""ImageNet-LT (Liu et al., OLTR, CVPR 2019)."""
from mmpretrain.registry import DATASETS

from .long_tail_benchmark import LongTailBenchmark


@DATASETS.register_module()
class ImageNetLT(LongTailBenchmark):
    """ImageNet-LT: 1000 classes with 1280 to 5 training images each.

    Splits: train (115,846 images), val (20,000; 20 per class) and test
    (50,000; 50 per class, taken from the ImageNet val set). Expected
    layout, with the OLTR annotation files and a ``wnid name`` class-name
    file (line ``i`` names class ``i``)::

        data/imagenet-lt/
        ├── ImageNet_LT_train.txt  # train/n01440764/n01440764_10026.JPEG 0
        ├── ImageNet_LT_val.txt
        ├── ImageNet_LT_test.txt   # val/n01440764/ILSVRC2012_val_00000293.JPEG 0
        ├── classnames.txt         # n01440764 tench
        ├── train/n01440764/...
        └── val/n01440764/...

    Image paths in the annotation files are relative to
    ``data_root/data_prefix``.

    Args:
        data_root (str): The folder above.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
            Defaults to ``'train'``.
        **kwargs: Other arguments of
            :class:`~lift_mm.datasets.long_tail_benchmark.LongTailBenchmark`.
    """

    ANN_FILE = 'ImageNet_LT_{split}.txt'
