import math

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule


@MODELS.register_module()
class VPTDeep(LightModule):
    """Visual prompt tuning, deep: learnable tokens appended in every block of its range.

    From "Visual Prompt Tuning" (Jia et al., ECCV 2022). Each block drops the prompts of the previous block and
    appends its own ``length`` tokens after the class and patch tokens, so the class token (index 0), which the
    encoder outputs, attends to them.

    Args:
        context (BlockContext): Sizes of the host transformer.
        length (int): Number of prompt tokens. Defaults to 10.
    """

    def __init__(self, context: BlockContext, length: int = 10) -> None:
        super().__init__()
        if length <= 0:
            raise ValueError(f'{type(self).__name__}: `length`={length} must be positive.')
        self.num_tokens = context.num_tokens
        self.prompt = nn.Parameter(torch.empty(length, context.embed_dims))
        # VPT's uniform (Xavier-style) bound from the patch-embedding fan-in and the width.
        bound = math.sqrt(6. / (3 * context.patch_size[0] * context.patch_size[1] + context.embed_dims))
        nn.init.uniform_(self.prompt, -bound, bound)

    def sites(self) -> dict:
        return {'tokens': self.forward}

    def forward(self, tokens: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        prompts = self.prompt.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        return torch.cat([tokens[:, :self.num_tokens], prompts], dim=1)


@MODELS.register_module()
class VPTShallow(VPTDeep):
    """Visual prompt tuning, shallow: learnable tokens appended once, in the first block of the range.

    Same prompts as :class:`VPTDeep` (Jia et al., ECCV 2022), inserted before the first block they cover and
    carried through the following blocks.

    Args:
        context (BlockContext): Sizes of the host transformer.
        length (int): Number of prompt tokens. Defaults to 10.
    """
    first_block_only = True
