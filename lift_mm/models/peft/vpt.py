"""Visual prompt tuning: learnable tokens joining the class and patch tokens."""
import math
from typing import Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule, resolve_bottleneck


@MODELS.register_module()
class VPTDeep(LightModule):
    """Visual prompt tuning, deep: learnable tokens appended in every block of its range.

    From "Visual Prompt Tuning" (Jia et al., ECCV 2022). Each block drops the prompts of the previous block and
    appends its own ``length`` tokens after the class and patch tokens, so the class token (index 0), which the
    encoder outputs, attends to them.

    This is also LIFT+'s prompt tuning (``pt``), with ``length='auto_lift_plus', init='normal'``. LIFT+ puts the
    prompts between the class token and the patches rather than after the patches; the block has no positional
    information (it was added before the first block), so every token's output is the same in either order.

    Args:
        context (BlockContext): Sizes of the host transformer.
        length (int | str): Number of prompt tokens, or ``'auto_lift_plus'`` for LIFT+'s
            ``2 ** max(0, floor(log2(K / L)))`` with L the blocks of ``blocks``. Defaults to 10 (LIFT's).
        init (str): ``'uniform'`` (VPT's and LIFT's: uniform in +-sqrt(6 / (3 P^2 + C)) for patch size P and
            width C) or ``'normal'`` (LIFT+'s: N(0, 0.02^2)). Defaults to ``'uniform'``.
    """

    def __init__(self, context: BlockContext, length: Union[int, str] = 10, init: str = 'uniform') -> None:
        super().__init__()
        name = type(self).__name__
        length = resolve_bottleneck(length, context, name, {'auto_lift_plus': 1}, key='length', at_most_width=False)
        self.num_tokens = context.num_tokens
        self.prompt = nn.Parameter(torch.empty(length, context.embed_dims))
        if init == 'uniform':
            # VPT's Xavier-style bound from the patch-embedding fan-in and the width.
            bound = math.sqrt(6. / (3 * context.patch_size[0] * context.patch_size[1] + context.embed_dims))
            nn.init.uniform_(self.prompt, -bound, bound)
        elif init == 'normal':
            nn.init.normal_(self.prompt, std=0.02)
        else:
            raise ValueError(f"{name}: `init`={init!r} must be 'uniform' (LIFT's) or 'normal' (LIFT+'s).")

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
        length (int | str): Number of prompt tokens, or ``'auto_lift_plus'`` (see :class:`VPTDeep`).
            Defaults to 10.
        init (str): ``'uniform'`` or ``'normal'`` (see :class:`VPTDeep`). Defaults to ``'uniform'``.
    """
    first_block_only = True
