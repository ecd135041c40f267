from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop, ResizeEdge
from mmpretrain.registry import TRANSFORMS

MODES = ('five_crop', 'ten_crop', 'random')


def five_crop_boxes(height: int, width: int, size: int) -> List[Tuple[int, int]]:
    """Top-left corners of the four corner crops and the centre crop, in torchvision's ``FiveCrop`` order."""
    bottom, right = height - size, width - size
    # The centre offset is rounded as torchvision's center_crop rounds it.
    return [(0, 0), (0, right), (bottom, 0), (bottom, right), (int(round(bottom / 2.)), int(round(right / 2.)))]


@TRANSFORMS.register_module()
class MultiViewCrop(BaseTransform):
    """Several views of one image for test-time ensembling (LIFT's TTE), packed like mmcv's ``TestTimeAug``.

    Modes (LIFT's ``tte_mode``):

    * ``'five_crop'`` (LIFT's default): resize the shorter side to ``short_edge`` and take the four corner
      crops and the centre crop of ``crop_size``. LIFT uses ``short_edge = crop_size + 24`` (its ``expand``).
    * ``'ten_crop'``: the five crops and the five crops of the horizontally flipped image.
    * ``'random'``: ``num_views`` random resized crops (``crop_ratio_range``, ``aspect_ratio_range``), each
      flipped with probability 0.5; with ``short_edge`` the image is resized first.

    Every view then goes through ``transforms`` (by default mmpretrain's ``PackInputs``), and the result holds,
    for each key they produce, the list of the views' values (``inputs``: a list of image tensors,
    ``data_samples``: a list of data samples). After collation, :class:`AverageLogitsTTA` takes this batch.

    Args:
        crop_size (int): Side of the square views (the model's input resolution).
        mode (str): ``'five_crop'``, ``'ten_crop'`` or ``'random'``. Defaults to ``'five_crop'``.
        short_edge (int, optional): Length of the shorter side after resizing, before the views are taken; at
            least ``crop_size``. Required by the five- and ten-crop modes. Defaults to None.
        num_views (int, optional): Number of random views; only and required with ``mode='random'``.
            Defaults to None.
        crop_ratio_range (Tuple[float, float]): Range of the random crops' area, as a fraction of the image's.
            Defaults to ``(0.08, 1.0)``.
        aspect_ratio_range (Tuple[float, float]): Range of the random crops' aspect ratio. Defaults to
            ``(3 / 4, 4 / 3)``.
        backend (str): Image resize backend, ``'pillow'`` (as LIFT's torchvision transforms) or ``'cv2'``.
            Defaults to ``'pillow'``.
        interpolation (str): Resize interpolation. Defaults to ``'bilinear'``.
        transforms (Sequence[dict]): Transforms applied to every view. Defaults to ``[dict(type='PackInputs')]``.
    """

    def __init__(self,
                 crop_size: int,
                 mode: str = 'five_crop',
                 short_edge: Optional[int] = None,
                 num_views: Optional[int] = None,
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 backend: str = 'pillow',
                 interpolation: str = 'bilinear',
                 transforms: Sequence[dict] = (dict(type='PackInputs'), )) -> None:
        if mode not in MODES:
            raise ValueError(f'MultiViewCrop: `mode`={mode!r} is not supported; valid modes: {list(MODES)}.')
        if not (isinstance(crop_size, int) and crop_size > 0):
            raise ValueError(f'MultiViewCrop: `crop_size`={crop_size!r} must be a positive integer.')
        if mode == 'random' and not (isinstance(num_views, int) and num_views > 0):
            raise ValueError(f"MultiViewCrop: mode='random' needs `num_views`, a positive integer; got {num_views!r}.")
        if mode != 'random' and num_views is not None:
            raise ValueError(f"MultiViewCrop: `num_views` only applies to mode='random'; {mode!r} gives "
                             f'{5 if mode == "five_crop" else 10} views.')
        if mode != 'random' and short_edge is None:
            raise ValueError(f'MultiViewCrop: mode={mode!r} needs `short_edge`, the shorter side of the resized '
                             f'image the crops are cut from (LIFT: crop_size + 24 = {crop_size + 24}).')
        if short_edge is not None and short_edge < crop_size:
            raise ValueError(f'MultiViewCrop: `crop_size`={crop_size} is larger than `short_edge`={short_edge}, the '
                             'shorter side of the resized image; crops must fit in it.')
        self.crop_size = crop_size
        self.mode = mode
        self.num_views = {'five_crop': 5, 'ten_crop': 10}.get(mode, num_views)
        self.resize = None if short_edge is None else ResizeEdge(
            scale=short_edge, edge='short', backend=backend, interpolation=interpolation)
        if mode == 'random':
            self.random_crop = RandomResizedCrop(
                scale=crop_size, crop_ratio_range=crop_ratio_range, aspect_ratio_range=aspect_ratio_range,
                backend=backend, interpolation=interpolation)
            self.random_flip = RandomFlip(prob=0.5, direction='horizontal')
        self.transforms = [TRANSFORMS.build(transform) for transform in transforms]

    def _crops(self, results: dict) -> List[dict]:
        image = results['img']
        height, width = image.shape[:2]
        size = self.crop_size
        sources = [(image, False)]
        if self.mode == 'ten_crop':
            sources.append((mmcv.imflip(image, direction='horizontal'), True))
        views = []
        for source, flipped in sources:
            for top, left in five_crop_boxes(height, width, size):
                views.append(dict(results, img=np.ascontiguousarray(source[top:top + size, left:left + size]),
                                  img_shape=(size, size), flip=flipped,
                                  flip_direction='horizontal' if flipped else None))
        return views

    def transform(self, results: dict) -> Dict[str, list]:
        if self.resize is not None:
            results = self.resize(results)
        if self.mode == 'random':
            views = [self.random_flip(self.random_crop(dict(results))) for _ in range(self.num_views)]
        else:
            views = self._crops(results)
        packed = []
        for view in views:
            for transform in self.transforms:
                view = transform(view)
            packed.append(view)
        return {key: [view[key] for view in packed] for key in packed[0]}

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mode={self.mode!r}, crop_size={self.crop_size}, num_views={self.num_views}, '
                f'resize={self.resize!r}, transforms={self.transforms!r})')
