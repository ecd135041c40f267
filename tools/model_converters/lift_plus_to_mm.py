"""Convert a checkpoint of LIFT+'s code to lift_mm: ``python tools/model_converters/lift_plus_to_mm.py SRC DST``.

LIFT+'s ``Trainer.save_model`` writes ``{'tuner': ...}``, the state dict of its model's tuner: per image-encoder
block (``image_encoder.blocks.<i>.``) the light modules (``adaptformer``, ``mlp.adapter``, ``attn.lora``,
``attn.ssf`` / ``mlp.ssf``, ``prompt``) and the host weights trained in place (``fft``: every weight of the block,
``bitfit``: its biases, named like ``attn_in_proj_bias``), and the ``classifier``. The result is an MMEngine
checkpoint of a ``CLIPVisionTransformer`` classifier; the converter prints the ``light_modules`` to configure (with
their sizes and blocks) and the head: load it with such a config on the same CLIP weights, e.g.
``tools/test.py CONFIG DST``. LIFT+'s SSF (on the four linears) is lift_mm's ``SSFAttn`` and ``SSFMLP`` together;
its prompt tuning is ``VPTDeep`` (each block's prompts replace the previous block's). An iNaturalist 2018
checkpoint needs the dataset's ``categories.json`` (``--inat-categories``): LIFT+ numbers its classes in sorted
order of their names, lift_mm by category id. Like mmpretrain's converters, this script needs only torch.
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
BOTTLENECK_LAYERS = dict(norm='ln', down='down_proj', up='up_proj')
SSF_SITES = {('attn', 'in_proj'): 'qkv', ('attn', 'out_proj'): 'attn_out', ('mlp', 'in_proj'): 'mlp_in',
             ('mlp', 'out_proj'): 'mlp_out'}

# (pattern of a key inside a block, lift_mm kind, the key inside the kind from the match)
LIGHT_MODULE_RULES: List[Tuple[str, str, Callable[[re.Match], str]]] = [
    (r'adaptformer\.(norm|down|up)\.(weight|bias)', 'AdaptFormer',
     lambda m: f'bottleneck.{BOTTLENECK_LAYERS[m[1]]}.{m[2]}'),
    (r'adaptformer\.scale', 'AdaptFormer', lambda m: 'scale'),
    (r'mlp\.adapter\.(norm|down|up)\.(weight|bias)', 'Adapter',
     lambda m: f'bottleneck.{BOTTLENECK_LAYERS[m[1]]}.{m[2]}'),
    (r'attn\.lora\.(q|v)\.(down|up)', 'LoRA', lambda m: f'{m[1]}.lora_{"A" if m[2] == "down" else "B"}'),
    (r'(attn)\.ssf\.(in_proj|out_proj)\.(scale|shift)', 'SSFAttn', lambda m: f'ssf.{SSF_SITES[m[1], m[2]]}.{m[3]}'),
    (r'(mlp)\.ssf\.(in_proj|out_proj)\.(scale|shift)', 'SSFMLP', lambda m: f'ssf.{SSF_SITES[m[1], m[2]]}.{m[3]}'),
    (r'prompt', 'VPTDeep', lambda m: 'prompt'),
]
# The size a kind's config needs, read from its converted tensors: (kind, config key, tensor, dimension).
KIND_SIZES = [('AdaptFormer', 'bottleneck', 'bottleneck.down_proj.weight', 0),
              ('Adapter', 'bottleneck', 'bottleneck.down_proj.weight', 0), ('LoRA', 'bottleneck', 'q.lora_A', 1),
              ('VPTDeep', 'length', 'prompt', 0)]
# Keys of LIFT+'s tuner outside the image encoder's blocks that are not part of an image classifier.
OTHER_TUNERS = ('text_encoder', 'image_proj', 'text_proj', 'logit_scale', 'image_adapter', 'text_adapter')


def _host_weights(block: int, found: Dict[str, torch.Tensor], state_dict: OrderedDict) -> str:
    """Put one block's weights trained in place into ``state_dict``; return the kind that trains them."""
    trains_weights = any(name.endswith('_weight') for name in found)
    kind = 'FullFineTuning' if trains_weights else 'BitFit'
    expected = [f'{name}_{param}' for name in CLIP_HOST_WEIGHTS for param in ('weight', 'bias')
                if trains_weights or param == 'bias']
    missing = [name for name in expected if name not in found]
    if missing:
        raise KeyError(f'Block {block} trains {sorted(found)} in place but not {missing}: lift_mm\'s {kind} trains '
                       'them all; the checkpoint is incomplete.')
    for name, value in found.items():
        module, param = name.rsplit('_', 1)
        state_dict[f'{CLIP_VIT_BLOCK_PREFIX}.{block}.block.{CLIP_HOST_WEIGHTS[module]}{param}'] = value
    return kind


def _block_range(kind: str, blocks: Sequence[int]) -> List[int]:
    """The ``[start, end)`` of lift_mm's ``blocks`` for the blocks a kind is in."""
    start, end = min(blocks), max(blocks) + 1
    if sorted(blocks) != list(range(start, end)):
        raise ValueError(f'{kind} is in blocks {sorted(blocks)}, which are not consecutive; lift_mm puts a kind into '
                         'a range of blocks [start, end): convert a checkpoint of consecutive layers.')
    return [start, end]


def _light_module_configs(state_dict: OrderedDict, blocks: Dict[str, List[int]]) -> List[dict]:
    """The ``light_modules`` entries that build the modules in ``state_dict``, with their sizes and blocks."""
    configs = []
    for kind, indices in blocks.items():
        config = dict(type=kind)
        for size_kind, size_key, tensor, dim in KIND_SIZES:
            if size_kind != kind:
                continue
            sizes = {block: state_dict[f'{CLIP_VIT_BLOCK_PREFIX}.{block}.light_modules.{kind}.{tensor}'].shape[dim]
                     for block in indices}
            if len(set(sizes.values())) > 1:
                raise ValueError(f'{kind} has the {size_key} {sizes} by block; lift_mm builds one size for all the '
                                 'blocks of a kind.')
            config[size_key] = sizes[indices[0]]
        config['blocks'] = _block_range(kind, indices)
        configs.append(config)
    return configs


def convert_lift_plus(checkpoint: Dict) -> Tuple[OrderedDict, List[dict]]:
    """Rename a LIFT+ checkpoint's tensors to lift_mm's.

    Args:
        checkpoint (dict): What LIFT+'s ``Trainer.save_model`` writes: ``{'tuner': state_dict}``.

    Returns:
        tuple: The lift_mm state dict (light modules, tuned host weights, head) and the ``light_modules`` config
        that builds the same modules.

    Raises:
        KeyError: For a checkpoint without ``tuner``, a key that maps to nothing in lift_mm (named, with what
            this converter covers), or a block that trains only some of its weights in place.
        ValueError: For a kind in blocks that are not consecutive or with sizes that differ between blocks.
    """
    if 'tuner' not in checkpoint:
        raise KeyError(f"Not a LIFT+ checkpoint: it has {sorted(checkpoint)} but no 'tuner' (expected the dict "
                       "that LIFT+'s Trainer.save_model writes).")
    state_dict, blocks, unmapped = OrderedDict(), {}, []
    host: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in checkpoint['tuner'].items():
        if key in ('classifier.weight', 'classifier.bias'):
            state_dict[f'head.{key.split(".")[1]}'] = value
            continue
        block_match = BLOCK_KEY.fullmatch(key)
        if not block_match:
            unmapped.append(key)
            continue
        block, inner = int(block_match[1]), block_match[2]
        if re.fullmatch(r'(\w+)_(weight|bias)', inner) and inner.rsplit('_', 1)[0] in CLIP_HOST_WEIGHTS:
            host.setdefault(block, {})[inner] = value
            continue
        for pattern, kind, target in LIGHT_MODULE_RULES:
            if match := re.fullmatch(pattern, inner):
                # LIFT+ keeps AdaptFormer's scale as a 0-d tensor, lift_mm as a 1-element one.
                state_dict[f'{CLIP_VIT_BLOCK_PREFIX}.{block}.light_modules.{kind}.{target(match)}'] = (
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
            'This converter covers the classifier and the image encoder of a CLIP ViT: AdaptFormer, Adapter, LoRA, '
            'SSF, prompt tuning, full and bias tuning' +
            (f"; {sorted({key.split('.')[0] for key in other})} belong to text-side or zero-shot methods, which "
             'need the text encoder' if other else '') + '.')
    if 'head.weight' not in state_dict:
        raise KeyError("The LIFT+ checkpoint has no 'classifier.weight': convert a run trained with a classifier "
                       '(LIFT+\'s `classifier` option, e.g. CosineClassifier).')
    for block, found in sorted(host.items()):
        kind = _host_weights(block, found, state_dict)
        blocks.setdefault(kind, []).append(block)
    return state_dict, _light_module_configs(state_dict, blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_converter(lambda checkpoint, args: convert_lift_plus(checkpoint), parser, 'LIFT+ checkpoint')
    print("LIFT+'s default classifier is lift_mm's CosineClsHead with scale=25 (classifier_scale).")


if __name__ == '__main__':
    main()
