import math

import torch
from torch import nn
from torch.nn import functional as F


class Bottleneck(nn.Module):
    """``up(relu(down(ln(x))))`` with ``up`` starting at zero, the core of Adapter and AdaptFormer.

    Args:
        width (int): Input and output width.
        hidden (int): Bottleneck width.
    """

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.down_proj = nn.Linear(width, hidden)
        self.up_proj = nn.Linear(hidden, width)
        # LIFT's start: Kaiming-normal down projection, zero biases and zero up projection.
        nn.init.kaiming_normal_(self.down_proj.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_proj(F.relu(self.down_proj(self.ln(x))))
