"""ClassCountsHook with a fake runner, with dataset wrappers, and inside a real MMEngine Runner."""
import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmengine.runner import Runner
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import HOOKS, MODELS
from torch import nn

from lift_mm.engine.hooks.class_counts_hook import ClassCountsHook
from lift_mm.models.losses import LADELoss, LogitAdjustedLoss

LABELS = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]  # 6 / 3 / 1 samples
CLASSES = ('cat', 'dog', 'fox')
MODEL_CFG = dict(
    type='ImageClassifier',
    backbone=dict(type='LeNet5'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=120, loss=dict(type='LogitAdjustedLoss')),
    data_preprocessor=dict(type='ClsDataPreprocessor'))


class TinyDataset(BaseDataset):
    """An mmpretrain dataset of random 32x32 grey images with the given labels, held in memory."""

    def __init__(self, labels, classes=CLASSES, **metainfo):
        self._labels = labels
        super().__init__(ann_file='', metainfo=dict(classes=classes, **metainfo), pipeline=[dict(type='PackInputs')])

    def load_data_list(self):
        rng = np.random.default_rng(0)
        return [dict(img=rng.integers(0, 256, (32, 32, 1), dtype=np.uint8), gt_label=int(y)) for y in self._labels]


class PlainWrapper:
    """A dataset wrapper the hook does not know, without get_gt_labels."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.metainfo = dataset.metainfo


class RecordingLogger:
    """Keeps (level, message) pairs."""

    def __init__(self):
        self.records = []

    def debug(self, message):
        self.records.append(('debug', message))

    def info(self, message):
        self.records.append(('info', message))

    def warning(self, message):
        self.records.append(('warning', message))


def fake_runner(model, dataset):
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset), logger=RecordingLogger())


def run_hook(dataset, model=None):
    model = model if model is not None else MODELS.build(MODEL_CFG)
    runner = fake_runner(model, dataset)
    ClassCountsHook().before_train(runner)
    level, message = runner.logger.records[-1]
    assert level == 'info' and message.startswith('ClassCountsHook: set class counts of 3 classes')
    return model


def test_registered_in_mmpretrain_hooks():
    assert isinstance(HOOKS.build(dict(type='ClassCountsHook')), ClassCountsHook)
    assert ClassCountsHook.priority == 'VERY_HIGH'


def test_counts_from_gt_labels_reach_the_head_loss():
    model = run_hook(TinyDataset(LABELS))
    loss = model.head.loss_module
    assert loss.class_counts.tolist() == [6, 3, 1]
    assert loss.state_dict() == {} and 'head.loss_module.class_counts' not in model.state_dict()
    feats = torch.randn(4, 3)
    target = torch.tensor([0, 1, 2, 0])
    prior = torch.tensor([6, 3, 1], dtype=torch.float32) / 10
    expected = nn.functional.cross_entropy(feats + prior.log(), target)
    assert loss(feats, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_metainfo_class_counts_take_precedence():
    model = run_hook(TinyDataset(LABELS, class_counts=[50, 20, 5]))
    assert model.head.loss_module.class_counts.tolist() == [50, 20, 5]
    with pytest.raises(RuntimeError, match=r"class_counts'\] has 2 entries but metainfo\['classes'\] has 3"):
        run_hook(TinyDataset(LABELS, class_counts=[5, 2]))


def test_every_receiver_is_set_through_a_model_wrapper():
    model = nn.ModuleDict(dict(a=LogitAdjustedLoss(), b=nn.Sequential(nn.Linear(2, 2), LADELoss()),
                               c=nn.Linear(3, 3)))
    run_hook(TinyDataset(LABELS), nn.DataParallel(model))
    assert model['a'].class_counts.tolist() == [6, 3, 1]
    assert model['b'][1].class_counts.tolist() == [6, 3, 1]


def test_wrappers():
    first, second = TinyDataset(LABELS), TinyDataset([1, 2, 2])
    concat = run_hook(ConcatDataset([first, second]))
    assert concat.head.loss_module.class_counts.tolist() == [6, 4, 3]
    repeat = run_hook(RepeatDataset(first, times=3))
    assert repeat.head.loss_module.class_counts.tolist() == [18, 9, 3]

    # Image repeat factor ceil(max(1, sqrt(t / f(c)))) with f(c) the fraction of images of class c.
    threshold = 0.5
    expected = [0, 0, 0]
    for label in LABELS:
        frequency = LABELS.count(label) / len(LABELS)
        expected[label] += math.ceil(max(1.0, math.sqrt(threshold / frequency)))
    balanced = run_hook(ClassBalancedDataset(TinyDataset(LABELS), oversample_thr=threshold))
    assert balanced.head.loss_module.class_counts.tolist() == expected
    assert expected == [6, 6, 3]

    with pytest.raises(RuntimeError, match='cannot list the labels of PlainWrapper: it has no get_gt_labels'):
        run_hook(PlainWrapper(TinyDataset(LABELS, class_counts=[1, 1, 1])))


def test_class_without_samples_names_the_class():
    with pytest.raises(ValueError, match=r'TinyDataset do not suit head.loss_module.*class\(es\) \[1\]'):
        run_hook(TinyDataset([0, 0, 2]))


def test_no_receiver_leaves_the_dataset_alone():
    runner = fake_runner(nn.Linear(2, 2), dataset=None)
    ClassCountsHook().before_train(runner)
    assert runner.logger.records == [('debug', 'ClassCountsHook: no module of the model has set_class_counts; '
                                      'nothing to do.')]


def test_log_names_receivers_and_warns_when_replacing_counts():
    model = MODELS.build(MODEL_CFG)
    model.head.loss_module.set_class_counts([1, 1, 1])
    runner = fake_runner(model, TinyDataset(LABELS))
    ClassCountsHook().before_train(runner)
    assert runner.logger.records == [
        ('warning', "ClassCountsHook: replacing the class_counts of head.loss_module (e.g. from the config) with the "
         "training set's."),
        ('info', 'ClassCountsHook: set class counts of 3 classes (10 samples, 1 to 6 per class) on 1 module(s): '
         'head.loss_module.'),
    ]
    assert model.head.loss_module.class_counts.tolist() == [6, 3, 1]


def make_runner(tmp_path, custom_hooks):
    return Runner(
        model=copy.deepcopy(MODEL_CFG),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=TinyDataset(LABELS),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=5,
            num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None),
        custom_hooks=custom_hooks,
        default_scope='mmpretrain',
        experiment_name=f'class_counts_hook_{len(custom_hooks)}_{id(tmp_path)}')


def test_runner_trains_plain_mmpretrain_classifier_with_the_hook(tmp_path):
    runner = make_runner(tmp_path, [dict(type='ClassCountsHook')])
    runner.train()
    loss = runner.model.head.loss_module
    assert loss.class_counts.tolist() == [6, 3, 1]
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').current())


def test_runner_without_the_hook_says_to_add_it(tmp_path):
    runner = make_runner(tmp_path, [])
    with pytest.raises(RuntimeError, match=r"custom_hooks=\[dict\(type='ClassCountsHook'\)\]"):
        runner.train()
