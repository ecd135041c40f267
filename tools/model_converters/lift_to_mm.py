"""Convert a checkpoint of LIFT's reference code to lift_mm: ``python tools/model_converters/lift_to_mm.py SRC DST``.

LIFT's ``Trainer.save_model`` writes ``{'tuner': ..., 'head': ...}``; the result is an MMEngine checkpoint of a
classifier that holds the light modules, the host weights the reference tunes in place and the head: a
``CLIPVisionTransformer`` one for ViT checkpoints (``--backbone timm``: a ``TimmVisionTransformer`` one, for LIFT's
ImageNet-21k ViTs), a ``CLIPResNet`` one for the ResNet options (``full_tuning``, ``bias_tuning``, ``bn_tuning``,
``ssf_attn`` on RN50 / RN101). Load it with a lift_mm config that injects the same
light module kinds (printed at the end) into the same CLIP weights, e.g. ``tools/test.py CONFIG DST``. An
iNaturalist 2018 checkpoint needs the dataset's ``categories.json`` (``--inat-categories``): LIFT numbers its
classes in sorted order of their names, lift_mm by category id. Like mmpretrain's converters, this script needs
only torch.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

# The code shared with lift_plus_to_mm.py sits beside this script, which may run from anywhere.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from lift_checkpoints import (CLIP_RESNET_PREFIX, CLIP_VIT_BLOCK_PREFIX, RESNET_LAYERS,  # noqa: E402
                              RESNET_LIGHT_MODULES, TIMM_VIT_BLOCK_PREFIX, bottleneck_parameters, resnet_blocks,
                              run_converter)

# By backbone (CLIP ViTs, ImageNet-21k timm ViTs): where lift_mm keeps block i, the biases of a block in the order
# the reference's bias list enumerates them (the host's module order) and its two LayerNorms.
VIT_BLOCK_PREFIXES = dict(clip=CLIP_VIT_BLOCK_PREFIX, timm=TIMM_VIT_BLOCK_PREFIX)
REFERENCE_BLOCK_BIASES = dict(
    clip=('attn.in_proj_bias', 'attn.out_proj.bias', 'ln_1.bias', 'mlp.c_fc.bias', 'mlp.c_proj.bias', 'ln_2.bias'),
    timm=('norm1.bias', 'attn.qkv.bias', 'attn.proj.bias', 'norm2.bias', 'mlp.fc1.bias', 'mlp.fc2.bias'))
BLOCK_LAYER_NORMS = dict(clip=('ln_1', 'ln_2'), timm=('norm1', 'norm2'))
REFERENCE_SPARSE_SITES = dict(attn_in='qkv', attn_out='attn_out', mlp_in='mlp_in', mlp_out='mlp_out')
REFERENCE_SSF_SITES = dict(attn_in='qkv', attn_out='attn_out', mlp_in='mlp_in', mlp_out='mlp_out', ln_1='ln_1',
                           ln_2='ln_2')
# LIFT's CLIP ResNets by their blocks per stage. The tuner lists of the two differ in length, which tells them apart.
REFERENCE_RESNETS = {'RN50': RESNET_LAYERS[50], 'RN101': RESNET_LAYERS[101]}
# The reference's ResNet tuner: list name -> (the lift_mm kind, the tensors of the ResNet the list holds).
REFERENCE_RESNET_LISTS = dict(full_list='FullFineTuning', bias_list='BitFit', bn_list='BatchNormTuning')

# (pattern of a reference tuner key, light-module kind, function of the match giving the key inside the kind)
_LIGHT_MODULE_RULES: List[Tuple[str, str, object]] = [
    (r'adaptformer_list\.(\d+)\.scale', 'AdaptFormer', lambda m: 'scale'),
    (r'adaptformer_list\.(\d+)\.(ln|down_proj|up_proj)\.(weight|bias)', 'AdaptFormer',
     lambda m: f'bottleneck.{m[2]}.{m[3]}'),
    (r'adapter_list\.(\d+)\.(ln|down_proj|up_proj)\.(weight|bias)', 'Adapter', lambda m: f'bottleneck.{m[2]}.{m[3]}'),
    (r'lora_list\.(\d+)\.(q|v)\.(lora_A|lora_B)', 'LoRA', lambda m: f'{m[2]}.{m[3]}'),
    (r'lora_mlp_list\.(\d+)\.(1|2)\.(lora_A|lora_B)', 'LoRAMLP', lambda m: f'fc{m[2]}.{m[3]}'),
    (r'ssf_attn_list\.(\d+)\.(attn_in|attn_out)\.(scale|shift)', 'SSFAttn',
     lambda m: f'ssf.{REFERENCE_SSF_SITES[m[2]]}.{m[3]}'),
    (r'ssf_mlp_list\.(\d+)\.(mlp_in|mlp_out)\.(scale|shift)', 'SSFMLP',
     lambda m: f'ssf.{REFERENCE_SSF_SITES[m[2]]}.{m[3]}'),
    (r'ssf_ln_list\.(\d+)\.(ln_1|ln_2)\.(scale|shift)', 'SSFLayerNorm', lambda m: f'ssf.{m[2]}.{m[3]}'),
    (r'masked_linear_list\.(\d+)\.(attn_in|attn_out|mlp_in|mlp_out)\.(optimized_weight|optimized_bias)',
     'SparseTuning', lambda m: f'updates.{REFERENCE_SPARSE_SITES[m[2]]}.{m[3]}'),
    (r'vpt_list\.(\d+)\.prompt', 'VPT', lambda m: 'prompt'),
]


def _host_key(key: str, first_tuned_block: int, backbone: str) -> str:
    """Keys of host weights the reference trains in place: full, bias and LayerNorm tuning."""
    prefix, biases = VIT_BLOCK_PREFIXES[backbone], REFERENCE_BLOCK_BIASES[backbone]
    if match := re.fullmatch(r'block_tuned\.(\d+)\.(.+)', key):
        return f'{prefix}.{first_tuned_block + int(match[1])}.block.{match[2]}'
    if match := re.fullmatch(r'bias_tuned\.(\d+)', key):
        block, position = divmod(int(match[1]), len(biases))
        return f'{prefix}.{block}.block.{biases[position]}'
    if match := re.fullmatch(r'ln_tuned\.(\d+)\.(weight|bias)', key):
        block, second = divmod(int(match[1]), 2)
        return f'{prefix}.{block}.block.{BLOCK_LAYER_NORMS[backbone][second]}.{match[2]}'
    return ''


def clip_resnet_parameters(layers: Sequence[int]) -> List[str]:
    """The parameter names of a CLIP ResNet with ``layers`` blocks per stage, in module order (OpenAI's and
    open_clip's alike): the three-convolution stem, the bottlenecks and the attention pooling."""
    stem = [name for i in (1, 2, 3) for name in (f'conv{i}.weight', f'bn{i}.weight', f'bn{i}.bias')]
    blocks = [name for stage, block in resnet_blocks(layers) for name in bottleneck_parameters(stage, block)]
    pooling = [f'attnpool.{proj}_proj.{p}' for proj in 'kqvc' for p in ('weight', 'bias')]
    return stem + blocks + ['attnpool.positional_embedding'] + pooling


def _resnet_list_targets(layers: Sequence[int]) -> Dict[str, List[str]]:
    """For each tuner list of the reference's ResNet options, the ResNet tensors (or BatchNorm layers) it holds,
    in its order."""
    names = clip_resnet_parameters(layers)
    # The convolutions have no biases: the biases are the BatchNorms' and the attention pooling's.
    batch_norms = [name[:-len('.bias')] for name in names if name.endswith('.bias') and 'attnpool' not in name]
    return dict(full_list=names, bias_list=[name for name in names if name.endswith('bias')], bn_list=batch_norms)


def _resnet_layers(lengths: Dict[str, int], layers: Optional[Sequence[int]]) -> Sequence[int]:
    """The blocks per stage of the ResNet whose tuner lists have ``lengths`` entries."""
    candidates = {str(list(layers)): layers} if layers else {name: arch for name, arch in REFERENCE_RESNETS.items()}
    for arch in candidates.values():
        targets = _resnet_list_targets(arch)
        if all(len(targets[name]) == length for name, length in lengths.items()):
            return arch
    expected = {name: {key: len(value) for key, value in _resnet_list_targets(arch).items()}
                for name, arch in candidates.items()}
    raise ValueError(f'The ResNet tuner lists have {lengths} entries, which fit none of {expected}: a checkpoint '
                     'of another ResNet needs its blocks per stage (--resnet-layers).')


def convert_lift_resnet(tuner: Dict, layers: Optional[Sequence[int]] = None) -> Tuple[OrderedDict, List[str]]:
    """Map the reference's ResNet tuner (``full_list``, ``bias_list``, ``bn_list``, ``ssf_attn``) to
    ``CLIPResNet``'s keys.

    Args:
        tuner (dict): The ``tuner`` state dict of a LIFT ResNet checkpoint.
        layers (Sequence[int], optional): Blocks per stage; None finds RN50 or RN101 from the lists' lengths.
            Defaults to None.

    Returns:
        tuple: The backbone's state dict and the light-module kinds found.
    """
    entries: Dict[str, Dict[int, List[Tuple[str, str]]]] = {}
    state_dict, kinds, unmapped = OrderedDict(), [], []
    for key in tuner:
        if match := re.fullmatch(r'(full_list|bias_list)\.(\d+)|(bn_list)\.(\d+)\.(\w+)', key):
            name, index = match[1] or match[3], int(match[2] or match[4])
            entries.setdefault(name, {}).setdefault(index, []).append((key, match[5] or ''))
        elif match := re.fullmatch(r'ssf_attn\.(scale|shift)', key):
            state_dict[f'{RESNET_LIGHT_MODULES}.SSFOutput.ssf.{match[1]}'] = tuner[key]
            kinds += [] if 'SSFOutput' in kinds else ['SSFOutput']
        else:
            unmapped.append(key)
    if unmapped:
        raise KeyError(f'Cannot map these reference tuner keys of a ResNet checkpoint: {unmapped[:8]}. The ResNet '
                       'options are full_list, bias_list, bn_list and ssf_attn.')
    targets = _resnet_list_targets(_resnet_layers({name: len(found) for name, found in entries.items()}, layers))
    for name, found in entries.items():
        if sorted(found) != list(range(len(found))):
            raise KeyError(f'The entries of {name} are not numbered 0 to {len(found) - 1}: the checkpoint is '
                           'incomplete.')
        for index, keys in sorted(found.items()):
            for key, attribute in keys:
                target = targets[name][index] + (f'.{attribute}' if attribute else '')
                state_dict[f'{CLIP_RESNET_PREFIX}.{target}'] = tuner[key]
        kinds.append(REFERENCE_RESNET_LISTS[name])
    return state_dict, kinds


def convert_lift_reference(checkpoint: Dict,
                           first_tuned_block: int = 0,
                           resnet_layers: Optional[Sequence[int]] = None,
                           backbone: str = 'clip') -> Tuple[OrderedDict, List[str]]:
    """Rename a LIFT reference checkpoint's tensors to lift_mm's.

    Args:
        checkpoint (dict): What LIFT's ``Trainer.save_model`` writes: ``{'tuner': state_dict, 'head': state_dict}``.
        first_tuned_block (int): Index of the first block of the reference's full fine-tuning (``block_tuned``),
            which the reference numbers from zero; 0 unless it was restricted to a block range. Defaults to 0.
        resnet_layers (Sequence[int], optional): Blocks per stage of a ResNet checkpoint; None finds LIFT's RN50
            or RN101 from it. Defaults to None.
        backbone (str): The ViT of a ViT checkpoint: ``'clip'`` (``CLIPVisionTransformer``) or ``'timm'`` (LIFT's
            ImageNet-21k ViTs, ``TimmVisionTransformer``). Defaults to ``'clip'``.

    Returns:
        tuple: The lift_mm state dict (backbone light modules and tuned weights, head) and the light-module kinds
        found, for the matching ``light_modules`` config.
    """
    missing = {'tuner', 'head'} - set(checkpoint)
    if missing:
        raise KeyError(f'Not a LIFT reference checkpoint: it lacks {sorted(missing)} (expected the dict that '
                       "LIFT's Trainer.save_model writes, with 'tuner' and 'head').")
    tuner = checkpoint['tuner']
    if any(re.match(r'(full_list|bias_list|bn_list|ssf_attn)\.', key) for key in tuner):
        state_dict, kinds = convert_lift_resnet(tuner, resnet_layers)
    else:
        state_dict, kinds = _convert_vit_tuner(tuner, first_tuned_block, backbone)
    for key, value in checkpoint['head'].items():
        if key not in ('weight', 'bias'):
            raise KeyError(f'Cannot map the reference head key {key!r}: only weight and bias are known.')
        state_dict[f'head.{key}'] = value
    return state_dict, kinds


def _convert_vit_tuner(tuner: Dict, first_tuned_block: int, backbone: str) -> Tuple[OrderedDict, List[str]]:
    """Map the reference's ViT tuner (per-block lists of light modules, tuned host weights) to
    ``CLIPVisionTransformer``'s keys."""
    prompt_blocks = sorted(int(re.fullmatch(r'vpt_list\.(\d+)\.prompt', k)[1]) for k in tuner
                           if re.fullmatch(r'vpt_list\.(\d+)\.prompt', k))
    vpt_kind = 'VPTShallow' if prompt_blocks == [0] else 'VPTDeep'
    state_dict, kinds, unmapped = OrderedDict(), [], []
    for key, value in tuner.items():
        for pattern, kind, inner in _LIGHT_MODULE_RULES:
            if match := re.fullmatch(pattern, key):
                kind = vpt_kind if kind == 'VPT' else kind
                state_dict[f'{VIT_BLOCK_PREFIXES[backbone]}.{match[1]}.light_modules.{kind}.{inner(match)}'] = value
                break
        else:
            host_key = _host_key(key, first_tuned_block, backbone)
            if not host_key:
                unmapped.append(key)
                continue
            state_dict[host_key] = value
            kind = {'block': 'FullFineTuning', 'bias': 'BitFit', 'ln': 'LayerNormTuning'}[key.split('_')[0]]
        if kind not in kinds:
            kinds.append(kind)
    if unmapped:
        raise KeyError(f'Cannot map these reference tuner keys to lift_mm modules: {unmapped[:8]}'
                       f'{" ..." if len(unmapped) > 8 else ""}. Supported: AdaptFormer, Adapter, LoRA, LoRA-MLP, '
                       'SSF (attn/mlp/ln), masked sparse, VPT shallow/deep, full, bias and LayerNorm tuning; on '
                       'ResNets full, bias, BatchNorm tuning and SSF.')
    return state_dict, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--first-tuned-block', type=int, default=0,
                        help='first block of a full fine-tuning restricted to a block range (default 0)')
    parser.add_argument('--backbone', choices=sorted(VIT_BLOCK_PREFIXES), default='clip',
                        help='the ViT of a ViT checkpoint: clip (CLIPVisionTransformer) or timm (an ImageNet-21k '
                        'ViT, TimmVisionTransformer) (default clip)')
    parser.add_argument('--resnet-layers', type=int, nargs=4, metavar='N',
                        help='blocks per stage of a ResNet checkpoint of neither RN50 nor RN101')

    def convert(checkpoint: Dict, args: argparse.Namespace) -> Tuple[OrderedDict, List[dict]]:
        state_dict, kinds = convert_lift_reference(checkpoint, args.first_tuned_block, args.resnet_layers,
                                                   args.backbone)
        return state_dict, [dict(type=kind) for kind in kinds]

    run_converter(convert, parser, 'LIFT reference checkpoint')


if __name__ == '__main__':
    main()
