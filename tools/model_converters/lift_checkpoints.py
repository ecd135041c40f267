"""What the converters of LIFT's and LIFT+'s checkpoints share: lift_mm's key names, the class order of their
iNaturalist checkpoints and the command line that reads, converts and writes.

``lift_to_mm.py`` and ``lift_plus_to_mm.py`` import it from beside them; like them it needs only torch, so the
converters run where lift_mm is not installed.
"""
import argparse
import json
import os.path as osp
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

# Where CLIPVisionTransformer keeps block i: its light modules under ``.light_modules.<kind>``, the host weights a
# kind trains in place under ``.block``.
CLIP_VIT_BLOCK_PREFIX = 'backbone.visual.transformer.resblocks'
# The same for TimmVisionTransformer, and where TimmResNet keeps the ResNet's weights.
TIMM_VIT_BLOCK_PREFIX = 'backbone.timm_model.blocks'
TIMM_RESNET_PREFIX = 'backbone.timm_model'
# Where CLIPResNet keeps the ResNet's weights, and where ResNet backbones (CLIPResNet, TimmResNet) keep their light
# modules.
CLIP_RESNET_PREFIX = 'backbone.visual'
RESNET_LIGHT_MODULES = 'backbone.light_modules'
# Blocks per stage of the ResNets LIFT (CLIP's RN50, RN101) and LIFT+ (also timm's resnet152) use, by depth.
RESNET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# The residual stages of a ResNet, where LIFT+ tunes weights in place.
RESNET_STAGES = ['layer1', 'layer2', 'layer3', 'layer4']
# The keys of a converted classifier whose rows are classes.
HEAD_ROW_KEYS = ('head.weight', 'head.bias')
INATURALIST_2018_CLASSES = 8142

# A converter: (the loaded checkpoint, the parsed arguments) -> (lift_mm state dict, light_modules config).
Converter = Callable[[Dict, argparse.Namespace], Tuple[OrderedDict, List[dict]]]


def bottleneck_parameters(stage: int, block: int) -> List[str]:
    """The parameter names of a ResNet bottleneck (CLIP's and timm's alike: three convolutions without bias, each
    followed by a BatchNorm, and in the first block of a stage the downsampling branch's convolution and
    BatchNorm), in module order, prefixed with its place ``layer<stage>.<block>``."""
    names = [name for i in (1, 2, 3) for name in (f'conv{i}.weight', f'bn{i}.weight', f'bn{i}.bias')]
    if block == 0:
        names += ['downsample.0.weight', 'downsample.1.weight', 'downsample.1.bias']
    return [f'layer{stage}.{block}.{name}' for name in names]


def resnet_blocks(layers: Sequence[int]) -> List[Tuple[int, int]]:
    """``(stage, block)`` of each bottleneck of a ResNet with ``layers`` blocks per stage, in order."""
    return [(stage, block) for stage, blocks in enumerate(layers, 1) for block in range(blocks)]


def _read_categories(path: str) -> List[str]:
    """Class names by category id from an iNaturalist ``categories.json`` (objects with ``id`` and ``name``)."""
    try:
        with open(path, encoding='utf-8') as file:
            categories = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f'cannot read the categories file {path}: {error}') from None
    if not isinstance(categories, list) or not categories:
        raise ValueError(f'{path}: expected a non-empty JSON list of {{"id": ..., "name": ...}} objects, as '
                         "iNaturalist's categories.json.")
    names: List[Optional[str]] = [None] * len(categories)
    for index, entry in enumerate(categories):
        valid = isinstance(entry, dict) and type(entry.get('id')) is int and isinstance(entry.get('name'), str)
        if not valid or not 0 <= entry['id'] < len(names) or names[entry['id']] is not None:
            raise ValueError(f'{path}, entry {index}: expected an object with a string "name" and an integer "id" '
                             f'in [0, {len(names)}) used once, got {entry!r:.200}.')
        names[entry['id']] = entry['name']
    return names


def inaturalist_row_order(categories_file: str, num_rows: int) -> torch.Tensor:
    """Where each lift_mm class sits in a classifier of LIFT or LIFT+, which number iNaturalist's classes in
    sorted order of their names, while lift_mm numbers them by category id.

    Args:
        categories_file (str): iNaturalist 2018's ``categories.json``.
        num_rows (int): Number of classes of the classifier, checked against the file.

    Returns:
        torch.Tensor: ``order`` such that row ``order[i]`` of the reference classifier is lift_mm's class ``i``.

    Raises:
        ValueError: If the file cannot be read, is malformed, repeats a name (the reference would merge those
            classes) or lists another number of classes than the classifier has.
    """
    names = _read_categories(categories_file)
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f'{categories_file}: the names {repeated[:5]} are repeated; LIFT and LIFT+ number the '
                         'distinct names, so their classes cannot be matched to category ids.')
    if len(names) != num_rows:
        raise ValueError(f'{categories_file} lists {len(names)} categories but the classifier has {num_rows} '
                         "rows: pass the categories.json of the dataset the checkpoint was trained on.")
    rank = {name: row for row, name in enumerate(sorted(names))}
    return torch.tensor([rank[name] for name in names])


def add_class_order_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say a checkpoint's class order: ``--inat-categories`` and ``--keep-class-order``."""
    parser.add_argument('--inat-categories', metavar='JSON',
                        help="iNaturalist 2018's categories.json: reorder the classifier's rows from the reference's "
                        'sorted-name order to lift_mm\'s category-id order (required for iNaturalist checkpoints)')
    parser.add_argument('--keep-class-order', action='store_true',
                        help=f'keep the rows as they are for a classifier of {INATURALIST_2018_CLASSES} classes that '
                        'is not an iNaturalist 2018 one')


def reorder_classes(state_dict: OrderedDict, categories_file: Optional[str] = None, keep_order: bool = False) -> None:
    """Put the head's rows into lift_mm's class order where the reference's differs (iNaturalist 2018).

    Args:
        state_dict (OrderedDict): The converted state dict, changed in place.
        categories_file (str, optional): iNaturalist 2018's ``categories.json`` if the checkpoint is of that
            dataset. Defaults to None.
        keep_order (bool): Keep the rows of a classifier of 8142 classes as they are, since it is not an
            iNaturalist 2018 one. Defaults to False.

    Raises:
        ValueError: For 8142 classes and neither a categories file nor ``keep_order``, and for a categories file
            that cannot be read or does not fit (see :func:`inaturalist_row_order`).
    """
    if 'head.weight' not in state_dict:
        # A head of text features (TextEncoderClsHead) has no rows: its classes are the config's class names.
        return
    num_rows = state_dict['head.weight'].shape[0]
    if categories_file is None:
        if num_rows == INATURALIST_2018_CLASSES and not keep_order:
            raise ValueError(
                f'the classifier has {num_rows} classes, as iNaturalist 2018, whose classes the reference numbers '
                "in sorted order of their names and lift_mm by category id: pass the dataset's categories.json "
                'with --inat-categories to reorder them (or --keep-class-order if it is another dataset).')
        return
    order = inaturalist_row_order(categories_file, num_rows)
    for key in HEAD_ROW_KEYS:
        if key in state_dict:
            state_dict[key] = state_dict[key][order]


def run_converter(convert: Converter, parser: argparse.ArgumentParser, source: str) -> None:
    """Read ``args.src``, convert it, put its classes in lift_mm's order and write ``args.dst``.

    Args:
        convert (Converter): The conversion of one reference's checkpoint.
        parser (argparse.ArgumentParser): The converter's parser; ``src``, ``dst`` and the class-order options
            are added here.
        source (str): What the checkpoint is, for the result's ``meta``.
    """
    parser.add_argument('src', help='the checkpoint.pth.tar to convert')
    parser.add_argument('dst', help='lift_mm checkpoint to write')
    add_class_order_arguments(parser)
    args = parser.parse_args()
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} does not exist')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    try:
        state_dict, light_modules = convert(checkpoint, args)
        reorder_classes(state_dict, args.inat_categories, args.keep_class_order)
    except (KeyError, ValueError) as error:
        sys.exit(f'error: {args.src}: {error.args[0]}')
    save_converted(state_dict, light_modules, args.dst, source)
    print(f'Wrote {len(state_dict)} tensors to {args.dst}.')
    print(f'Use a config with light_modules={light_modules}')


def save_converted(state_dict: OrderedDict, light_modules: Sequence[dict], path: str, source: str) -> None:
    """Write an MMEngine checkpoint that ``load_from``, ``tools/test.py`` and the inferencer accept."""
    meta = dict(converted_from=source, light_modules=list(light_modules))
    torch.save(dict(meta=meta, state_dict=state_dict), path)
