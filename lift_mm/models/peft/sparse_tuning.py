"""Masked sparse tuning: a seeded random subset of the entries of a block's linears is trained, as LIFT and LIFT+
draw it."""
import math
from typing import Dict, Optional, Tuple, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .base import BlockContext, LightModule, rule_num_blocks

# The four linears of a block, in the order LIFT draws their masks from the shared generator.
LINEAR_SITES = ('qkv', 'attn_out', 'mlp_in', 'mlp_out')
# The linears each ``linears`` value covers (LIFT+'s ``aft_loc``).
LINEAR_GROUPS = {'all': LINEAR_SITES, 'attn': LINEAR_SITES[:2], 'mlp': LINEAR_SITES[2:]}
# LIFT+'s automatic ratio is K / (L (a C + b)): for an MLP of width 4C, (a C + b) C is the number of weights and
# biases of the group's linears, so about K C entries (the classifier's size) train over the L blocks.
LIFT_PLUS_RATIO_TERMS = {'all': (12, 9), 'attn': (4, 4), 'mlp': (8, 5)}
MASK_DRAWS = ('lift', 'lift_plus')

Masks = Tuple[torch.Tensor, torch.Tensor]


def auto_mask_ratio(context: BlockContext) -> float:
    """LIFT's default fraction: about K trained weights per linear of width C, floored to 0.001 steps."""
    ratio = context.num_classes / (12 * context.num_layers * context.embed_dims)
    return max(0.001, ratio // 0.001 * 0.001)


def lift_plus_mask_ratio(num_classes: int, num_blocks: int, embed_dims: int, linears: str = 'all') -> float:
    """LIFT+'s default fraction ``K / (L (a C + b))``, with ``(a, b)`` = (12, 9) for ``'all'`` linears, (4, 4)
    for ``'attn'`` and (8, 5) for ``'mlp'``.

    Computed with LIFT+'s operations, so that the number of entries ``int(n * ratio)`` matches its own.

    Args:
        num_classes (int): K.
        num_blocks (int): L, the number of blocks tuned.
        embed_dims (int): C, the width of the model.
        linears (str): ``'all'``, ``'attn'`` or ``'mlp'``. Defaults to ``'all'``.

    Returns:
        float: The fraction; above 1 for very narrow models, where every entry trains.
    """
    slope, offset = LIFT_PLUS_RATIO_TERMS[linears]
    return num_classes / (num_blocks * (embed_dims * slope + offset))


def lift_masks(out_dim: int, in_dim: int, ratio: float, generator: torch.Generator) -> Masks:
    """LIFT's masks of one linear: a permutation of all ``out * (in + 1)`` entries (the bias as an extra input
    column) drawn from ``generator``, its first ``int(out * (in + 1) * ratio)`` selected.

    Returns:
        Tuple[torch.Tensor, torch.Tensor]: Boolean masks of the weight, shape (out, in), and of the bias, (out, ).
    """
    total = out_dim * (in_dim + 1)
    chosen = torch.randperm(total, generator=generator)[:int(total * ratio)]
    mask = torch.zeros(total, dtype=torch.bool).scatter(0, chosen, True).view(out_dim, in_dim + 1)
    return mask[:, :-1].contiguous(), mask[:, -1].contiguous()


def lift_plus_mask(shape: Tuple[int, ...], ratio: float, seed: int) -> torch.Tensor:
    """LIFT+'s mask of one tensor: the first ``int(n * ratio)`` of a permutation of its ``n`` entries (row-major),
    drawn by ``torch.randperm`` on the CPU from a generator seeded with ``seed`` for this tensor alone."""
    numel = math.prod(shape)
    chosen = torch.randperm(numel, generator=torch.Generator().manual_seed(seed))[:int(numel * ratio)]
    return torch.zeros(numel, dtype=torch.bool).scatter(0, chosen, True).view(shape)


def lift_plus_block_masks(embed_dims: int, mlp_dims: int, ratio: float, seed: int,
                          linears: str = 'all') -> Dict[str, Masks]:
    """LIFT+'s masks of the linears of one block (the same for every block, see :class:`SparseTuning`).

    Args:
        embed_dims (int): Width C of the model.
        mlp_dims (int): Hidden width of the MLP.
        ratio (float): Fraction of each tensor's entries to train.
        seed (int): LIFT+'s ``aft_seed``.
        linears (str): ``'all'``, ``'attn'`` or ``'mlp'`` (LIFT+'s ``aft_loc``). Defaults to ``'all'``.

    Returns:
        Dict[str, Tuple[torch.Tensor, torch.Tensor]]: By site (``'qkv'``, ``'attn_out'``, ``'mlp_in'``,
        ``'mlp_out'``, those of ``linears``), the masks of the weight (out, in) and of the bias (out, ).
    """
    shapes = dict(qkv=(3 * embed_dims, embed_dims), attn_out=(embed_dims, embed_dims), mlp_in=(mlp_dims, embed_dims),
                  mlp_out=(embed_dims, mlp_dims))
    return {site: (lift_plus_mask(shapes[site], ratio, seed), lift_plus_mask(shapes[site][:1], ratio, seed))
            for site in LINEAR_GROUPS[linears]}


class MaskedUpdate(nn.Module):
    """Trainable values for the masked entries of one linear's weight and bias.

    Args:
        weight (torch.Tensor): The host weight, shape (out, in).
        bias (torch.Tensor): The host bias, shape (out, ).
        masks (Tuple[torch.Tensor, torch.Tensor]): Boolean masks of the entries to train, shaped as the weight
            and the bias.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, masks: Masks) -> None:
        super().__init__()
        weight_mask, bias_mask = masks
        # Derived from the seed, so not saved: a checkpoint holds only the trained values.
        self.register_buffer('weight_mask', weight_mask, persistent=False)
        self.register_buffer('bias_mask', bias_mask, persistent=False)
        self.optimized_weight = nn.Parameter(weight.detach()[weight_mask].clone())
        self.optimized_bias = nn.Parameter(bias.detach()[bias_mask].clone())

    def forward(self, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        weight = weight.masked_scatter(self.weight_mask, self.optimized_weight.to(weight.dtype))
        bias = bias.masked_scatter(self.bias_mask, self.optimized_bias.to(bias.dtype))
        return weight, bias


@MODELS.register_module()
class SparseTuning(LightModule):
    """Masked sparse tuning: a seeded random fraction of the entries of the block's linears is trained.

    LIFT's "arbitrary" light-weight fine-tuning (``masks='lift'``): one generator, seeded once per config entry,
    draws each linear's mask over its weight and bias together, block after block in the order attention-in,
    attention-out, MLP-in, MLP-out, so the same seed selects the same entries as LIFT.

    LIFT+'s arbitrary fine-tuning (``aft``) is ``masks='lift_plus', ratio='auto_lift_plus'`` with ``linears`` its
    ``aft_loc`` and ``seed`` its ``aft_seed``: every weight and every bias has a mask of its own
    (:func:`lift_plus_mask`), drawn by a generator freshly seeded with ``seed``. A mask therefore depends only on
    the seed, the ratio and the tensor's number of entries: every block of the range has the same masks, so does
    every run with that seed (the global seed plays no part), tensors with as many entries share the same
    row-major positions (the MLP's (4C, C) and (C, 4C) weights; the attention output's and the MLP output's
    biases), and a smaller ratio's entries are a subset of a larger one's. :func:`lift_plus_block_masks` gives
    them for converting LIFT+'s checkpoints.

    Args:
        context (BlockContext): Sizes of the host transformer.
        shared (dict): State common to all blocks of this config entry (LIFT's generator).
        ratio (float | str): Fraction of each linear's entries to train; ``'auto'`` for LIFT's
            ``max(0.001, floor_0.001(K / (12 L C)))`` with L the encoder's blocks, or ``'auto_lift_plus'`` for
            LIFT+'s ``K / (L (a C + b))`` (:func:`lift_plus_mask_ratio`) with L the blocks of ``blocks``, capped
            at 1 (every entry, as LIFT+ then trains). Defaults to ``'auto'``.
        seed (int): Seed of the masks. Defaults to 0.
        linears (str): The linears tuned: ``'all'`` four, the attention's (``'attn'``: QKV and output
            projection) or the MLP's (``'mlp'``). Defaults to ``'all'``.
        masks (str): How masks are drawn: ``'lift'`` or ``'lift_plus'``. Defaults to ``'lift'``.
    """
    uses_shared_state = True

    def __init__(self,
                 context: BlockContext,
                 shared: dict,
                 ratio: Union[float, str] = 'auto',
                 seed: int = 0,
                 linears: str = 'all',
                 masks: str = 'lift') -> None:
        super().__init__()
        if linears not in LINEAR_GROUPS:
            raise ValueError(f'SparseTuning: `linears`={linears!r} must be one of {list(LINEAR_GROUPS)}.')
        if masks not in MASK_DRAWS:
            raise ValueError(f'SparseTuning: `masks`={masks!r} must be one of {list(MASK_DRAWS)}.')
        if ratio in ('auto', 'auto_lift_plus') and context.num_classes is None:
            raise ValueError(f'SparseTuning ratio={ratio!r} needs the number of classes: set `num_classes` on the '
                             'backbone or give a ratio.')
        if ratio == 'auto':
            self.ratio = auto_mask_ratio(context)
        elif ratio == 'auto_lift_plus':
            self.ratio = min(1., lift_plus_mask_ratio(context.num_classes, rule_num_blocks(context, ratio),
                                                      context.embed_dims, linears))
        elif isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0. < ratio <= 1.:
            self.ratio = float(ratio)
        else:
            raise ValueError(f"SparseTuning: `ratio`={ratio!r} must be 'auto', 'auto_lift_plus' or in (0, 1].")
        self.linears, self.masks, self.seed = linears, masks, seed
        if masks == 'lift':
            # Kept only until attach(): the generator is shared state, not part of the module.
            self._generator = shared.setdefault('generator', torch.Generator().manual_seed(seed))
        self.updates = nn.ModuleDict()

    def attach(self, parts) -> None:
        linears = dict(qkv=(parts.qkv_weight, parts.qkv_bias), attn_out=(parts.out_proj.weight, parts.out_proj.bias),
                       mlp_in=(parts.fc1.weight, parts.fc1.bias), mlp_out=(parts.fc2.weight, parts.fc2.bias))
        if self.masks == 'lift_plus':
            masks = lift_plus_block_masks(parts.out_proj.out_features, parts.fc1.out_features, self.ratio, self.seed,
                                          self.linears)
        else:
            masks = {site: lift_masks(*linears[site][0].shape, self.ratio, self._generator)
                     for site in LINEAR_GROUPS[self.linears]}
            del self._generator
        for site, site_masks in masks.items():
            weight, bias = linears[site]
            if bias is None:
                raise ValueError(f'SparseTuning needs biases on every linear; the host {site} has none.')
            self.updates[site] = MaskedUpdate(weight, bias, site_masks)

    def sites(self) -> dict:
        return {f'{site}_params': update for site, update in self.updates.items()}
