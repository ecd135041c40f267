import torch

from mmpretrain.registry import MODELS
from .light_module import BlockContext, LightModule, resolve_bottleneck
from .low_rank import LowRank


@MODELS.register_module()
class LoRAMLP(LightModule):
    """LoRA on the two linears of the MLP branch.

    Low-rank updates (Hu et al., ICLR 2022) of ``fc1`` (width C to the MLP width) and ``fc2`` (back to C), each
    ``(x A B) / r`` with ``B`` starting at zero. LIFT's reference code declares this option but cannot build it
    (it passes an output width its LoRA class does not accept); this is the evident intent: rectangular
    updates with the shapes of the two linears.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): The rank ``r``, or ``'auto'`` for LIFT's rule. Defaults to ``'auto'``.
    """

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        rank = resolve_bottleneck(bottleneck, context, 'LoRAMLP')
        self.fc1 = LowRank(context.embed_dims, rank, context.mlp_dims)
        self.fc2 = LowRank(context.mlp_dims, rank, context.embed_dims)

    def hooks(self) -> dict:
        return {'mlp_in': self._update_fc1, 'mlp_out': self._update_fc2}

    def _update_fc1(self, normed: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.fc1(normed)

    def _update_fc2(self, activated: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out + self.fc2(activated)
