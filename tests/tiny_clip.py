"""A tiny open_clip CLIP architecture and helpers to save it the ways real weights are distributed."""
import copy

import open_clip
import torch
from open_clip.transformer import QuickGELU

from lift_mm.models.utils.open_clip_factory import QUICK_GELU_META_KEY

TINY_CLIP = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, patch_size=8, head_width=32),
    text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=2))


# The seed of the tiny CLIP that the `clip_file` fixture (conftest.py) saves.
CLIP_SEED = 0


def tiny_clip_arch() -> dict:
    return copy.deepcopy(TINY_CLIP)


def make_tiny_clip(seed: int, quick_gelu: bool = False) -> torch.nn.Module:
    """A randomly initialised tiny CLIP, different for each seed."""
    torch.manual_seed(seed)
    return open_clip.CLIP(**tiny_clip_arch(), quick_gelu=quick_gelu).eval()


def uses_quick_gelu(model: torch.nn.Module) -> bool:
    return isinstance(model.transformer.resblocks[0].mlp.gelu, QuickGELU)


def save_open_clip_checkpoint(model: torch.nn.Module, path, record_activation: bool = True) -> str:
    """open_clip's training format: a dict with a DDP-prefixed ``state_dict``.

    With ``record_activation``, the file also records the model's activation as lift_mm's ``save_clip_weights``
    does (``meta['quick_gelu']``), so that it loads without ``quick_gelu``; without, it is a plain state dict.
    """
    checkpoint = {'epoch': 1, 'state_dict': {f'module.{k}': v for k, v in model.state_dict().items()}}
    if record_activation:
        checkpoint['meta'] = {QUICK_GELU_META_KEY: uses_quick_gelu(model)}
    torch.save(checkpoint, path)
    return str(path)


def save_openai_archive(model: torch.nn.Module, path) -> str:
    """OpenAI's format: a TorchScript archive of the whole model."""
    torch.jit.save(torch.jit.script(model), str(path))
    return str(path)


def tiny_resnet_arch() -> dict:
    """A tiny open_clip CLIP with a ResNet image tower (one block per stage) for 64-pixel images."""
    return dict(embed_dim=32, vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=16),
                text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
