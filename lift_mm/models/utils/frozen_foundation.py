"""What every lift_mm backbone does with its frozen foundation: build it complete in ``__init__`` (frozen,
fingerprinted, light modules added), keep MMEngine's weight initialisation away from it, and run it in eval mode."""
import logging
from typing import Callable, List, Optional, Sequence, Union

from mmengine.logging import print_log
from torch import nn

from ..peft.base import LightModuleContainer
from .compact_state_dict import make_state_dict_compact
from .freeze import freeze
from .open_clip_factory import SharedCLIP


def layers_in_training_mode(backbone: nn.Module) -> List[nn.Module]:
    """The light modules and the host layers that follow the training mode (those light modules tune in place
    with their statistics, e.g. BatchNorms under ``BatchNormTuning``): only their buffers change in training.
    The BatchNorms whose weights ``BitFit`` or ``FullFineTuning`` train run in eval mode, with the foundation's
    statistics."""
    layers = []
    for container in backbone.modules():
        if isinstance(container, LightModuleContainer):
            layers += list(container.light_modules.modules())
            host = container.light_module_host()
            layers += [layer for module in container.light_modules.values() for layer in module.host_modules(host)]
    return layers


class FrozenFoundationMixin:
    """For backbones whose weights are all set in ``__init__``: the foundation loaded and frozen, the light
    modules at the start their method prescribes (AdaptFormer's zero up projection, ...).

    A backbone loads its foundation, then calls :meth:`build_light_weight`, which freezes and fingerprints it
    (:func:`make_state_dict_compact`) and calls the backbone's :meth:`add_light_modules`.

    MMEngine's ``init_weights``, which the Runner calls before training, applies each ``init_cfg`` to every
    submodule of the module that holds it, so the classifier-level ``init_cfg`` of mmpretrain's configs (DeiT,
    Swin, EVA: truncated-normal ``Linear``, constant ``LayerNorm``) would redraw the frozen weights after they
    were loaded and fingerprinted. Once the backbone is initialised (``is_init``, set by
    :meth:`build_light_weight`), the initialisers of such a traversal (the backbone's own ``init_cfg`` or any
    enclosing module's, ``override`` included) skip it, each logged once as a warning, and ``init_weights`` does
    nothing. Outside ``init_weights``, ``apply`` is PyTorch's.
    """
    # A CLIP backbone's whole CLIP, which a head borrows to compute its text features before the model first runs;
    # the first switch of mode releases it (see :meth:`train`).
    shared_clip: Optional[SharedCLIP] = None

    def build_light_weight(self,
                           foundation: str,
                           light_modules: Sequence[Union[dict, str]],
                           num_classes: Optional[int],
                           compact_state_dict: bool = True,
                           check_fingerprint: bool = True,
                           **compact_kwargs) -> None:
        """Freeze the loaded foundation, fingerprint it, add the light modules and mark the backbone complete, at
        the end of ``__init__``.

        Args:
            foundation (str): Attribute name of the foundation, ``''`` for the backbone itself.
            light_modules (Sequence[dict | str]): The backbone's ``light_modules`` configs.
            num_classes (int, optional): The number of classes its light modules are sized for (``'auto'``
                sizes). When given, it becomes the ``num_classes`` attribute, which mmpretrain's
                ``ClassNumCheckHook`` compares with the classes of every dataset, like the head's.
            compact_state_dict (bool): Leave the frozen weights out of the state dict. Defaults to True.
            check_fingerprint (bool): Refuse checkpoints trained on other foundation weights. Defaults to True.
            **compact_kwargs: Further arguments of :func:`make_state_dict_compact` (``source_key``,
                ``reproducible``).
        """
        freeze(self.get_submodule(foundation))
        # Fingerprint the weights as loaded, before light modules join them.
        make_state_dict_compact(self, foundation, compact=compact_state_dict, check_fingerprint=check_fingerprint,
                                stateful_layers=layers_in_training_mode, **compact_kwargs)
        self.add_light_modules(light_modules, num_classes)
        if num_classes is not None:
            self.num_classes = num_classes
        self.is_init = True

    def add_light_modules(self, light_modules: Sequence[Union[dict, str]], num_classes: Optional[int]) -> None:
        """Put the configured light modules into the frozen foundation (each backbone knows where)."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> nn.Module:
        """The frozen foundation always runs in eval mode; the backbone, its light modules and the host layers they
        tune in place (BatchNorms then update their running statistics) follow ``mode``.

        Text features are computed before the model first runs (a head's ``init_weights``, or when a zero-shot head
        is built), so :attr:`shared_clip`, and with it CLIP's text tower, is released here.
        """
        if self.shared_clip is not None:
            self.shared_clip.release()
        super().train(False)
        self.training = mode
        for module in self.modules():
            if isinstance(module, LightModuleContainer):
                module.train_light_modules(mode)
        return self

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
