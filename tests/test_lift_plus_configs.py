"""The LIFT+ configs say what LIFT+'s code does (facts read from shijxcs/LIFT-plus: utils/config.py, trainer.py,
scripts/*.sh), and each ablation changes what its name says."""
import functools
from pathlib import Path

import pytest
from mmengine.config import Config

import lift_mm  # noqa: F401
from demo_runs import REPO

FOLDER = REPO / 'configs' / 'lift_plus'
CONFIGS = sorted(str(path.relative_to(REPO)) for path in FOLDER.rglob('*.py'))
MAIN = 'configs/lift_plus/lift-plus_vitb16_imagenet-lt.py'
ABLATION = 'configs/lift_plus/ablations/lift-plus_vitb16_imagenet-lt_{}.py'
BACKBONES = 'configs/lift_plus/backbones/lift-plus_{}.py'
RESIZES = ('RandomResizedCrop', 'MinimalistRandomCrop', 'ResizeEdge', 'Resize', 'MultiViewCrop')


@functools.lru_cache(maxsize=None)
def load(path: str) -> Config:
    return Config.fromfile(str(REPO / path))


def pipelines(cfg):
    """Every pipeline of the config by name: the loaders', TTE's and HeadInitHook's."""
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    found = {loader: cfg[loader].dataset.pipeline for loader in loaders}
    if 'tta_pipeline' in cfg:
        found['tta_pipeline'] = cfg.tta_pipeline
    for hook in cfg.custom_hooks:
        if hook['type'] == 'HeadInitHook':
            found['HeadInitHook'] = hook['pipeline']
    return found


def step(pipeline, kind):
    steps = [s for s in pipeline if s['type'] == kind]
    assert len(steps) == 1, (kind, pipeline)
    return steps[0]


def hook_types(cfg):
    return [hook['type'] for hook in cfg.custom_hooks]


def test_the_recipe_is_lift_plus():
    cfg = load(MAIN)
    # utils/config.py: lr 0.02, weight decay 5e-4, momentum 0.9, batch 128, 5 epochs; trainer.py: torch's SGD and
    # CosineAnnealingLR(T_max=num_epochs) stepped once per epoch, no warm-up.
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4)
    assert cfg.param_scheduler == dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=5, T_max=5)
    assert cfg.train_cfg.max_epochs == 5 and cfg.train_dataloader.batch_size == 128
    assert cfg.model.head.type == 'CosineClsHead' and cfg.model.head.scale == 25
    assert cfg.model.head.loss.type == 'LogitAdjustedLoss' and cfg.model.head.text_init is not None
    adaptformer = dict(type='AdaptFormer', bottleneck='auto', down_init='kaiming_uniform')
    assert cfg.model.backbone.light_modules == [adaptformer]
    assert step(cfg.train_dataloader.dataset.pipeline, 'MinimalistRandomCrop')['schedule'] == 'convex'
    # scripts/run_main.sh: 15 epochs on iNaturalist 2018 at the same learning rate.
    inat = load('configs/lift_plus/lift-plus_vitb16_inat2018.py')
    assert (inat.train_cfg.max_epochs, inat.param_scheduler.T_max, inat.optim_wrapper.optimizer.lr) == (15, 15, 0.02)


@pytest.mark.parametrize('path', CONFIGS)
def test_every_resize_is_bicubic_at_lift_plus_sizes(path):
    cfg = load(path)
    for name, pipeline in pipelines(cfg).items():
        for resize in (s for s in pipeline if s['type'] in RESIZES):
            # MinimalistRandomCrop resizes bicubic by default.
            assert resize.get('interpolation', 'bicubic') == 'bicubic', (name, resize)
    size = step(cfg.test_dataloader.dataset.pipeline, 'CenterCrop')['crop_size']
    # trainer.py: test resize to resolution + resolution // 7, TTE to resolution + 24, head init to resolution.
    assert step(cfg.test_dataloader.dataset.pipeline, 'ResizeEdge')['scale'] == size + size // 7
    assert cfg.val_dataloader.dataset.pipeline == cfg.test_dataloader.dataset.pipeline
    assert step(cfg.train_dataloader.dataset.pipeline, 'MinimalistRandomCrop' if 'wo-mda' not in path and
                'classifier-only' not in path else 'RandomResizedCrop')['scale'] == size
    if 'tta_pipeline' in cfg:
        assert step(cfg.tta_pipeline, 'MultiViewCrop')['short_edge'] == size + 24
        assert step(cfg.tta_pipeline, 'MultiViewCrop')['crop_size'] == size
    if 'HeadInitHook' in hook_types(cfg):
        assert step(pipelines(cfg)['HeadInitHook'], 'ResizeEdge')['scale'] == size
    expected = 32 if 'demo' in path else 336 if '336' in path else 384 if '384' in path else 224
    assert size == expected


@pytest.mark.parametrize('path', CONFIGS)
def test_mda_and_its_hook_come_together_and_tte_has_its_hook(path):
    cfg = load(path)
    has_mda = any(s['type'] == 'MinimalistRandomCrop' for s in cfg.train_dataloader.dataset.pipeline)
    assert has_mda == ('AugmentationScheduleHook' in hook_types(cfg))
    assert has_mda != any(s['type'] == 'RandomFlip' for s in cfg.train_dataloader.dataset.pipeline)
    assert ('TestTimeEnsembleHook' in hook_types(cfg)) == ('tta_pipeline' in cfg)
    if Path(path).stem.endswith('_tte'):
        assert 'TestTimeEnsembleHook' in hook_types(cfg)
    for module in cfg.model.backbone.light_modules:
        if module['type'] == 'AdaptFormer':
            assert module['down_init'] == 'kaiming_uniform'


@pytest.mark.parametrize('name,loader_batch,steps', [('vitl14_imagenet-lt', 32, 4), ('vitl14_places-lt', 32, 4),
                                                     ('vitl14_inat2018', 32, 4), ('vitl14-336_inat2018', 16, 8)])
def test_vit_l_accumulates_to_a_batch_of_128(name, loader_batch, steps):
    # scripts/run_backbones.sh: accum_step 4 (ViT-L/14), 8 (ViT-L/14@336px) of micro-batches 128 / accum_step.
    cfg = load(BACKBONES.format(name))
    assert (cfg.train_dataloader.batch_size, cfg.optim_wrapper.accumulative_counts) == (loader_batch, steps)
    assert loader_batch * steps == 128
    # MMEngine's --auto-scale-lr divides the loader batch (not the accumulated one) by the base batch.
    assert cfg.auto_scale_lr.base_batch_size == loader_batch
    assert cfg.model.head.in_channels == 1024
    assert cfg.model.backbone.arch == ('ViT-L-14-336' if '336' in name else 'ViT-L-14')


# scripts/run_ablation.sh climbs the same five steps with -d imagenet_lt and with -d places_lt.
@pytest.mark.parametrize('dataset,dataset_type,num_classes', [('imagenet-lt', 'ImageNetLT', 1000),
                                                              ('places-lt', 'PlacesLT', 365)])
def test_ablation_ladder_of_run_ablation_sh(dataset, dataset_type, num_classes):
    main = MAIN.replace('imagenet-lt', dataset)
    ladder = [load(ABLATION.replace('imagenet-lt', dataset).format(n))
              for n in ('classifier-only-random-init', 'wo-mda-wo-semantic-init', 'wo-mda')]
    ladder += [load(main), load(main.replace('.py', '_tte.py'))]
    mda = [any(s['type'] == 'MinimalistRandomCrop' for s in cfg.train_dataloader.dataset.pipeline) for cfg in ladder]
    assert mda == [False, False, False, True, True]
    assert [bool(cfg.model.backbone.light_modules) for cfg in ladder] == [False] + [True] * 4
    assert [cfg.model.head.text_init is not None for cfg in ladder] == [False] * 2 + [True] * 3
    assert ['tta_pipeline' in cfg for cfg in ladder] == [False] * 4 + [True]
    for cfg in ladder:
        assert (cfg.model.head.num_classes, cfg.data_preprocessor.num_classes) == (num_classes, num_classes)
        assert {cfg[loader].dataset.type for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
                } == {dataset_type}
    for cfg in ladder[:3]:
        assert cfg.optim_wrapper.optimizer.lr == 0.02 and cfg.train_cfg.max_epochs == 5
        # trainer.py with mda False: RandomResizedCrop(resolution, bicubic) at torchvision's default area and aspect
        # ranges, then RandomHorizontalFlip().
        pipeline = cfg.train_dataloader.dataset.pipeline
        assert [s['type'] for s in pipeline] == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs']
        assert step(pipeline, 'RandomResizedCrop') == dict(
            type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic')
        assert step(pipeline, 'RandomFlip') == dict(type='RandomFlip', prob=0.5, direction='horizontal')
    # Step 3 is step 4 with that transform in place of MDA, and so without MDA's schedule hook.
    three, four = (cfg.to_dict() for cfg in ladder[2:4])
    three.pop('train_pipeline_wo_mda')
    three['train_dataloader']['dataset'].pop('pipeline')
    four['train_dataloader']['dataset'].pop('pipeline')
    four['custom_hooks'].remove(dict(type='AugmentationScheduleHook'))
    assert three == four


@pytest.mark.parametrize('schedule', ['min', 'linear', 'concave', 'max'])
def test_mda_schedule_ablations(schedule):
    cfg = load(ABLATION.format(f'mda-{schedule}'))
    assert step(cfg.train_dataloader.dataset.pipeline, 'MinimalistRandomCrop')['schedule'] == schedule
    tte = load(MAIN.replace('.py', '_tte.py'))
    assert {k: v for k, v in cfg.to_dict().items() if k != 'train_dataloader'} == {
        k: v for k, v in tte.to_dict().items() if k != 'train_dataloader'}


# scripts/run_epochs.sh, the LIFT+ runs on ImageNet-LT.
@pytest.mark.parametrize('epochs,lr', [(10, 0.01), (15, 0.0066), (20, 0.005), (25, 0.004), (30, 0.0033)])
def test_epoch_ablations(epochs, lr):
    cfg = load(ABLATION.format(f'{epochs}e'))
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert (cfg.train_cfg.max_epochs, cfg.param_scheduler.end, cfg.param_scheduler.T_max) == (epochs, ) * 3
    assert 'TestTimeEnsembleHook' in hook_types(cfg)


@pytest.mark.parametrize('ratio', [100, 50, 10])
def test_cifar_groups_by_its_own_ratio(ratio):
    for suffix in ('', '_tte'):
        cfg = load(f'configs/lift_plus/lift-plus_vitb16_cifar100-lt-r{ratio}{suffix}.py')
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            dataset = cfg[loader].dataset
            assert (dataset.type, dataset.imbalance_ratio, dataset.group_ratio) == ('CIFAR100LT', ratio, None)
            # In-memory images: no file to load.
            assert all(s['type'] != 'LoadImageFromFile' for s in dataset.pipeline)
        if suffix:
            assert [s['type'] for s in cfg.tta_pipeline] == ['MultiViewCrop']


@pytest.mark.parametrize('name,model_name,width,size', [
    ('vit-b16-in21k', 'vit_base_patch16_224', 768, 224), ('vit-b16-in21k-384', 'vit_base_patch16_384', 768, 384),
    ('vit-l16-in21k', 'vit_large_patch16_224', 1024, 224), ('vit-l16-in21k-384', 'vit_large_patch16_384', 1024, 384),
    *((f'resnet{d}_{kind}', f'resnet{d}', 2048, 224) for d in (50, 101, 152) for kind in ('bitfit', 'ssf', 'full'))
])
def test_timm_backbones_start_from_class_means(name, model_name, width, size):
    cfg = load(BACKBONES.format(f'{name}_imagenet-lt'))
    backbone = cfg.model.backbone
    assert (backbone.model_name, backbone.pretrained, cfg.model.head.in_channels) == (model_name, True, width)
    assert backbone.type == ('TimmResNet' if 'resnet' in name else 'TimmVisionTransformer')
    # No text tower: trainer.py initialises the classifier from class means of at most 100 images per class
    # (DownSampler(n_max=100)) of the plain transform (resize, centre crop).
    assert cfg.model.head.text_init is None
    init, = [hook for hook in cfg.custom_hooks if hook['type'] == 'HeadInitHook']
    assert (init['method'], init['shots']) == ('class_mean', 100)
    assert step(init['pipeline'], 'CenterCrop')['crop_size'] == size
    # configs/backbone/in21k_*.yaml: mean = std = 0.5; in1k_*.yaml: ImageNet's.
    mean = [123.675, 116.28, 103.53] if 'resnet' in name else [127.5] * 3
    assert cfg.data_preprocessor.mean == mean
    if 'resnet' in name:
        kind = dict(bitfit='BitFit', ssf='SSFOutput', full='FullFineTuning')[name.split('_')[1]]
        module, = backbone.light_modules
        assert module['type'] == kind
        if kind != 'SSFOutput':
            assert module['within'] == ['layer1', 'layer2', 'layer3', 'layer4']
