"""Building open_clip CLIP models from an architecture name and a weight source.

Both the image backbone and the text-initialised heads build CLIP through :func:`build_open_clip`, so the same
config keys (``arch``, ``pretrained``, ``quick_gelu``) mean the same thing everywhere; :class:`SharedCLIP` lets a
head borrow the backbone's loaded model, so one run reads the weights once.
"""
import functools
import json
import os
import pickle
import zipfile
from typing import Callable, Optional, Union

import open_clip
import torch
from mmengine.logging import MMLogger

from ...utils.checkpoint_safety import is_torch_file, weights_only_refusal

CLIPArch = Union[str, dict]

# Seed of the weights used when ``pretrained`` is None: fixed, so that every component that builds the
# same random CLIP (the backbone and a head's text encoder) gets identical weights.
RANDOM_INIT_SEED = 0

# Entries of TorchScript CLIP archives that are not weights: model hyper-parameters and the text tower's
# causal mask, which open_clip rebuilds itself.
ARCHIVE_ONLY_KEYS = ('input_resolution', 'context_length', 'vocab_size', 'attn_mask')

# Key of the activation record in the ``meta`` dict of files written by :func:`save_clip_weights`.
QUICK_GELU_META_KEY = 'quick_gelu'


def _is_torchscript_archive(path: str) -> bool:
    """OpenAI distributes CLIP as TorchScript archives, recognisable by their ``code/`` folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split('/')[1:2] == ['code'] for name in archive.namelist())


def _check_arch(arch: CLIPArch) -> None:
    if isinstance(arch, dict):
        missing = {'embed_dim', 'vision_cfg', 'text_cfg'} - set(arch)
        if missing:
            raise KeyError(f'`arch` given as an open_clip model config lacks the keys {sorted(missing)}; '
                           'it needs embed_dim, vision_cfg and text_cfg (see open_clip/model_configs/*.json).')
        return
    if arch not in open_clip.list_models():
        raise ValueError(f'`arch`={arch!r} is not an open_clip model name. Valid names include '
                         "'ViT-B-16', 'ViT-B-32', 'ViT-L-14', 'ViT-L-14-336'; all: open_clip.list_models().")


def _random_clip(arch: CLIPArch, quick_gelu: bool) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        if isinstance(arch, dict):
            return open_clip.CLIP(**{**arch, 'quick_gelu': quick_gelu})
        return open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu)


# What `pretrained` takes, for error messages.
PRETRAINED_ACCEPTS = ("an open_clip tag such as 'openai', or a CLIP checkpoint file of the architecture: an OpenAI "
                      'TorchScript archive (ViT-B-16.pt) or an open_clip state dict')


def _check_checkpoint_file(path: str) -> None:
    if not path.endswith('.safetensors') and not is_torch_file(path):
        raise ValueError(f'`pretrained`={path!r} is not a checkpoint (it does not start as files written by '
                         f'torch.save do); it takes {PRETRAINED_ACCEPTS}.')


def _load_file(model: torch.nn.Module, path: str) -> None:
    _check_checkpoint_file(path)
    try:
        _load_weights(model, path)
    except pickle.UnpicklingError as error:
        raise weights_only_refusal(f'`pretrained`={path!r}', error, PRETRAINED_ACCEPTS) from error
    except (AttributeError, KeyError, RuntimeError, StopIteration, TypeError, ValueError) as error:
        # open_clip reads any pickled object as a state dict and fails on it in many ways.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _no_clip_weights(path, reason) from error


def _no_clip_weights(path: str, reason: str) -> ValueError:
    return ValueError(f'`pretrained`={path!r} holds no CLIP weights of this architecture ({reason}); it takes '
                      f'{PRETRAINED_ACCEPTS}. A checkpoint of a trained lift_mm model goes to `load_from` or '
                      'tools/test.py instead.')


def _load_weights(model: torch.nn.Module, path: str) -> None:
    if _is_torchscript_archive(path):
        # TorchScript archives cannot be read with weights-only unpickling; loading one as a script module
        # runs no Python pickle code.
        state_dict = torch.jit.load(path, map_location='cpu').state_dict()
        for key in ARCHIVE_ONLY_KEYS:
            state_dict.pop(key, None)
        model.load_state_dict(state_dict, strict=True)
    else:
        open_clip.load_checkpoint(model, path, strict=True, weights_only=True)


def _recorded_quick_gelu(path: str) -> Optional[bool]:
    """The activation a checkpoint file records, or None when it cannot tell.

    OpenAI's TorchScript archives always use QuickGELU; files written by :func:`save_clip_weights` record it
    (``meta['quick_gelu']``). Plain state dicts (safetensors included) record nothing: the same tensors run with
    either activation.
    """
    if _is_torchscript_archive(path):
        return True
    if path.endswith('.safetensors'):
        return None
    _check_checkpoint_file(path)
    try:
        # Memory-mapping reads only the pickled structure, not the tensors (legacy, non-zip files are read whole).
        checkpoint = torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        raise weights_only_refusal(f'`pretrained`={path!r}', error, PRETRAINED_ACCEPTS) from error
    # Refuse what is no CLIP state dict here, before asking for its activation: every CLIP has `visual.*` weights.
    weights = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(weights, dict) or not any(str(key).startswith(('visual.', 'module.visual.')) for key in weights):
        raise _no_clip_weights(path, f'a {type(checkpoint).__name__} without `visual.*` weights')
    meta = checkpoint.get('meta')
    recorded = meta.get(QUICK_GELU_META_KEY) if isinstance(meta, dict) else None
    return None if recorded is None else bool(recorded)


def resolve_quick_gelu(arch: CLIPArch,
                       pretrained: Optional[str],
                       quick_gelu: Optional[bool],
                       key_prefix: str = '') -> bool:
    """Decide whether the MLPs use QuickGELU.

    OpenAI's CLIP was trained with QuickGELU; running its weights with exact GELU gives subtly wrong features
    without any error, so nothing is guessed: an explicit ``quick_gelu`` wins; otherwise the open_clip tag's own
    setting, True for OpenAI TorchScript archives, the value recorded by :func:`save_clip_weights`, and the
    architecture's default for random weights. A plain state-dict file cannot tell: that is an error.

    Args:
        arch (str | dict): The open_clip architecture.
        pretrained (str, optional): open_clip tag, checkpoint path or None.
        quick_gelu (bool, optional): The explicit choice, if any.
        key_prefix (str): Prefix of the config keys named in error messages, e.g. ``'model.backbone.'``.
            Defaults to ``''``.

    Returns:
        bool: Whether to use QuickGELU.
    """
    if quick_gelu is not None:
        return quick_gelu
    if pretrained is not None and os.path.isfile(pretrained):
        recorded = _recorded_quick_gelu(pretrained)
        if recorded is None:
            raise ValueError(
                f'`{key_prefix}pretrained`={pretrained!r} is a plain state-dict file, which does not say whether the '
                f'model uses QuickGELU, and `{key_prefix}quick_gelu` is unset. Set `{key_prefix}quick_gelu=True` for '
                "OpenAI's CLIP weights (including open_clip's exports of them, e.g. timm/*.openai) or "
                f'`{key_prefix}quick_gelu=False` for weights trained by open_clip (LAION, DataComp); the wrong '
                'choice gives wrong features without any error.')
        return recorded
    if pretrained is not None and isinstance(arch, str):
        return bool(open_clip.get_pretrained_cfg(arch, pretrained).get('quick_gelu', False))
    if isinstance(arch, dict):
        return bool(arch.get('quick_gelu', False))
    return arch.endswith('-quickgelu')


def _looks_like_path(pretrained: str) -> bool:
    return os.sep in pretrained or pretrained.endswith(('.pt', '.pth', '.bin', '.safetensors'))


def build_open_clip(arch: CLIPArch,
                    pretrained: Optional[str] = None,
                    quick_gelu: Optional[bool] = None,
                    key_prefix: str = '') -> torch.nn.Module:
    """Build an open_clip CLIP model with its weights loaded.

    Args:
        arch (str | dict): An open_clip model name such as ``'ViT-B-16'``, or an open_clip model config dict
            (``embed_dim``, ``vision_cfg``, ``text_cfg``) for architectures open_clip does not name.
        pretrained (str, optional): An open_clip pretrained tag such as ``'openai'`` (downloaded through
            huggingface_hub, or read from its cache with ``HF_HUB_OFFLINE=1``), or the path of a local checkpoint
            in OpenAI (TorchScript) or open_clip (state dict) format. None builds random weights from a fixed
            seed, identical in every process and for every component. Defaults to None.
        quick_gelu (bool, optional): Force QuickGELU on or off. None takes it from the weights and refuses plain
            state-dict files, which cannot tell, see :func:`resolve_quick_gelu`. Defaults to None.
        key_prefix (str): Prefix of the config keys named in error messages, e.g. ``'model.backbone.'``.
            Defaults to ``''``.

    Returns:
        torch.nn.Module: The open_clip ``CLIP`` model in eval mode.
    """
    _check_arch(arch)
    if pretrained is not None and os.path.isdir(pretrained):
        raise IsADirectoryError(f'`pretrained`={pretrained!r} is a directory; it takes {PRETRAINED_ACCEPTS}.')
    if pretrained is not None and not os.path.isfile(pretrained):
        if _looks_like_path(pretrained):
            raise FileNotFoundError(f'`{key_prefix}pretrained`={pretrained!r}: no such checkpoint file.')
        if isinstance(arch, dict):
            raise ValueError(f'`{key_prefix}pretrained`={pretrained!r} is neither a file nor usable as a tag: '
                             'open_clip tags only exist for named architectures; give a checkpoint path.')
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            raise ValueError(f'`{key_prefix}pretrained`={pretrained!r} is neither an existing file nor an open_clip '
                             f'tag of {arch!r}; valid tags: {tags}.')
    quick_gelu = resolve_quick_gelu(arch, pretrained, quick_gelu, key_prefix)
    if pretrained is None:
        model = _random_clip(arch, quick_gelu)
    elif os.path.isfile(pretrained):
        model = _random_clip(arch, quick_gelu)
        _load_file(model, pretrained)
    else:
        try:
            model = open_clip.create_model(arch, pretrained=pretrained, force_quick_gelu=quick_gelu)
        except Exception as error:
            raise RuntimeError(
                f'Could not obtain the open_clip weights {arch!r}/{pretrained!r} for `{key_prefix}pretrained` '
                f'({error}). Without internet access, either set `{key_prefix}pretrained` to a local checkpoint '
                "file (with `quick_gelu` for a plain state dict), or copy huggingface_hub's cache of the weights "
                'from a machine that has them and set HF_HUB_OFFLINE=1 (which also skips the retries); see '
                'README, "Running LIFT on ImageNet-LT".') from error
    MMLogger.get_current_instance().info(
        f'Built open_clip {arch if isinstance(arch, str) else "custom"} CLIP from '
        f'{pretrained or "random weights"} (QuickGELU={quick_gelu}).')
    return model.eval()


def save_clip_weights(model: torch.nn.Module, path: str, quick_gelu: bool) -> str:
    """Save a CLIP model's state dict with a record of its activation, so that loading it needs no ``quick_gelu``.

    The file is an open_clip checkpoint (``{'state_dict': ...}``, readable by ``open_clip.load_checkpoint``)
    with ``meta['quick_gelu']`` added, which :func:`build_open_clip` reads.

    Args:
        model (torch.nn.Module): The open_clip CLIP model.
        path (str): The file to write.
        quick_gelu (bool): Whether the weights were trained with QuickGELU (True for OpenAI's CLIP).

    Returns:
        str: ``path``.
    """
    torch.save({'state_dict': model.state_dict(), 'meta': {QUICK_GELU_META_KEY: bool(quick_gelu)}}, path)
    return str(path)


class SharedCLIP:
    """One CLIP, named by ``arch``, ``pretrained`` and ``quick_gelu``, loaded once for all components that use it.

    The image backbone builds it and keeps the image tower; a head that initialises its class weights from text
    borrows the whole model from the backbone (see :class:`~lift_mm.models.classifiers.CLIPImageClassifier`)
    instead of loading the weights a second time. :meth:`release` drops the model, and with it the text tower,
    once the text features are computed; the backbone's image tower lives on in the backbone.

    Args:
        arch (str | dict): As for :func:`build_open_clip`.
        pretrained (str, optional): As for :func:`build_open_clip`. Defaults to None.
        quick_gelu (bool, optional): As for :func:`build_open_clip`; resolved here. Defaults to None.
        key_prefix (str): Prefix of the config keys these came from, for error messages, e.g.
            ``'model.backbone.'``. Defaults to ``''``.
    """

    def __init__(self,
                 arch: CLIPArch,
                 pretrained: Optional[str] = None,
                 quick_gelu: Optional[bool] = None,
                 key_prefix: str = '') -> None:
        self.arch = arch
        self.pretrained = pretrained
        self.key_prefix = key_prefix
        self._model: Optional[torch.nn.Module] = build_open_clip(arch, pretrained, quick_gelu, key_prefix)
        # Checked and resolved by the build already; this records the answer.
        self.quick_gelu = resolve_quick_gelu(arch, pretrained, quick_gelu, key_prefix)

    def config(self) -> dict:
        """``arch``, ``pretrained`` and the resolved ``quick_gelu``."""
        return dict(arch=self.arch, pretrained=self.pretrained, quick_gelu=self.quick_gelu)

    @property
    def model(self) -> torch.nn.Module:
        """The loaded CLIP model; loaded again if it was released."""
        if self._model is None:
            self._model = build_open_clip(self.arch, self.pretrained, self.quick_gelu, self.key_prefix)
        return self._model

    def release(self) -> None:
        """Drop this holder's reference to the model."""
        self._model = None

    def __getstate__(self) -> dict:
        # Copies and pickles (an EMA model, for instance) leave the loaded model behind; it is loaded again if a
        # copy ever needs it.
        return {**self.__dict__, '_model': None}


def build_tokenizer(arch: CLIPArch) -> Callable:
    """The tokenizer that matches ``arch``'s text tower, built once per architecture and process (reading its
    vocabulary takes about half a second)."""
    return _tokenizer(json.dumps(arch, sort_keys=True))


@functools.lru_cache(maxsize=None)
def _tokenizer(arch_json: str) -> Callable:
    arch = json.loads(arch_json)
    if isinstance(arch, dict):
        context_length = arch['text_cfg'].get('context_length', 77)
        return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    return open_clip.get_tokenizer(arch)
