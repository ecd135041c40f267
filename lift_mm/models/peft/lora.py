import torch

from mmpretrain.registry import MODELS
from .light_module import BlockContext, LightModule, resolve_bottleneck
from .low_rank import LowRank


@MODELS.register_module()
class LoRA(LightModule):
    """LoRA on the attention's query and value projections.

    From "LoRA: Low-Rank Adaptation of Large Language Models" (Hu et al., ICLR 2022). With ``h`` the attention
    LayerNorm's output, ``q += (h A_q B_q) / r`` and ``v += (h A_v B_v) / r``; ``B`` starts at zero. It acts on
    the fused QKV projection directly, so it also reaches open_clip's ``nn.MultiheadAttention``, whose
    ``in_proj_weight`` no ``nn.Linear`` wrapper can.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): The rank ``r``, or ``'auto'`` for LIFT's rule. Defaults to ``'auto'``.
    """

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        width = context.embed_dims
        rank = resolve_bottleneck(bottleneck, context, 'LoRA')
        self.q = LowRank(width, rank, width)
        self.v = LowRank(width, rank, width)

    def hooks(self) -> dict:
        return {'qkv': self.forward}

    def forward(self, normed: torch.Tensor, qkv: torch.Tensor) -> torch.Tensor:
        q, k, v = qkv.chunk(3, dim=-1)
        return torch.cat([q + self.q(normed), k, v + self.v(normed)], dim=-1)
