import math

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule


def check_prompt_length(kind: str, length: int) -> None:
    """Refuse a prompt length that is no positive int."""
    # type() rather than isinstance(): True is an int to Python, never a length in a config.
    if type(length) is not int or length <= 0:
        raise ValueError(f'{kind}: `length`={length!r} must be a positive int.')


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
        check_prompt_length(type(self).__name__, length)
        if context.patch_size is None:
            raise ValueError(f'{type(self).__name__} sizes its prompts from the patch size of an image encoder and '
                             'appends them after the last token, which no token of a causal text transformer '
                             "attends to; in a text encoder use 'PromptTuningDeep' or 'PromptTuningShallow', which "
                             'insert prompts after the start token.')
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


@MODELS.register_module()
class PromptTuningDeep(LightModule):
    """Prompt tuning as LIFT+ runs it: learnable tokens inserted right after the first token, in every block of
    its range.

    The first token is the class token of an image encoder or the start token of CLIP's text encoder. After it
    the prompts stand before every text token, so under the text transformer's causal mask all of them, the end
    token included, attend to the prompts; the text encoder reads its feature at the end token, moved by the
    number of tokens inserted. The first block of the range inserts ``length`` tokens; each later block replaces
    the prompts of the block before it by its own. Prompts start as N(0, 0.02^2), as in LIFT+.

    Args:
        context (BlockContext): Sizes of the host transformer.
        shared (dict): State common to all blocks of this config entry (the first block of the range).
        length (int): Number of prompt tokens. Defaults to 2 (LIFT+'s text prompts).
    """
    uses_shared_state = True

    def __init__(self, context: BlockContext, shared: dict, length: int = 2) -> None:
        super().__init__()
        check_prompt_length(type(self).__name__, length)
        # Blocks are built in order, so the first one built is the first of the range: it inserts, the rest
        # replace. Counting tokens instead would break when an encoder shortens its input (the text encoder drops
        # the padding after the end tokens).
        self.replaces = shared.setdefault('first_block', context.block_index) != context.block_index
        self.prompt = nn.Parameter(torch.empty(length, context.embed_dims))
        nn.init.normal_(self.prompt, std=0.02)

    def sites(self) -> dict:
        return {'tokens': self.forward}

    def forward(self, tokens: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        length = self.prompt.shape[0]
        prompts = self.prompt.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        rest = tokens[:, 1 + length:] if self.replaces else tokens[:, 1:]
        return torch.cat([tokens[:, :1], prompts, rest], dim=1)


@MODELS.register_module()
class PromptTuningShallow(PromptTuningDeep):
    """Prompt tuning with learnable tokens inserted once after the first token, in the first block of the range,
    and carried through the following blocks; see :class:`PromptTuningDeep`.

    Args:
        context (BlockContext): Sizes of the host transformer.
        shared (dict): State common to all blocks of this config entry.
        length (int): Number of prompt tokens. Defaults to 2.
    """
    first_block_only = True
