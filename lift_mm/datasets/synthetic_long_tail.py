"""A small generated long-tailed image dataset for offline demos and tests."""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Sequence

import numpy as np
from mmpretrain.registry import DATASETS
from PIL import Image

from .long_tail_dataset import LongTailDataset
from .long_tail_sizes import exponential_class_sizes

# RGB fill colours; CLIP-readable names help zero-shot text initialisation.
_COLOURS = {
    'red': (220, 40, 40),
    'orange': (240, 140, 20),
    'yellow': (230, 220, 40),
    'green': (40, 180, 60),
    'cyan': (40, 200, 220),
    'blue': (40, 70, 220),
    'purple': (140, 50, 200),
    'pink': (240, 120, 180),
    'white': (235, 235, 235),
    'brown': (130, 80, 40),
}
_SHAPES = ('square', 'circle', 'triangle', 'cross', 'stripes')
MAX_CLASSES = len(_COLOURS) * len(_SHAPES)
# Written last during generation, so its presence marks a complete folder.
PARAMS_FILE = 'synthetic_long_tail.json'


def synthetic_class_names(num_classes: int) -> List[str]:
    """Distinct ``colour_shape`` names, e.g. ``'red_square'``.

    Class ``i`` takes colour ``i % 10`` and shape ``(i % 10 + i // 10) % 5``,
    which pairs every colour with a different shape in each block of ten.

    Args:
        num_classes (int): Number of classes, 2 to 50.

    Returns:
        List[str]: One name per class.
    """
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f'num_classes must be in [2, {MAX_CLASSES}], got '
                         f'{num_classes}.')
    colours = list(_COLOURS)
    return [
        f'{colours[i % 10]}_{_SHAPES[(i % 10 + i // 10) % len(_SHAPES)]}'
        for i in range(num_classes)
    ]


def _shape_mask(shape: str, size: int, rng: np.random.RandomState) -> np.ndarray:
    """Boolean mask of ``shape`` at a random position and scale."""
    centre = size / 2 + rng.uniform(-size / 8, size / 8, 2)
    radius = size * rng.uniform(0.25, 0.4)
    ys, xs = np.mgrid[:size, :size].astype(np.float64)
    dy, dx = ys - centre[0], xs - centre[1]
    if shape == 'square':
        return (np.abs(dx) < radius) & (np.abs(dy) < radius)
    if shape == 'circle':
        return dx**2 + dy**2 < radius**2
    if shape == 'triangle':
        # Apex up: the half-width grows linearly from the top edge down.
        return (dy > -radius) & (dy < radius) & (np.abs(dx) < (dy + radius) / 2)
    if shape == 'cross':
        arm = radius / 3
        return ((np.abs(dx) < arm) & (np.abs(dy) < radius)) | (
            (np.abs(dy) < arm) & (np.abs(dx) < radius))
    period = max(2, int(radius / 2))
    return (ys.astype(int) // period) % 2 == 0


def _render(name: str, size: int, rng: np.random.RandomState) -> np.ndarray:
    """An RGB image of the class ``colour_shape`` on a dark noisy ground."""
    colour, shape = name.split('_')
    img = rng.normal(40, 15, (size, size, 3))
    fill = np.asarray(_COLOURS[colour], dtype=np.float64) + rng.normal(0, 15, 3)
    img[_shape_mask(shape, size, rng)] = fill
    img += rng.normal(0, 10, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _generate(root: str, params: Dict) -> None:
    """Write images, annotation files and class names into ``root``."""
    rng = np.random.RandomState(params['seed'])
    names = synthetic_class_names(params['num_classes'])
    split_sizes = {
        'train':
        exponential_class_sizes(params['max_count'], params['num_classes'],
                                params['imbalance_ratio']),
        'test': [params['test_per_class']] * params['num_classes'],
    }
    with open(osp.join(root, 'classnames.txt'), 'w') as f:
        f.writelines(f'{name} {name}\n' for name in names)
    for split, sizes in split_sizes.items():
        lines = []
        for label, (name, count) in enumerate(zip(names, sizes)):
            os.makedirs(osp.join(root, split, name))
            for j in range(count):
                rel_path = f'{split}/{name}/{j:04d}.png'
                Image.fromarray(_render(name, params['image_size'],
                                        rng)).save(osp.join(root, rel_path))
                lines.append(f'{rel_path} {label}\n')
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.writelines(lines)
    with open(osp.join(root, PARAMS_FILE), 'w') as f:
        json.dump(params, f, indent=2, sort_keys=True)


def _read_params(root: str) -> Dict:
    with open(osp.join(root, PARAMS_FILE)) as f:
        return json.load(f)


def prepare_synthetic_long_tail(root: str, params: Dict) -> None:
    """Generate the dataset into ``root`` unless it is already there.

    Generation happens in a temporary sibling folder that is renamed onto
    ``root``, so concurrent callers (e.g. DDP ranks) never see a partial
    folder: the first rename wins and the others discard their identical
    copies.

    Args:
        root (str): Target folder; absent or empty to generate.
        params (dict): Generation parameters, as written to
            ``synthetic_long_tail.json``.

    Raises:
        ValueError: If ``root`` holds a dataset generated with other
            parameters, or other files.
    """
    if not osp.isfile(osp.join(root, PARAMS_FILE)):
        if osp.isdir(root) and os.listdir(root):
            raise ValueError(
                f'{root!r} is not empty but has no {PARAMS_FILE}, so it is '
                'not a complete SyntheticLongTail folder. Point data_root at '
                'a new folder or delete this one to regenerate.')
        parent = osp.dirname(osp.abspath(root))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.synthetic-long-tail-', dir=parent)
        try:
            _generate(tmp, params)
            os.chmod(tmp, 0o755)
            try:
                os.replace(tmp, root)
            except OSError:
                # Another process renamed its copy first.
                if not osp.isfile(osp.join(root, PARAMS_FILE)):
                    raise
        finally:
            if osp.isdir(tmp):
                shutil.rmtree(tmp)
    existing = _read_params(root)
    if existing != params:
        raise ValueError(
            f'{root!r} was generated with {existing}, but the config asks for '
            f'{params}. Use another data_root or delete this folder to '
            'regenerate.')


@DATASETS.register_module()
class SyntheticLongTail(LongTailDataset):
    """A generated long-tailed image set for running LIFT offline.

    On first use, ``data_root`` is filled deterministically (numpy seed) with
    32x32 RGB PNGs: class ``i`` is a shape of a fixed colour (e.g.
    ``red_square``) at a random position and scale on a dark noisy ground,
    so the classes are learnable, and its name describes it. The folder
    follows the long-tail benchmark format and is then loaded through
    :class:`LongTailDataset`::

        data_root/
        ├── classnames.txt          # "red_square red_square" ...
        ├── train.txt               # "train/red_square/0000.png 0" ...
        ├── test.txt
        ├── synthetic_long_tail.json  # generation parameters
        ├── train/<class name>/NNNN.png
        └── test/<class name>/NNNN.png

    Train class ``i`` has ``floor(max_count * (1 / imbalance_ratio) ** (i /
    (num_classes - 1)))`` images; with the defaults these are 150, 102, 70,
    48, 33, 22, 15, 10, 7, 5, so the many (>100), medium and few (<20)
    groups are all non-empty. The test split is balanced. Both splits carry
    the train counts as ``class_counts``.

    Args:
        data_root (str): Folder to generate into / load from.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        num_classes (int): Number of classes, 2 to 50. Defaults to 10.
        max_count (int): Train images of class 0. Defaults to 150.
        imbalance_ratio (float): Ratio of the largest to the smallest train
            class. Defaults to 30.
        test_per_class (int): Test images per class. Defaults to 20.
        image_size (int): Side of the square images. Defaults to 32.
        seed (int): Seed of the generator. Defaults to 0.
        pipeline (Sequence): Processing pipeline. Defaults to ().
        test_mode (bool): Whether the dataset is used for evaluation.
            Defaults to False.
        **kwargs: Other arguments of :class:`LongTailDataset`, except the
            file arguments, which are fixed.

    Raises:
        ValueError: If ``split`` is unknown, a train class would get no
            images, or ``data_root`` holds a dataset generated with other
            parameters.
    """

    SPLITS = ('train', 'test')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 num_classes: int = 10,
                 max_count: int = 150,
                 imbalance_ratio: float = 30,
                 test_per_class: int = 20,
                 image_size: int = 32,
                 seed: int = 0,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(
                f'split must be one of {self.SPLITS}, got {split!r}.')
        synthetic_class_names(num_classes)  # validates num_classes
        smallest = exponential_class_sizes(max_count, num_classes,
                                           imbalance_ratio)[-1]
        if smallest < 1:
            raise ValueError(
                f'max_count={max_count} with imbalance_ratio='
                f'{imbalance_ratio} leaves the last class without images; '
                'raise max_count or lower imbalance_ratio.')
        if test_per_class < 1 or image_size < 8:
            raise ValueError('test_per_class must be at least 1 and '
                             f'image_size at least 8, got {test_per_class} '
                             f'and {image_size}.')
        self.split = split
        prepare_synthetic_long_tail(
            data_root,
            dict(
                num_classes=num_classes,
                max_count=max_count,
                imbalance_ratio=imbalance_ratio,
                test_per_class=test_per_class,
                image_size=image_size,
                seed=seed))
        super().__init__(
            ann_file=f'{split}.txt',
            classnames_file='classnames.txt',
            data_root=data_root,
            class_counts_file='train.txt',
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)
