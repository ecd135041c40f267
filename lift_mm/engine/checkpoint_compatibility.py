"""Whether a checkpoint fits the model and the config it is loaded into, with errors that name what differs.

MMEngine loads a checkpoint into a model leniently: missing and unexpected keys and tensors of other shapes are
logged and skipped, so a test scores a model that is partly the checkpoint's and partly freshly initialised. The
functions here compare before loading:

* :func:`checkpoint_state_dict` checks that a loaded checkpoint holds a state dict at all;
* :func:`state_dict_mismatch` lists what the model would not get from it (judged on what the model itself saves,
  so the frozen foundation weights that compact checkpoints leave out are not missing), and
  :func:`describe_mismatch` words that for an error or a warning;
* :func:`config_differences` lists the settings that changed since a checkpoint was saved, for ``--resume``.

:class:`~lift_mm.engine.hooks.CheckpointCompatibilityHook` applies them to every load of the runner, and
:func:`load_checkpoint_strictly` to loads outside it.
"""
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import CheckpointLoader
from torch import nn

from ..models.utils.compact_state_dict import FINGERPRINT_KEY

__all__ = [
    'CheckpointMismatchError', 'StateDictMismatch', 'checkpoint_state_dict', 'config_differences',
    'describe_mismatch', 'load_checkpoint_strictly', 'state_dict_mismatch', 'unwrap_model'
]

# MMEngine strips this prefix (left by saving a DDP-wrapped model) from every key before loading.
_WRAPPER_PREFIX = re.compile(r'^module\.')
# Keys listed per kind of difference before the rest are counted.
_LISTED_KEYS = 8
_MISSING = object()


class CheckpointMismatchError(RuntimeError):
    """A checkpoint that does not fit the model, or the run, it is loaded into."""


class StateDictMismatch(NamedTuple):
    """What differs between a state dict and a model.

    Attributes:
        missing (list): Keys the model saves (its trainable weights and tuned buffers) that the state dict lacks.
        unexpected (list): Keys of the state dict that name no parameter or buffer of the model.
        shapes (list): ``(key, checkpoint shape, model shape)`` for tensors of other shapes.
    """
    missing: List[str]
    unexpected: List[str]
    shapes: List[Tuple[str, tuple, tuple]]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model whose state dict a checkpoint holds: without DDP or test-time-augmentation wrappers."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def checkpoint_state_dict(checkpoint: Any, source: str) -> Mapping[str, torch.Tensor]:
    """The state dict of a loaded checkpoint, as MMEngine takes it, refusing what holds none.

    MMEngine takes ``checkpoint['state_dict']`` if present, else the checkpoint itself as the state dict.

    Args:
        checkpoint (Any): What ``torch.load`` returned.
        source (str): The checkpoint's file and the config key or argument that named it, for messages.

    Returns:
        Mapping[str, torch.Tensor]: The state dict, keys as saved.

    Raises:
        ValueError: If the checkpoint is not a dict, is empty, or its state dict holds entries that are not tensors.
    """
    accepted = ('it takes an MMEngine checkpoint (a dict whose `state_dict` maps parameter names to tensors, as '
                'tools/train.py saves) or such a state dict itself')
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source} holds a {type(checkpoint).__name__}, not a checkpoint: {accepted}.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    where = '`state_dict`' if 'state_dict' in checkpoint else 'it'
    if not isinstance(state_dict, Mapping):
        raise ValueError(f'{source}: its `state_dict` is a {type(state_dict).__name__}; {accepted}.')
    if not state_dict:
        raise ValueError(f'{source}: {where} is empty, there are no weights to load; {accepted}.')
    not_tensors = {key: type(value).__name__ for key, value in state_dict.items()
                   if not isinstance(value, torch.Tensor)}
    if not_tensors:
        listed = dict(list(not_tensors.items())[:_LISTED_KEYS])
        raise ValueError(
            f'{source}: {where} has entries that are not tensors ({listed}'
            f'{", ..." if len(not_tensors) > len(listed) else ""}), so it is not a state dict; {accepted}. '
            'If the weights are nested under another key (such as `model`), save them as '
            "`torch.save(dict(state_dict=checkpoint['model']), path)`.")
    return state_dict


def _model_tensors(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Every parameter and persistent buffer of ``model`` by state-dict key, frozen ones included."""
    tensors = dict(model.named_parameters(remove_duplicate=False))
    for module_name, module in model.named_modules(remove_duplicate=False):
        for name, buffer in module.named_buffers(recurse=False):
            if name not in module._non_persistent_buffers_set:
                tensors[f'{module_name}.{name}' if module_name else name] = buffer
    return tensors


def state_dict_mismatch(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> StateDictMismatch:
    """Compare a state dict with the model it is to be loaded into.

    A key is missing when the model's own ``state_dict()`` holds it: with compact checkpoints (see
    :func:`~lift_mm.models.utils.make_state_dict_compact`) those are the trainable weights and tuned
    buffers, the frozen foundation weights being refilled on load. The foundation fingerprint may be absent
    (converted checkpoints have none), as may BatchNorm's ``num_batches_tracked``, which MMEngine ignores too.

    Args:
        model (nn.Module): The model, without wrappers.
        state_dict (Mapping[str, torch.Tensor]): The state dict, with MMEngine's ``module.`` prefix if any.

    Returns:
        StateDictMismatch: What differs; false if nothing does.
    """
    saved = {_WRAPPER_PREFIX.sub('', key): value for key, value in state_dict.items()}
    tensors = _model_tensors(model)
    missing = [key for key in model.state_dict() if key not in saved
               and not key.endswith((FINGERPRINT_KEY, 'num_batches_tracked'))]
    unexpected = [key for key in saved if key not in tensors]
    shapes = [(key, tuple(value.shape), tuple(tensors[key].shape)) for key, value in saved.items()
              if key in tensors and value.shape != tensors[key].shape]
    return StateDictMismatch(missing, unexpected, shapes)


def _listed(keys: Sequence[str]) -> str:
    more = len(keys) - _LISTED_KEYS
    return ', '.join(keys[:_LISTED_KEYS]) + (f' and {more} more' if more > 0 else '')


def describe_mismatch(mismatch: StateDictMismatch) -> str:
    """The differences of :func:`state_dict_mismatch`, one kind per line, at most a few keys of each listed."""
    lines = []
    if mismatch.missing:
        lines.append(f'  missing from the checkpoint ({len(mismatch.missing)}): {_listed(mismatch.missing)}')
    if mismatch.unexpected:
        lines.append(f'  not in the model ({len(mismatch.unexpected)}): {_listed(mismatch.unexpected)}')
    if mismatch.shapes:
        shapes = [f'{key} {list(saved)} in the checkpoint, {list(own)} in the model'
                  for key, saved, own in mismatch.shapes]
        lines.append(f'  other shapes ({len(shapes)}): {_listed(shapes)}')
    return '\n'.join(lines)


def load_checkpoint_strictly(model: nn.Module, filename: str, map_location: str = 'cpu') -> dict:
    """Load a checkpoint into ``model``, refusing one that does not fit it exactly.

    For loads outside a runner (the runner's loads are checked by
    :class:`~lift_mm.engine.hooks.CheckpointCompatibilityHook`), e.g. a model for mmpretrain's inferencer built
    with ``pretrained=False``.

    Args:
        model (nn.Module): The model, possibly wrapped.
        filename (str): The checkpoint's path or URI, as MMEngine's ``load_checkpoint`` takes it.
        map_location (str): Where to put the tensors. Defaults to 'cpu'.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        CheckpointMismatchError: Naming the keys that are missing, not in the model or of other shapes.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    source = f'The checkpoint {filename}'
    state_dict = checkpoint_state_dict(checkpoint, source)
    model = unwrap_model(model)
    mismatch = state_dict_mismatch(model, state_dict)
    if mismatch:
        raise CheckpointMismatchError(f'{source} does not fit the model:\n{describe_mismatch(mismatch)}')
    model.load_state_dict({_WRAPPER_PREFIX.sub('', key): value for key, value in state_dict.items()}, strict=True)
    return checkpoint


def _plain(value: Any) -> Any:
    """A config value as plain Python, so that values compare equal whatever container types hold them."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _get(cfg: dict, key: str) -> Any:
    value: Any = cfg
    for part in key.split('.'):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return _plain(value)


def _differing_leaves(key: str, before: Any, now: Any) -> List[Tuple[str, Any, Any]]:
    """``(dotted key, before, now)`` for the innermost entries of two config values that differ."""
    if isinstance(before, dict) and isinstance(now, dict):
        return [leaf for name in sorted(set(before) | set(now), key=str)
                for leaf in _differing_leaves(f'{key}.{name}', before.get(name, _MISSING), now.get(name, _MISSING))]
    return [] if before == now else [(key, before, now)]


def config_differences(saved: Config, current: Config, keys: Sequence[str]) -> List[str]:
    """The settings under the dotted config ``keys`` whose values differ between two configs.

    Args:
        saved (Config): The config a checkpoint was saved with (MMEngine keeps it in ``meta['cfg']``).
        current (Config): The config of the run loading it.
        keys (Sequence[str]): Dotted keys such as ``'train_dataloader.batch_size'`` or ``'optim_wrapper'``; a key
            absent from both configs is equal.

    Returns:
        List[str]: ``'key: <saved> in the checkpoint, <current> now'`` per differing entry (the innermost key of
        dicts), in the order of ``keys``.
    """
    saved, current = saved.to_dict(), current.to_dict()
    differences = []
    for key in keys:
        for name, before, now in _differing_leaves(key, _get(saved, key), _get(current, key)):
            differences.append(f'{name}: {"(unset)" if before is _MISSING else repr(before)} in the checkpoint, '
                               f'{"(unset)" if now is _MISSING else repr(now)} now')
    return differences
