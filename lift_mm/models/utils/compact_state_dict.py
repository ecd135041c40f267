"""Checkpoints that hold what training changed, plus a fingerprint of the frozen foundation weights."""
import functools
import hashlib

import torch
from torch import nn

FINGERPRINT_KEY = 'foundation_fingerprint'


def fingerprint(module: nn.Module) -> torch.Tensor:
    """SHA-256 of a module's state dict (names, dtypes, shapes and values), as a uint8 tensor of 32 bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    return torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)


def fingerprint_hex(value: torch.Tensor) -> str:
    return bytes(value.cpu().tolist()).hex()[:16]


class CompactStateDict:
    """Makes ``owner.state_dict()`` omit the frozen weights of ``owner.<foundation>`` and checks them on load.

    The owner gets a ``foundation_fingerprint`` buffer computed from the foundation's weights as loaded. Its state
    dict keeps every trainable parameter and every tensor outside the foundation, and drops the foundation's
    frozen parameters and buffers. Loading a state dict refills the absent entries from the owner's own frozen
    weights, after checking that the saved fingerprint equals the owner's: a checkpoint trained on other
    foundation weights is refused, naming both. State dicts without a fingerprint (full ones, or converted from
    LIFT's reference code) load onto the owner's foundation unchecked.
    These are state-dict hooks, so they hold for MMEngine's runner (save, resume, ``load_from``), for
    ``torch.load_state_dict`` and for mmpretrain's inferencer alike.

    Args:
        owner (nn.Module): The module whose state dict is made compact.
        foundation (str): Attribute name of the frozen foundation model inside ``owner``, or ``''`` when the
            owner itself is the foundation (light modules injected into it).
        compact (bool): Drop frozen foundation weights from the state dict. Defaults to True.
        check_fingerprint (bool): Refuse checkpoints of other foundation weights. Defaults to True.
    """

    def __init__(self, owner: nn.Module, foundation: str, compact: bool = True, check_fingerprint: bool = True):
        self.foundation = foundation
        self.compact = compact
        self.check_fingerprint = check_fingerprint
        owner.register_buffer(FINGERPRINT_KEY, fingerprint(self._foundation(owner)))
        # torch tags public hooks with an attribute, which bound methods cannot carry: wrap them.
        owner.register_state_dict_post_hook(functools.partial(self._drop_frozen))
        owner.register_load_state_dict_pre_hook(functools.partial(self._refill_frozen))

    def _foundation(self, owner: nn.Module) -> nn.Module:
        return getattr(owner, self.foundation) if self.foundation else owner

    def frozen_tensors(self, owner: nn.Module) -> dict:
        """Frozen foundation tensors by state-dict key relative to ``owner``.

        A buffer counts as frozen when its module trains no parameter of its own, so the running statistics of
        a tuned normalisation layer are saved with it.
        """
        foundation = self._foundation(owner)
        frozen = {name: param for name, param in foundation.named_parameters() if not param.requires_grad}
        for module_name, module in foundation.named_modules():
            if any(param.requires_grad for param in module.parameters(recurse=False)):
                continue
            for buffer_name, buffer in module.named_buffers(recurse=False):
                if buffer_name not in module._non_persistent_buffers_set:
                    frozen[f'{module_name}.{buffer_name}' if module_name else buffer_name] = buffer
        prefix = f'{self.foundation}.' if self.foundation else ''
        frozen = {prefix + name: tensor for name, tensor in frozen.items()}
        frozen.pop(FINGERPRINT_KEY, None)
        return frozen

    def _drop_frozen(self, owner: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
        if self.compact:
            for name in self.frozen_tensors(owner):
                state_dict.pop(prefix + name, None)

    def _refill_frozen(self, owner: nn.Module, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                       missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        saved = state_dict.get(prefix + FINGERPRINT_KEY)
        current = getattr(owner, FINGERPRINT_KEY)
        if saved is None:
            # Converted or full checkpoints carry no fingerprint: keep this model's own.
            state_dict[prefix + FINGERPRINT_KEY] = current.detach()
        elif self.check_fingerprint and not torch.equal(saved.cpu(), current.cpu()):
            raise RuntimeError(
                f'The checkpoint was trained on foundation weights {fingerprint_hex(saved)}, but this model was '
                f'built with foundation weights {fingerprint_hex(current)} ({type(owner).__name__}.pretrained '
                'differs). Build the model from the weights the checkpoint was trained on, or set '
                '`check_fingerprint=False` on the backbone to load it anyway.')
        for name, tensor in self.frozen_tensors(owner).items():
            state_dict.setdefault(prefix + name, tensor.detach())
