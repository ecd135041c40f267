"""One place for the CLIP weights: the head's text initialisation follows the backbone's CLIP, loaded once."""
import copy
import gc
import weakref

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from open_clip.tokenizer import SimpleTokenizer
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.models.utils import open_clip_factory
from demo_runs import REPO
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch

CLASSNAMES = ['red_square', 'green circle', 'blue_triangle']
SEED_BACKBONE, SEED_OTHER = 21, 22


@pytest.fixture(scope='module')
def clip_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('clip')
    return {seed: save_open_clip_checkpoint(make_tiny_clip(seed), folder / f'tiny{seed}.pt')
            for seed in (SEED_BACKBONE, SEED_OTHER)}


@pytest.fixture(scope='module')
def demo_cfg():
    return Config.fromfile(str(REPO / 'configs/lift/lift_demo.py'))


def expected_text_weights(seed, classnames, templates=('a photo of a {}.', )):
    """Independent reference: CLIP's text features of the prompts, mapped through the visual projection."""
    clip, tokenizer = make_tiny_clip(seed), SimpleTokenizer(context_length=16)
    names = [name.replace('_', ' ') for name in classnames]
    with torch.no_grad():
        mean = sum(F.normalize(clip.encode_text(tokenizer([t.format(n) for n in names])), dim=-1)
                   for t in templates) / len(templates)
        return F.normalize(F.normalize(mean, dim=-1) @ clip.visual.proj.T, dim=-1)


def with_options(cfg, **options):
    """The config's model after ``--cfg-options`` (``merge_from_dict`` is what tools/train.py calls)."""
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict(options)
    return cfg.model


def tiny_model(head, pretrained, type='CLIPImageClassifier', **backbone):
    return MODELS.build(dict(
        type=type,
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=pretrained, num_classes=3,
                      **backbone),
        head=dict(type='CosineClsHead', num_classes=3, in_channels=64, classnames=CLASSNAMES, **head)))


@pytest.fixture
def count_loads(monkeypatch):
    """How many times checkpoint files are read into a CLIP model."""
    calls = []
    load_file = open_clip_factory._load_file

    def counting(model, path):
        calls.append(path)
        load_file(model, path)

    monkeypatch.setattr(open_clip_factory, '_load_file', counting)
    return calls


def test_head_follows_the_backbone_pretrained_set_on_the_command_line(demo_cfg, clip_files):
    model = MODELS.build(with_options(demo_cfg, **{'model.backbone.pretrained': clip_files[SEED_BACKBONE]}))
    model.init_weights()
    torch.testing.assert_close(model.head.weight.data, expected_text_weights(SEED_BACKBONE, demo_cfg.classnames),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('keys', [['model.backbone.pretrained'],
                                  ['model.backbone.pretrained', 'model.head.text_init.pretrained']])
def test_weights_are_read_once_per_run(demo_cfg, clip_files, count_loads, keys):
    model = MODELS.build(with_options(demo_cfg, **{key: clip_files[SEED_BACKBONE] for key in keys}))
    model.init_weights()
    assert count_loads == [clip_files[SEED_BACKBONE]]


def test_text_tower_is_freed_after_the_init(demo_cfg, clip_files):
    model = MODELS.build(with_options(demo_cfg, **{'model.backbone.pretrained': clip_files[SEED_BACKBONE]}))
    text_tower = weakref.ref(model.backbone.shared_clip.model.transformer)
    model.init_weights()
    gc.collect()
    assert text_tower() is None
    assert not any('transformer.resblocks' in name and not name.startswith('backbone.visual')
                   for name in model.state_dict())


def test_zero_shot_head_reads_the_backbone_clip_once(clip_files, count_loads):
    cfg = Config.fromfile(str(REPO / 'configs/zero_shot/zsclip_demo.py'))
    cfg.merge_from_dict({'model.backbone.pretrained': clip_files[SEED_BACKBONE]})
    model = MODELS.build(cfg.model).eval()
    assert count_loads == [clip_files[SEED_BACKBONE]]
    clip, tokenizer = make_tiny_clip(SEED_BACKBONE), SimpleTokenizer(context_length=16)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        text = torch.stack([
            torch.stack([F.normalize(clip.encode_text(tokenizer([t(name.replace('_', ' '))])), dim=-1)[0]
                         for t in OPENAI_IMAGENET_TEMPLATES]).mean(0) for name in cfg.classnames])
        expected = clip.logit_scale.exp() * F.normalize(clip.encode_image(images), dim=-1) @ F.normalize(text, dim=-1).T
        torch.testing.assert_close(model(images, mode='tensor'), expected, rtol=1e-4, atol=1e-4)


def test_switching_mode_frees_a_text_tower_no_head_took(clip_files):
    # Test runs never call init_weights: the text tower must not stay for the whole run.
    model = tiny_model(dict(), clip_files[SEED_BACKBONE], type='ImageClassifier')
    text_tower = weakref.ref(model.backbone.shared_clip.model.transformer)
    model.eval()
    gc.collect()
    assert text_tower() is None


def test_head_naming_another_clip_is_refused_unless_set_apart(clip_files):
    other = dict(arch=tiny_clip_arch(), pretrained=clip_files[SEED_OTHER], quick_gelu=False)
    with pytest.raises(ValueError, match=r'`model.head.text_init.pretrained`=.*tiny22.pt.* but '
                                         r'`model.backbone.pretrained`=.*tiny21.pt.*separate_clip=True'):
        tiny_model(dict(text_init=other), clip_files[SEED_BACKBONE])
    model = tiny_model(dict(text_init=dict(other, separate_clip=True)), clip_files[SEED_BACKBONE])
    model.init_weights()
    torch.testing.assert_close(model.head.weight.data, expected_text_weights(SEED_OTHER, CLASSNAMES),
                               rtol=1e-5, atol=1e-6)


def test_head_naming_the_backbone_clip_again_is_accepted(clip_files):
    same = dict(arch=tiny_clip_arch(), pretrained=clip_files[SEED_BACKBONE], quick_gelu=False)
    model = tiny_model(dict(text_init=same), clip_files[SEED_BACKBONE])
    model.init_weights()
    torch.testing.assert_close(model.head.weight.data, expected_text_weights(SEED_BACKBONE, CLASSNAMES),
                               rtol=1e-5, atol=1e-6)


def test_head_without_a_clip_to_follow_names_the_keys(clip_files):
    vit = dict(type='VisionTransformer', img_size=32, patch_size=8,
               arch=dict(embed_dims=64, num_layers=1, num_heads=2, feedforward_channels=64))
    with pytest.raises(ValueError, match=r'backbone is not a CLIP encoder.*`model.head.text_init.arch`'):
        MODELS.build(dict(type='CLIPImageClassifier', backbone=vit,
                          head=dict(type='CosineClsHead', num_classes=3, in_channels=64, classnames=CLASSNAMES,
                                    text_init=dict(prompt='default'))))
    # mmpretrain's own classifier lends nothing: the head says what to set when it needs the CLIP.
    model = tiny_model(dict(text_init=dict(prompt='default')), clip_files[SEED_BACKBONE], type='ImageClassifier')
    with pytest.raises(ValueError, match=r"type='CLIPImageClassifier'.*`model.head.text_init.arch`"):
        model.init_weights()
