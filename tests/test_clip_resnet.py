import open_clip
import pytest
import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from tiny_clip import save_open_clip_checkpoint

TINY_RN = dict(embed_dim=32, vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=16),
               text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))


@pytest.fixture(scope='module')
def rn_file(tmp_path_factory):
    torch.manual_seed(6)
    model = open_clip.CLIP(**TINY_RN).eval()
    return save_open_clip_checkpoint(model, tmp_path_factory.mktemp('rn') / 'rn.pt'), model


def build(rn_file, kinds):
    return MODELS.build(dict(type='CLIPResNet', arch=dict(TINY_RN), pretrained=rn_file[0],
                             light_modules=[dict(type=k) for k in kinds]))


def test_bias_tuning_trains_every_bias_and_keeps_the_clip_output(rn_file):
    backbone = build(rn_file, ['BitFit']).train()
    for name, param in backbone.visual.named_parameters():
        assert param.requires_grad == name.endswith('bias'), name
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], rn_file[1].visual(images))


def test_batchnorm_tuning_updates_running_statistics_in_training_only(rn_file):
    backbone = build(rn_file, ['BatchNormTuning']).train()
    norms = [m for m in backbone.visual.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.training for m in norms) and not backbone.visual.attnpool.training
    trainable = {id(p) for p in backbone.parameters() if p.requires_grad}
    assert trainable == {id(p) for m in norms for p in m.parameters()}
    before = norms[0].running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))
    assert not torch.equal(norms[0].running_mean, before)
    backbone.eval()
    frozen = norms[0].running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))
    assert torch.equal(norms[0].running_mean, frozen)
    state = backbone.state_dict()
    assert any(key.endswith('bn1.running_mean') for key in state)
    build(rn_file, ['BatchNormTuning']).load_state_dict(state, strict=True)


def test_ssf_scales_and_shifts_the_pooled_feature(rn_file):
    backbone = build(rn_file, ['SSFOutput']).eval()
    ssf = backbone.light_modules['SSFOutput'].ssf
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], rn_file[1].visual(images) * ssf.scale + ssf.shift)


def test_options_given_by_name_and_keys_they_do_not_take(rn_file):
    backbone = MODELS.build(dict(type='CLIPResNet', arch=dict(TINY_RN), pretrained=rn_file[0],
                                 light_modules=['SSFOutput', dict(type='BitFit')]))
    assert list(backbone.light_modules) == ['SSFOutput', 'BitFit']
    with pytest.raises(TypeError,
                       match=r"BitFit in `light_modules` does not take \['blocks'\]; it takes \['type', 'within'\]"):
        MODELS.build(dict(type='CLIPResNet', arch=dict(TINY_RN), pretrained=rn_file[0],
                          light_modules=[dict(type='BitFit', blocks=2)]))


def test_an_option_listed_twice_is_refused(rn_file):
    with pytest.raises(ValueError, match=r"A light module named 'SSFOutput' is already in this block"):
        build(rn_file, ['SSFOutput', 'SSFOutput'])


def test_unsupported_kind_is_named(rn_file):
    with pytest.raises(KeyError, match="'AdaptFormer' is not supported on CLIP ResNets.*BitFit"):
        build(rn_file, ['AdaptFormer'])


def test_text_initialisation_uses_joint_space_features_directly(rn_file):
    head = MODELS.build(dict(type='CosineClsHead', num_classes=2, in_channels=32, classnames=['cat', 'dog'],
                             text_init=dict(arch=dict(TINY_RN), pretrained=rn_file[0])))
    head.init_weights()
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    with torch.no_grad():
        expected = F.normalize(rn_file[1].encode_text(tokenizer(['a photo of a cat.', 'a photo of a dog.'])), dim=-1)
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-5, atol=1e-6)
