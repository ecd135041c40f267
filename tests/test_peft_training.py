"""Every light-module kind trains for an epoch on the demo data through MMEngine's runner."""

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import lift_mm  # noqa: F401
from lift_mm.models.peft.base import registered_light_modules
from demo_runs import REPO

VIT_KINDS = sorted(set(registered_light_modules()) - {'BatchNormTuning', 'SSFOutput'})


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('demo-data'))


@pytest.mark.slow
@pytest.mark.parametrize('kind', VIT_KINDS)
def test_kind_trains_one_demo_epoch(kind, data_root, tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs/lift/lift_demo.py'))
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone.light_modules = [dict(type=kind)]
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.param_scheduler = dict(type='ConstantLR', factor=1.0, by_epoch=True)
    runner = Runner.from_cfg(cfg)
    trainable = {name: p.detach().clone() for name, p in runner.model.named_parameters() if p.requires_grad}
    runner.train()
    after = dict(runner.model.named_parameters())
    changed = [name for name, before in trainable.items() if not torch.equal(after[name], before)]
    assert any(name.startswith('backbone.') for name in changed), f'{kind}: no backbone weight was trained'
    assert all(torch.isfinite(after[name]).all() for name in trainable)
