"""Convert a checkpoint of LIFT+'s code to lift_mm: ``python tools/model_converters/lift_plus_to_mm.py SRC DST``.

LIFT+'s ``Trainer.save_model`` writes ``{'tuner': ...}``, the state dict of its model's tuner: per image-encoder
block (``image_encoder.blocks.<i>.``) the light modules (``adaptformer``, ``mlp.adapter``, ``attn.lora``,
``attn.ssf`` / ``mlp.ssf``, ``prompt``, the masked linears of ``aft``) and the host weights trained in place
(``fft``: every weight of the block, ``bitfit``: its biases, named like ``attn_in_proj_bias``), and the
``classifier``. The result is an MMEngine checkpoint of a ``CLIPVisionTransformer`` classifier (``--backbone
timm``: a ``TimmVisionTransformer`` one, for LIFT+'s ImageNet-21k ViTs); the converter prints the
``light_modules`` to configure (with their sizes and blocks): load it with such a config on the same pre-trained
weights and LIFT+'s classifier (``CosineClsHead``, scale 25), e.g. ``tools/test.py CONFIG DST``.

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
from typing import Callable, Dict, List, Sequence, Tuple

import torch

# The code shared with lift_to_mm.py sits beside this script, which may run from anywhere.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from lift_checkpoints import CLIP_VIT_BLOCK_PREFIX, run_converter  # noqa: E402

BLOCK_KEY = re.compile(r'image_encoder\.blocks\.(\d+)\.(.+)')
# LIFT+'s names of a block's own weights (its PEFT_Block's parameter names, dots written as underscores), without
# the ``weight`` / ``bias`` ending, and where open_clip's block keeps them.
CLIP_HOST_WEIGHTS = dict(norm1='ln_1.', attn_in_proj='attn.in_proj_', attn_out_proj='attn.out_proj.', norm2='ln_2.',
                         mlp_in_proj='mlp.c_fc.', mlp_out_proj='mlp.c_proj.')
TIMM_HOST_WEIGHTS = dict(norm1='norm1.', attn_in_proj='attn.qkv.', attn_out_proj='attn.proj.', norm2='norm2.',
                         mlp_in_proj='mlp.fc1.', mlp_out_proj='mlp.fc2.')
# LIFT+'s ViT backbones: where the lift_mm backbone keeps block i, and the names of the block's own weights.
BACKBONES = dict(clip=(CLIP_VIT_BLOCK_PREFIX, CLIP_HOST_WEIGHTS),
                 timm=('backbone.timm_model.blocks', TIMM_HOST_WEIGHTS))
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
    (r'prompt', 'VPTDeep', lambda m: 'prompt'),
]
# The size a kind's config needs, read from its converted tensors: (kind, config key, tensor, dimension).
KIND_SIZES = [('AdaptFormer', 'bottleneck', 'bottleneck.down_proj.weight', 0),
              ('Adapter', 'bottleneck', 'bottleneck.down_proj.weight', 0), ('LoRA', 'bottleneck', 'q.lora_A', 1),
              ('VPTDeep', 'length', 'prompt', 0)]
# Keys of LIFT+'s tuner outside the image encoder's blocks that are not part of an image classifier.
OTHER_TUNERS = ('text_encoder', 'image_proj', 'text_proj', 'logit_scale', 'image_adapter', 'text_adapter')


def _host_weights(block: int, found: Dict[str, torch.Tensor], state_dict: OrderedDict, backbone: str) -> str:
    """Put one block's weights trained in place into ``state_dict``; return the kind that trains them."""
    prefix, host_weights = BACKBONES[backbone]
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
        raise ValueError(f'The arbitrary fine-tuning masks select {counts} (selected, entries) by key, which no '
                         'single ratio gives; the checkpoint was not written by LIFT+.')
    return ratio


def _convert_aft(found: Dict[int, Dict[Tuple[str, ...], torch.Tensor]], state_dict: OrderedDict, seed: int,
                 prefix: str) -> dict:
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
                where = f'image_encoder.blocks.{block}.{group}.aft.{proj}.masked_{param}'
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


def convert_lift_plus(checkpoint: Dict, aft_seed: int = 0, backbone: str = 'clip') -> Tuple[OrderedDict, List[dict]]:
    """Rename a LIFT+ checkpoint's tensors to lift_mm's.

    Args:
        checkpoint (dict): What LIFT+'s ``Trainer.save_model`` writes: ``{'tuner': state_dict}``.
        aft_seed (int): LIFT+'s ``aft_seed`` of an arbitrary fine-tuning run, checked against its masks.
            Defaults to 0 (LIFT+'s default).
        backbone (str): ``'clip'`` for a CLIP ViT (lift_mm's ``CLIPVisionTransformer``) or ``'timm'`` for an
            ImageNet-21k timm ViT (``TimmVisionTransformer``). Defaults to ``'clip'``.

    Returns:
        tuple: The lift_mm state dict (light modules, tuned host weights, head) and the ``light_modules`` config
        that builds the same modules.

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
    state_dict, blocks, unmapped = OrderedDict(), {}, []
    host: Dict[int, Dict[str, torch.Tensor]] = {}
    aft: Dict[int, Dict[Tuple[str, ...], torch.Tensor]] = {}
    for key, value in checkpoint['tuner'].items():
        if key in ('classifier.weight', 'classifier.bias'):
            state_dict[f'head.{key.split(".")[1]}'] = value
            continue
        block_match = BLOCK_KEY.fullmatch(key)
        if not block_match:
            unmapped.append(key)
            continue
        block, inner = int(block_match[1]), block_match[2]
        if re.fullmatch(r'(\w+)_(weight|bias)', inner) and inner.rsplit('_', 1)[0] in host_weights:
            host.setdefault(block, {})[inner] = value
            continue
        if aft_match := AFT_KEY.fullmatch(inner):
            aft.setdefault(block, {})[aft_match.groups()] = value
            continue
        for pattern, kind, target in LIGHT_MODULE_RULES:
            if match := re.fullmatch(pattern, inner):
                # LIFT+ keeps AdaptFormer's scale as a 0-d tensor, lift_mm as a 1-element one.
                state_dict[f'{prefix}.{block}.light_modules.{kind}.{target(match)}'] = (
                    value.reshape(1) if value.dim() == 0 else value)
                blocks.setdefault(kind, [])
                blocks[kind] += [] if block in blocks[kind] else [block]
                break
        else:
            unmapped.append(key)
    if unmapped:
        other = [key for key in unmapped if key.split('.')[0] in OTHER_TUNERS]
        raise KeyError(
            f'Cannot map these LIFT+ tuner keys to lift_mm: {unmapped[:8]}{" ..." if len(unmapped) > 8 else ""}. '
            'This converter covers the classifier and the image encoder of a ViT: AdaptFormer, Adapter, LoRA, SSF, '
            'prompt tuning, arbitrary (aft), full and bias tuning' +
            (f"; {sorted({key.split('.')[0] for key in other})} belong to text-side or zero-shot methods, which "
             'need the text encoder' if other else '') + '.')
    if 'head.weight' not in state_dict:
        raise KeyError("The LIFT+ checkpoint has no 'classifier.weight': convert a run trained with a classifier "
                       '(LIFT+\'s `classifier` option, e.g. CosineClassifier).')
    for block, found in sorted(host.items()):
        kind = _host_weights(block, found, state_dict, backbone)
        blocks.setdefault(kind, []).append(block)
    configs_found = {}
    if aft:
        configs_found['SparseTuning'] = _convert_aft(aft, state_dict, aft_seed, prefix)
        blocks['SparseTuning'] = sorted(aft)
    return state_dict, _light_module_configs(state_dict, blocks, prefix, configs_found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--aft-seed', type=int, default=0,
                        help="LIFT+'s aft_seed of an arbitrary fine-tuning run (default 0, LIFT+'s)")
    parser.add_argument('--backbone', choices=sorted(BACKBONES), default='clip',
                        help='clip: a CLIP ViT (CLIPVisionTransformer); timm: an ImageNet-21k timm ViT '
                        '(TimmVisionTransformer) (default clip)')
    run_converter(lambda checkpoint, args: convert_lift_plus(checkpoint, args.aft_seed, args.backbone), parser,
                  'LIFT+ checkpoint')
    print("LIFT+'s default classifier is lift_mm's CosineClsHead with scale=25 (classifier_scale).")


if __name__ == '__main__':
    main()
