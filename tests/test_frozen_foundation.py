"""The frozen foundation's identity: out of reach of init_cfg, checked on save, kept in checkpoints when no file
rebuilds it, covering its activation, and sized for the dataset's classes."""
import logging.handlers
from types import SimpleNamespace

import open_clip
import pytest
import torch
from mmengine.logging import MMLogger
from mmpretrain.engine.hooks import ClassNumCheckHook
from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch

TINY_RN = dict(embed_dim=32, vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1], width=16, head_width=16),
               text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
SMALL_VIT = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=256), img_size=32,
                 patch_size=8)
# The classifier-level init_cfg of mmpretrain's DeiT / Swin / EVA configs, and an override naming the backbone.
MMPRETRAIN_INIT_CFG = [dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                       dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
                       dict(type='Constant', val=0., override=dict(name='backbone'))]


@pytest.fixture(scope='module')
def vit_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('vit') / 'vit.pth'
    torch.save(dict(state_dict=MODELS.build(dict(type='VisionTransformer', **SMALL_VIT)).state_dict()), path)
    return str(path)


def backbone_cfg(kind, clip_file, vit_file=None, num_classes=3):
    if kind == 'CLIPVisionTransformer':
        return dict(type=kind, arch=tiny_clip_arch(), pretrained=clip_file, num_classes=num_classes,
                    light_modules=[dict(type='AdaptFormer', bottleneck=4)]), 64
    if kind == 'CLIPResNet':
        return dict(type=kind, arch=dict(TINY_RN), pretrained=None, num_classes=num_classes,
                    light_modules=[dict(type='SSFOutput')]), 32
    init_cfg = dict(type='Pretrained', checkpoint=vit_file) if vit_file else None
    return dict(type=kind, **SMALL_VIT, init_cfg=init_cfg, num_classes=num_classes,
                light_modules=[dict(type='AdaptFormer', bottleneck=4)]), 64


def classifier(backbone, width, num_classes=3, **kwargs):
    return MODELS.build(dict(type='ImageClassifier', backbone=backbone,
                             data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=num_classes),
                             head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width), **kwargs))


@pytest.mark.parametrize('kind', ['CLIPVisionTransformer', 'CLIPResNet', 'LightVisionTransformer'])
def test_model_level_init_cfg_leaves_foundation_and_light_modules_alone(kind, clip_file):
    # LightVisionTransformer without pretrained weights: mmpretrain's own init_weights would redraw pos_embed.
    model = classifier(*backbone_cfg(kind, clip_file), init_cfg=MMPRETRAIN_INIT_CFG)
    frozen = {name: p.detach().clone() for name, p in model.backbone.named_parameters()}
    buffers = {name: b.clone() for name, b in model.backbone.named_buffers()}
    head = model.head.fc.weight.detach().clone()
    records = logging.handlers.BufferingHandler(capacity=10_000)
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(records)
    for name, param in model.backbone.named_parameters():
        torch.testing.assert_close(param.detach(), frozen[name], rtol=0, atol=0, msg=name)
    for name, buffer in model.backbone.named_buffers():
        torch.testing.assert_close(buffer, buffers[name], rtol=0, atol=0, msg=name)
    if kind != 'CLIPResNet':
        up_proj = [m.light_modules['AdaptFormer'].bottleneck.up_proj.weight for m in model.backbone.modules()
                   if hasattr(m, 'light_modules') and 'AdaptFormer' in m.light_modules]
        assert up_proj and all(not w.any() for w in up_proj)
    assert not torch.equal(model.head.fc.weight, head)  # the head does take the init_cfg
    skipped = [r.getMessage() for r in records.buffer if f'{kind} skips' in r.getMessage()]
    assert len(skipped) == 2 and 'TruncNormalInit' in skipped[0] and 'ConstantInit' in skipped[1], skipped
    model.state_dict()  # the foundation is unchanged, so saving passes its check


def test_frozen_weights_written_in_place_fail_the_save(clip_file):
    model = classifier(*backbone_cfg('CLIPVisionTransformer', clip_file))
    model.state_dict()
    with torch.no_grad():
        model.backbone.visual.transformer.resblocks[1].block.mlp.c_fc.weight.mul_(0.5)
    with pytest.raises(RuntimeError, match=r'frozen foundation weights of CLIPVisionTransformer changed after they '
                       r'were loaded \(1 tensors: transformer\.resblocks\.1\.mlp\.c_fc\.weight\)'):
        model.state_dict()


def test_random_light_vit_keeps_its_frozen_weights_in_the_checkpoint(clip_file):
    torch.manual_seed(1)
    trained = classifier(*backbone_cfg('LightVisionTransformer', clip_file)).eval()
    with torch.no_grad():
        for param in trained.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)
    state = trained.state_dict()
    assert 'backbone.pos_embed' in state and 'backbone.layers.0.block.attn.qkv.weight' in state
    torch.manual_seed(2)  # another process draws other random weights
    restored = classifier(*backbone_cfg('LightVisionTransformer', clip_file)).eval()
    assert not torch.equal(restored.backbone.pos_embed, trained.backbone.pos_embed)
    restored.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(restored(images, mode='tensor'), trained(images, mode='tensor'))
    torch.testing.assert_close(restored.backbone.foundation_fingerprint, trained.backbone.foundation_fingerprint)
    restored.state_dict()  # the loaded weights are now the reference of the save check


def test_frozen_weights_of_a_state_dict_without_fingerprint_become_the_foundation(clip_file, tmp_path):
    other_file = save_open_clip_checkpoint(make_tiny_clip(seed=9), tmp_path / 'other.pt')
    backbone, width = backbone_cfg('CLIPVisionTransformer', clip_file)
    full = classifier({**backbone, 'compact_state_dict': False}, width).state_dict()
    del full['backbone.foundation_fingerprint']
    model = classifier({**backbone, 'pretrained': other_file}, width)
    model.load_state_dict(full, strict=True)
    torch.testing.assert_close(model.backbone.foundation_fingerprint,
                               MODELS.build(backbone).foundation_fingerprint, rtol=0, atol=0)
    model.state_dict()  # the loaded weights are now the reference of the save check


def test_checkpoint_of_pretrained_light_vit_names_init_cfg_when_refused(clip_file, vit_file):
    state = classifier(*backbone_cfg('LightVisionTransformer', clip_file, vit_file)).state_dict()
    assert 'backbone.pos_embed' not in state
    random_foundation = classifier(*backbone_cfg('LightVisionTransformer', clip_file))
    with pytest.raises(RuntimeError, match=r'trained on foundation weights .*`model\.backbone\.init_cfg` differs.*'
                       r'`model\.backbone\.check_fingerprint=False`'):
        random_foundation.load_state_dict(state)


def test_activation_is_part_of_the_foundation_identity(clip_file):
    def build(quick_gelu):
        backbone, width = backbone_cfg('CLIPVisionTransformer', clip_file)
        return classifier({**backbone, 'quick_gelu': quick_gelu}, width)

    state = build(True).state_dict()
    exact = build(False)
    assert type(exact.backbone.visual.transformer.resblocks[0].block.mlp.gelu) is torch.nn.GELU
    with pytest.raises(RuntimeError, match=r'`model\.backbone\.pretrained` differs, or the activation or '
                       'architecture'):
        exact.load_state_dict(state)
    build(True).load_state_dict(state, strict=True)


def test_fingerprint_matches_the_encoder_as_loaded(clip_file):
    from lift_mm.models.utils import fingerprint
    visual = open_clip.CLIP(**tiny_clip_arch())
    open_clip.load_checkpoint(visual, clip_file)
    backbone = MODELS.build(backbone_cfg('CLIPVisionTransformer', clip_file)[0])
    torch.testing.assert_close(backbone.foundation_fingerprint, fingerprint(visual.visual.eval()))


@pytest.mark.parametrize('kind', ['CLIPVisionTransformer', 'CLIPResNet', 'LightVisionTransformer'])
def test_backbone_num_classes_is_checked_against_the_dataset(kind, clip_file):
    model = classifier(*backbone_cfg(kind, clip_file, num_classes=1000), num_classes=10)
    dataset = SimpleNamespace(CLASSES=tuple(f'class{i}' for i in range(10)))
    runner = SimpleNamespace(model=model, logger=MMLogger.get_current_instance(),
                             train_dataloader=SimpleNamespace(dataset=dataset),
                             test_dataloader=SimpleNamespace(dataset=dataset))
    for check in (ClassNumCheckHook().before_train, ClassNumCheckHook().before_test):
        with pytest.raises(AssertionError, match=rf'`num_classes` \(1000\) in {kind} of ImageClassifier does not '
                           'match'):
            check(runner)
    ClassNumCheckHook().before_train(SimpleNamespace(
        model=classifier(*backbone_cfg(kind, clip_file, num_classes=10), num_classes=10),
        train_dataloader=SimpleNamespace(dataset=dataset)))
