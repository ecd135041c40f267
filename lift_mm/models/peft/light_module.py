"""What every light-weight module shares: where it acts in a block and how big it is."""
import math
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn


@dataclass(frozen=True)
class BlockContext:
    """The facts about a transformer that light modules size themselves from.

    Args:
        embed_dims (int): Width of the residual stream.
        mlp_dims (int): Hidden width of the MLP branch.
        num_heads (int): Number of attention heads.
        num_layers (int): Number of transformer blocks of the whole encoder.
        num_classes (int, optional): Number of classes of the task, needed by ``'auto'`` sizes.
            Defaults to None.
    """
    embed_dims: int
    mlp_dims: int
    num_heads: int
    num_layers: int
    num_classes: Optional[int] = None


def auto_bottleneck(context: BlockContext) -> int:
    """LIFT's bottleneck rule, ``2 ** max(0, floor(log2(K / (2 L))))`` for K classes and L blocks."""
    if context.num_classes is None:
        raise ValueError("bottleneck='auto' needs the number of classes: set `num_classes` on the backbone "
                         'or give an integer bottleneck.')
    return 2**max(0, int(math.floor(math.log2(context.num_classes / (2 * context.num_layers)))))


def resolve_bottleneck(bottleneck: Union[int, str], context: BlockContext, kind: str) -> int:
    """Turn a configured bottleneck (an int or ``'auto'``) into a checked width."""
    if bottleneck == 'auto':
        return auto_bottleneck(context)
    if not isinstance(bottleneck, int) or not 0 < bottleneck <= context.embed_dims:
        raise ValueError(f"{kind}: `bottleneck`={bottleneck!r} must be 'auto' or an int in "
                         f'[1, {context.embed_dims}] (the width of the model).')
    return bottleneck


class LightModule(nn.Module):
    """Base of the modules injected into transformer blocks.

    A light module acts at one ``site`` of :class:`TunableBlock`'s forward and is called there as
    ``module(site_input, site_output)``, returning the new site output. Sites:

    - ``'mlp_branch'``: input is the residual stream entering the MLP branch, output is the branch's output
      (after layer scale), before it is added back to the stream.
    """
    site: str = ''

    def forward(self, site_input: torch.Tensor, site_output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
