"""SSF, scaling and shifting of features (Lian et al., NeurIPS 2022), at the three places LIFT offers.

LIFT+'s SSF acts on the outputs of the four linears of a block: :class:`SSFAttn` and :class:`SSFMLP` together
(``light_modules=[dict(type='SSFAttn'), dict(type='SSFMLP')]``), in LIFT+'s order: after LoRA's update of the query
and value, before the Adapter.
"""
from typing import Tuple

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule


class ScaleShift(nn.Module):
    """``x * scale + shift`` over the last dimension (or the channels of an NCHW map), near identity at start.

    Args:
        dim (int): Feature width.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.empty(dim))
        self.shift = nn.Parameter(torch.empty(dim))
        nn.init.normal_(self.scale, mean=1.0, std=0.02)
        nn.init.normal_(self.shift, std=0.02)

    def forward(self, _: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return x * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)
        return x * self.scale + self.shift


class _SSF(LightModule):
    """A :class:`ScaleShift` at each site of ``SITES``: ``(site, width attribute of the context, multiple)``."""
    site_order = 1
    SITES: Tuple[Tuple[str, str, int], ...] = ()

    def __init__(self, context: BlockContext) -> None:
        super().__init__()
        self.ssf = nn.ModuleDict({site: ScaleShift(getattr(context, width) * multiple)
                                  for site, width, multiple in self.SITES})

    def sites(self) -> dict:
        return dict(self.ssf.items())


@MODELS.register_module()
class SSFAttn(_SSF):
    """SSF on the attention's fused QKV projection (width 3C) and output projection (width C).

    Args:
        context (BlockContext): Sizes of the host transformer.
    """
    SITES = (('qkv', 'embed_dims', 3), ('attn_out', 'embed_dims', 1))


@MODELS.register_module()
class SSFMLP(_SSF):
    """SSF on the outputs of the MLP's two linears (widths MLP width and C).

    Args:
        context (BlockContext): Sizes of the host transformer.
    """
    SITES = (('mlp_in', 'mlp_dims', 1), ('mlp_out', 'embed_dims', 1))


@MODELS.register_module()
class SSFLayerNorm(_SSF):
    """SSF on the outputs of the block's two LayerNorms.

    Args:
        context (BlockContext): Sizes of the host transformer.
    """
    SITES = (('ln_1', 'embed_dims', 1), ('ln_2', 'embed_dims', 1))


@MODELS.register_module()
class SSFOutput(LightModule):
    """SSF on the encoder's output feature: LIFT's SSF for CLIP ResNets, after the attention pooling.

    Args:
        context (BlockContext): Sizes of the host; ``embed_dims`` is the output width.
    """
    site_order = 1

    def __init__(self, context: BlockContext) -> None:
        super().__init__()
        self.ssf = ScaleShift(context.embed_dims)

    def sites(self) -> dict:
        return {'output': self.ssf}
