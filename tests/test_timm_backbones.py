"""TimmVisionTransformer and TimmResNet on tiny random timm models saved to files: timm's own features without
light modules, light modules against formulas, trained parameter sets, compact checkpoints, errors, and the head
initialisation from image features."""
import logging
import pickle
from fractions import Fraction
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import timm
import torch
from mmengine.logging import MMLogger
from mmpretrain.models.backbones.timm_backbone import print_timm_feature_info
from mmpretrain.registry import HOOKS, MODELS
from PIL import Image
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.engine.hooks.utils import per_class_indices
from lift_mm.models.peft import BatchNormTuning, SSFOutput
from lift_mm.models.peft.base import registered_light_modules
from demo_runs import demo_runner, one_thread

# A two-block ViT of timm's layout with LayerScale (random gammas below), 32 px images in 8 px patches.
VIT = dict(model_name='vit_tiny_patch16_224', img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2,
           init_values=0.1)
# A ResNet-50 layout with one bottleneck per stage and narrow channels (output width 4 * 32).
RESNET = dict(model_name='resnet50', layers=(1, 1, 1, 1), channels=(4, 8, 16, 32), stem_width=8)
STAGES = ['layer1', 'layer2', 'layer3', 'layer4']


def timm_model(cfg: dict, seed: int) -> torch.nn.Module:
    cfg = dict(cfg)
    torch.manual_seed(seed)
    model = timm.create_model(cfg.pop('model_name'), **cfg).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            # Random LayerScale and BatchNorm weights, so that a wrongly placed or skipped one shows.
            if name.endswith('gamma') or ('bn' in name and name.endswith('weight')):
                param.uniform_(0.5, 1.5)
    return model


@pytest.fixture(autouse=True)
def single_thread():
    # Tiny models run many times faster on one thread than on cores other processes share.
    with one_thread():
        yield


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('timm')
    models = dict(vit=timm_model(VIT, 0), resnet=timm_model(RESNET, 1))
    paths = {}
    for name, model in models.items():
        paths[name] = str(root / f'{name}.pth')
        torch.save(model.state_dict(), paths[name])
    return dict(paths=paths, models=models, root=root)


def build(files, kind, light_modules, **kwargs):
    cfg = VIT if kind == 'vit' else RESNET
    backbone_type = 'TimmVisionTransformer' if kind == 'vit' else 'TimmResNet'
    return MODELS.build(dict(type=backbone_type, pretrained=files['paths'][kind], light_modules=light_modules,
                             **cfg, **kwargs))


def timm_features(files, kind, images):
    model = files['models'][kind]
    with torch.no_grad():
        return model.forward_head(model.forward_features(images), pre_logits=True)


@pytest.mark.parametrize('kind', ['vit', 'resnet'])
def test_mmpretrains_class_number_check_passes_a_classifier_on_a_timm_backbone(files, kind):
    # The default runtime's ClassNumCheckHook reads ``num_classes`` of every module; timm's model without its
    # classifier records 0, which stopped every run of a timm config.
    classes = tuple(f'class_{index}' for index in range(5))
    backbone = dict(type='TimmResNet' if kind == 'resnet' else 'TimmVisionTransformer',
                    pretrained=files['paths'][kind], light_modules=[], **(VIT if kind == 'vit' else RESNET))
    model = MODELS.build(dict(type='ImageClassifier', backbone=backbone,
                              head=dict(type='LinearClsHead', num_classes=len(classes), in_channels=8),
                              data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=len(classes))))
    runner = SimpleNamespace(model=model)
    HOOKS.build(dict(type='ClassNumCheckHook'))._check_head(runner, SimpleNamespace(CLASSES=classes))
    with pytest.raises(AssertionError, match=r'`num_classes` \(5\) in ClsDataPreprocessor'):
        HOOKS.build(dict(type='ClassNumCheckHook'))._check_head(runner, SimpleNamespace(CLASSES=classes[:4]))


@pytest.mark.parametrize('kind', ['vit', 'resnet'])
def test_without_light_modules_the_output_is_timms_pre_logits_feature(files, kind):
    backbone = build(files, kind, []).train()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], timm_features(files, kind, images), rtol=1e-5, atol=1e-5)
    assert not any(param.requires_grad for param in backbone.parameters())


def test_adaptformer_in_a_timm_block_adds_its_scaled_bottleneck_to_the_mlp_branch(files):
    backbone = build(files, 'vit', [dict(type='AdaptFormer', bottleneck=4)])
    block = backbone.timm_model.blocks[0]
    adapter = block.light_modules['AdaptFormer']
    with torch.no_grad():
        for param in adapter.parameters():
            param.normal_()
    host = files['models']['vit'].blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        after_attn = x + host.ls1(host.attn(host.norm1(x)))
        mlp = adapter.bottleneck
        bottleneck = mlp.up_proj(F.relu(mlp.down_proj(F.layer_norm(after_attn, (32, ), mlp.ln.weight, mlp.ln.bias))))
        expected = after_attn + host.ls2(host.mlp(host.norm2(after_attn))) + adapter.scale * bottleneck
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


# Every kind but those of ResNets (a ViT has neither BatchNorms nor an output site).
@pytest.mark.parametrize('kind', [kind for kind in registered_light_modules()
                                  if not issubclass(MODELS.get(kind), (SSFOutput, BatchNormTuning))])
def test_every_light_module_trains_in_a_timm_vit(files, kind):
    backbone = build(files, 'vit', [kind], num_classes=16).train()
    trainable = [name for name, param in backbone.named_parameters() if param.requires_grad]
    backbone(torch.randn(2, 3, 32, 32))[0].square().sum().backward()
    assert trainable and all(param.grad is not None for param in backbone.parameters() if param.requires_grad)


def test_ssf_on_a_timm_resnet_scales_and_shifts_the_pooled_feature(files):
    backbone = build(files, 'resnet', ['SSFOutput']).eval()
    ssf = backbone.light_modules['SSFOutput'].ssf
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], timm_features(files, 'resnet', images) * ssf.scale + ssf.shift)


def test_vit_trains_its_light_modules_and_the_block_biases_only(files):
    backbone = build(files, 'vit', ['AdaptFormer', 'BitFit'], num_classes=16)
    trainable = {name for name, param in backbone.named_parameters() if param.requires_grad}
    # Each block of timm's `blocks` is wrapped, its weights under `block.`; LIFT+ trains the LayerNorm biases too.
    biases = {'timm_model.blocks.{}.block.{}'.format(*name[len('blocks.'):].split('.', 1))
              for name, _ in files['models']['vit'].named_parameters()
              if name.startswith('blocks.') and name.endswith('.bias')}
    adapters = {name for name, _ in backbone.named_parameters() if '.light_modules.AdaptFormer.' in name}
    assert biases and adapters and trainable == biases | adapters


@pytest.mark.parametrize('kind, within', [('BitFit', STAGES), ('FullFineTuning', STAGES), ('FullFineTuning', None),
                                          ('BatchNormTuning', ['layer4'])])
def test_resnet_host_tuning_trains_the_weights_within_the_named_stages(files, kind, within):
    backbone = build(files, 'resnet', [dict(type=kind, within=within)]).train()
    trainable = {name for name, param in backbone.named_parameters() if param.requires_grad}
    prefixes = tuple(f'timm_model.{stage}.' for stage in within) if within else ('timm_model.', )
    expected = set()
    # The backbone has no classifier (`fc`).
    for name, _ in files['models']['resnet'].named_parameters(prefix='timm_model'):
        if name.startswith('timm_model.fc.'):
            continue
        is_bn = '.bn' in name or 'downsample.1' in name or name.startswith('timm_model.bn1')
        if name.startswith(prefixes) and (kind == 'FullFineTuning' or (kind == 'BitFit' and name.endswith('bias'))
                                          or (kind == 'BatchNormTuning' and is_bn)):
            expected.add(name)
    assert expected and trainable == expected
    # LIFT+ leaves the stem frozen: it only trains with the whole encoder.
    assert ('timm_model.conv1.weight' in trainable) == (within is None)


def test_timm_resnet_default_is_lift_plus_bias_tuning_of_the_stages(files):
    backbone = MODELS.build(dict(type='TimmResNet', pretrained=files['paths']['resnet'], **RESNET))
    trainable = {name for name, param in backbone.named_parameters() if param.requires_grad}
    assert trainable and all(name.startswith(('timm_model.layer', )) and name.endswith('bias') for name in trainable)
    assert 'timm_model.bn1.bias' not in trainable


@pytest.mark.parametrize('kind, light_modules', [('vit', [dict(type='AdaptFormer', bottleneck=4), 'BitFit']),
                                                 ('resnet', ['SSFOutput', dict(type='BitFit', within=STAGES)])])
def test_compact_checkpoint_round_trips_and_refuses_other_weights(files, kind, light_modules):
    trained = build(files, kind, light_modules).eval()
    with torch.no_grad():
        for param in trained.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param))
    state = trained.state_dict()
    trainable = {name for name, param in trained.named_parameters() if param.requires_grad}
    frozen_params = {name for name, param in trained.named_parameters() if not param.requires_grad}
    assert 'foundation_fingerprint' in state and trainable <= set(state) and not frozen_params & set(state)
    restored = build(files, kind, light_modules).eval()
    restored.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(restored(images)[0], trained(images)[0])
    cfg = VIT if kind == 'vit' else RESNET
    backbone_type = 'TimmVisionTransformer' if kind == 'vit' else 'TimmResNet'
    random = MODELS.build(dict(type=backbone_type, pretrained=False, light_modules=light_modules, **cfg))
    with pytest.raises(RuntimeError, match='trained on foundation weights'):
        random.load_state_dict(state, strict=True)


def test_random_weights_are_the_same_in_every_build():
    first, second = (MODELS.build(dict(type='TimmResNet', pretrained=False, light_modules=[], **RESNET))
                     for _ in range(2))
    assert torch.equal(first.foundation_fingerprint, second.foundation_fingerprint)


def test_builds_leave_out_timms_feature_info_lines_only(files):
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        backbone = build(files, 'vit', [])
        built = [record.getMessage() for record in records]
        # Outside a build the same messages pass: the filter is scoped to the build.
        print_timm_feature_info(backbone.timm_model.feature_info)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert not [message for message in built if 'feature_info' in message], built
    after = [record.getMessage() for record in records[len(built):]]
    assert len(after) == len(backbone.timm_model.feature_info) and all('feature_info[' in m for m in after), after


def test_wrong_image_size_names_the_expected_one(files):
    with pytest.raises(ValueError, match=r'input images of size \(48, 48\), but timm.*built for \(32, 32\).*img_size'):
        build(files, 'vit', [])(torch.randn(1, 3, 48, 48))


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(qk_norm=True), ValueError, 'this block has q/k or attention-output normalisation'),
    (dict(global_pool='avg'), ValueError, 'no class token normalised by a final norm'),
    (dict(model_name='vit_nonexistent'), ValueError, r"'vit_nonexistent' is not a timm model"),
    (dict(pretrained='missing.pth'), FileNotFoundError, r"`pretrained`='missing.pth' is no file"),
    (dict(pretrained=None), TypeError, r'`pretrained`=None must be True'),
])
def test_bad_vit_configs_are_refused(kwargs, error, message):
    cfg = dict(type='TimmVisionTransformer', pretrained=False, light_modules=[], **VIT)
    with pytest.raises(error, match=message):
        MODELS.build({**cfg, **kwargs})


def test_missing_hub_weights_offline_name_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path))
    with pytest.raises(RuntimeError, match=r"could not obtain timm's pretrained weights of 'vit_tiny_patch16_224' "
                                           r'\(.*\)\. .*local checkpoint file.*HF_HUB_OFFLINE=1'):
        MODELS.build(dict(type='TimmVisionTransformer', pretrained=True, light_modules=[], **VIT))


def test_a_resnet_is_no_vision_transformer():
    with pytest.raises(ValueError, match="builds `model_name`='resnet50' as a ResNet, not a VisionTransformer"):
        MODELS.build(dict(type='TimmVisionTransformer', pretrained=False, light_modules=[], **RESNET))


def test_a_file_of_other_weights_is_refused(files):
    with pytest.raises(ValueError, match=r"holds no weights of timm's 'vit_tiny_patch16_224'"):
        MODELS.build(dict(type='TimmVisionTransformer', **{**VIT, 'pretrained': files['paths']['resnet']}))


def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = str(tmp_path / 'pickled.pth')
    torch.save(dict(state_dict={}, meta=Fraction(1, 2)), path)
    with pytest.raises(pickle.UnpicklingError, match=r"`pretrained`='.*pickled.pth' cannot be loaded safely"):
        MODELS.build(dict(type='TimmVisionTransformer', **{**VIT, 'pretrained': path}))


@pytest.mark.parametrize('light_modules, error, message', [
    ([dict(type='BitFit', within=['layer5'])], ValueError, r"`within` names \['layer5'\], which ResNet does not have"),
    ([dict(type='BitFit', within='layer1')], TypeError, r'`within`=.layer1. must be None'),
    (['AdaptFormer'], KeyError, "'AdaptFormer' is not supported on timm ResNets"),
])
def test_bad_resnet_options_are_refused(files, light_modules, error, message):
    with pytest.raises(error, match=message):
        build(files, 'resnet', light_modules)


def test_head_init_by_class_means_of_at_most_100_images_per_class(files):
    """HeadInitHook computes the features with a frozen copy of the timm backbone (light modules left out)."""
    root = files['root']
    backbone = dict(type='TimmVisionTransformer', pretrained=files['paths']['vit'], num_classes=10,
                    light_modules=[dict(type='AdaptFormer', bottleneck=4)], **VIT)

    def edit(cfg):
        cfg.model.backbone = backbone
        cfg.model.head.in_channels = 32

    runner = demo_runner('tests/configs/ablations/lift_demo_wo-text-init.py', root / 'init', root / 'data',
                         edit=edit)
    with torch.no_grad():
        for name, param in runner.model.backbone.named_parameters():
            if 'light_modules' in name:
                param.normal_()
    hook = HOOKS.build(dict(type='HeadInitHook', method='class_mean', shots=100, seed=0))
    hook.before_run(runner)
    hook.before_train(runner)

    lines = [line.split() for line in (root / 'data' / 'train.txt').read_text().splitlines()]
    labels = np.array([int(label) for _, label in lines])
    chosen = per_class_indices(labels, 100, 0)
    assert np.bincount(labels[chosen]).max() == 100 < np.bincount(labels).max()
    mean, std = runner.model.data_preprocessor.mean, runner.model.data_preprocessor.std
    images = torch.stack([torch.from_numpy(np.array(Image.open(root / 'data' / lines[i][0]).convert('RGB')))
                          for i in chosen]).permute(0, 3, 1, 2).float()
    features = timm_features(files, 'vit', (images - mean) / std)
    expected = F.normalize(torch.stack([features[labels[chosen] == k].mean(dim=0) for k in range(10)]), dim=-1)
    torch.testing.assert_close(runner.model.head.weight.detach(), expected, rtol=1e-4, atol=1e-5)
