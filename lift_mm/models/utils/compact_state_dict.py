"""Checkpoints that hold what training changed, plus a fingerprint of the frozen foundation."""
import functools
import hashlib
import re
from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Set, Tuple

import torch
from mmengine.logging import MMLogger
from torch import nn

FINGERPRINT_KEY = 'foundation_fingerprint'


class _LoadedTensor(NamedTuple):
    """A foundation tensor as loaded: where it lives (which survives block wrapping and device moves) and its
    digest."""
    name: str
    module: nn.Module
    attr: str
    digest: bytes


def _state_tensors(module: nn.Module) -> Iterator[Tuple[str, nn.Module, str, torch.Tensor]]:
    """Every parameter and persistent buffer of ``module`` as ``(state-dict name, owning module, attribute,
    tensor)``, in state-dict order."""
    for module_name, submodule in module.named_modules():
        prefix = f'{module_name}.' if module_name else ''
        persistent = {name: buffer for name, buffer in submodule._buffers.items()
                      if name not in submodule._non_persistent_buffers_set}
        for attr, tensor in {**submodule._parameters, **persistent}.items():
            if tensor is not None:
                yield prefix + attr, submodule, attr, tensor


def _tensor_digest(tensor: torch.Tensor) -> bytes:
    tensor = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f'{tensor.dtype}:{tuple(tensor.shape)};'.encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    return digest.digest()


def _architecture(module: nn.Module) -> str:
    """Each submodule's name, class and settings (``extra_repr``): the layers, widths, normalisation epsilons and
    activations (QuickGELU or GELU, and GELU's approximation) that the weights are run with."""
    return '\n'.join(f'{name}:{type(sub).__module__}.{type(sub).__qualname__}({sub.extra_repr()})'
                     for name, sub in module.named_modules())


def _combine(architecture: str, tensors: List[_LoadedTensor]) -> torch.Tensor:
    digest = hashlib.sha256(architecture.encode())
    for entry in sorted(tensors, key=lambda entry: entry.name):
        digest.update(f'{entry.name};'.encode() + entry.digest)
    return torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)


def _current(entry: _LoadedTensor) -> torch.Tensor:
    return entry.module._parameters.get(entry.attr, entry.module._buffers.get(entry.attr))


def fingerprint(module: nn.Module) -> torch.Tensor:
    """SHA-256 of what defines a module's function, as a uint8 tensor of 32 bytes.

    It covers the module's architecture (every submodule's class and settings, so the activation too) and its
    state dict (names, dtypes, shapes and values).
    """
    tensors = [_LoadedTensor(name, owner, attr, _tensor_digest(tensor))
               for name, owner, attr, tensor in _state_tensors(module)]
    return _combine(_architecture(module), tensors)


def fingerprint_hex(value: torch.Tensor) -> str:
    return bytes(value.cpu().tolist()).hex()[:16]


def config_key(prefix: str, name: str) -> str:
    """The config key of the argument ``name`` of the module whose state-dict prefix is ``prefix``
    (``'backbone.'`` gives ``model.backbone.<name>``; test-time wrappers' ``module.`` is not part of it). A module
    loaded on its own (empty prefix) is taken to be the backbone."""
    prefix = re.sub(r'^(module\.)+', '', prefix)
    return f'model.{prefix}{name}' if prefix else f'model.backbone.{name}'


def make_state_dict_compact(owner: nn.Module,
                            foundation: str,
                            compact: bool = True,
                            check_fingerprint: bool = True,
                            source_key: str = 'pretrained',
                            reproducible: bool = True,
                            stateful_layers: Optional[Callable[[nn.Module], Iterable[nn.Module]]] = None) -> None:
    """Make ``owner.state_dict()`` omit the frozen weights of ``owner.<foundation>`` and check them on save and
    load.

    The owner gets a ``foundation_fingerprint`` buffer (:func:`fingerprint`: architecture, activation and
    weights) of the foundation as loaded. Its state dict keeps every trainable parameter and every tensor outside
    the foundation, and drops the foundation's frozen parameters and buffers, unless the foundation cannot be
    rebuilt from the config (``reproducible=False``: random weights of no file, tag or fixed seed), in which case
    they are kept. Saving first checks that no frozen weight changed since it was loaded (an ``init_cfg`` or any
    in-place write). Loading a state dict refills the absent entries from the owner's own frozen weights, after
    checking that the saved fingerprint equals the owner's: a checkpoint trained on another foundation is
    refused, naming both and the config key ``source_key``, unless it carries the frozen weights and the owner's
    own are not reproducible, in which case the owner takes them. Frozen weights that a state dict without a
    fingerprint carries (a full checkpoint) become the foundation, and the fingerprint becomes theirs.
    These are state-dict hooks, so they hold for MMEngine's runner (save, resume, ``load_from``), for
    ``torch.load_state_dict`` and for mmpretrain's inferencer alike.

    Args:
        owner (nn.Module): The module whose state dict is made compact.
        foundation (str): Attribute name of the frozen foundation model inside ``owner``, or ``''`` when the
            owner itself is the foundation (light modules injected into it).
        compact (bool): Drop frozen foundation weights from the state dict. Defaults to True.
        check_fingerprint (bool): Refuse checkpoints of other foundation weights. Defaults to True.
        source_key (str): The owner's argument that chooses the foundation weights, named in errors.
            Defaults to ``'pretrained'``.
        reproducible (bool): Whether the config rebuilds the same foundation weights in every process (from a
            file, a tag or a fixed seed). Defaults to True.
        stateful_layers (Callable, optional): Given the owner, the layers of the foundation whose buffers
            training changes (normalisation layers that run in training mode); their buffers are saved, the other
            buffers are frozen. None counts the layers that train a parameter of their own. Defaults to None.
    """
    # The hooks keep their state in an object, not in closures, so that copy.deepcopy and pickle of the owner
    # give the copy hooks of its own, checking the copy's tensors.
    _CompactStateDict(owner, foundation, compact, check_fingerprint, source_key, reproducible, stateful_layers)


class _CompactStateDict:
    """The state-dict hooks of :func:`make_state_dict_compact` and what they keep between calls."""

    def __init__(self, owner: nn.Module, foundation: str, compact: bool, check_fingerprint: bool, source_key: str,
                 reproducible: bool, stateful_layers: Optional[Callable[[nn.Module], Iterable[nn.Module]]]) -> None:
        self.foundation = foundation
        self.stateful_layers = stateful_layers
        self.compact = compact and reproducible
        self.check_fingerprint = check_fingerprint
        self.source_key = source_key
        self.reproducible = reproducible
        foundation = self._foundation(owner)
        # What the foundation was loaded as: its architecture before light modules join it, and where each of
        # its tensors lives with the digest of its loaded value.
        self._architecture = _architecture(foundation)
        self._loaded = [_LoadedTensor(name, module, attr, _tensor_digest(tensor))
                        for name, module, attr, tensor in _state_tensors(foundation)]
        owner.register_buffer(FINGERPRINT_KEY, _combine(self._architecture, self._loaded))
        self._load_carries: Optional[Tuple[bool, bool]] = None
        # torch tags public hooks with an attribute, which bound methods cannot carry: wrap them.
        owner.register_state_dict_post_hook(functools.partial(self._drop_frozen))
        owner.register_load_state_dict_pre_hook(functools.partial(self._refill_frozen))
        owner.register_load_state_dict_post_hook(functools.partial(self._note_loaded))

    def _foundation(self, owner: nn.Module) -> nn.Module:
        return getattr(owner, self.foundation) if self.foundation else owner

    def frozen_tensors(self, owner: nn.Module) -> dict:
        """Frozen foundation tensors by state-dict key relative to ``owner``.

        A buffer counts as frozen unless its layer is stateful (see :meth:`_stateful_layers`), so the running
        statistics of a normalisation layer tuned in training mode are saved with it.
        """
        foundation = self._foundation(owner)
        frozen = {name: param for name, param in foundation.named_parameters() if not param.requires_grad}
        stateful = self._stateful_layers(owner)
        for module_name, module in foundation.named_modules():
            if id(module) in stateful:
                continue
            for buffer_name, buffer in module.named_buffers(recurse=False):
                if buffer_name not in module._non_persistent_buffers_set:
                    frozen[f'{module_name}.{buffer_name}' if module_name else buffer_name] = buffer
        prefix = f'{self.foundation}.' if self.foundation else ''
        frozen = {prefix + name: tensor for name, tensor in frozen.items()}
        frozen.pop(FINGERPRINT_KEY, None)
        return frozen

    def _stateful_layers(self, owner: nn.Module) -> Set[int]:
        """Ids of the foundation's layers whose buffers training changes: those ``stateful_layers`` gives, or
        else those that train a parameter of their own."""
        if self.stateful_layers is not None:
            return {id(layer) for layer in self.stateful_layers(owner)}
        return {id(module) for module in self._foundation(owner).modules()
                if any(param.requires_grad for param in module.parameters(recurse=False))}

    def changed_frozen_weights(self, owner: nn.Module) -> List[str]:
        """Names (as loaded) of the frozen foundation tensors whose values differ from those loaded."""
        changed = []
        stateful = self._stateful_layers(owner)
        for entry in self._loaded:
            tensor = _current(entry)
            trains = tensor.requires_grad if entry.attr in entry.module._parameters else id(entry.module) in stateful
            if not trains and _tensor_digest(tensor) != entry.digest:
                changed.append(entry.name)
        return changed

    def _drop_frozen(self, owner: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
        changed = self.changed_frozen_weights(owner)
        if changed:
            shown = ', '.join(changed[:5]) + (f' and {len(changed) - 5} more' if len(changed) > 5 else '')
            raise RuntimeError(
                f'The frozen foundation weights of {type(owner).__name__} changed after they were loaded '
                f'({len(changed)} tensors: {shown}), so its fingerprint no longer describes them and a checkpoint '
                'would not reload as trained. Something wrote to them in place; lift_mm backbones skip '
                '`init_cfg` initialisers, so look for code that modifies frozen parameters.')
        if self.compact:
            for name in self.frozen_tensors(owner):
                state_dict.pop(prefix + name, None)

    def _refill_frozen(self, owner: nn.Module, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                       missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        saved = state_dict.get(prefix + FINGERPRINT_KEY)
        current = getattr(owner, FINGERPRINT_KEY)
        frozen = self.frozen_tensors(owner)
        carried = [name for name in frozen if prefix + name in state_dict]
        carries_all = len(carried) == len(frozen)
        if saved is None:
            # Converted or full checkpoints carry no fingerprint: keep this model's own, or that of the weights
            # they carry (computed once loaded).
            state_dict[prefix + FINGERPRINT_KEY] = current.detach()
        elif (self.check_fingerprint and not torch.equal(saved.cpu(), current.cpu())
              and (self.reproducible or not carries_all)):
            source = config_key(prefix, self.source_key)
            raise RuntimeError(
                f'The checkpoint was trained on foundation weights {fingerprint_hex(saved)}, but this model was '
                f'built with foundation weights {fingerprint_hex(current)} (`{source}` differs, or the activation '
                'or architecture). Build the model from the weights the checkpoint was trained on, or set '
                f'`{config_key(prefix, "check_fingerprint")}=False` to load it anyway.')
        # The loaded tensors are in place once all of the owner has loaded: see _note_loaded.
        self._load_carries = (bool(carried), saved is None)
        for name, tensor in frozen.items():
            state_dict.setdefault(prefix + name, tensor.detach())

    def _note_loaded(self, owner: nn.Module, incompatible_keys) -> None:
        """Make frozen weights that a state dict brought the reference of later checks."""
        carried, without_fingerprint = self._load_carries or (False, False)
        self._load_carries = None
        if not carried:
            return
        self._loaded = [entry._replace(digest=_tensor_digest(_current(entry))) for entry in self._loaded]
        if without_fingerprint:
            previous = getattr(owner, FINGERPRINT_KEY)
            identity = _combine(self._architecture, self._loaded)
            if not torch.equal(previous.cpu(), identity):
                MMLogger.get_current_instance().info(
                    f'{type(owner).__name__}: the state dict replaced the foundation weights '
                    f'{fingerprint_hex(previous)} by its own, {fingerprint_hex(identity)}.')
            previous.copy_(identity)
