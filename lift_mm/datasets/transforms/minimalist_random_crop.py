import logging
import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from mmcv.transforms.utils import cache_randomness
from mmengine.logging import print_log
from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS

#: LIFT+'s schedules s(t): how far the minimum crop area has moved from ``min_area`` to 1 at training progress t.
SCHEDULES: Dict[str, Callable[[float], float]] = {
    'min': lambda t: 0.,
    'max': lambda t: 1.,
    'linear': lambda t: t,
    'convex': lambda t: 1. - math.sqrt(1. - t * t),
    'concave': lambda t: math.sqrt(1. - (1. - t) * (1. - t)),
}


@TRANSFORMS.register_module()
class MinimalistRandomCrop(RandomResizedCrop):
    """LIFT+'s minimalist data augmentation (MDA): a square random crop whose smallest possible area grows over
    training, resized to ``scale``; no flip, no aspect-ratio change.

    At training progress ``t`` in [0, 1] the minimum crop area, as a fraction of the image's, is
    ``min_scale = min_area + s(t) (1 - min_area)`` with the schedule ``s``:

    * ``'min'``: 0 (always ``min_area``); ``'max'``: 1 (always the largest square);
    * ``'linear'``: t; ``'convex'`` (LIFT+'s default): 1 - sqrt(1 - t^2); ``'concave'``: sqrt(1 - (1 - t)^2).

    For an image of area ``A = H W`` whose largest square covers ``a = min(H, W)^2 / A`` of it, the crop's area
    fraction is ``u ~ U(min(min_scale, a), a)``, its side ``round(sqrt(A u))``, its position uniform over the
    image. The crop is resized to ``scale`` x ``scale`` with mmcv's ``imresize``; the defaults (``'pillow'``,
    ``'bicubic'``) call PIL's bicubic resize, whose filter widens with the downscaling factor (antialiased), which
    is exactly what LIFT+'s torchvision ``resized_crop`` does on its PIL images (for an RGB or BGR array alike:
    channels are resized independently). The ``'cv2'`` backend does not antialias.

    Crops are drawn with numpy's global generator, as mmpretrain's ``RandomResizedCrop`` (seeded per worker by
    MMEngine); LIFT+ draws from torch's: same distribution, different sequence.

    **Training progress.** ``t`` is held in a small shared-memory tensor created here, before data-loader workers
    start, so a value written in the main process reaches every worker, including persistent ones (mmpretrain's
    ``persistent_workers=True``): forked workers share the memory, and spawned workers receive the tensor through
    torch's multiprocessing pickler, which passes shared memory by handle. A plain ``pickle`` or ``deepcopy``
    makes an independent copy, in shared memory of its own. :class:`AugmentationScheduleHook`
    (``custom_hooks = [dict(type='AugmentationScheduleHook')]``) writes ``t`` during training:
    ``t = epoch / (max_epochs - 1)`` as in LIFT+, or the fraction of iterations done in iteration-based loops.
    Until something sets it, a schedule that depends on ``t`` crops at ``t = 0`` and logs a warning once: a
    training run without the hook would otherwise keep the first epoch's crops silently. (Refusing instead is not
    possible: an iteration-based loop's workers prefetch their first batches before any hook runs.) Pass
    ``progress`` to fix ``t`` outside training, e.g. to look at the crops of the last epoch.

    **Required Keys:** img. **Modified Keys:** img, img_shape.

    Args:
        scale (int): Side of the output image.
        min_area (float): Minimum crop area at ``t = 0``, as a fraction of the image's area (LIFT+'s 0.08), in
            (0, 1]. Defaults to 0.08.
        schedule (str): ``'min'``, ``'max'``, ``'linear'``, ``'convex'`` or ``'concave'``. Defaults to
            ``'convex'``.
        progress (float, optional): Training progress in [0, 1] to crop at until :class:`AugmentationScheduleHook`
            sets it; None leaves it unset. Defaults to None.
        interpolation (str): Resize interpolation. Defaults to ``'bicubic'``.
        backend (str): Resize backend, ``'pillow'`` or ``'cv2'``. Defaults to ``'pillow'``.
    """

    def __init__(self,
                 scale: int,
                 min_area: float = 0.08,
                 schedule: str = 'convex',
                 progress: Optional[float] = None,
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        if not (isinstance(scale, int) and scale > 0):
            raise ValueError(f'MinimalistRandomCrop: `scale`={scale!r} must be a positive integer (the side of '
                             'the square output).')
        if not (isinstance(min_area, (int, float)) and 0 < min_area <= 1):
            raise ValueError(f'MinimalistRandomCrop: `min_area`={min_area!r} must be a fraction of the image area '
                             'in (0, 1] (LIFT+: 0.08).')
        if schedule not in SCHEDULES:
            raise ValueError(f'MinimalistRandomCrop: `schedule`={schedule!r} is not supported; valid schedules: '
                             f'{list(SCHEDULES)}.')
        super().__init__(scale=scale, crop_ratio_range=(min_area, 1.), aspect_ratio_range=(1., 1.),
                         interpolation=interpolation, backend=backend)
        self.min_area = float(min_area)
        self.schedule = schedule
        # [progress (NaN: never set), whether the unset-progress warning was given]; shared so that workers see it.
        self._shared = torch.tensor([math.nan, 0.], dtype=torch.float64).share_memory_()
        if progress is not None:
            self.progress = progress

    def __setstate__(self, state: dict) -> None:
        # A deep copy (MMEngine deep-copies a data-loader config that holds a built dataset) or a plain unpickled
        # copy gets an ordinary tensor; put it in shared memory so that workers forked from the copy see it too.
        # The multiprocessing pickler of spawned workers rebuilds the original shared tensor: then a no-op.
        self.__dict__.update(state)
        self._shared.share_memory_()

    @property
    def progress(self) -> Optional[float]:
        """float, optional: The training progress ``t`` the crops are drawn at; None until set."""
        value = float(self._shared[0])
        return None if math.isnan(value) else value

    @progress.setter
    def progress(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ValueError(f'MinimalistRandomCrop: the training progress must be a number in [0, 1]; got {value!r}.')
        self._shared[0] = float(value)

    def min_scale(self, progress: float) -> float:
        """Minimum crop area, as a fraction of the image's, at training progress ``progress``.

        Args:
            progress (float): Training progress ``t`` in [0, 1].

        Returns:
            float: ``min_area + s(t) (1 - min_area)``.
        """
        return self.min_area + SCHEDULES[self.schedule](progress) * (1. - self.min_area)

    def _current_min_scale(self) -> float:
        progress = self.progress
        schedule = SCHEDULES[self.schedule]
        if progress is None:
            progress = 0.
            if schedule(0.) != schedule(1.) and not self._shared[1]:
                self._shared[1] = 1.
                print_log(f'MinimalistRandomCrop(schedule={self.schedule!r}) crops at training progress t=0 because '
                          'nothing has set the progress: when training, add '
                          "custom_hooks=[dict(type='AugmentationScheduleHook')] or the crops never grow; outside "
                          'training, pass `progress=`. (With an iteration-based loop and the hook, the batches '
                          'that workers prefetch before training starts come before the hook: t=0 is right there.)',
                          logger='current', level=logging.WARNING)
        return self.min_scale(progress)

    @cache_randomness
    def rand_crop_params(self, img: np.ndarray) -> Tuple[int, int, int, int]:
        """Draw a square crop at the current training progress.

        Args:
            img (np.ndarray): The image, height and width first.

        Returns:
            tuple[int, int, int, int]: ``(top, left, side, side)``.
        """
        height, width = img.shape[:2]
        area = height * width
        largest = min(height, width)**2 / area
        side = int(round(math.sqrt(area * np.random.uniform(min(self._current_min_scale(), largest), largest))))
        top = np.random.randint(0, height - side + 1)
        left = np.random.randint(0, width - side + 1)
        return top, left, side, side

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale[0]}, min_area={self.min_area}, schedule={self.schedule!r}, '
                f'progress={self.progress}, interpolation={self.interpolation!r}, backend={self.backend!r})')
