"""Test-time ensembling: MultiViewCrop's views, AverageLogitsTTA's logit averaging, the TTA settings and hook."""
import importlib.util
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate, pseudo_collate
from mmpretrain.registry import HOOKS, MODELS, TRANSFORMS
from PIL import Image
from torch.nn import functional as F
from torchvision import transforms as T

import lift_mm  # noqa: F401
from lift_mm.engine import enable_tta, tta_settings
from demo_runs import REPO
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch

MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])
CROP, SHORT = 32, 36


@pytest.fixture(scope='module')
def image_file(tmp_path_factory):
    """A 40 x 51 RGB image: not square, and 51 px resize to 45, so the centre crop's offset is rounded."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp('tte') / 'image.png'
    Image.fromarray(rng.integers(0, 256, (40, 51, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    clip_file = save_open_clip_checkpoint(make_tiny_clip(seed=3), tmp_path_factory.mktemp('clip') / 'tiny.pt')
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file, num_classes=5),
        head=dict(type='CosineClsHead', num_classes=5, in_channels=64),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=(MEAN * 255).tolist(), std=(STD * 255).tolist(),
                               to_rgb=True)))
    return model.eval()


def views_of(image_file, **kwargs):
    pipeline = [TRANSFORMS.build(dict(type='LoadImageFromFile')),
                TRANSFORMS.build(dict(type='MultiViewCrop', crop_size=CROP, **kwargs))]
    results = dict(img_path=image_file, gt_label=2)
    for transform in pipeline:
        results = transform(results)
    return results


def hand_crops(image_file, flipped=False):
    """The crops LIFT's torchvision FiveCrop takes, cut by hand from the image resized with PIL."""
    image = Image.open(image_file).convert('RGB')
    width, height = image.size
    # Shorter side (height 40) to 36; the longer side scales along and is truncated: int(36 * 51 / 40) = 45.
    resized = image.resize((int(SHORT * width / height), SHORT), Image.BILINEAR)
    if flipped:
        resized = resized.transpose(Image.FLIP_LEFT_RIGHT)
    w, h = resized.size
    # Corners, then the centre at round((45 - 32) / 2) = round(6.5) = 6 (Python rounds half to even) and
    # round((36 - 32) / 2) = 2.
    boxes = [(0, 0), (w - CROP, 0), (0, h - CROP), (w - CROP, h - CROP), (6, 2)]
    return [np.asarray(resized.crop((left, top, left + CROP, top + CROP))) for left, top in boxes]


def normalised(crops):
    return torch.stack([torch.from_numpy(((crop / 255. - MEAN) / STD).transpose(2, 0, 1)).float() for crop in crops])


def rgb(tensor):
    """A packed BGR view as an RGB (H, W, 3) array."""
    return tensor.numpy().transpose(1, 2, 0)[..., ::-1]


def test_five_crop_views_are_the_corners_and_centre_of_the_resized_image(image_file):
    packed = views_of(image_file, short_edge=SHORT)
    assert len(packed['inputs']) == 5 and len(packed['data_samples']) == 5
    for view, expected in zip(packed['inputs'], hand_crops(image_file)):
        np.testing.assert_array_equal(rgb(view), expected)
    assert all(sample.gt_label.item() == 2 for sample in packed['data_samples'])


def test_hand_crops_are_torchvisions_five_crop(image_file):
    """LIFT's own transform takes the crops cut by hand above."""
    lift = T.Compose([T.Resize(SHORT), T.FiveCrop(CROP)])
    for crop, expected in zip(lift(Image.open(image_file).convert('RGB')), hand_crops(image_file)):
        np.testing.assert_array_equal(np.asarray(crop), expected)


def test_ten_crop_adds_the_five_crops_of_the_flipped_image(image_file):
    packed = views_of(image_file, mode='ten_crop', short_edge=SHORT)
    expected = hand_crops(image_file) + hand_crops(image_file, flipped=True)
    assert len(packed['inputs']) == 10
    for view, crop in zip(packed['inputs'], expected):
        np.testing.assert_array_equal(rgb(view), crop)
    assert [sample.flip for sample in packed['data_samples']] == [False] * 5 + [True] * 5


def test_random_mode_gives_num_views_random_crops(image_file):
    np.random.seed(0)
    packed = views_of(image_file, mode='random', num_views=7)
    assert len(packed['inputs']) == 7
    assert all(view.shape == (3, CROP, CROP) for view in packed['inputs'])
    assert len({view.numpy().tobytes() for view in packed['inputs']}) == 7


@pytest.mark.parametrize('kwargs, message', [
    (dict(short_edge=30), r'`crop_size`=32 is larger than `short_edge`=30'),
    (dict(mode='nine_crop', short_edge=SHORT), r"`mode`='nine_crop'.*'five_crop', 'ten_crop', 'random'"),
    (dict(mode='five_crop'), r'needs `short_edge`.*56'),
    (dict(mode='random'), r"mode='random' needs `num_views`"),
    (dict(mode='ten_crop', short_edge=SHORT, num_views=3), r"`num_views` only applies to mode='random'"),
])
def test_bad_multi_view_crop_fails_at_build(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TRANSFORMS.build(dict(type='MultiViewCrop', crop_size=CROP, **kwargs))


def tta_predictions(classifier, image_files, chunk_size=256, **crop_kwargs):
    tta = MODELS.build(dict(type='AverageLogitsTTA', module=classifier, chunk_size=chunk_size))
    batch = pseudo_collate([views_of(path, **crop_kwargs) for path in image_files])
    with torch.no_grad():
        return tta.test_step(batch)


@pytest.mark.parametrize('mode', ['five_crop', 'ten_crop'])
def test_tta_averages_the_logits_of_the_views(classifier, image_file, mode):
    crops = hand_crops(image_file) + (hand_crops(image_file, flipped=True) if mode == 'ten_crop' else [])
    with torch.no_grad():
        logits = [classifier.head(classifier.backbone(normalised([crop]))) for crop in crops]
    mean_logits = sum(logits) / len(logits)
    prediction, = tta_predictions(classifier, [image_file], mode=mode, short_edge=SHORT)
    torch.testing.assert_close(prediction.pred_score, F.softmax(mean_logits[0], dim=0), rtol=1e-4, atol=1e-5)
    assert prediction.pred_label.item() == mean_logits.argmax().item()
    assert prediction.gt_label.item() == 2
    # Averaging softmax scores instead (mmpretrain's AverageClsScoreTTA) gives other scores.
    mean_scores = sum(F.softmax(z[0], dim=0) for z in logits) / len(logits)
    assert not torch.allclose(prediction.pred_score, mean_scores, atol=1e-4)


def test_chunking_does_not_change_predictions(classifier, image_file, tmp_path):
    flipped = tmp_path / 'flipped.png'
    Image.open(image_file).transpose(Image.FLIP_TOP_BOTTOM).save(flipped)
    files = [image_file, str(flipped)]
    whole = tta_predictions(classifier, files, short_edge=SHORT)
    chunked = tta_predictions(classifier, files, chunk_size=3, short_edge=SHORT)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a.pred_score, b.pred_score, rtol=1e-5, atol=1e-6)


def test_default_collated_views_give_the_predictions_of_pseudo_collated_ones(classifier, image_file, tmp_path):
    """mmpretrain's configs and tools/test.py collate with default_collate, which stacks each view's images."""
    flipped = tmp_path / 'flipped.png'
    Image.open(image_file).transpose(Image.FLIP_TOP_BOTTOM).save(flipped)
    samples = [views_of(path, short_edge=SHORT) for path in (image_file, str(flipped))]
    stacked = default_collate(samples)
    assert [tuple(view.shape) for view in stacked['inputs']] == [(2, 3, CROP, CROP)] * 5
    tta = MODELS.build(dict(type='AverageLogitsTTA', module=classifier))
    with torch.no_grad():
        predictions = tta.test_step(stacked)
        expected = tta.test_step(pseudo_collate(samples))
    assert len(predictions) == 2
    for prediction, reference in zip(predictions, expected):
        torch.testing.assert_close(prediction.pred_score, reference.pred_score, rtol=1e-5, atol=1e-6)
        assert prediction.gt_label.item() == 2


@pytest.mark.parametrize('collate, seen', [
    (pseudo_collate, r'got a list of 2 items, the first a tensor of shape \(3, 32, 32\)'),
    (default_collate, r'got one tensor of shape \(2, 3, 32, 32\)'),
])
def test_tta_needs_views_and_says_what_it_got(classifier, collate, seen):
    batch = collate([dict(inputs=torch.zeros(3, CROP, CROP, dtype=torch.uint8))] * 2)
    tta = MODELS.build(dict(type='AverageLogitsTTA', module=classifier))
    with pytest.raises(TypeError, match=f'several views per image.*MultiViewCrop.*; {seen}'):
        tta.test_step(batch)


def test_bad_chunk_size_fails_at_build(classifier):
    with pytest.raises(ValueError, match='`chunk_size`=0'):
        MODELS.build(dict(type='AverageLogitsTTA', module=classifier, chunk_size=0))


def tte_config(**extra):
    return Config(dict(model=dict(type='ImageClassifier'), test_dataloader=dict(dataset=dict(pipeline=['plain'])),
                       **extra))


def test_enable_tta_follows_mmpretrains_convention():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='MultiViewCrop', crop_size=CROP, short_edge=SHORT)]
    cfg = tte_config(tta_pipeline=pipeline)
    enable_tta(cfg)
    assert cfg.model == dict(type='AverageLogitsTTA', module=dict(type='ImageClassifier'))
    assert cfg.test_dataloader.dataset.pipeline == pipeline
    cfg = tte_config(tta_pipeline=pipeline, tta_model=dict(type='AverageLogitsTTA', chunk_size=8))
    enable_tta(cfg)
    assert cfg.model.chunk_size == 8


@pytest.mark.parametrize('extra, error, message', [
    (dict(), KeyError, 'needs `tta_pipeline`'),
    (dict(tta_pipeline=['x'], tta_model=dict(type='AverageLogitsTTA', module=dict())), ValueError,
     'must not set `module`'),
])
def test_incomplete_tta_settings_are_named(extra, error, message):
    with pytest.raises(error, match=message):
        tta_settings(tte_config(**extra))


def test_test_tool_tta_without_tta_pipeline_is_a_one_line_error_naming_the_tte_config(monkeypatch):
    spec = importlib.util.spec_from_file_location('lift_test_tool', REPO / 'tools/test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', ['test.py', 'configs/lift/lift_demo.py', 'epoch_10.pth', '--tta'])
    with pytest.raises(SystemExit) as error:
        tool.merge_args(Config.fromfile(str(REPO / 'configs/lift/lift_demo.py')), tool.parse_args())
    message = str(error.value.code)
    assert message.startswith('error: --tta: ') and '\n' not in message
    assert 'configs/lift/lift_demo.py does not set' in message and 'configs/lift/lift_demo_tte.py' in message
    # The demo's views are 32 px: the message gives no size that does not fit the config.
    assert '224' not in message and '248' not in message


def test_missing_tta_pipeline_without_a_tte_config_beside_names_where_they_are(tmp_path):
    config = tmp_path / 'mine.py'
    config.write_text("model = dict(type='ImageClassifier')\ntest_dataloader = dict(dataset=dict(pipeline=[]))\n")
    with pytest.raises(KeyError, match=f'which {config} does not set. The configs/lift/\\*_tte.py configs set it'):
        tta_settings(Config.fromfile(str(config)))


class FakeRunner:
    def __init__(self, cfg):
        self.cfg = cfg


def test_hook_checks_the_tta_pipeline_before_the_run():
    bad = [dict(type='LoadImageFromFile'), dict(type='MultiViewCrop', crop_size=224, short_edge=200)]
    with pytest.raises(ValueError, match='`crop_size`=224 is larger than `short_edge`=200'):
        HOOKS.build(dict(type='TestTimeEnsembleHook')).before_run(FakeRunner(tte_config(tta_pipeline=bad)))
    with pytest.raises(KeyError, match='needs `tta_pipeline`'):
        HOOKS.build(dict(type='TestTimeEnsembleHook')).before_run(FakeRunner(tte_config()))
