"""Every LIFT config loads, agrees with itself on the number of classes, and builds its model."""
import ast
import copy
import functools
import json

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401
from lift_mm.models.classifiers import CLIPImageClassifier, FeatureClassifier
from lift_mm.models.heads.class_weight_head import CLIP_KEYS
from demo_runs import REPO

CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)


@functools.lru_cache(maxsize=None)
def _parse(path):
    return Config.fromfile(str(REPO / path))


def load(path):
    """The parsed config; a copy, so that tests may change it."""
    return copy.deepcopy(_parse(path))


@pytest.mark.parametrize('path', CONFIGS)
def test_config_is_consistent(path):
    cfg = load(path)
    head, backbone = cfg.model.head, cfg.model.backbone
    assert cfg.custom_imports.imports == ['lift_mm']
    assert head.num_classes == cfg.data_preprocessor.num_classes, 'head and data preprocessor disagree'
    if backbone.get('num_classes') is not None:
        assert backbone.num_classes == head.num_classes, 'backbone (auto sizes) and head disagree'
    if head.get('text_init') and backbone.type in ('CLIPVisionTransformer', 'CLIPResNet'):
        # One place for the CLIP: the head takes the backbone's, which only a CLIPImageClassifier lends it.
        assert MODELS.get(cfg.model.type) in (CLIPImageClassifier, FeatureClassifier), cfg.model.type
        assert not set(CLIP_KEYS) & set(head.text_init), 'the head must take its text features from the backbone'


def without_weights(cfg):
    """The config's model with nothing to download: the architecture is what is checked, not weights or data."""
    for part in (cfg.model.backbone, cfg.model.head.get('text_init') or {}):
        if 'pretrained' in part:
            # timm backbones take True / False for timm's weights / random ones, open_clip ones a tag or None.
            part.pretrained = False if isinstance(part.pretrained, bool) else None
    cfg.model.backbone.pop('init_cfg', None)
    if cfg.model.head.type == 'ZeroShotClsHead':
        # Zero-shot heads encode their prompts when built: a few classes stand in for the datasets' (absent) files.
        cfg.model.head.update(num_classes=3, classnames=['a', 'b', 'c'])
        cfg.model.head.text_init.prompt = 'default'
    return cfg.model


# Keys that only choose sizes (open_clip architecture, timm model name, the class count of 'auto' sizes): the same
# code builds every size, and a ViT-L takes ~15 s to build on a CPU.
SIZE_KEYS = ('arch', 'model_name', 'num_classes')


def build_key(backbone: dict) -> str:
    """The backbone config without its sizes: light modules keep their kinds and options, not their numbers
    (ratios, widths, lengths), which the same code builds."""
    backbone = {key: value for key, value in backbone.items() if key not in SIZE_KEYS}
    backbone['light_modules'] = [
        {key: value for key, value in entry.items() if not isinstance(value, (int, float))}
        if isinstance(entry, dict) else entry for entry in backbone.get('light_modules', ())
    ]
    return json.dumps(backbone, sort_keys=True, default=str)


def distinct_backbones(paths):
    """One config per distinct backbone up to its size: building a ViT-B/16 is the slow part, and most variants
    share it. Configs under a ``backbones/`` folder (other sizes of the same encoders) come last, so that a smaller
    config represents them where one exists."""
    seen = {}
    for path in sorted(paths, key=lambda path: ('/backbones/' in path, path)):
        seen.setdefault(build_key(load(path).model.backbone.to_dict()), path)
    return sorted(seen.values())


@pytest.mark.slow
@pytest.mark.parametrize('path', distinct_backbones(CONFIGS))
def test_config_builds_its_model(path):
    model = MODELS.build(without_weights(load(path)))
    assert any(p.requires_grad for p in model.parameters()) or model.head.__class__.__name__ == 'ZeroShotClsHead'


def full_config_bases(path):
    """The repository paths of the complete configs (not the parts under ``_base_/``) that ``path`` inherits."""
    for node in ast.parse((REPO / path).read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == '_base_':
            bases = [(REPO / path).parent / base for base in ast.literal_eval(node.value)]
            return [str(base.resolve().relative_to(REPO)) for base in bases if '_base_' not in base.parts]
    return []


@pytest.mark.parametrize('path', CONFIGS)
def test_config_changes_what_it_inherits(path):
    # A config equal to its base is a second name for the same run: users should find one name per run.
    for base in full_config_bases(path):
        assert load(path).to_dict() != load(base).to_dict(), f'{path} only restates {base}: use {base} instead'


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_its_head_and_loss(path):
    head_cfg = without_weights(load(path)).head
    head = MODELS.build(copy.deepcopy(head_cfg))
    assert type(head) is MODELS.get(head_cfg.type)
    assert head.num_classes == head_cfg.num_classes
    loss_cfg = head_cfg.get('loss', dict(type='CrossEntropyLoss'))
    assert type(head.loss_module) is MODELS.get(loss_cfg['type'])
    # Every loss setting the config gives reaches the built loss.
    for key, value in loss_cfg.items():
        if key != 'type' and not isinstance(getattr(head.loss_module, key, None), torch.Tensor):
            assert getattr(head.loss_module, key) == value, key


def test_recipe_of_the_paper():
    cfg = load('configs/lift/lift_vitb16_imagenet-lt.py')
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)
    assert cfg.train_cfg.max_epochs == 10 and cfg.train_dataloader.batch_size == 128
    assert cfg.auto_scale_lr.base_batch_size == 128
    assert cfg.param_scheduler.type == 'CosineAnnealingLR' and cfg.param_scheduler.by_epoch
    assert cfg.model.head.scale == 25 and cfg.model.head.loss.type == 'LogitAdjustedLoss'
    assert cfg.model.backbone.light_modules == [dict(type='AdaptFormer', bottleneck='auto')]
    assert load('configs/lift/lift_vitb16_inat2018.py').train_cfg.max_epochs == 20
