import open_clip
import pytest
import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from tiny_clip import CLIP_SEED, make_tiny_clip, tiny_clip_arch

CLASSNAMES = ['red_square', 'green circle', 'blue_triangle']


def build_head(**kwargs):
    cfg = dict(type='CosineClsHead', num_classes=3, in_channels=64)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_logits_are_scaled_cosine_similarities():
    head = build_head(scale=25.)
    features = torch.randn(4, 64)
    expected = torch.empty(4, 3)
    for i in range(4):
        for k in range(3):
            w = head.weight[k]
            expected[i, k] = 25. * torch.dot(features[i], w) / (features[i].norm() * w.norm())
    torch.testing.assert_close(head((features, )), expected, rtol=1e-5, atol=1e-5)


def test_text_initialisation_matches_formula(clip_file):
    head = build_head(classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file))
    head.init_weights()
    clip = make_tiny_clip(seed=CLIP_SEED)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    prompts = ['a photo of a red square.', 'a photo of a green circle.', 'a photo of a blue triangle.']
    with torch.no_grad():
        text = F.normalize(clip.encode_text(tokenizer(prompts)), dim=-1)
        expected = F.normalize(text @ clip.visual.proj.T, dim=-1)
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-5, atol=1e-6)
    # The CLIP model used for the text features is not kept in the module.
    assert [name for name, _ in head.named_parameters()] == ['weight']


def test_template_ensemble_averages_normalised_features(clip_file):
    templates = ['a photo of a {}.', 'itap of a {}.']
    head = build_head(classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file,
                                                            templates=templates))
    head.init_weights()
    clip = make_tiny_clip(seed=CLIP_SEED)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    names = [n.replace('_', ' ') for n in CLASSNAMES]
    with torch.no_grad():
        mean = sum(F.normalize(clip.encode_text(tokenizer([t.format(n) for n in names])), dim=-1)
                   for t in templates) / 2
        expected = F.normalize(F.normalize(mean, dim=-1) @ clip.visual.proj.T, dim=-1)
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-5, atol=1e-6)


def test_classnames_from_long_tail_file(tmp_path):
    path = tmp_path / 'classnames.txt'
    path.write_text('n01 red_square\nn02 green circle\nn03 blue_triangle\n')
    assert build_head(classnames=str(path)).classnames == CLASSNAMES


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(classnames=['a', 'b']), ValueError, 'gives 2 class names but num_classes is 3'),
    (dict(text_init=dict(arch='ViT-B-16')), ValueError, '`text_init` needs `classnames`'),
    (dict(classnames=CLASSNAMES, text_init=dict(arch='ViT-B-16', prompts='x')), KeyError, 'unknown keys'),
])
def test_bad_head_config_fails_at_build(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_head(**kwargs)


def test_missing_classname_file_fails_when_names_are_needed():
    head = build_head(classnames='/nonexistent/classnames.txt', text_init=dict(arch='ViT-B-16'))
    with pytest.raises(FileNotFoundError, match='/nonexistent/classnames.txt'):
        head.init_weights()


def test_malformed_classname_file_names_line(tmp_path):
    path = tmp_path / 'classnames.txt'
    path.write_text('n01 red\nn02\nn03 blue\n')
    with pytest.raises(ValueError, match=r'classnames.txt, line 2'):
        build_head(classnames=str(path))


def test_text_init_of_another_width_is_rejected(clip_file):
    head = build_head(in_channels=32, classnames=CLASSNAMES,
                      text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file))
    with pytest.raises(ValueError, match='in_channels=32'):
        head.init_weights()


def test_classifier_tensor_mode_returns_logits(clip_file):
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file, num_classes=3),
        head=dict(type='CosineClsHead', num_classes=3, in_channels=64, scale=25.)))
    images = torch.randn(2, 3, 32, 32)
    logits = model(images, mode='tensor')
    torch.testing.assert_close(logits, model.head(model.backbone(images)))
    assert logits.shape == (2, 3) and logits.abs().max() <= 25.


def test_classnames_from_a_dataset_config_are_read_when_needed(tmp_path):
    from lift_mm.datasets.synthetic_long_tail import synthetic_class_names
    source = dict(type='SyntheticLongTail', data_root=str(tmp_path / 'demo'), split='test')
    head = build_head(num_classes=10, classnames=source)
    assert not (tmp_path / 'demo').exists(), 'the dataset must not be built before the names are needed'
    assert head.classnames == synthetic_class_names(10)
    with pytest.raises(ValueError, match=r'dataset SyntheticLongTail\) gives 10 class names but num_classes is 3'):
        build_head(classnames=source).classnames
