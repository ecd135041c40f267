"""Every TTE and ablation config loads and means what its name says; the demo ones build and train an epoch.

The paper's ablations are ImageNet-LT configs in configs/lift/ablations; each has a mirror on the offline demo in
tests/configs/ablations, so that each ablation move is trained here.
"""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmpretrain.registry import HOOKS, MODELS, TRANSFORMS

import lift_mm  # noqa: F401
from demo_runs import REPO, demo_runner, one_thread

ABLATIONS = sorted(str(path.relative_to(REPO)) for folder in ('configs/lift/ablations', 'tests/configs/ablations')
                   for path in (REPO / folder).glob('*.py'))
TTE_CONFIGS = ['configs/lift/lift_demo_tte.py', 'configs/lift/lift_vitb16_imagenet-lt_tte.py']
CONFIGS = TTE_CONFIGS + ABLATIONS
DEMO_CONFIGS = [config for config in CONFIGS if 'lift_demo' in config]


def hook_types(cfg):
    return [hook['type'] for hook in cfg.custom_hooks]


def head_init(cfg):
    hooks = [hook for hook in cfg.custom_hooks if hook['type'] == 'HeadInitHook']
    return hooks[0] if hooks else None


LOSSES = dict(ce='CrossEntropyLoss', bs='BalancedSoftmaxLoss', focal='SoftmaxFocalLoss',
              ldam='LDAMLoss', cb='ClassBalancedLoss', grw='GeneralizedReweightLoss', lade='LADELoss')
HEADS = {'linear': 'LIFTLinearClsHead', 'l2-normed': 'L2NormedClsHead', 'layer-normed': 'LayerNormedClsHead'}
# What each variant (the part of the name after the dataset) changes with respect to full LIFT.
VARIANTS = {
    'tte': lambda cfg: cfg.model.head.text_init is not None and cfg.model.head.loss.type == 'LogitAdjustedLoss',
    'classifier-only': lambda cfg: cfg.model.backbone.light_modules == [],
    'full-ft': lambda cfg: [m['type'] for m in cfg.model.backbone.light_modules] == ['FullFineTuning'],
    'wo-text-init': lambda cfg: cfg.model.head.text_init is None and head_init(cfg) is None,
    'init-class-mean': lambda cfg: cfg.model.head.text_init is None and head_init(cfg).get('shots') is None,
    'init-linear-probe': lambda cfg: head_init(cfg)['method'] == 'linear_probe',
    'prompt-classname': lambda cfg: cfg.model.head.text_init.prompt == 'classname',
    'prompt-ensemble': lambda cfg: cfg.model.head.text_init.prompt == 'ensemble',
    'prompt-descriptor': lambda cfg: cfg.model.head.text_init.prompt == 'descriptor',
    **{f'init-{n}-shot': (lambda n: lambda cfg: head_init(cfg)['shots'] == n)(n) for n in (1, 10, 100)},
    **{f'loss-{key}': (lambda t: lambda cfg: cfg.model.head.loss.type == t)(t) for key, t in LOSSES.items()},
    **{f'head-{key}': (lambda t: lambda cfg: cfg.model.head.type == t and 'scale' not in cfg.model.head)(t)
       for key, t in HEADS.items()},
}


def variant(config):
    stem = Path(config).stem
    return stem.split('imagenet-lt_')[-1] if 'imagenet-lt' in stem else stem[len('lift_demo_'):]


def test_every_ablation_row_exists_for_both_datasets():
    demo = {variant(config) for config in ABLATIONS if 'lift_demo' in config}
    imagenet = {variant(config) for config in ABLATIONS if 'imagenet-lt' in config}
    assert demo == imagenet == set(VARIANTS) - {'tte'}


@pytest.mark.parametrize('config', ['configs/lift/lift_demo.py', 'configs/lift/lift_vitb16_imagenet-lt.py'])
def test_the_without_tte_ablation_is_the_base_config(config):
    cfg = Config.fromfile(str(REPO / config))
    assert 'TestTimeEnsembleHook' not in hook_types(cfg) and 'tta_pipeline' not in cfg


@pytest.mark.parametrize('config', CONFIGS)
def test_config_loads_and_changes_what_its_name_says(config):
    cfg = Config.fromfile(str(REPO / config))
    assert VARIANTS[variant(config)](cfg), config
    # Every ablation is tested as the paper reports LIFT: with test-time ensembling.
    assert 'TestTimeEnsembleHook' in hook_types(cfg)
    assert 'ClassCountsHook' in hook_types(cfg)
    for hook in cfg.custom_hooks:
        if hook['type'] in ('TestTimeEnsembleHook', 'HeadInitHook'):
            HOOKS.build(hook)
    assert cfg.tta_model.type == 'AverageLogitsTTA'
    crop = TRANSFORMS.build(cfg.tta_pipeline[-1])
    assert crop.mode == 'five_crop' and crop.crop_size == (224 if 'imagenet' in config else 32)
    if 'imagenet' in config:
        assert cfg.model.backbone.arch == 'ViT-B-16' and cfg.model.head.num_classes == 1000
        assert cfg.model.head.classnames == 'data/imagenet-lt/classnames.txt'
    else:
        model = MODELS.build(cfg.model)
        model.init_weights()
        assert model.head.weight.shape == (10, 64)


@pytest.mark.slow
@pytest.mark.parametrize('config', DEMO_CONFIGS)
def test_demo_config_trains_an_epoch(config, tmp_path_factory):
    data = tmp_path_factory.getbasetemp() / 'ablation_data'
    work_dir = tmp_path_factory.mktemp('ablation')
    with one_thread():
        demo_runner(config, work_dir, data, {'train_cfg.max_epochs': 1}).train()
    assert (work_dir / 'epoch_1.pth').is_file()
