"""LIFT+'s minimalist data augmentation: MinimalistRandomCrop's schedules and crops, and AugmentationScheduleHook
driving them through dataset wrappers into persistent data-loader workers, on resume and in iteration loops."""
import copy
import itertools
import math
import os
import pickle
from multiprocessing.reduction import ForkingPickler
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmcv.transforms import RandomApply
from mmengine.dataset import BaseDataset, ClassBalancedDataset, RepeatDataset
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS, TRANSFORMS
from PIL import Image
from torch.utils.data import ConcatDataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

import lift_mm  # noqa: F401
from lift_mm.datasets import MinimalistRandomCrop
from lift_mm.datasets.transforms import minimalist_random_crop
from lift_mm.engine.hooks.augmentation_schedule_hook import scheduled_transforms

SIDE = 20  # the generated training images are SIDE x SIDE: the largest square is the whole image (a = 1)
OUT = 8
STEPS = 3  # per epoch: 12 samples (8 repeated + 4 class-balanced) in batches of 4
RUNS = itertools.count()


def expected_min_scale(schedule, t, low=0.08):
    """LIFT+'s minimum crop area, with each schedule written as the arc it draws."""
    arc = {'min': 0., 'max': 1., 'linear': t,
           'convex': 1 - math.cos(math.asin(t)),  # quarter of the unit circle around (0, 1) from (0, 0) to (1, 1)
           'concave': math.sin(math.acos(1 - t))}[schedule]  # quarter of the unit circle around (1, 0)
    return low + arc * (1 - low)


def smallest_side(t):
    """The smallest crop side on the generated images with the linear schedule at progress ``t``."""
    return round(math.sqrt(SIDE * SIDE * expected_min_scale('linear', t)))


@pytest.mark.parametrize('schedule', ['min', 'max', 'linear', 'convex', 'concave'])
def test_every_schedule_follows_its_formula(schedule):
    crop = MinimalistRandomCrop(scale=OUT, schedule=schedule, min_area=0.08)
    for t in np.linspace(0, 1, 9):
        assert crop.min_scale(t) == pytest.approx(expected_min_scale(schedule, t), abs=1e-12)
    assert crop.min_scale(0) == pytest.approx(0.08 if schedule != 'max' else 1.)
    assert crop.min_scale(1) == pytest.approx(1. if schedule != 'min' else 0.08)


def side_distribution(height, width, min_scale):
    """P(side = k) when the area fraction is uniform on [min(min_scale, a), a] and the side is round(sqrt(A u))."""
    area, largest = height * width, min(height, width)**2 / (height * width)
    low = min(min_scale, largest)
    sides = np.arange(1, min(height, width) + 1)
    if low == largest:  # u is a: the largest square
        return sides, (sides == min(height, width)).astype(float)
    # side = k exactly when A u falls in [(k - 1/2)^2, (k + 1/2)^2)
    lower = np.clip((sides - 0.5)**2 / area, low, largest)
    upper = np.clip((sides + 0.5)**2 / area, low, largest)
    return sides, (upper - lower) / (largest - low)


@pytest.mark.parametrize('progress, schedule', [(0., 'convex'), (0.5, 'convex'), (0.1, 'concave'), (1., 'linear')])
def test_crops_are_squares_whose_sizes_follow_the_distribution(progress, schedule):
    height, width, draws = 30, 50, 4000
    crop = MinimalistRandomCrop(scale=OUT, schedule=schedule, progress=progress)
    np.random.seed(0)
    params = np.array([crop.rand_crop_params(np.zeros((height, width, 3), np.uint8)) for _ in range(draws)])
    top, left, crop_h, crop_w = params.T
    assert (crop_h == crop_w).all()
    assert (top >= 0).all() and (left >= 0).all() and (top + crop_h <= height).all() and (left + crop_w <= width).all()
    sides, probability = side_distribution(height, width, expected_min_scale(schedule, progress))
    frequency = np.bincount(crop_h, minlength=sides[-1] + 1)[1:] / draws
    assert frequency[probability == 0].sum() == 0
    assert np.abs(frequency - probability).max() <= 4 * math.sqrt(0.25 / draws)
    if progress == 1.:  # min_scale 1 exceeds a = 0.6: every crop is the largest square
        assert (crop_h == height).all()
    else:
        assert crop_h.min() <= sides[probability > 0][0] + 1 and crop_h.max() == height
        # the crops cover all positions along the long side
        assert left.min() == 0 and (left + crop_w).max() == width


def test_output_is_torchvisions_bicubic_antialiased_resized_crop_of_the_pil_image():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    crop = TRANSFORMS.build(dict(type='MinimalistRandomCrop', scale=16, schedule='convex', progress=0.3))
    np.random.seed(5)
    top, left, height, width = crop.rand_crop_params(image)
    np.random.seed(5)
    results = crop(dict(img=image.copy()))
    expected = F.resized_crop(Image.fromarray(image), top, left, height, width, [16, 16],
                              InterpolationMode.BICUBIC, antialias=True)
    assert results['img_shape'] == (16, 16, 3)
    np.testing.assert_array_equal(results['img'], np.asarray(expected))


def test_bad_settings_and_progress_are_refused():
    with pytest.raises(ValueError, match=r"`schedule`='cosine' is not supported; valid schedules: \['min', 'max'"):
        MinimalistRandomCrop(scale=OUT, schedule='cosine')
    with pytest.raises(ValueError, match=r'`min_area`=0 must be a fraction of the image area in \(0, 1\]'):
        MinimalistRandomCrop(scale=OUT, min_area=0)
    with pytest.raises(ValueError, match=r'`scale`=\(8, 8\) must be a positive integer'):
        MinimalistRandomCrop(scale=(8, 8))
    crop = MinimalistRandomCrop(scale=OUT)
    with pytest.raises(ValueError, match=r'training progress must be a number in \[0, 1\]; got 1.5'):
        crop.progress = 1.5


def test_unset_progress_crops_at_the_start_and_warns_once(monkeypatch):
    messages = []
    monkeypatch.setattr(minimalist_random_crop, 'print_log', lambda message, **kwargs: messages.append(message))
    image = np.zeros((SIDE, SIDE, 3), np.uint8)
    crop = MinimalistRandomCrop(scale=OUT, schedule='linear')
    np.random.seed(0)
    sides = [crop.rand_crop_params(image)[2] for _ in range(200)]
    assert crop.progress is None and min(sides) < smallest_side(0.5)
    assert len(messages) == 1 and "add custom_hooks=[dict(type='AugmentationScheduleHook')]" in messages[0]
    # A schedule that does not depend on the progress has nothing to warn about.
    constant = MinimalistRandomCrop(scale=OUT, schedule='max')
    assert constant.rand_crop_params(image)[2] == SIDE
    assert len(messages) == 1


def test_progress_is_shared_with_what_the_multiprocessing_pickler_rebuilds():
    """Spawned workers receive the dataset through ForkingPickler: the progress must stay shared memory."""
    crop = MinimalistRandomCrop(scale=OUT, progress=0.)
    rebuilt = pickle.loads(ForkingPickler.dumps(crop))
    crop.progress = 0.75
    assert rebuilt.progress == 0.75


def test_copies_hold_their_own_shared_progress():
    """Workers forked from a copy (MMEngine deep-copies a built dataset in a data-loader config) must see its
    progress: the copy's tensor is in shared memory too, independent of the original's."""
    crop = MinimalistRandomCrop(scale=OUT, progress=0.25)
    for copied in (copy.deepcopy(crop), pickle.loads(pickle.dumps(crop))):
        assert copied._shared.is_shared() and copied.progress == 0.25
        copied.progress = 1.
        assert crop.progress == 0.25


class GeneratedImages(BaseDataset):
    """Random SIDE x SIDE images in memory, two classes."""

    def __init__(self, pipeline, seed=0):
        self.seed = seed
        super().__init__(metainfo=dict(classes=('a', 'b')), pipeline=pipeline, serialize_data=False)

    def load_data_list(self):
        rng = np.random.default_rng(self.seed)
        return [dict(img=rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8), gt_label=index % 2)
                for index in range(4)]

    def get_cat_ids(self, index):
        return [self.get_data_info(index)['gt_label']]


class RecordedCrop(MinimalistRandomCrop):
    """Notes in each sample the crop side it drew and the process that drew it."""

    def rand_crop_params(self, img):
        params = super().rand_crop_params(img)
        self.drawn = params[2]
        return params

    def transform(self, results):
        results = super().transform(results)
        return dict(side=self.drawn, pid=os.getpid(), shape=results['img'].shape)


class Recorder(BaseModel):
    """Keeps the samples of every training step; learns nothing."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.steps = []

    def train_step(self, data, optim_wrapper):
        self.steps.append(data)
        return {}

    def forward(self, *args, **kwargs):
        raise NotImplementedError


def training_set(crops):
    """Every wrapper the hook must look through; each part has its own crop, 12 samples per epoch."""
    parts = [GeneratedImages([crop], seed) for seed, crop in enumerate(crops)]
    return ConcatDataset([RepeatDataset(parts[0], times=2), ClassBalancedDataset(parts[1], oversample_thr=0.)])


def make_runner(work_dir, train_cfg, num_workers=0, batch_size=4, sampler='DefaultSampler', **kwargs):
    crops = [RecordedCrop(scale=OUT, schedule='linear') for _ in range(2)]
    return Runner(
        model=Recorder(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=training_set(crops), sampler=dict(type=sampler, shuffle=True),
                              batch_size=batch_size, num_workers=num_workers, persistent_workers=num_workers > 0,
                              collate_fn=list),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.)),
        default_hooks=dict(logger=None),
        custom_hooks=[dict(type='AugmentationScheduleHook')],
        randomness=dict(seed=0),
        default_scope='mmpretrain',
        experiment_name=f'minimalist_crop_{next(RUNS)}',
        **kwargs)


def check_epoch(samples, t):
    """The crop sides of ``samples``, after checking them against the minimum area at progress ``t``."""
    sides = [sample['side'] for sample in samples]
    assert min(sides) >= smallest_side(t) and max(sides) <= SIDE
    assert all(sample['shape'] == (OUT, OUT, 3) for sample in samples)
    return sides


@pytest.fixture(scope='module')
def epoch_run(tmp_path_factory):
    """Three epochs, linear schedule (t = 0, 1/2, 1), two persistent workers, a checkpoint per epoch."""
    work_dir = tmp_path_factory.mktemp('mda_epochs')
    runner = make_runner(work_dir, dict(by_epoch=True, max_epochs=3), num_workers=2)
    runner.train()
    return work_dir, [sum(runner.model.steps[epoch * STEPS:(epoch + 1) * STEPS], []) for epoch in range(3)]


def test_persistent_workers_crop_each_epoch_at_its_progress(epoch_run):
    _, epochs = epoch_run
    assert [len(samples) for samples in epochs] == [12, 12, 12]
    pids = [{sample['pid'] for sample in samples} for samples in epochs]
    assert os.getpid() not in pids[0] and pids[0] == pids[1] == pids[2] and len(pids[0]) == 2
    first, middle, last = (check_epoch(samples, t) for samples, t in zip(epochs, (0., 0.5, 1.)))
    assert min(first) < smallest_side(0.5) and min(middle) < SIDE
    assert last == [SIDE] * 12


def test_resumed_run_continues_the_schedule(epoch_run, tmp_path):
    work_dir, _ = epoch_run
    runner = make_runner(tmp_path, dict(by_epoch=True, max_epochs=3), resume=True,
                         load_from=str(work_dir / 'epoch_1.pth'))
    runner.train()
    assert len(runner.model.steps) == 2 * STEPS
    middle, last = sum(runner.model.steps[:STEPS], []), sum(runner.model.steps[STEPS:], [])
    assert min(check_epoch(middle, 0.5)) < SIDE and check_epoch(last, 1.) == [SIDE] * 12


def test_iteration_loop_steps_the_schedule_every_iteration(tmp_path):
    # Each iteration takes all 12 images, so that each iteration's crops tell its progress apart.
    runner = make_runner(tmp_path, dict(type='IterBasedTrainLoop', max_iters=3), batch_size=12,
                         sampler='InfiniteSampler')
    runner.train()
    first, middle, last = (check_epoch(samples, t) for samples, t in zip(runner.model.steps, (0., 0.5, 1.)))
    assert min(first) < smallest_side(0.5) and min(middle) < SIDE and last == [SIDE] * 12


def test_hook_finds_crops_inside_transforms_that_hold_others():
    crop = MinimalistRandomCrop(scale=OUT)
    dataset = RepeatDataset(GeneratedImages([RandomApply([crop], prob=0.5)]), times=2)
    assert scheduled_transforms(dataset.dataset.pipeline) == [crop]
    # Outside an epoch-based loop the progress is the fraction of iterations done.
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset), train_loop=None, iter=1, max_iters=5)
    HOOKS.build(dict(type='AugmentationScheduleHook')).before_train(runner)
    assert crop.progress == 0.25


def test_hook_refuses_a_training_pipeline_without_the_crop():
    dataset = RepeatDataset(GeneratedImages([TRANSFORMS.build(dict(type='RandomResizedCrop', scale=OUT))]), times=2)
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset))
    with pytest.raises(TypeError, match=r'found no MinimalistRandomCrop in the pipeline of the training dataset '
                                        r'RepeatDataset: add .* to train_dataloader.dataset.pipeline'):
        HOOKS.build(dict(type='AugmentationScheduleHook')).before_train(runner)
