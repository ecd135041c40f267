import torch

from mmpretrain.registry import MODELS
from .bottleneck import Bottleneck
from .light_module import BlockContext, LightModule, resolve_bottleneck


@MODELS.register_module()
class Adapter(LightModule):
    """Sequential bottleneck adapter after the MLP branch, with a residual connection.

    From "Parameter-Efficient Transfer Learning for NLP" (Houlsby et al., ICML 2019). The MLP branch output ``y``
    becomes ``y + up(relu(down(ln(y))))`` before it is added to the residual stream; ``up`` starts at zero.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): Hidden width, or ``'auto'`` for LIFT's rule. Defaults to ``'auto'``.
    """
    order = 2

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        self.bottleneck = Bottleneck(context.embed_dims, resolve_bottleneck(bottleneck, context, 'Adapter'))

    def hooks(self) -> dict:
        return {'mlp_branch': self.forward}

    def forward(self, stream: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return branch + self.bottleneck(branch)
