"""CLIP's text encoder as a module that can train: CoOp's context vectors and light modules in its blocks."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from open_clip.transformer import TextTransformer
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..backbones.clip_vit import OpenCLIPTunableBlock
from ..peft import inject_light_modules
from ..utils import FrozenFoundationMixin, SharedCLIP, build_tokenizer

CONTEXT_KEYS = ('n_ctx', 'position', 'init')
CONTEXT_POSITIONS = ('end', 'front', 'middle')
# How open_clip pools a text tower's tokens into its feature: at the highest token id (the end token of CLIP's
# tokenizer) or at the first end token. Pooling at the first or last position would not survive the removal of
# the padding (see ``CLIPTextEncoder``) or tokens inserted by light modules.
POOL_TYPES = ('argmax', 'eos')


def causal_mask(length: int) -> torch.Tensor:
    """The additive causal mask of CLIP's text transformer: -inf above the diagonal, zero elsewhere."""
    return torch.full((length, length), float('-inf')).triu(1)


def text_tower(model: nn.Module) -> Tuple[nn.Module, Optional[torch.Tensor], str, Optional[int]]:
    """The text tower of an open_clip CLIP, its attention mask, its pooling and its end-token id.

    Args:
        model (nn.Module): An open_clip ``CLIP`` (text tower in the model) or ``CustomTextCLIP`` with a
            ``TextTransformer`` (``model.text``).

    Returns:
        Tuple[nn.Module, torch.Tensor | None, str, int | None]: A module holding the tower's ``token_embedding``,
        ``positional_embedding``, ``resblocks`` (a new list of the same blocks, so that wrapping them leaves
        ``model`` as it was), ``ln_final`` and ``text_projection``; the mask; the pool type; the end-token id.
    """
    source = model.text if isinstance(getattr(model, 'text', None), TextTransformer) else model
    if not hasattr(source, 'token_embedding') or not hasattr(source, 'transformer'):
        raise ValueError(f'{type(model).__name__} has no CLIP text transformer (token embedding and residual '
                         'blocks); CLIPTextEncoder supports open_clip CLIP models such as ViT-B-16, not text towers '
                         'from Hugging Face.')
    if getattr(source, 'cls_emb', None) is not None or getattr(source, 'use_pad_mask', False):
        raise ValueError('The text tower has a class embedding or a padding mask (CoCa-style); CLIPTextEncoder '
                         "supports CLIP's text transformer, pooled at its end token.")
    pool_type = getattr(source, 'text_pool_type', getattr(source, 'pool_type', 'argmax'))
    if pool_type not in POOL_TYPES:
        raise ValueError(f"The text tower pools its tokens with pool_type={pool_type!r}; CLIPTextEncoder supports "
                         f'{list(POOL_TYPES)}, pooling at the end token.')
    tower = nn.Module()
    tower.token_embedding = source.token_embedding
    tower.positional_embedding = source.positional_embedding
    tower.resblocks = nn.ModuleList(source.transformer.resblocks)
    tower.ln_final = source.ln_final
    tower.text_projection = source.text_projection
    return tower, source.attn_mask, pool_type, getattr(source, 'text_eos_id', getattr(source, 'eos_id', None))


class CLIPTextEncoder(FrozenFoundationMixin, BaseModule):
    """CLIP's text tower, frozen, turning class names into text features, with what text-side methods train.

    :meth:`encode_classes` gives one feature per class: the output of ``ln_final`` at the end token, through the
    text projection, not normalised. Without ``context`` and light modules it equals open_clip's ``encode_text`` of
    the tokenized prompts ``template.format(name)`` (underscores in names read as spaces).

    * ``context``: CoOp's prompt learner ("Learning to Prompt for Vision-Language Models", Zhou et al., IJCV 2022).
      ``n_ctx`` vectors of the text width, shared by all classes, take the place of the template's words before
      ``{}``; the text after ``{}`` (the ``.`` of ``'a photo of a {}.'``) stays at the end. The class name
      stands after the context (``position='end'``: ``[SOS] X X X X name . [EOS]``), before it (``'front'``:
      ``[SOS] name X X X X . [EOS]``) or between its two halves (``'middle'``, the first ``n_ctx // 2`` vectors
      before the name: ``[SOS] X X name X X . [EOS]``). The vectors are inserted into the token embeddings, before
      the positional embedding, and the end token follows each class's name.
    * ``light_modules``: kinds of :mod:`lift_mm.models.peft` in the text blocks (open_clip's
      ``ResidualAttentionBlock``, so :class:`OpenCLIPTunableBlock`), sized by the text width and run under the
      causal mask. Prompts go after the start token (``PromptTuningDeep``, ``PromptTuningShallow``), which moves
      the end token by the number inserted; kinds that need an image encoder are refused.

    Under the causal mask no token sees those after it, so the tokens after the last end token of a chunk of
    classes are dropped before the transformer, and chunks hold prompts of about one length: the features are
    those of the full context, for a fraction of the work. The frozen text weights are left out of the state dict
    (checked by a fingerprint, as for the backbones, see :func:`~lift_mm.models.utils.make_state_dict_compact`);
    what trains is saved.

    Args:
        clip (SharedCLIP): The CLIP whose text tower this is; its ``arch`` names the tokenizer.
        light_modules (Sequence[dict | str]): Light-module configs for the text blocks, as for
            :class:`~lift_mm.models.backbones.CLIPVisionTransformer`. Defaults to ``()``.
        context (dict, optional): CoOp's context vectors: ``n_ctx`` (int, default 4), ``position`` (``'end'``,
            ``'front'`` or ``'middle'``, default ``'end'``) and ``init``: None draws the vectors from
            N(0, 0.02^2), a phrase such as ``'a photo of a'`` starts them at the phrase's token embeddings (then
            ``n_ctx`` is the phrase's number of tokens). LIFT+'s code offers a phrase start (``coop_init='photo'``,
            which would also learn the ``.``) but fails on it. None trains no context. Defaults to None.
        chunk_size (int): Classes encoded per forward of the text transformer. While something text-side trains and
            the classes fill more than one chunk, each chunk's activations are recomputed in the backward pass
            (activation checkpointing), so memory is bounded by one chunk whatever the number of classes.
            Defaults to 256.
        num_classes (int, optional): Number of classes, for ``'auto'`` light-module sizes. Defaults to None.
        compact_state_dict (bool): Leave the frozen text weights out of the state dict. Defaults to True.
        check_fingerprint (bool): Refuse state dicts trained on other text weights. Defaults to True.
    """

    def __init__(self,
                 clip: SharedCLIP,
                 light_modules: Sequence[Union[dict, str]] = (),
                 context: Optional[dict] = None,
                 chunk_size: int = 256,
                 num_classes: Optional[int] = None,
                 compact_state_dict: bool = True,
                 check_fingerprint: bool = True) -> None:
        super().__init__()
        if type(chunk_size) is not int or chunk_size <= 0:
            raise ValueError(f'CLIPTextEncoder: `chunk_size`={chunk_size!r} must be a positive int.')
        self.text, attn_mask, self.pool_type, self.eos_id = text_tower(clip.model)
        self.causal = attn_mask is not None
        if self.causal and not torch.equal(attn_mask.cpu(), causal_mask(attn_mask.shape[0])):
            raise ValueError('The text tower has an attention mask that is not the causal mask of CLIP; '
                             'CLIPTextEncoder supports causal or unmasked text transformers.')
        self.tokenizer = build_tokenizer(clip.arch)
        self.chunk_size = chunk_size
        self.build_light_weight('text', light_modules, num_classes, compact_state_dict, check_fingerprint)
        self.ctx: Optional[nn.Parameter] = None
        self.context_position: Optional[str] = None
        if context is not None:
            self._build_context(dict(context))
        # The token ids of the last classes encoded, so that each training step does not tokenize them again.
        self._tokens_cache: Dict[tuple, Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]] = {}

    def add_light_modules(self, light_modules: Sequence[Union[dict, str]], num_classes: Optional[int]) -> None:
        """Wrap every text block in an :class:`OpenCLIPTunableBlock` holding its light modules."""
        inject_light_modules(self.text.resblocks, light_modules, OpenCLIPTunableBlock,
                             num_tokens=self.text.positional_embedding.shape[0], patch_size=None,
                             num_classes=num_classes)

    def _build_context(self, context: dict) -> None:
        unknown = sorted(set(context) - set(CONTEXT_KEYS))
        if unknown:
            raise KeyError(f'CLIPTextEncoder: `context` has unknown keys {unknown}; valid keys: {list(CONTEXT_KEYS)}.')
        position, init = context.get('position', 'end'), context.get('init')
        if position not in CONTEXT_POSITIONS:
            raise ValueError(f'CLIPTextEncoder: `context.position`={position!r} must be one of '
                             f'{list(CONTEXT_POSITIONS)}.')
        width = self.text.token_embedding.weight.shape[1]
        if init is None:
            n_ctx = context.get('n_ctx', 4)
            if type(n_ctx) is not int or n_ctx <= 0:
                raise ValueError(f'CLIPTextEncoder: `context.n_ctx`={n_ctx!r} must be a positive int.')
            vectors = torch.empty(n_ctx, width).normal_(std=0.02)
        else:
            if not isinstance(init, str) or not init.strip() or '{}' in init:
                raise ValueError(f'CLIPTextEncoder: `context.init`={init!r} must be None or a phrase such as '
                                 "'a photo of a' (without the class name).")
            ids = torch.tensor(self._encode(init))
            if context.get('n_ctx', len(ids)) != len(ids):
                raise ValueError(f'CLIPTextEncoder: `context.init`={init!r} has {len(ids)} tokens, but '
                                 f"`context.n_ctx`={context['n_ctx']}: leave `n_ctx` unset with a phrase.")
            with torch.no_grad():
                vectors = self.text.token_embedding(ids.to(self.text.token_embedding.weight.device)).float()
        self.context_position = position
        self.ctx = nn.Parameter(vectors.to(self.text.positional_embedding))

    def _encode(self, text: str) -> List[int]:
        """The token ids of ``text``, without start and end tokens."""
        if not hasattr(self.tokenizer, 'encode') or not hasattr(self.tokenizer, 'sot_token_id'):
            raise ValueError(f'CLIPTextEncoder: `context` needs a tokenizer like CLIP\'s (SimpleTokenizer), not '
                             f'{type(self.tokenizer).__name__}.')
        return self.tokenizer.encode(text)

    @property
    def trainable(self) -> bool:
        """Whether anything of the text side trains (context vectors, light modules, tuned text weights)."""
        return any(param.requires_grad for param in self.parameters())

    @property
    def output_dims(self) -> int:
        """Width of the features :meth:`encode_classes` returns."""
        projection = self.text.text_projection
        if projection is None:
            return self.text.ln_final.normalized_shape[0]
        return projection.out_features if isinstance(projection, nn.Linear) else projection.shape[1]

    def _context_tokens(self, names: Sequence[str], suffix: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """Token ids of the prompts with the context's places held by padding, and those places."""
        n_ctx = self.ctx.shape[0]
        before = {'end': n_ctx, 'front': 0, 'middle': n_ctx // 2}[self.context_position]
        length = self.text.positional_embedding.shape[0]
        suffix_ids = self._encode(suffix)
        sot, eot = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id
        ids = torch.zeros(len(names), length, dtype=torch.long)
        places = torch.empty(len(names), n_ctx, dtype=torch.long)
        for row, name in enumerate(names):
            name_ids = self._encode(name)
            sequence = [sot, *[0] * before, *name_ids, *[0] * (n_ctx - before), *suffix_ids, eot]
            if len(sequence) > length:
                raise ValueError(f'CLIPTextEncoder: the prompt of class {name!r} needs {len(sequence)} tokens with '
                                 f'{n_ctx} context vectors, more than the context length {length} of the text '
                                 'tower: shorten the class name or use fewer context vectors.')
            ids[row, :len(sequence)] = torch.tensor(sequence)
            places[row] = torch.cat([torch.arange(1, 1 + before),
                                     torch.arange(1 + before + len(name_ids), 1 + n_ctx + len(name_ids))])
        return ids, places

    def _tokens(self, classnames: Sequence[str],
                template: str) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """Token ids and context places of the classes' prompts, ordered by length, and the order that restores
        the classes' own.

        Chunks of prompts of about one length drop most padding (see :meth:`encode_tokens`), which saves much of
        the work when the lengths of the class names vary.
        """
        key = (tuple(classnames), template)
        if key not in self._tokens_cache:
            if not isinstance(template, str) or template.count('{}') != 1:
                raise ValueError(f'CLIPTextEncoder: `template`={template!r} must be a string with one {{}} for the '
                                 'class name.')
            names = [name.replace('_', ' ') for name in classnames]
            if self.ctx is None:
                ids, places = self.tokenizer([template.format(name) for name in names]), None
            else:
                ids, places = self._context_tokens(names, template.split('{}')[1])
            order = torch.argsort(self._pool_index(ids), stable=True)
            self._tokens_cache = {key: (ids[order], None if places is None else places[order], torch.argsort(order))}
        return self._tokens_cache[key]

    def _pool_index(self, ids: torch.Tensor) -> torch.Tensor:
        """Where each prompt's feature is read, as open_clip pools: the end token."""
        if self.pool_type == 'argmax':
            return ids.argmax(dim=-1)
        return (ids == self.eos_id).int().argmax(dim=-1)

    def encode_tokens(self, ids: torch.Tensor, places: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Text features of tokenized prompts, with the context vectors at ``places``.

        Args:
            ids (torch.Tensor): Token ids, shape (prompts, context length).
            places (torch.Tensor, optional): Positions of the context vectors in each prompt, shape
                (prompts, n_ctx); None without context. Defaults to None.

        Returns:
            torch.Tensor: Features of shape (prompts, :attr:`output_dims`), not normalised.
        """
        text = self.text
        pool_index = self._pool_index(ids)
        # Under the causal mask no token sees those after it: the tokens after the last end token are dropped.
        length = int(pool_index.max()) + 1 if self.causal else ids.shape[1]
        device = text.token_embedding.weight.device
        ids, pool_index = ids.to(device), pool_index.to(device)
        tokens = text.token_embedding(ids).to(text.positional_embedding.dtype)
        if places is not None:
            rows = torch.arange(len(ids), device=device).unsqueeze(1)
            context = self.ctx.to(tokens.dtype).expand(len(ids), -1, -1)
            tokens = tokens.index_put((rows, places.to(device)), context)
        tokens = tokens[:, :length] + text.positional_embedding[:length].to(tokens.dtype)
        for block in text.resblocks:
            tokens = block(tokens, causal=self.causal)
        # Tokens that light modules inserted after the start token move the end token by their number.
        pool_index = pool_index + tokens.shape[1] - length
        features = text.ln_final(tokens[torch.arange(len(ids), device=device), pool_index])
        projection = text.text_projection
        if projection is None:
            return features
        return projection(features) if isinstance(projection, nn.Linear) else features @ projection

    def encode_classes(self, classnames: Sequence[str], template: str = 'a photo of a {}.') -> torch.Tensor:
        """Text features of the classes, one row per class, in chunks of ``chunk_size`` classes.

        Args:
            classnames (Sequence[str]): The class names; underscores read as spaces.
            template (str): The prompt, a ``str.format`` pattern with one ``{}`` for the class name. With
                ``context``, its words before ``{}`` are replaced by the context vectors and its text after ``{}``
                ends the prompt. Defaults to ``'a photo of a {}.'``.

        Returns:
            torch.Tensor: Features of shape (num_classes, :attr:`output_dims`), not normalised.
        """
        if not len(classnames):
            raise ValueError('CLIPTextEncoder.encode_classes: `classnames` is empty; it needs a name per class.')
        ids, places, restore = self._tokens(classnames, template)
        recompute = torch.is_grad_enabled() and self.trainable and len(ids) > self.chunk_size
        features = []
        for start in range(0, len(ids), self.chunk_size):
            end = start + self.chunk_size
            chunk = (ids[start:end], None if places is None else places[start:end])
            if recompute:
                features.append(checkpoint(self.encode_tokens, *chunk, use_reentrant=False))
            else:
                features.append(self.encode_tokens(*chunk))
        features = torch.cat(features)
        return features[restore.to(features.device)]
