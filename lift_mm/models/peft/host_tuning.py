"""Kinds that train some of the host block's own weights in place instead of adding modules."""
from typing import Iterable

from torch import nn

from mmpretrain.registry import MODELS
from .light_module import BlockContext, LightModule


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
    """Trains the affine weights of the block's LayerNorms (and BatchNorms, for convolutional hosts).

    Args:
        context (BlockContext): Sizes of the host transformer (unused; uniform light-module signature).
    """

    def __init__(self, context: BlockContext) -> None:
        super().__init__()

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        norms = (nn.LayerNorm, nn.modules.batchnorm._BatchNorm)
        return [param for module in host.modules() if isinstance(module, norms) for param in module.parameters()]


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
