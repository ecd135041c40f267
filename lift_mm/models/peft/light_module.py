"""What every light-weight module shares: where it acts in a block and how big it is."""
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import nn

if TYPE_CHECKING:
    from .tunable_block import BlockParts

ActivationHook = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ParameterHook = Callable[[torch.Tensor, Optional[torch.Tensor]], Tuple[torch.Tensor, Optional[torch.Tensor]]]

# Where a light module can act in :class:`TunableBlock`'s forward. Activation sites are called as
# ``hook(site_input, site_output) -> new site_output``:
ACTIVATION_SITES = (
    'tokens',  # the tokens entering the block (both arguments)
    'ln_1',  # block input -> output of the attention LayerNorm
    'qkv',  # attention LayerNorm output -> fused q, k, v projections (width 3C)
    'attn_out',  # attention-weighted values -> attention output projection
    'ln_2',  # residual stream -> output of the MLP LayerNorm
    'mlp_in',  # MLP LayerNorm output -> first MLP linear (before the activation)
    'mlp_out',  # activated hidden -> second MLP linear
    'mlp_branch',  # residual stream entering the MLP branch -> branch output, before it is added back
)
# Parameter sites are called as ``hook(weight, bias) -> (weight, bias)`` for the block's four linears.
PARAMETER_SITES = ('qkv_params', 'attn_out_params', 'mlp_in_params', 'mlp_out_params')


@dataclass(frozen=True)
class BlockContext:
    """The facts about a transformer that light modules size themselves from.

    Args:
        embed_dims (int): Width of the residual stream.
        mlp_dims (int): Hidden width of the MLP branch.
        num_heads (int): Number of attention heads.
        num_layers (int): Number of transformer blocks of the whole encoder.
        block_index (int): Index of the block the module goes into.
        num_tokens (int): Tokens the encoder feeds its first block (class token and patches).
        patch_size (Tuple[int, int]): Patch size of the encoder.
        num_classes (int, optional): Number of classes of the task, needed by ``'auto'`` sizes.
            Defaults to None.
    """
    embed_dims: int
    mlp_dims: int
    num_heads: int
    num_layers: int
    block_index: int
    num_tokens: int
    patch_size: Tuple[int, int]
    num_classes: Optional[int] = None


def auto_bottleneck(context: BlockContext) -> int:
    """LIFT's bottleneck rule, ``2 ** max(0, floor(log2(K / (2 L))))`` for K classes and L blocks."""
    if context.num_classes is None:
        raise ValueError("bottleneck='auto' needs the number of classes: set `num_classes` on the backbone "
                         'or give an integer bottleneck.')
    return 2**max(0, int(math.floor(math.log2(context.num_classes / (2 * context.num_layers)))))


def resolve_bottleneck(bottleneck: Union[int, str], context: BlockContext, kind: str) -> int:
    """Turn a configured bottleneck (an int or ``'auto'``) into a checked width.

    An ``'auto'`` width of 1 (fewer than ``4 L`` classes) is logged as a warning, which MMEngine's logger shows
    once however many blocks it is resolved for.
    """
    if bottleneck == 'auto':
        width = auto_bottleneck(context)
        if width == 1:
            print_log(f"{kind}: bottleneck='auto' is 1 for {context.num_classes} classes and {context.num_layers} "
                      "blocks (LIFT's rule 2 ** max(0, floor(log2(K / 2L))) gives 1 for fewer than "
                      f'{4 * context.num_layers} classes); set an integer `bottleneck` for a wider one.',
                      logger='current', level=logging.WARNING)
        return width
    # type() rather than isinstance(): True is an int to Python, never a width in a config.
    if type(bottleneck) is not int or not 0 < bottleneck <= context.embed_dims:
        raise ValueError(f"{kind}: `bottleneck`={bottleneck!r} must be 'auto' or an int in "
                         f'[1, {context.embed_dims}] (the width of the model).')
    return bottleneck


class LightModule(nn.Module):
    """Base of the light-weight fine-tuning modules injected into transformer blocks.

    A light module says where it acts (:meth:`hooks`, see ``ACTIVATION_SITES`` and ``PARAMETER_SITES``) and which
    weights of the host block it makes trainable (:meth:`host_parameters`). Several modules at one site act in
    ``order`` (lowest first), which reproduces LIFT's composition whatever the order of the config list.
    """
    order: int = 0
    # True for kinds that act only in the first block of their range (shallow visual prompts).
    first_block_only: bool = False
    # True for kinds built with ``shared``, a dict common to all blocks of one config entry.
    uses_shared_state: bool = False

    def hooks(self) -> Dict[str, Union[ActivationHook, ParameterHook]]:
        """Callables by site name."""
        return {}

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        """Weights of the host block that this kind trains in place."""
        return ()

    def attach(self, parts: 'BlockParts') -> None:
        """Called once the module is in its block, for kinds that start from the host's weights."""
