import pytest
import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.models.peft import AdaptFormer
from lift_mm.models.peft.base import BlockContext, auto_bottleneck
from lift_mm.models.utils import build_open_clip
from tiny_clip import tiny_clip_arch


def build_backbone(clip_file, **kwargs):
    cfg = dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file, num_classes=10)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def randomise_light_modules(backbone):
    torch.manual_seed(7)
    for name, param in backbone.named_parameters():
        if param.requires_grad:
            param.data.normal_(std=0.2)


def test_untrained_model_equals_frozen_clip(clip_file):
    backbone = build_backbone(clip_file).eval()
    reference = build_open_clip(tiny_clip_arch(), clip_file).visual
    reference.proj = None  # the pre-projection class-token feature, as LIFT uses it
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], reference(images), rtol=1e-5, atol=1e-5)


def test_adaptformer_block_matches_formula(clip_file):
    backbone = build_backbone(clip_file).eval()
    randomise_light_modules(backbone)
    tunable = backbone.visual.transformer.resblocks[0]
    host, adapter = tunable.block, tunable.light_modules['AdaptFormer'].bottleneck
    x = torch.randn(2, 17, 64)
    with torch.no_grad():
        # h: the residual stream entering the MLP branch, from open_clip's own attention path.
        h = x + host.ls_1(host.attention(q_x=host.ln_1(x)))
        mlp = host.mlp(host.ln_2(h))
        hidden = F.relu(F.layer_norm(h, (64, ), adapter.ln.weight, adapter.ln.bias) @ adapter.down_proj.weight.T
                        + adapter.down_proj.bias)
        scale = tunable.light_modules['AdaptFormer'].scale
        expected = h + mlp + scale * (hidden @ adapter.up_proj.weight.T + adapter.up_proj.bias)
        torch.testing.assert_close(tunable(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('num_classes, num_layers, expected', [
    (1000, 12, 32), (100, 12, 4), (365, 12, 8), (8142, 12, 256), (1000, 24, 16), (3, 12, 1)])
def test_auto_bottleneck_follows_lift_rule(num_classes, num_layers, expected):
    context = BlockContext(embed_dims=768, mlp_dims=3072, num_heads=12, num_layers=num_layers, block_index=0,
                           num_tokens=197, patch_size=(16, 16), num_classes=num_classes)
    assert auto_bottleneck(context) == expected


def test_vit_b16_imagenet_lt_trainable_parameters():
    backbone = MODELS.build(dict(type='CLIPVisionTransformer', arch='ViT-B-16', pretrained=None, num_classes=1000))
    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    assert trainable == 617_868
    adapters = [m for m in backbone.modules() if isinstance(m, AdaptFormer)]
    assert len(adapters) == 12 and all(a.bottleneck.down_proj.out_features == 32 for a in adapters)


def test_only_light_modules_train_and_frozen_encoder_stays_in_eval(clip_file):
    backbone = build_backbone(clip_file)
    randomise_light_modules(backbone)
    backbone.train()
    assert not backbone.visual.training
    assert all(block.light_modules.training for block in backbone.visual.transformer.resblocks)
    backbone(torch.randn(2, 3, 32, 32))[0].sum().backward()
    for name, param in backbone.named_parameters():
        assert param.requires_grad == ('light_modules' in name), name
        assert (param.grad is not None) == param.requires_grad, name


def test_activation_checkpointing_gives_same_outputs_and_gradients(clip_file):
    plain, checkpointed = build_backbone(clip_file), build_backbone(clip_file, with_cp=True)
    randomise_light_modules(plain)
    randomise_light_modules(checkpointed)
    images = torch.randn(2, 3, 32, 32)
    out_plain, out_cp = plain(images)[0], checkpointed(images)[0]
    torch.testing.assert_close(out_cp, out_plain)
    out_plain.square().sum().backward()
    out_cp.square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        if a.requires_grad:
            torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_wrong_input_size_names_expected_size(clip_file):
    with pytest.raises(ValueError, match=r'built for \(32, 32\)'):
        build_backbone(clip_file)(torch.randn(1, 3, 48, 48))


@pytest.mark.parametrize('light_modules, error, message', [
    ([dict(type='NoSuchAdapter')], KeyError, "Unknown light module type 'NoSuchAdapter'.*AdaptFormer"),
    ([dict(type='AdaptFormer', bottleneck=65)], ValueError, r'bottleneck.*\[1, 64\]'),
    ([dict(type='AdaptFormer', blocks=3)], ValueError, 'between 1 and 2'),
    ([dict(type='AdaptFormer', blocks=[1, 5])], ValueError, r'0 <= start < end <= 2'),
    ([dict(type='AdaptFormer'), dict(type='AdaptFormer')], ValueError, 'already in this block'),
])
def test_bad_light_module_config_fails_at_build(clip_file, light_modules, error, message):
    with pytest.raises(error, match=message):
        build_backbone(clip_file, light_modules=light_modules)


def test_light_modules_restricted_to_block_range(clip_file):
    backbone = build_backbone(clip_file, light_modules=[dict(type='AdaptFormer', bottleneck=4, blocks=1)])
    has_adapter = [len(block.light_modules) > 0 for block in backbone.visual.transformer.resblocks]
    assert has_adapter == [False, True]


def test_auto_bottleneck_without_num_classes_is_explained(clip_file):
    with pytest.raises(ValueError, match='set `num_classes` on the backbone'):
        build_backbone(clip_file, num_classes=None)
