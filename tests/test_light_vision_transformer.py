import pytest
import torch
from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401

SMALL_VIT = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=256), img_size=32,
                 patch_size=8)


@pytest.fixture(scope='module')
def vit_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='VisionTransformer', **SMALL_VIT))
    path = tmp_path_factory.mktemp('vit') / 'vit.pth'
    torch.save(dict(state_dict=vit.state_dict()), path)
    return str(path)


def build(vit_checkpoint, light_modules, **kwargs):
    return MODELS.build(dict(type='LightVisionTransformer', light_modules=light_modules, num_classes=8,
                             init_cfg=dict(type='Pretrained', checkpoint=vit_checkpoint), **SMALL_VIT,
                             **kwargs))


def plain_vit(vit_checkpoint):
    vit = MODELS.build(dict(type='VisionTransformer', init_cfg=dict(type='Pretrained', checkpoint=vit_checkpoint),
                            **SMALL_VIT))
    vit.init_weights()
    vit.eval()  # mmpretrain's VisionTransformer.train returns None
    return vit


def test_pretrained_weights_load_in_init_and_untrained_adapters_keep_the_output(vit_checkpoint):
    light = build(vit_checkpoint, [dict(type='AdaptFormer', bottleneck=4)]).train()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(light(images)[-1], plain_vit(vit_checkpoint)(images)[-1], rtol=1e-5, atol=1e-5)
    trainable = {name for name, p in light.named_parameters() if p.requires_grad}
    assert trainable and all('.light_modules.AdaptFormer.' in name for name in trainable)


def test_train_mode_reaches_backbone_and_light_modules_not_the_frozen_vit(vit_checkpoint):
    light = build(vit_checkpoint, [dict(type='AdaptFormer', bottleneck=4)])
    adapters = [layer.light_modules for layer in light.layers]
    foundation = [module for name, module in light.named_modules() if name and '.light_modules' not in name
                  and not name.endswith('light_modules')]
    assert light.train() is light
    assert light.training and all(m.training for a in adapters for m in a.modules())
    assert foundation and not any(module.training for module in foundation)
    light.eval()
    assert not any(module.training for module in light.modules())


def test_lora_reaches_the_fused_qkv_of_mmpretrain_attention(vit_checkpoint):
    light = build(vit_checkpoint, [dict(type='LoRA', bottleneck=2)])
    layer = light.layers[0]
    lora = layer.light_modules['LoRA']
    torch.nn.init.normal_(lora.q.lora_B)
    torch.nn.init.normal_(lora.v.lora_B)
    host = plain_vit(vit_checkpoint).layers[0]
    x = torch.randn(2, 17, 64)
    with torch.no_grad():
        h = host.ln1(x)
        delta_q = h @ lora.q.lora_A @ lora.q.lora_B / 2
        delta_v = h @ lora.v.lora_A @ lora.v.lora_B / 2
        qkv = host.attn.qkv(h) + torch.cat([delta_q, torch.zeros_like(delta_q), delta_v], dim=-1)
        q, k, v = (t.reshape(2, 17, 2, 32).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        attended = torch.softmax(q @ k.transpose(-1, -2) / 32**0.5, -1) @ v
        x_attn = x + host.attn.proj(attended.transpose(1, 2).reshape(2, 17, 64))
        expected = host.ffn(host.ln2(x_attn), identity=x_attn)
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('light_modules', [[dict(type='VPTDeep')], ['LoRA', 'VPTShallow']])
def test_vpt_with_feature_map_output_is_rejected(vit_checkpoint, light_modules):
    with pytest.raises(ValueError, match="out_type='cls_token' or 'raw'"):
        build(vit_checkpoint, light_modules, out_type='featmap')


def test_vpt_trains_and_class_token_output_keeps_shape(vit_checkpoint):
    light = build(vit_checkpoint, [dict(type='VPTDeep', length=4)])
    out = light(torch.randn(2, 3, 32, 32))[-1]
    assert out.shape == (2, 64)
    out.sum().backward()
    assert all(layer.light_modules['VPTDeep'].prompt.grad is not None for layer in light.layers)


def test_state_dict_is_compact_and_round_trips(vit_checkpoint):
    light = build(vit_checkpoint, [dict(type='AdaptFormer', bottleneck=4)])
    state = light.state_dict()
    assert 'foundation_fingerprint' in state and 'pos_embed' not in state
    assert all('light_modules' in k for k in state if k != 'foundation_fingerprint')
    build(vit_checkpoint, [dict(type='AdaptFormer', bottleneck=4)]).load_state_dict(state, strict=True)
