import math

import torch
from torch import nn


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
