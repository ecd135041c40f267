"""Convert a checkpoint of LIFT's reference code to lift_mm: ``python tools/model_converters/lift_to_mm.py SRC DST``.

LIFT's ``Trainer.save_model`` writes ``{'tuner': ..., 'head': ...}``; the result is an MMEngine checkpoint of a
``CLIPVisionTransformer`` classifier that holds the light modules, the host weights the reference tunes in place
and the head. Load it with a lift_mm config that injects the same light module kinds (printed at the end) into the
same CLIP weights, e.g. ``tools/test.py CONFIG DST``. Like mmpretrain's converters, this script needs only torch.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

BLOCK_PREFIX = 'backbone.visual.transformer.resblocks'
# Biases of a CLIP block in the order the reference's bias list enumerates them (OpenAI's module order).
REFERENCE_BLOCK_BIASES = ('attn.in_proj_bias', 'attn.out_proj.bias', 'ln_1.bias', 'mlp.c_fc.bias',
                          'mlp.c_proj.bias', 'ln_2.bias')
REFERENCE_SPARSE_SITES = dict(attn_in='qkv', attn_out='attn_out', mlp_in='mlp_in', mlp_out='mlp_out')
REFERENCE_SSF_SITES = dict(attn_in='qkv', attn_out='attn_out', mlp_in='mlp_in', mlp_out='mlp_out', ln_1='ln_1',
                           ln_2='ln_2')

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


def _host_key(key: str, first_tuned_block: int) -> str:
    """Keys of host weights the reference trains in place: full, bias and LayerNorm tuning."""
    if match := re.fullmatch(r'block_tuned\.(\d+)\.(.+)', key):
        return f'{BLOCK_PREFIX}.{first_tuned_block + int(match[1])}.block.{match[2]}'
    if match := re.fullmatch(r'bias_tuned\.(\d+)', key):
        block, position = divmod(int(match[1]), len(REFERENCE_BLOCK_BIASES))
        return f'{BLOCK_PREFIX}.{block}.block.{REFERENCE_BLOCK_BIASES[position]}'
    if match := re.fullmatch(r'ln_tuned\.(\d+)\.(weight|bias)', key):
        block, second = divmod(int(match[1]), 2)
        return f'{BLOCK_PREFIX}.{block}.block.ln_{second + 1}.{match[2]}'
    return ''


def convert_lift_reference(checkpoint: Dict, first_tuned_block: int = 0) -> Tuple[OrderedDict, List[str]]:
    """Rename a LIFT reference checkpoint's tensors to lift_mm's.

    Args:
        checkpoint (dict): What LIFT's ``Trainer.save_model`` writes: ``{'tuner': state_dict, 'head': state_dict}``.
        first_tuned_block (int): Index of the first block of the reference's full fine-tuning (``block_tuned``),
            which the reference numbers from zero; 0 unless it was restricted to a block range. Defaults to 0.

    Returns:
        tuple: The lift_mm state dict (backbone light modules and tuned weights, head) and the light-module kinds
        found, for the matching ``light_modules`` config.
    """
    missing = {'tuner', 'head'} - set(checkpoint)
    if missing:
        raise KeyError(f'Not a LIFT reference checkpoint: it lacks {sorted(missing)} (expected the dict that '
                       "LIFT's Trainer.save_model writes, with 'tuner' and 'head').")
    tuner = checkpoint['tuner']
    prompt_blocks = sorted(int(re.fullmatch(r'vpt_list\.(\d+)\.prompt', k)[1]) for k in tuner
                           if re.fullmatch(r'vpt_list\.(\d+)\.prompt', k))
    vpt_kind = 'VPTShallow' if prompt_blocks == [0] else 'VPTDeep'
    state_dict, kinds, unmapped = OrderedDict(), [], []
    for key, value in tuner.items():
        for pattern, kind, inner in _LIGHT_MODULE_RULES:
            if match := re.fullmatch(pattern, key):
                kind = vpt_kind if kind == 'VPT' else kind
                state_dict[f'{BLOCK_PREFIX}.{match[1]}.light_modules.{kind}.{inner(match)}'] = value
                break
        else:
            host_key = _host_key(key, first_tuned_block)
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
                       'SSF (attn/mlp/ln), masked sparse, VPT shallow/deep, full, bias and LayerNorm tuning.')
    for key, value in checkpoint['head'].items():
        if key not in ('weight', 'bias'):
            raise KeyError(f'Cannot map the reference head key {key!r}: only weight and bias are known.')
        state_dict[f'head.{key}'] = value
    return state_dict, kinds


def save_converted(state_dict: OrderedDict, kinds: List[str], path: str) -> None:
    """Write an MMEngine checkpoint that ``load_from``, ``tools/test.py`` and the inferencer accept."""
    meta = dict(converted_from='LIFT reference checkpoint', light_modules=kinds)
    torch.save(dict(meta=meta, state_dict=state_dict), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help="checkpoint written by LIFT's Trainer.save_model (checkpoint.pth.tar)")
    parser.add_argument('dst', help='lift_mm checkpoint to write')
    parser.add_argument('--first-tuned-block', type=int, default=0,
                        help='first block of a full fine-tuning restricted to a block range (default 0)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} does not exist')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    try:
        state_dict, kinds = convert_lift_reference(checkpoint, args.first_tuned_block)
    except KeyError as error:
        sys.exit(f'error: {args.src}: {error.args[0]}')
    save_converted(state_dict, kinds, args.dst)
    print(f'Wrote {len(state_dict)} tensors to {args.dst}.')
    print('Use a config with light_modules=' + str([dict(type=kind) for kind in kinds]))


if __name__ == '__main__':
    main()
