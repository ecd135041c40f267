"""Keeping MMEngine's weight initialisation away from backbones that are complete once built."""
import logging
from typing import Callable, Optional

from mmengine.logging import print_log
from torch import nn


class FrozenFoundationMixin:
    """For backbones whose weights are all set in ``__init__``: the foundation loaded and frozen, the light
    modules at the start their method prescribes (AdaptFormer's zero up projection, ...).

    MMEngine's ``init_weights``, which the Runner calls before training, applies each ``init_cfg`` to every
    submodule of the module that holds it, so the classifier-level ``init_cfg`` of mmpretrain's configs (DeiT,
    Swin, EVA: truncated-normal ``Linear``, constant ``LayerNorm``) would redraw the frozen weights after they
    were loaded and fingerprinted. Once the backbone is initialised (``is_init``, set by :meth:`finish_construction`),
    the initialisers of such a traversal (the backbone's own ``init_cfg`` or any enclosing module's, ``override``
    included) skip it, each logged once as a warning, and ``init_weights`` does nothing. Outside
    ``init_weights``, ``apply`` is PyTorch's.
    """

    def finish_construction(self, num_classes: Optional[int]) -> None:
        """Mark the backbone complete, at the end of ``__init__``.

        Args:
            num_classes (int, optional): The number of classes its light modules were sized for (``'auto'``
                sizes). When given, it becomes the ``num_classes`` attribute, which mmpretrain's
                ``ClassNumCheckHook`` compares with the classes of every dataset, like the head's.
        """
        if num_classes is not None:
            self.num_classes = num_classes
        self.is_init = True

    def init_weights(self) -> None:
        if not self.is_init:
            super().init_weights()

    def apply(self, fn: Callable[[nn.Module], None]) -> nn.Module:
        # MMEngine sets ``_params_init_info`` on every submodule for the duration of an init_weights traversal.
        if not (self.is_init and hasattr(self, '_params_init_info')):
            return super().apply(fn)
        # MMEngine's initialisers apply a closure defined in their __call__: name the initialiser class.
        initializer = getattr(fn, '__qualname__', type(fn).__name__).split('.')[0]
        reported = self.__dict__.setdefault('_skipped_initializers', set())
        if initializer not in reported:
            reported.add(initializer)
            print_log(
                f'{type(self).__name__} skips {initializer} of an `init_cfg`: its foundation weights were loaded '
                'and frozen when it was built, and its light modules keep their own initialisation.',
                logger='current', level=logging.WARNING)
        return self
