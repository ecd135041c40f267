"""Kinds that train some of the host block's own weights in place instead of adding modules."""
from typing import Iterable, List, Optional, Sequence, Tuple

from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule


class HostTuning(LightModule):
    """Base of the kinds that train weights of the host in place, in all of it or in some of its submodules.

    Args:
        context (BlockContext): Sizes of the host (unused; uniform light-module signature).
        within (Sequence[str], optional): Names of the host's submodules (as ``named_modules`` gives them) whose
            weights are tuned; None tunes the whole host. LIFT+ tunes only the residual stages of ResNets,
            ``['layer1', 'layer2', 'layer3', 'layer4']``, leaving the stem frozen. Defaults to None.
    """

    def __init__(self, context: BlockContext, within: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        if within is not None and not (isinstance(within, (list, tuple)) and within
                                       and all(isinstance(name, str) for name in within)):
            raise TypeError(f'{type(self).__name__}: `within`={within!r} must be None (the whole host) or a '
                            "non-empty list of submodule names, such as ['layer1', 'layer2', 'layer3', 'layer4'].")
        self.within = None if within is None else list(within)

    def tuned_modules(self, host: nn.Module) -> List[nn.Module]:
        """The parts of ``host`` whose weights this kind tunes: ``within``'s submodules, or the host itself."""
        if self.within is None:
            return [host]
        submodules = dict(host.named_modules())
        unknown = [name for name in self.within if name not in submodules]
        if unknown:
            raise ValueError(f'{type(self).__name__}: `within` names {unknown}, which {type(host).__name__} does '
                             f'not have; its top-level submodules are {[name for name, _ in host.named_children()]}.')
        return [submodules[name] for name in self.within]

    def tuned_parameters(self, host: nn.Module) -> List[Tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of the weights in :meth:`tuned_modules`, each once."""
        found = {}
        for module in self.tuned_modules(host):
            for name, param in module.named_parameters():
                found.setdefault(id(param), (name, param))
        return list(found.values())


@MODELS.register_module()
class BitFit(HostTuning):
    """Bias tuning: every bias of the block (or of its ``within`` submodules) is trained, all other weights stay
    frozen.

    From "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked Language-models"
    (Ben Zaken et al., ACL 2022).

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
        within (Sequence[str], optional): Submodules of the host to tune, see :class:`HostTuning`; None tunes
            the whole host. Defaults to None.
    """

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        return [param for name, param in self.tuned_parameters(host) if name.endswith('bias')]


@MODELS.register_module()
class LayerNormTuning(HostTuning):
    """Trains the affine weights of the host's LayerNorms.

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
        within (Sequence[str], optional): Submodules of the host to tune, see :class:`HostTuning`; None tunes
            the whole host. Defaults to None.
    """
    norm_types: Tuple[type, ...] = (nn.LayerNorm, )

    def host_modules(self, host: nn.Module) -> List[nn.Module]:
        """The normalisation layers this kind tunes."""
        found = {}
        for part in self.tuned_modules(host):
            for module in part.modules():
                if isinstance(module, self.norm_types):
                    found.setdefault(id(module), module)
        return list(found.values())

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        return [param for module in self.host_modules(host) for param in module.parameters()]


@MODELS.register_module()
class BatchNormTuning(LayerNormTuning):
    """Trains the affine weights of the host's BatchNorms (ResNets); they also update their running statistics
    in training, as in LIFT, where the tuned BatchNorm layers follow the training mode.

    Args:
        context (BlockContext): Sizes of the host (unused; uniform light-module signature).
        within (Sequence[str], optional): Submodules of the host to tune, see :class:`HostTuning`; None tunes
            the whole host. Defaults to None.
    """
    norm_types = (nn.modules.batchnorm._BatchNorm, )


@MODELS.register_module()
class FullFineTuning(HostTuning):
    """Trains every weight of the block (or of its ``within`` submodules): the heavy fine-tuning LIFT compares
    against.

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
        within (Sequence[str], optional): Submodules of the host to tune, see :class:`HostTuning`; None tunes
            the whole host. Defaults to None.
    """

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        return [param for _, param in self.tuned_parameters(host)]
