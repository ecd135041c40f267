"""Convert a checkpoint of LIFT+'s code to lift_mm: ``python tools/model_converters/lift_plus_to_mm.py SRC DST``.

LIFT+'s ``Trainer.save_model`` writes ``{'tuner': ...}``, the state dict of its model's tuner: per image-encoder
block (``image_encoder.blocks.<i>.``) the light modules (``adaptformer``, ``mlp.adapter``, ``attn.lora``,
``attn.ssf`` / ``mlp.ssf``, ``prompt``, the masked linears of ``aft``) and the host weights trained in place
(``fft``: every weight of the block, ``bitfit``: its biases, named like ``attn_in_proj_bias``), and the
``classifier``. The result is an MMEngine checkpoint of a ``CLIPVisionTransformer`` classifier (``--backbone
timm``: a ``TimmVisionTransformer`` one, for LIFT+'s ImageNet-21k ViTs); the converter prints the
``light_modules`` to configure (with their sizes and blocks): load it with such a config on the same pre-trained
weights and LIFT+'s classifier (``CosineClsHead``, scale 25), e.g. ``tools/test.py CONFIG DST``.

A run without a classifier classifies with CLIP's text encoder; its tuner also holds the text side:
``text_encoder.ctx`` (CoOp), ``image_adapter`` / ``text_adapter`` (CLIP-Adapter), ``image_proj`` / ``text_proj``
(projection tuning) and the text blocks' light modules (``text_encoder.blocks.<i>.``, LIFT+'s ``l.*`` options,
keyed as the image blocks). It becomes a ``CLIPImageClassifier`` whose ``TextEncoderClsHead`` (backbone with
``out_projected=False``) takes the head options the converter prints; LIFT+'s text prompts go after the start
token, lift_mm's ``PromptTuningDeep``. CoOp's checkpoint holds the context vectors but not where the class name
stands (``coop_cls_pos``): give it with ``--coop-position`` unless it is LIFT+'s default, ``end``.

LIFT+'s SSF (on the four linears) is lift_mm's ``SSFAttn`` and ``SSFMLP`` together; its prompt tuning is
``VPTDeep`` (each block's prompts replace the previous block's); its arbitrary fine-tuning is ``SparseTuning``
with ``masks='lift_plus'``, whose masks follow from ``seed`` and ``ratio``: the converter checks that they equal
the checkpoint's (``--aft-seed`` if the run changed LIFT+'s ``aft_seed``). An iNaturalist 2018 checkpoint needs
the dataset's ``categories.json`` (``--inat-categories``): LIFT+ numbers its classes in sorted order of their
names, lift_mm by category id. Like mmpretrain's converters, this script needs only torch.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

# The code shared with lift_to_mm.py sits beside this script, which may run from anywhere.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from lift_checkpoints import (CLIP_RESNET_PREFIX, CLIP_VIT_BLOCK_PREFIX, RESNET_LAYERS,  # noqa: E402
                              RESNET_LIGHT_MODULES, RESNET_STAGES, TIMM_RESNET_PREFIX, TIMM_VIT_BLOCK_PREFIX,
                              bottleneck_parameters, resnet_blocks, run_converter)

# A key of a block of LIFT+'s image or text encoder.
BLOCK_KEY = re.compile(r'(image|text)_encoder\.blocks\.(\d+)\.(.+)')
# Where TextEncoderClsHead keeps text block i, laid out like CLIPVisionTransformer's blocks.
TEXT_BLOCK_PREFIX = 'head.text_encoder.text.resblocks'
# LIFT+'s prompts go after the first token; in an image encoder without positional embeddings in its blocks this is
# VPTDeep, under the text encoder's causal mask the position matters: PromptTuningDeep.
PROMPT_KINDS = dict(image='VPTDeep', text='PromptTuningDeep')
# LIFT+'s tuner keys of the text-side methods outside the blocks, and their lift_mm keys (CLIP-Adapter's bottleneck
# layers are mapped as the light modules' are).
TEXT_SIDE_KEYS = {'text_encoder.ctx': 'head.text_encoder.ctx', 'image_proj': 'head.joint_space.image_proj',
                  'text_proj': 'head.text_encoder.text.text_projection'}
CLIP_ADAPTER_KEY = re.compile(r'(image|text)_adapter\.(norm|down|up)\.(weight|bias)')
# LIFT+'s coop_cls_pos: where the class name stands among the context vectors; lift_mm's context position.
COOP_POSITIONS = ('end', 'front', 'middle')
# LIFT+'s ResNet tuner: the weights of bottleneck i of all stages in a row (``0_conv1_weight``), its BatchNorm
# layers (``0_bn1.running_mean``) and the SSF of the pooled feature.
RESNET_KEY = re.compile(r'image_encoder\.blocks\.(\d+)_([^.]+)(?:\.(\w+))?|image_encoder\.ssf\.(scale|shift)')
# Where lift_mm's ResNet backbones (CLIPResNet, TimmResNet) keep the ResNet.
RESNET_PREFIXES = dict(clip=CLIP_RESNET_PREFIX, timm=TIMM_RESNET_PREFIX)
BATCH_NORM_STATE = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
# LIFT+'s names of a block's own weights (its PEFT_Block's parameter names, dots written as underscores), without
# the ``weight`` / ``bias`` ending, and where open_clip's block keeps them.
CLIP_HOST_WEIGHTS = dict(norm1='ln_1.', attn_in_proj='attn.in_proj_', attn_out_proj='attn.out_proj.', norm2='ln_2.',
                         mlp_in_proj='mlp.c_fc.', mlp_out_proj='mlp.c_proj.')
TIMM_HOST_WEIGHTS = dict(norm1='norm1.', attn_in_proj='attn.qkv.', attn_out_proj='attn.proj.', norm2='norm2.',
                         mlp_in_proj='mlp.fc1.', mlp_out_proj='mlp.fc2.')
# LIFT+'s ViT backbones: where the lift_mm backbone keeps block i, and the names of the block's own weights.
BACKBONES = dict(clip=(CLIP_VIT_BLOCK_PREFIX, CLIP_HOST_WEIGHTS),
                 timm=(TIMM_VIT_BLOCK_PREFIX, TIMM_HOST_WEIGHTS))
BOTTLENECK_LAYERS = dict(norm='ln', down='down_proj', up='up_proj')
# LIFT+'s linears (its attention's and MLP's in and out projections) by lift_mm's site names.
LINEAR_SITES = {('attn', 'in_proj'): 'qkv', ('attn', 'out_proj'): 'attn_out', ('mlp', 'in_proj'): 'mlp_in',
                ('mlp', 'out_proj'): 'mlp_out'}
AFT_KEY = re.compile(r'(attn|mlp)\.aft\.(in_proj|out_proj)\.masked_(weight|bias)\.(optimized_params|mask)')

# (pattern of a key inside a block, lift_mm kind, the key inside the kind from the match)
LIGHT_MODULE_RULES: List[Tuple[str, str, Callable[[re.Match], str]]] = [
    (r'adaptformer\.(norm|down|up)\.(weight|bias)', 'AdaptFormer',
     lambda m: f'bottleneck.{BOTTLENECK_LAYERS[m[1]]}.{m[2]}'),
    (r'adaptformer\.scale', 'AdaptFormer', lambda m: 'scale'),
    (r'mlp\.adapter\.(norm|down|up)\.(weight|bias)', 'Adapter',
     lambda m: f'bottleneck.{BOTTLENECK_LAYERS[m[1]]}.{m[2]}'),
    (r'attn\.lora\.(q|v)\.(down|up)', 'LoRA', lambda m: f'{m[1]}.lora_{"A" if m[2] == "down" else "B"}'),
    (r'(attn)\.ssf\.(in_proj|out_proj)\.(scale|shift)', 'SSFAttn', lambda m: f'ssf.{LINEAR_SITES[m[1], m[2]]}.{m[3]}'),
    (r'(mlp)\.ssf\.(in_proj|out_proj)\.(scale|shift)', 'SSFMLP', lambda m: f'ssf.{LINEAR_SITES[m[1], m[2]]}.{m[3]}'),
    # The kind of the prompts depends on the encoder, see PROMPT_KINDS.
    (r'prompt', None, lambda m: 'prompt'),
]
# The size a kind's config needs, read from its converted tensors: (kind, config key, tensor, dimension).
KIND_SIZES = [('AdaptFormer', 'bottleneck', 'bottleneck.down_proj.weight', 0),
              ('Adapter', 'bottleneck', 'bottleneck.down_proj.weight', 0), ('LoRA', 'bottleneck', 'q.lora_A', 1),
              ('VPTDeep', 'length', 'prompt', 0), ('PromptTuningDeep', 'length', 'prompt', 0)]
# Keys of LIFT+'s tuner outside the image encoder's blocks that are not part of an image classifier.
OTHER_TUNERS = ('text_encoder', 'image_proj', 'text_proj', 'logit_scale', 'image_adapter', 'text_adapter')


def _host_weights(block: int, found: Dict[str, torch.Tensor], state_dict: OrderedDict, prefix: str,
                  host_weights: Dict[str, str]) -> str:
    """Put one block's weights trained in place into ``state_dict``; return the kind that trains them."""
    trains_weights = any(name.endswith('_weight') for name in found)
    kind = 'FullFineTuning' if trains_weights else 'BitFit'
    expected = [f'{name}_{param}' for name in host_weights for param in ('weight', 'bias')
                if trains_weights or param == 'bias']
    missing = [name for name in expected if name not in found]
    if missing:
        raise KeyError(f'Block {block} trains {sorted(found)} in place but not {missing}: lift_mm\'s {kind} trains '
                       'them all; the checkpoint is incomplete.')
    for name, value in found.items():
        module, param = name.rsplit('_', 1)
        state_dict[f'{prefix}.{block}.block.{host_weights[module]}{param}'] = value
    return kind


def _block_range(kind: str, blocks: Sequence[int]) -> List[int]:
    """The ``[start, end)`` of lift_mm's ``blocks`` for the blocks a kind is in."""
    start, end = min(blocks), max(blocks) + 1
    if sorted(blocks) != list(range(start, end)):
        raise ValueError(f'{kind} is in blocks {sorted(blocks)}, which are not consecutive; lift_mm puts a kind into '
                         'a range of blocks [start, end): convert a checkpoint of consecutive layers.')
    return [start, end]


def _light_module_configs(state_dict: OrderedDict, blocks: Dict[str, List[int]], prefix: str,
                          configs_found: Dict[str, dict]) -> List[dict]:
    """The ``light_modules`` entries that build the modules in ``state_dict``, with their sizes and blocks, from
    the entries already known (``configs_found``) or a plain one."""
    configs = []
    for kind, indices in blocks.items():
        config = dict(configs_found.get(kind, dict(type=kind)))
        for size_kind, size_key, tensor, dim in KIND_SIZES:
            if size_kind != kind:
                continue
            sizes = {block: state_dict[f'{prefix}.{block}.light_modules.{kind}.{tensor}'].shape[dim]
                     for block in indices}
            if len(set(sizes.values())) > 1:
                raise ValueError(f'{kind} has the {size_key} {sizes} by block; lift_mm builds one size for all the '
                                 'blocks of a kind.')
            config[size_key] = sizes[indices[0]]
        config['blocks'] = _block_range(kind, indices)
        configs.append(config)
    return configs


def lift_plus_mask(numel: int, count: int, seed: int) -> torch.Tensor:
    """LIFT+'s arbitrary fine-tuning mask of a tensor of ``numel`` entries (flattened): the first ``count`` of a
    permutation drawn by a generator seeded with ``seed`` for this tensor alone."""
    chosen = torch.randperm(numel, generator=torch.Generator().manual_seed(seed))[:count]
    return torch.zeros(numel, dtype=torch.bool).scatter(0, chosen, True)


def _aft_ratio(masks: Dict[str, torch.Tensor]) -> float:
    """A ratio ``r`` with ``int(n * r)`` entries selected in each mask of ``n`` entries, as LIFT+ counts them."""
    counts = {key: (int(mask.sum()), mask.numel()) for key, mask in masks.items()}
    if all(count == numel for count, numel in counts.values()):
        return 1.
    low = max(count / numel for count, numel in counts.values())
    high = min((count + 1) / numel for count, numel in counts.values())
    ratio = (low + high) / 2
    if low >= high or not 0. < ratio <= 1. or any(int(numel * ratio) != count for count, numel in counts.values()):
        shown = dict(list(counts.items())[:4])
        raise ValueError(f'The arbitrary fine-tuning masks select {shown} ... (selected, entries) by key, which no '
                         'single ratio gives; the checkpoint was not written by LIFT+.')
    return ratio


def _convert_aft(found: Dict[int, Dict[Tuple[str, ...], torch.Tensor]], state_dict: OrderedDict, seed: int,
                 prefix: str, encoder: str = 'image') -> dict:
    """Put LIFT+'s arbitrary fine-tuning (``aft``) into ``state_dict`` as ``SparseTuning`` with LIFT+'s masks, after
    checking that the seed and one ratio reproduce every mask; return the entry's config without ``blocks``.

    The checkpoint holds each tensor's mask; lift_mm draws the masks from the seed and the ratio instead, so they
    must be LIFT+'s draw: a generator seeded with ``aft_seed`` for each tensor alone.
    """
    groups = {block: sorted({key[0] for key in entries}) for block, entries in found.items()}
    if len({tuple(names) for names in groups.values()}) > 1:
        raise ValueError(f'Arbitrary fine-tuning tunes {groups} (linears by block); lift_mm tunes the same '
                         'linears in every block of a SparseTuning entry.')
    linears = 'all' if len(next(iter(groups.values()))) == 2 else next(iter(groups.values()))[0]
    masks = {}
    for block, entries in sorted(found.items()):
        for (group, proj), site in LINEAR_SITES.items():
            if group not in groups[block]:
                continue
            for param in ('weight', 'bias'):
                where = f'{encoder}_encoder.blocks.{block}.{group}.aft.{proj}.masked_{param}'
                values, mask = (entries.get((group, proj, param, name)) for name in ('optimized_params', 'mask'))
                if values is None or mask is None:
                    raise KeyError(f'{where} lacks its optimized_params or its mask: the checkpoint is incomplete.')
                if values.numel() != int(mask.sum()):
                    raise ValueError(f'{where}.optimized_params has {values.numel()} values for '
                                     f'{int(mask.sum())} masked entries.')
                if not torch.equal(mask.flatten().bool(), lift_plus_mask(mask.numel(), int(mask.sum()), seed)):
                    raise ValueError(f"{where}.mask is not LIFT+'s mask for aft_seed={seed}: pass the run's "
                                     '`aft_seed` with --aft-seed.')
                masks[f'{where}.mask'] = mask
                target = f'{prefix}.{block}.light_modules.SparseTuning.updates.{site}.optimized_{param}'
                state_dict[target] = values
    return dict(type='SparseTuning', masks='lift_plus', ratio=_aft_ratio(masks), seed=seed, linears=linears)


def convert_lift_plus_resnet(tuner: Dict, backbone: str = 'clip',
                             layers: Optional[Sequence[int]] = None) -> Tuple[OrderedDict, List[dict]]:
    """Map LIFT+'s ResNet tuner to the keys of lift_mm's ResNet backbone.

    LIFT+ numbers the bottlenecks of the four stages in a row and tunes only theirs: its bias tuning (``bitfit``),
    full tuning (``fft``) and BatchNorm tuning are lift_mm's ``BitFit``, ``FullFineTuning`` and
    ``BatchNormTuning`` ``within`` the stages ``layer1`` to ``layer4``; its SSF is ``SSFOutput``.

    Args:
        tuner (dict): The ``tuner`` state dict of a LIFT+ ResNet checkpoint, without the classifier.
        backbone (str): ``'clip'`` (``CLIPResNet``) or ``'timm'`` (``TimmResNet``). Defaults to ``'clip'``.
        layers (Sequence[int], optional): Blocks per stage; None finds ResNet-50, -101 or -152 from the number of
            bottlenecks. Defaults to None.

    Returns:
        tuple: The backbone's state dict and its ``light_modules`` config.
    """
    state_dict, kinds = OrderedDict(), {}
    params: Dict[Tuple[int, str], torch.Tensor] = {}
    norms: Dict[Tuple[int, str], torch.Tensor] = {}
    for key, value in tuner.items():
        match = RESNET_KEY.fullmatch(key)
        if not match:
            raise KeyError(f'Cannot map the LIFT+ tuner key {key!r} of a ResNet checkpoint: LIFT+ tunes the weights '
                           'and BatchNorms of the bottlenecks (bitfit, fft, BatchNorm tuning) and the SSF of the '
                           'pooled feature.')
        if match[4]:
            state_dict[f'{RESNET_LIGHT_MODULES}.SSFOutput.ssf.{match[4]}'] = value
            kinds['SSFOutput'] = dict(type='SSFOutput')
            continue
        # Module names inside a bottleneck (conv1, bn1, downsample.0, ...) hold no underscore.
        name = match[2].replace('_', '.')
        (norms if match[3] else params)[int(match[1]), f'{name}.{match[3]}' if match[3] else name] = value
    num_blocks = max([block + 1 for block, _ in [*params, *norms]], default=0)
    if num_blocks:
        known = {sum(arch): arch for arch in RESNET_LAYERS.values()}
        layers = layers or known.get(num_blocks)
        if not layers or sum(layers) != num_blocks:
            raise ValueError(f'The tuner holds bottlenecks 0 to {num_blocks - 1}, which is not a ResNet of '
                             f'{sorted(RESNET_LAYERS.items())} (depth, blocks per stage): give the blocks per '
                             'stage of its ResNet (--resnet-layers).')
    places = resnet_blocks(layers) if num_blocks else []
    prefix = RESNET_PREFIXES[backbone]
    parameters = [name for stage, index in places for name in bottleneck_parameters(stage, index)]
    # A bottleneck's BatchNorms are the layers that hold its biases.
    norm_layers = [name[:-len('.bias')] for name in parameters if name.endswith('.bias')]
    full = any(not name.endswith('bias') for _, name in params)
    tuned = [name for name in parameters if full or name.endswith('bias')]
    norm_state = [f'{layer}.{state}' for layer in norm_layers for state in BATCH_NORM_STATE]
    for found, kind, expected in ((params, 'FullFineTuning' if full else 'BitFit', tuned),
                                  (norms, 'BatchNormTuning', norm_state)):
        if not found:
            continue
        given = {}
        for (block, name), value in found.items():
            stage, index = places[block]
            given[f'layer{stage}.{index}.{name}'] = value
        unknown = sorted(set(given) - set(expected))
        missing = [name for name in expected if name not in given]
        if unknown or missing:
            problem = (f'{unknown[:5]} are not in a bottleneck' if unknown else
                       f'{missing[:5]} are missing; the checkpoint is incomplete')
            raise KeyError(f"LIFT+'s tuner holds {len(given)} tensors of the bottlenecks for lift_mm's {kind}, which "
                           f'needs {len(expected)}: {problem}.')
        state_dict.update((f'{prefix}.{name}', value) for name, value in given.items())
        kinds[kind] = dict(type=kind, within=RESNET_STAGES)
    return state_dict, list(kinds.values())


def _convert_blocks(encoder: str, found: Dict[int, Dict[str, torch.Tensor]], state_dict: OrderedDict, prefix: str,
                    host_weights: Dict[str, str], aft_seed: int) -> Tuple[List[dict], List[str]]:
    """Put the light modules and tuned weights of one LIFT+ encoder's blocks into ``state_dict``.

    Args:
        encoder (str): ``'image'`` or ``'text'``, LIFT+'s ``<encoder>_encoder``.
        found (dict): The tuner's tensors by block and key inside the block.
        state_dict (OrderedDict): The converted state dict, filled in place.
        prefix (str): Where lift_mm keeps block i of this encoder (``<prefix>.<i>.light_modules.<kind>``).
        host_weights (dict): LIFT+'s names of a block's own weights and where the host block keeps them.
        aft_seed (int): LIFT+'s ``aft_seed``, see :func:`_convert_aft`.

    Returns:
        tuple: The ``light_modules`` config of the encoder and the tuner keys that map to nothing.
    """
    blocks, unmapped = {}, []
    host: Dict[int, Dict[str, torch.Tensor]] = {}
    aft: Dict[int, Dict[Tuple[str, ...], torch.Tensor]] = {}
    for block, entries in sorted(found.items()):
        for inner, value in entries.items():
            if re.fullmatch(r'(\w+)_(weight|bias)', inner) and inner.rsplit('_', 1)[0] in host_weights:
                host.setdefault(block, {})[inner] = value
                continue
            if aft_match := AFT_KEY.fullmatch(inner):
                aft.setdefault(block, {})[aft_match.groups()] = value
                continue
            for pattern, kind, target in LIGHT_MODULE_RULES:
                if match := re.fullmatch(pattern, inner):
                    kind = kind or PROMPT_KINDS[encoder]
                    # LIFT+ keeps AdaptFormer's scale as a 0-d tensor, lift_mm as a 1-element one.
                    state_dict[f'{prefix}.{block}.light_modules.{kind}.{target(match)}'] = (
                        value.reshape(1) if value.dim() == 0 else value)
                    blocks.setdefault(kind, [])
                    blocks[kind] += [] if block in blocks[kind] else [block]
                    break
            else:
                unmapped.append(f'{encoder}_encoder.blocks.{block}.{inner}')
    for block, trained in sorted(host.items()):
        kind = _host_weights(block, trained, state_dict, prefix, host_weights)
        blocks.setdefault(kind, []).append(block)
    configs_found = {}
    if aft:
        configs_found['SparseTuning'] = _convert_aft(aft, state_dict, aft_seed, prefix, encoder)
        blocks['SparseTuning'] = sorted(aft)
    return _light_module_configs(state_dict, blocks, prefix, configs_found), unmapped


def _convert_text_side(tuner: Dict[str, torch.Tensor], state_dict: OrderedDict, text_light_modules: List[dict],
                       coop_position: str) -> dict:
    """Put LIFT+'s text-side tensors outside the blocks (CoOp's context, CLIP-Adapter, the projections) into
    ``state_dict``; return the ``TextEncoderClsHead`` options that build them, with ``text_light_modules``."""
    head = dict(type='TextEncoderClsHead')
    adapters = {}
    for key, value in tuner.items():
        if key in TEXT_SIDE_KEYS:
            state_dict[TEXT_SIDE_KEYS[key]] = value
        elif match := CLIP_ADAPTER_KEY.fullmatch(key):
            state_dict[f'head.{match[1]}_adapter.bottleneck.{BOTTLENECK_LAYERS[match[2]]}.{match[3]}'] = value
            if match[2] == 'down' and match[3] == 'weight':
                adapters[match[1]] = value.shape[0]
    if 'text_encoder.ctx' in tuner:
        if coop_position not in COOP_POSITIONS:
            raise ValueError(f'coop_position={coop_position!r} must be one of {list(COOP_POSITIONS)} (LIFT+\'s '
                             '`coop_cls_pos`).')
        head['context'] = dict(n_ctx=tuner['text_encoder.ctx'].shape[0], position=coop_position)
    if text_light_modules:
        head['text_light_modules'] = text_light_modules
    if adapters:
        if len(set(adapters.values())) > 1:
            raise ValueError(f'The CLIP-Adapters have the bottlenecks {adapters} (image, text); lift_mm builds one '
                             'size for both.')
        head['clip_adapter'] = dict(bottleneck=next(iter(adapters.values())), image='image' in adapters,
                                    text='text' in adapters)
    for key, option in (('image_proj', 'tune_image_projection'), ('text_proj', 'tune_text_projection')):
        if key in tuner:
            head[option] = True
    return head


def convert_lift_plus(checkpoint: Dict,
                      aft_seed: int = 0,
                      backbone: str = 'clip',
                      resnet_layers: Optional[Sequence[int]] = None,
                      coop_position: str = 'end') -> Tuple[OrderedDict, List[dict], Optional[dict]]:
    """Rename a LIFT+ checkpoint's tensors to lift_mm's.

    A run with a classifier becomes an image classifier (the backbone's light modules and ``CosineClsHead``'s
    weight); a run without, which classifies with CLIP's text encoder (CoOp, CLIP-Adapter, projection tuning,
    light modules in the text blocks, ``l.*``), becomes a ``TextEncoderClsHead`` model, whose head options are
    returned.

    Args:
        checkpoint (dict): What LIFT+'s ``Trainer.save_model`` writes: ``{'tuner': state_dict}``.
        aft_seed (int): LIFT+'s ``aft_seed`` of an arbitrary fine-tuning run, checked against its masks.
            Defaults to 0 (LIFT+'s default).
        backbone (str): ``'clip'`` for a CLIP ViT or ResNet (lift_mm's ``CLIPVisionTransformer``,
            ``CLIPResNet``) or ``'timm'`` for LIFT+'s timm ViTs and ResNets (``TimmVisionTransformer``,
            ``TimmResNet``). Defaults to ``'clip'``.
        resnet_layers (Sequence[int], optional): Blocks per stage of a ResNet checkpoint, see
            :func:`convert_lift_plus_resnet`. Defaults to None.
        coop_position (str): LIFT+'s ``coop_cls_pos`` of a CoOp run, which the checkpoint does not record:
            ``'end'``, ``'front'`` or ``'middle'``, the same as lift_mm's ``context.position``. Defaults to
            ``'end'`` (LIFT+'s default).

    Returns:
        tuple: The lift_mm state dict (light modules, tuned host weights, head), the backbone's ``light_modules``
        config that builds the same modules, and the ``TextEncoderClsHead`` options of a text-side run (None for
        a run with a classifier).

    Raises:
        KeyError: For a checkpoint without ``tuner``, a key that maps to nothing in lift_mm (named, with what
            this converter covers), or a block that trains only some of its weights in place.
        ValueError: For a kind in blocks that are not consecutive or with sizes that differ between blocks, and
            for arbitrary fine-tuning masks that are not LIFT+'s draw for ``aft_seed``.
    """
    prefix, host_weights = BACKBONES[backbone]
    if 'tuner' not in checkpoint:
        raise KeyError(f"Not a LIFT+ checkpoint: it has {sorted(checkpoint)} but no 'tuner' (expected the dict "
                       "that LIFT+'s Trainer.save_model writes).")
    tuner = checkpoint['tuner']
    state_dict = OrderedDict((f'head.{key.split(".")[1]}', value) for key, value in tuner.items()
                             if key in ('classifier.weight', 'classifier.bias'))
    has_classifier = bool(state_dict)
    text_side = [key for key in tuner if key.split('.')[0] in OTHER_TUNERS]
    if not has_classifier and not text_side:
        raise KeyError("The LIFT+ checkpoint has no 'classifier.weight' and no text-side tensors: convert a run "
                       "trained with a classifier (LIFT+'s `classifier` option, e.g. CosineClassifier) or with a "
                       'text-side method (CoOp, CLIP-Adapter, projection tuning, text light modules).')
    if any(RESNET_KEY.fullmatch(key) for key in tuner):
        if not has_classifier:
            raise KeyError(f'The LIFT+ ResNet checkpoint has text-side tensors {text_side[:4]} but no classifier: '
                           'this converter maps the text side of CLIP ViT runs only.')
        resnet_state, configs = convert_lift_plus_resnet(
            {key: value for key, value in tuner.items() if not key.startswith('classifier.')}, backbone,
            resnet_layers)
        state_dict.update(resnet_state)
        return state_dict, configs, None
    found: Dict[str, Dict[int, Dict[str, torch.Tensor]]] = dict(image={}, text={})
    unmapped = []
    for key, value in tuner.items():
        if key in ('classifier.weight', 'classifier.bias'):
            continue
        if block_match := BLOCK_KEY.fullmatch(key):
            found[block_match[1]].setdefault(int(block_match[2]), {})[block_match[3]] = value
        elif has_classifier or not (key in TEXT_SIDE_KEYS or CLIP_ADAPTER_KEY.fullmatch(key)):
            unmapped.append(key)
    if has_classifier:
        # With a classifier LIFT+ never runs the text encoder.
        unmapped += [f'text_encoder.blocks.{block}.{inner}' for block, entries in sorted(found['text'].items())
                     for inner in entries]
        found['text'] = {}
    configs, unmapped_blocks = _convert_blocks('image', found['image'], state_dict, prefix, host_weights, aft_seed)
    text_configs, unmapped_text = _convert_blocks('text', found['text'], state_dict, TEXT_BLOCK_PREFIX,
                                                  CLIP_HOST_WEIGHTS, aft_seed)
    unmapped += unmapped_blocks + unmapped_text
    if unmapped:
        other = [key for key in unmapped if has_classifier and key.split('.')[0] in OTHER_TUNERS]
        raise KeyError(
            f'Cannot map these LIFT+ tuner keys to lift_mm: {unmapped[:8]}{" ..." if len(unmapped) > 8 else ""}. '
            'This converter covers the classifier and the image encoder of a ViT: AdaptFormer, Adapter, LoRA, SSF, '
            'prompt tuning, arbitrary (aft), full and bias tuning; and, in runs without a classifier, the same in '
            'the text encoder, CoOp\'s context, CLIP-Adapter and the projections' +
            (f"; {sorted({key.split('.')[0] for key in other})} belong to text-side or zero-shot methods, which "
             'LIFT+ runs without a classifier' if other else '') + '.')
    if has_classifier:
        return state_dict, configs, None
    if backbone != 'clip':
        raise ValueError(f"A text-side LIFT+ run classifies with CLIP's text encoder; backbone={backbone!r} has "
                         "none: convert it with backbone='clip' (--backbone clip).")
    return state_dict, configs, _convert_text_side(tuner, state_dict, text_configs, coop_position)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--aft-seed', type=int, default=0,
                        help="LIFT+'s aft_seed of an arbitrary fine-tuning run (default 0, LIFT+'s)")
    parser.add_argument('--backbone', choices=sorted(BACKBONES), default='clip',
                        help='clip: a CLIP ViT or ResNet (CLIPVisionTransformer, CLIPResNet); timm: a timm ViT or '
                        'ResNet (TimmVisionTransformer, TimmResNet) (default clip)')
    parser.add_argument('--resnet-layers', type=int, nargs=4, metavar='N',
                        help='blocks per stage of a ResNet checkpoint of none of ResNet-50, -101, -152')
    parser.add_argument('--coop-position', choices=COOP_POSITIONS, default='end',
                        help="LIFT+'s coop_cls_pos of a CoOp run, which its checkpoint does not record (default end, "
                        "LIFT+'s)")
    head = {}

    def convert(checkpoint: Dict, args: argparse.Namespace) -> Tuple[OrderedDict, List[dict]]:
        state_dict, light_modules, head_options = convert_lift_plus(checkpoint, args.aft_seed, args.backbone,
                                                                    args.resnet_layers, args.coop_position)
        head.update(head_options or {})
        return state_dict, light_modules

    run_converter(convert, parser, 'LIFT+ checkpoint')
    if head:
        print(f"and a CLIPImageClassifier whose head has {head}, LIFT+'s template 'a photo of a {{}}.' and the "
              "dataset's class names in lift_mm's class order (the backbone with out_projected=False).")
    else:
        print("LIFT+'s default classifier is lift_mm's CosineClsHead with scale=25 (classifier_scale).")


if __name__ == '__main__':
    main()
