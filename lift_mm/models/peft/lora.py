"""The LoRA family: low-rank updates of the attention's query and value (LoRA) or of the MLP's linears (LoRAMLP)."""
import math

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule, resolve_bottleneck


class LowRank(nn.Module):
    """The low-rank update ``(x @ A @ B) / rank`` of LoRA, with ``B`` starting at zero.

    Args:
        in_dim (int): Input width.
        rank (int): Rank of the update.
        out_dim (int): Output width.
    """

    def __init__(self, in_dim: int, rank: int, out_dim: int) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(in_dim, rank))
        self.lora_B = nn.Parameter(torch.zeros(rank, out_dim))
        self.scaling = 1.0 / rank
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.lora_A @ self.lora_B) * self.scaling


@MODELS.register_module()
class LoRA(LightModule):
    """LoRA on the attention's query and value projections.

    From "LoRA: Low-Rank Adaptation of Large Language Models" (Hu et al., ICLR 2022). With ``h`` the attention
    LayerNorm's output, ``q += (h A_q B_q) / r`` and ``v += (h A_v B_v) / r``; ``B`` starts at zero. It acts on
    the fused QKV projection directly, so it also reaches open_clip's ``nn.MultiheadAttention``, whose
    ``in_proj_weight`` no ``nn.Linear`` wrapper can.

    The automatic ranks: LIFT's (``'auto'``) is its adapters' ``2 ** max(0, floor(log2(K / 2L)))`` with L the
    encoder's blocks. LIFT+'s (``'auto_lift_plus'``) is ``2 ** max(0, floor(log2(K / 4L)))`` with L the blocks of
    ``blocks``: half its adapters' bottleneck ``K / 2L``, as LoRA has two low-rank pairs per block (query and value,
    ``4 C r`` weights, against the adapter's ``2 C r``), so both train about the classifier's ``K C`` weights.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): The rank ``r``, ``'auto'`` or ``'auto_lift_plus'``. Defaults to ``'auto'``.
    """

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        width = context.embed_dims
        rank = resolve_bottleneck(bottleneck, context, 'LoRA', {'auto': 2, 'auto_lift_plus': 4})
        self.q = LowRank(width, rank, width)
        self.v = LowRank(width, rank, width)

    def sites(self) -> dict:
        return {'qkv': self.forward}

    def forward(self, normed: torch.Tensor, qkv: torch.Tensor) -> torch.Tensor:
        q, k, v = qkv.chunk(3, dim=-1)
        return torch.cat([q + self.q(normed), k, v + self.v(normed)], dim=-1)


@MODELS.register_module()
class LoRAMLP(LightModule):
    """LoRA on the two linears of the MLP branch.

    Low-rank updates (Hu et al., ICLR 2022) of ``fc1`` (width C to the MLP width) and ``fc2`` (back to C), each
    ``(x A B) / r`` with ``B`` starting at zero. LIFT's reference code declares this option but cannot build it
    (it passes an output width its LoRA class does not accept); this is the evident intent: rectangular
    updates with the shapes of the two linears. LIFT+ has no LoRA on the MLP, so only LIFT's ``'auto'`` rank.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): The rank ``r``, or ``'auto'`` for LIFT's rule. Defaults to ``'auto'``.
    """

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        rank = resolve_bottleneck(bottleneck, context, 'LoRAMLP')
        self.fc1 = LowRank(context.embed_dims, rank, context.mlp_dims)
        self.fc2 = LowRank(context.mlp_dims, rank, context.embed_dims)

    def sites(self) -> dict:
        return {'mlp_in': self._update_fc1, 'mlp_out': self._update_fc2}

    def _update_fc1(self, normed: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.fc1(normed)

    def _update_fc2(self, activated: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out + self.fc2(activated)
