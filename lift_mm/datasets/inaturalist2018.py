"""iNaturalist 2018 (Van Horn et al., CVPR 2018), long-tail split."""
from typing import List

from mmpretrain.registry import DATASETS

from ..utils.classnames import parse_categories_json
from .long_tail_benchmark import LongTailBenchmark


@DATASETS.register_module()
class INaturalist2018(LongTailBenchmark):
    """iNaturalist 2018: 8142 species with 1000 to 2 training images each.

    Splits: train (437,513 images) and val (24,426; 3 per class), the val
    split serving as the test set as in the literature. Expected layout,
    with the annotation files of the long-tail literature (OLTR / LIFT) and
    the competition's ``categories.json``::

        data/inat2018/
        ├── iNaturalist18_train.txt  # train_val2018/Plantae/7477/3b60....jpg 7477
        ├── iNaturalist18_val.txt
        ├── categories.json          # [{"id": 0, "name": "...", ...}, ...]
        └── train_val2018/<supercategory>/<id>/...

    The label in the annotation files is the category id, and class ``i`` is
    named by the ``categories.json`` entry whose ``"id"`` is ``i``. (LIFT
    instead re-numbers the classes in alphabetical order of their names; the
    class set and the class of each image are the same, only the label
    numbers differ.)

    Args:
        data_root (str): The folder above.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        **kwargs: Other arguments of
            :class:`~lift_mm.datasets.long_tail_benchmark.LongTailBenchmark`.
    """

    SPLITS = ('train', 'val')
    ANN_FILE = 'iNaturalist18_{split}.txt'
    CLASSNAMES_FILE = 'categories.json'

    def load_classnames(self) -> List[str]:
        """Read the class names from ``categories.json``.

        Returns:
            List[str]: One name per category id.
        """
        return parse_categories_json(self.classnames_file)
