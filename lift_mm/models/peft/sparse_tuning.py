from typing import Optional, Tuple, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule

# The four linears of a block, in the order their masks are drawn from the shared generator.
LINEAR_SITES = ('qkv', 'attn_out', 'mlp_in', 'mlp_out')


def auto_mask_ratio(context: BlockContext) -> float:
    """LIFT's default fraction: about K trained weights per linear of width C, floored to 0.001 steps."""
    if context.num_classes is None:
        raise ValueError("SparseTuning ratio='auto' needs the number of classes: set `num_classes` on the "
                         'backbone or give a ratio.')
    ratio = context.num_classes / (12 * context.num_layers * context.embed_dims)
    return max(0.001, ratio // 0.001 * 0.001)


class MaskedUpdate(nn.Module):
    """Trainable values for a random subset of one linear's weight and bias entries.

    The subset is drawn as LIFT draws it: a permutation of all ``out * (in + 1)`` entries (bias as an extra
    input column) from ``generator``, its first ``ratio`` fraction selected.

    Args:
        weight (torch.Tensor): The host weight, shape (out, in).
        bias (torch.Tensor): The host bias, shape (out, ).
        ratio (float): Fraction of entries to train.
        generator (torch.Generator): Source of the subset.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, ratio: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        out_dim, in_dim = weight.shape
        total = out_dim * (in_dim + 1)
        chosen = torch.randperm(total, generator=generator)[:int(total * ratio)]
        mask = torch.zeros(total, dtype=torch.bool).scatter(0, chosen, True).view(out_dim, in_dim + 1)
        # Derived from the seed, so not saved: a checkpoint holds only the trained values.
        self.register_buffer('weight_mask', mask[:, :-1].contiguous(), persistent=False)
        self.register_buffer('bias_mask', mask[:, -1].contiguous(), persistent=False)
        self.optimized_weight = nn.Parameter(weight.detach()[self.weight_mask].clone())
        self.optimized_bias = nn.Parameter(bias.detach()[self.bias_mask].clone())

    def forward(self, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        weight = weight.masked_scatter(self.weight_mask, self.optimized_weight.to(weight.dtype))
        bias = bias.masked_scatter(self.bias_mask, self.optimized_bias.to(bias.dtype))
        return weight, bias


@MODELS.register_module()
class SparseTuning(LightModule):
    """Masked sparse tuning: a seeded random fraction of the entries of the block's four linears is trained.

    LIFT's "arbitrary" light-weight fine-tuning. One generator, seeded once per config entry, draws the masks
    block after block in the order attention-in, attention-out, MLP-in, MLP-out, as LIFT does, so the same seed
    selects the same entries.

    Args:
        context (BlockContext): Sizes of the host transformer.
        shared (dict): State common to all blocks of this config entry (the generator).
        ratio (float | str): Fraction of each linear's entries to train, or ``'auto'`` for
            ``max(0.001, floor_0.001(K / (12 L C)))``. Defaults to ``'auto'``.
        seed (int): Seed of the mask generator. Defaults to 0.
    """
    uses_shared_state = True

    def __init__(self, context: BlockContext, shared: dict, ratio: Union[float, str] = 'auto',
                 seed: int = 0) -> None:
        super().__init__()
        self.ratio = auto_mask_ratio(context) if ratio == 'auto' else float(ratio)
        if not 0. < self.ratio <= 1.:
            raise ValueError(f"SparseTuning: `ratio`={ratio!r} must be 'auto' or in (0, 1].")
        # Kept only until attach(): the generator is shared state, not part of the module.
        self._generator = shared.setdefault('generator', torch.Generator().manual_seed(seed))
        self.updates = nn.ModuleDict()

    def attach(self, parts) -> None:
        linears = dict(qkv=(parts.qkv_weight, parts.qkv_bias), attn_out=(parts.out_proj.weight, parts.out_proj.bias),
                       mlp_in=(parts.fc1.weight, parts.fc1.bias), mlp_out=(parts.fc2.weight, parts.fc2.bias))
        for site in LINEAR_SITES:
            weight, bias = linears[site]
            if bias is None:
                raise ValueError(f'SparseTuning needs biases on every linear; the host {site} has none.')
            self.updates[site] = MaskedUpdate(weight, bias, self.ratio, self._generator)
        del self._generator

    def sites(self) -> dict:
        return {f'{site}_params': self.updates[site] for site in LINEAR_SITES}
