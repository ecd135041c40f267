"""Kinds that train some of the host block's own weights in place instead of adding modules."""
from typing import Iterable, List, Tuple

from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule


@MODELS.register_module()
class BitFit(LightModule):
    """Bias tuning: every bias of the block is trained, all other weights stay frozen.

    From "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked Language-models"
    (Ben Zaken et al., ACL 2022).

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
    """

    def __init__(self, context: BlockContext) -> None:
        super().__init__()

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        return [param for name, param in host.named_parameters() if name.endswith('bias')]


@MODELS.register_module()
class LayerNormTuning(LightModule):
    """Trains the affine weights of the host's LayerNorms.

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
    """
    norm_types: Tuple[type, ...] = (nn.LayerNorm, )

    def __init__(self, context: BlockContext) -> None:
        super().__init__()

    def host_modules(self, host: nn.Module) -> List[nn.Module]:
        """The normalisation layers this kind tunes."""
        return [module for module in host.modules() if isinstance(module, self.norm_types)]

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        return [param for module in self.host_modules(host) for param in module.parameters()]


@MODELS.register_module()
class BatchNormTuning(LayerNormTuning):
    """Trains the affine weights of the host's BatchNorms (CLIP ResNets); they also update their running
    statistics in training, as in LIFT, where the tuned BatchNorm layers follow the training mode.

    Args:
        context (BlockContext): Sizes of the host (unused; uniform light-module signature).
    """
    norm_types = (nn.modules.batchnorm._BatchNorm, )


@MODELS.register_module()
class FullFineTuning(LightModule):
    """Trains every weight of the block: the heavy fine-tuning LIFT compares against.

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
    """

    def __init__(self, context: BlockContext) -> None:
        super().__init__()

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        return list(host.parameters())
