"""The one mechanism that puts light modules into a stack of transformer blocks."""
import copy
import inspect
from typing import List, Optional, Sequence, Tuple, Type, Union

from torch import nn

from mmpretrain.registry import MODELS
from .light_module import LightModule
from .tunable_block import TunableBlock

BlockRange = Union[None, int, Sequence[int]]
LightModuleEntry = Union[dict, str]
# Constructor arguments that the code building light modules passes, never the config.
SUPPLIED_ARGUMENTS = ('context', 'shared')


def block_indices(blocks: BlockRange, num_layers: int, kind: str) -> range:
    """Which blocks a light module goes into.

    Args:
        blocks (None | int | Sequence[int]): None for every block, an int ``k`` for the last ``k`` blocks,
            or ``[start, end)``, two ints.
        num_layers (int): Number of blocks of the encoder.
        kind (str): Light module type, for error messages.

    Returns:
        range: The indices of the blocks.

    Raises:
        ValueError: If ``blocks`` is none of these forms or lies outside the encoder.
    """
    if blocks is None:
        return range(num_layers)
    # type() rather than isinstance(): True and False are ints to Python, never a block count in a config.
    if type(blocks) is int:
        if not 0 < blocks <= num_layers:
            raise ValueError(f'{kind}: `blocks`={blocks} must be between 1 and {num_layers} (the last k blocks).')
        return range(num_layers - blocks, num_layers)
    if not (isinstance(blocks, (list, tuple)) and len(blocks) == 2 and all(type(end) is int for end in blocks)):
        raise ValueError(f'{kind}: `blocks`={blocks!r} must be None (every block), an int k (the last k blocks, '
                         f'1 <= k <= {num_layers}) or a range [start, end) of two ints with 0 <= start < end <= '
                         f'{num_layers}.')
    start, end = blocks
    if not 0 <= start < end <= num_layers:
        raise ValueError(f'{kind}: `blocks`={list(blocks)} must be a range [start, end) with '
                         f'0 <= start < end <= {num_layers}.')
    return range(start, end)


def registered_light_modules() -> List[str]:
    """Names of the light module types in mmpretrain's MODELS registry."""
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, LightModule))


def light_module_cfg(entry: LightModuleEntry) -> Tuple[dict, Type[LightModule]]:
    """A ``light_modules`` entry as a config dict of its own, and the kind it names.

    Args:
        entry (dict | str): A config with a registered ``type``, or the name of a kind, which takes the kind's
            defaults (``--cfg-options`` cannot write dicts, so ``light_modules=[VPTDeep]`` switches a kind there).

    Returns:
        Tuple[dict, type]: A copy of the config and the :class:`LightModule` subclass.

    Raises:
        TypeError: If ``entry`` is neither a dict nor a str.
        KeyError: If its ``type`` is not a registered light module.
    """
    if isinstance(entry, str):
        entry = dict(type=entry)
    if not isinstance(entry, dict):
        raise TypeError(f'`light_modules` entries must be dicts with a `type`, or names of light modules; got '
                        f'{entry!r}.')
    cfg = copy.deepcopy(dict(entry))
    kind = cfg.get('type')
    module_type = MODELS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(module_type, type) and issubclass(module_type, LightModule)):
        raise KeyError(f'Unknown light module type {kind!r} in `light_modules`; registered light modules: '
                       f'{registered_light_modules()}.')
    return cfg, module_type


def check_light_module_keys(cfg: dict, module_type: Type[LightModule], read_by_caller: Sequence[str]) -> None:
    """Refuse config keys that a light module kind does not take, naming the kind, the keys and its keys.

    The kind's keys are the arguments of its constructor, less those the builder supplies (``context``,
    ``shared``), so every kind is checked alike.

    Args:
        cfg (dict): The light module's config.
        module_type (type): Its kind.
        read_by_caller (Sequence[str]): Keys the caller reads itself, such as ``type`` and ``blocks``.

    Raises:
        TypeError: If ``cfg`` has a key that is neither the kind's nor the caller's.
    """
    parameters = inspect.signature(module_type).parameters.values()
    # A kind that takes **kwargs does not say which keys it reads.
    if any(param.kind is param.VAR_KEYWORD for param in parameters):
        return
    accepted = [*read_by_caller, *(param.name for param in parameters
                                   if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
                                   and param.name not in SUPPLIED_ARGUMENTS)]
    unknown = [key for key in cfg if key not in accepted]
    if unknown:
        name = module_type.__name__
        raise TypeError(
            f'{name} in `light_modules` does not take {unknown}; it takes {accepted}. An entry whose `type` was '
            f'changed (as by --cfg-options model.backbone.light_modules.0.type={name}) keeps the other keys of '
            f'the kind it had: give the whole list instead, as in --cfg-options '
            f'model.backbone.light_modules=[{name}].')


def inject_light_modules(blocks: nn.ModuleList,
                         light_module_cfgs: Sequence[LightModuleEntry],
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
        light_module_cfgs (Sequence[dict | str]): Light module configs, each with a registered ``type`` and
            optionally ``blocks`` (see :func:`block_indices`), the rest being the module's own arguments; or
            names of kinds, for their defaults.
        block_type (type): The :class:`TunableBlock` subclass that reads the host's block layout.
        num_tokens (int): Tokens entering the first block.
        patch_size (Tuple[int, int]): Patch size of the encoder.
        num_classes (int, optional): Number of classes, for ``'auto'`` sizes. Defaults to None.
    """
    num_layers = len(blocks)
    wrapped = [block_type(block) for block in blocks]
    for entry in light_module_cfgs:
        cfg, module_type = light_module_cfg(entry)
        check_light_module_keys(cfg, module_type, ('type', 'blocks'))
        indices = block_indices(cfg.pop('blocks', None), num_layers, module_type.__name__)
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
