"""LIFT's classifiers (cosine, linear, L2-normalised, layer-normalised), their initialisations and the probe."""
import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.models.heads import fit_balanced_logistic_regression, load_descriptors
from tiny_clip import CLIP_SEED, make_tiny_clip, tiny_clip_arch

CLASSNAMES = ['red_square', 'green circle', 'blue_triangle']
HEAD_TYPES = ['CosineClsHead', 'LIFTLinearClsHead', 'L2NormedClsHead', 'LayerNormedClsHead']


def build_head(head_type='CosineClsHead', **kwargs):
    return MODELS.build(dict(type=head_type, num_classes=3, in_channels=64, **kwargs))


def text_weights(prompts_per_class):
    """Class weights by hand: mean normalised text feature per class, through the visual projection."""
    clip = make_tiny_clip(seed=CLIP_SEED)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    with torch.no_grad():
        means = torch.stack([F.normalize(clip.encode_text(tokenizer(prompts)), dim=-1).mean(dim=0)
                             for prompts in prompts_per_class])
        return F.normalize(means @ clip.visual.proj.T, dim=-1)


def test_linear_head_is_affine():
    head = build_head('LIFTLinearClsHead')
    head.bias.data.normal_()
    x = torch.randn(4, 64)
    expected = torch.stack([torch.stack([x[i] @ head.weight[k] + head.bias[k] for k in range(3)]) for i in range(4)])
    torch.testing.assert_close(head((x, )), expected)


def test_l2_normed_head_divides_by_the_weight_norm_only():
    head = build_head('L2NormedClsHead')
    head.weight.data.mul_(torch.tensor([[1.], [3.], [0.2]]))
    x = torch.randn(4, 64) * 5
    expected = torch.stack([torch.stack([x[i] @ head.weight[k] / head.weight[k].norm() for k in range(3)])
                            for i in range(4)])
    torch.testing.assert_close(head((x, )), expected)


def test_layer_normed_head_standardises_the_feature():
    head = build_head('LayerNormedClsHead')
    x = torch.randn(4, 64) * 3 + 1
    standardised = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + 1e-12)
    expected = standardised @ (head.weight / head.weight.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(head((x, )), expected, rtol=1e-5, atol=1e-5)
    assert [name for name, _ in head.named_parameters()] == ['weight']


def test_random_initialisations_follow_lift():
    torch.manual_seed(0)
    weight = build_head('CosineClsHead').weight.data
    torch.testing.assert_close(weight.norm(dim=1), torch.ones(3))
    # Unit-norm rows of a uniform cube: every direction has entries of both signs and no Gaussian tails.
    assert (weight.abs() <= 1).all() and (weight > 0).any() and (weight < 0).any()
    linear = MODELS.build(dict(type='LIFTLinearClsHead', num_classes=200, in_channels=64))
    assert torch.equal(linear.bias.data, torch.zeros(200))
    assert linear.weight.data.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.05)  # Kaiming normal


@pytest.mark.parametrize('head_type', HEAD_TYPES)
def test_every_head_takes_the_text_initialisation(clip_file, head_type):
    head = build_head(head_type, classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file))
    head.init_weights()
    expected = text_weights([[f'a photo of a {name.replace("_", " ")}.'] for name in CLASSNAMES])
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-5, atol=1e-6)


def test_classname_prompt_is_the_bare_name(clip_file):
    head = build_head(classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file,
                                                            prompt='classname'))
    head.init_weights()
    expected = text_weights([['red square'], ['green circle'], ['blue triangle']])
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-5, atol=1e-6)


def test_ensemble_prompt_averages_clips_80_imagenet_templates(clip_file):
    head = build_head(classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file,
                                                            prompt='ensemble'))
    head.init_weights()
    templates = open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES
    assert len(templates) == 80
    names = [name.replace('_', ' ') for name in CLASSNAMES]
    expected = text_weights([[template(name) for template in templates] for name in names])
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-4, atol=1e-5)


@pytest.fixture
def descriptor_file(tmp_path):
    path = tmp_path / 'descriptors.json'
    path.write_text(json.dumps({
        'red_square': ['four equal sides', 'red colour'],
        'green circle': ['round', 'green', 'no corners'],
        'blue triangle': ['three corners'],  # found by the name with underscores as spaces
    }))
    return str(path)


def test_descriptor_prompt_averages_each_classs_descriptions(clip_file, descriptor_file):
    head = build_head(classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file,
                                                            prompt='descriptor', descriptors=descriptor_file))
    head.init_weights()
    expected = text_weights([['four equal sides', 'red colour'], ['round', 'green', 'no corners'],
                             ['three corners']])
    torch.testing.assert_close(head.weight.data, expected, rtol=1e-5, atol=1e-6)


def test_descriptor_file_may_start_with_a_byte_order_mark(tmp_path, descriptor_file):
    with_bom = tmp_path / 'with_bom.json'
    with_bom.write_bytes(b'\xef\xbb\xbf' + Path(descriptor_file).read_bytes())
    assert load_descriptors(str(with_bom)) == json.loads(Path(descriptor_file).read_text())


def test_descriptor_file_errors_name_the_file_and_line(tmp_path):
    latin1 = tmp_path / 'latin1.json'
    latin1.write_bytes('{\n"red": ["fa\xe7ade"]}'.encode('latin-1'))
    with pytest.raises(ValueError, match=r'latin1.json, line 2: the `text_init.descriptors` file is not valid UTF-8'):
        load_descriptors(str(latin1))
    broken = tmp_path / 'broken.json'
    broken.write_text('{"red": ')
    with pytest.raises(ValueError, match=r'broken.json: not valid JSON \(Expecting value: line 1'):
        load_descriptors(str(broken))


def test_class_missing_from_the_descriptors_is_named_at_build(descriptor_file):
    with pytest.raises(KeyError, match=r"no descriptions of 1 of the 3 classes: 'yellow_star'"):
        build_head(classnames=['red_square', 'green circle', 'yellow_star'],
                   text_init=dict(arch='ViT-B-16', prompt='descriptor', descriptors=descriptor_file))


def test_missing_descriptor_file_fails_when_needed(clip_file):
    head = build_head(classnames=CLASSNAMES, text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file,
                                                            prompt='descriptor', descriptors='/nonexistent.json'))
    with pytest.raises(FileNotFoundError, match='/nonexistent.json'):
        head.init_weights()


@pytest.mark.parametrize('text_init, error, message', [
    (dict(prompt='fancy'), ValueError, r"`text_init.prompt`='fancy'.*'default', 'ensemble', 'classname'"),
    (dict(prompt='default', templates=['{}']), ValueError, 'not both'),
    (dict(prompt='descriptor'), ValueError, r'`text_init.descriptors`.*required'),
    (dict(descriptors='x.json'), ValueError, r"`text_init.descriptors`.*only used there"),
    (dict(templates='a photo of a {}.'), ValueError, '`text_init.templates` must be a non-empty list'),
    (dict(templates=['no placeholder']), ValueError, '`text_init.templates`'),
])
def test_bad_text_init_fails_at_build(text_init, error, message):
    with pytest.raises(error, match=message):
        build_head(classnames=CLASSNAMES, text_init=dict(arch='ViT-B-16', **text_init))


def test_loading_weights_of_another_shape_is_refused():
    with pytest.raises(ValueError, match=r'shape \(3, 32\).*in_channels=64'):
        build_head().load_class_weights(torch.zeros(3, 32))


def balanced_objective_gradient(features, labels, weight, bias, num_classes, C, balanced=True):
    """Gradient of (1/n) sum_i s_i CE(W x_i + b, y_i) + ||W||^2 / (2 C n), s_i = n / (K n_{y_i}), by hand.

    With ``balanced=False``, s_i = 1 (plain logistic regression).
    """
    n = len(labels)
    counts = np.bincount(labels, minlength=num_classes)
    s = n / (num_classes * counts[labels]) if balanced else np.ones(n)
    logits = features @ weight.T + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = (p - np.eye(num_classes)[labels]) * s[:, None] / n
    return residual.T @ features + weight / (C * n), residual.sum(axis=0)


def probe_problem():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [60, 15, 5])
    centres = rng.normal(size=(3, 6))
    features = centres[labels] + rng.normal(scale=1.5, size=(80, 6))
    return features, labels


def test_linear_probe_solves_the_balanced_l2_problem():
    features, labels = probe_problem()
    weight, bias = fit_balanced_logistic_regression(torch.from_numpy(features), torch.from_numpy(labels), 3,
                                                    C=0.5, max_iter=500, tol=1e-10)
    grad_w, grad_b = balanced_objective_gradient(features, labels, weight.numpy(), bias.numpy(), 3, C=0.5)
    assert np.abs(grad_w).max() < 1e-7 and np.abs(grad_b).max() < 1e-7
    # The balancing matters: the solution is far from optimal for plain (unweighted) logistic regression.
    grad_w, _ = balanced_objective_gradient(features, labels, weight.numpy(), bias.numpy(), 3, C=0.5, balanced=False)
    assert np.abs(grad_w).max() > 1e-2


def test_linear_probe_defaults_are_sklearns_and_converge_on_floats():
    features, labels = probe_problem()
    weight, bias = fit_balanced_logistic_regression(torch.from_numpy(features).float(), torch.from_numpy(labels), 3)
    grad_w, grad_b = balanced_objective_gradient(features, labels, weight.double().numpy(), bias.double().numpy(),
                                                 3, C=1.0)
    assert np.abs(grad_w).max() < 1e-3 and np.abs(grad_b).max() < 1e-3


@pytest.mark.parametrize('labels, kwargs, message', [
    ([0, 0, 2], {}, r'classes \[1\] \(1 in all\) have no samples'),
    ([0, 1, 2], dict(C=0), 'need C > 0'),
])
def test_bad_linear_probe_inputs_are_refused(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_balanced_logistic_regression(torch.randn(3, 4), torch.tensor(labels), 3, **kwargs)
