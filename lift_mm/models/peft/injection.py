"""The one mechanism that puts light modules into a stack of transformer blocks."""
import copy
from typing import List, Optional, Sequence, Tuple, Type, Union

from torch import nn

from mmpretrain.registry import MODELS
from .light_module import LightModule
from .tunable_block import TunableBlock

BlockRange = Union[None, int, Sequence[int]]


def block_indices(blocks: BlockRange, num_layers: int, kind: str) -> range:
    """Which blocks a light module goes into.

    Args:
        blocks (None | int | Sequence[int]): None for every block, an int ``k`` for the last ``k`` blocks,
            or ``[start, end)``.
        num_layers (int): Number of blocks of the encoder.
        kind (str): Light module type, for error messages.
    """
    if blocks is None:
        return range(num_layers)
    if isinstance(blocks, int):
        if not 0 < blocks <= num_layers:
            raise ValueError(f'{kind}: `blocks`={blocks} must be between 1 and {num_layers} (the last k blocks).')
        return range(num_layers - blocks, num_layers)
    start, end = blocks
    if not 0 <= start < end <= num_layers:
        raise ValueError(f'{kind}: `blocks`={list(blocks)} must be a range [start, end) with '
                         f'0 <= start < end <= {num_layers}.')
    return range(start, end)


def registered_light_modules() -> List[str]:
    """Names of the light module types in mmpretrain's MODELS registry."""
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, LightModule))


def inject_light_modules(blocks: nn.ModuleList,
                         light_module_cfgs: Sequence[dict],
                         block_type: Type[TunableBlock],
                         num_tokens: int,
                         patch_size: Tuple[int, int],
                         num_classes: Optional[int] = None) -> None:
    """Replace every block of ``blocks`` in place by a ``block_type`` holding its light modules.

    Each config is built once per block it covers, with ``context`` (a :class:`BlockContext`) as default
    argument, and for kinds with ``uses_shared_state`` also ``shared``, a dict common to all blocks of that
    config (for state such as a seeded generator drawn from block after block).

    Args:
        blocks (nn.ModuleList): The host's blocks, frozen already.
        light_module_cfgs (Sequence[dict]): Light module configs, each with a registered ``type`` and
            optionally ``blocks`` (see :func:`block_indices`); the rest are the module's own arguments.
        block_type (type): The :class:`TunableBlock` subclass that reads the host's block layout.
        num_tokens (int): Tokens entering the first block.
        patch_size (Tuple[int, int]): Patch size of the encoder.
        num_classes (int, optional): Number of classes, for ``'auto'`` sizes. Defaults to None.
    """
    num_layers = len(blocks)
    wrapped = [block_type(block) for block in blocks]
    for cfg in light_module_cfgs:
        cfg = copy.deepcopy(dict(cfg))
        kind = cfg.get('type')
        module_type = MODELS.get(kind) if isinstance(kind, str) else kind
        if not (isinstance(module_type, type) and issubclass(module_type, LightModule)):
            raise KeyError(f'Unknown light module type {kind!r} in `light_modules`; registered light modules: '
                           f'{registered_light_modules()}.')
        indices = block_indices(cfg.pop('blocks', None), num_layers, kind)
        if module_type.first_block_only:
            indices = indices[:1]
        shared = {}
        for index in indices:
            default_args = dict(context=wrapped[index].context(num_layers, index, num_tokens, patch_size,
                                                               num_classes))
            if module_type.uses_shared_state:
                default_args['shared'] = shared
            module = MODELS.build(cfg, default_args=default_args)
            wrapped[index].add_light_module(module_type.__name__, module)
    for index, block in enumerate(wrapped):
        blocks[index] = block
