"""Runs print no warnings that lift_mm causes or that say nothing to its users, and every other warning still shows:
mmcv-lite's missing-op warning on import, pinned memory without an accelerator, MMEngine's FileClient notices and
the optimiser constructor's list of frozen parameters. (The end-to-end demo run counts the warning lines of a whole
run: tests/test_end_to_end.py.)"""
import importlib.util
import logging
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from mmpretrain.registry import HOOKS, MODELS

import lift_mm  # noqa: F401
from demo_runs import REPO
from tiny_clip import tiny_clip_arch

DEMO = 'configs/lift/lift_demo.py'
MMCV_LITE_WARNING = 'Fail to import ``MultiScaleDeformableAttention`` from ``mmcv.ops.multi_scale_deform_attn``'
SKIPPED = 'is skipped since its requires_grad=False'


class Records(logging.Handler):
    """The messages a logger passes on to its handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logger():
    """A new MMEngine logger, the current one (what `print_log(logger='current')` writes to), with its records."""
    logger = MMLogger.get_instance(f'quiet-{uuid.uuid4().hex}', log_level='INFO')
    logger.records = Records()
    logger.addHandler(logger.records)
    return logger


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'lift_{name}_tool', REPO / f'tools/{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_importing_lift_mm_silences_mmcv_lites_missing_op_warning_only():
    # The same message from any other module still shows.
    code = ('import warnings; import lift_mm; '
            f'warnings.warn_explicit({MMCV_LITE_WARNING!r}, UserWarning, "other.py", 7, module="other")')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f'other.py:7: UserWarning: {MMCV_LITE_WARNING}']


@pytest.mark.parametrize('accelerator', [False, True])
@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_pin_memory_only_with_an_accelerator(tool, accelerator, monkeypatch):
    monkeypatch.setattr(torch.accelerator, 'is_available', lambda: accelerator)
    module = load_tool(tool)
    for flag in ([], ['--no-pin-memory']):
        monkeypatch.setattr(sys, 'argv', [f'{tool}.py', DEMO, *(['x.pth'] if tool == 'test' else []), *flag])
        cfg = module.merge_args(Config.fromfile(str(REPO / DEMO)), module.parse_args())
        loaders = [cfg.test_dataloader] if tool == 'test' else [cfg.train_dataloader, cfg.val_dataloader,
                                                                cfg.test_dataloader]
        assert [loader.pin_memory for loader in loaders] == [accelerator and not flag] * len(loaders)


@pytest.mark.parametrize('backbone', [
    dict(type='LightVisionTransformer', arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=256),
         img_size=32, patch_size=8),
    dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=None),
], ids=['mmpretrain-vit', 'clip-vit'])
def test_optimizer_constructor_does_not_list_frozen_parameters(backbone, logger):
    model = MODELS.build(dict(backbone, light_modules=[dict(type='AdaptFormer', bottleneck=4)]))
    frozen = [name for name, param in model.named_parameters() if not param.requires_grad]
    # mmpretrain's transformer schedules set a paramwise_cfg, which makes the constructor go through each parameter.
    optimizer = dict(type='SGD', lr=0.1, weight_decay=1e-4)
    constructor = DefaultOptimWrapperConstructor(dict(type='OptimWrapper', optimizer=optimizer),
                                                 paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
    wrapper = constructor(model)
    logger.warning('another warning')
    assert frozen and not [message for message in logger.records.messages if SKIPPED in message]
    assert 'another warning' in logger.records.messages
    trainable = {id(param) for param in model.parameters() if param.requires_grad}
    assert {id(param) for group in wrapper.optimizer.param_groups for param in group['params']} == trainable


@pytest.mark.parametrize('file_client_args, notices', [(None, 0), (dict(backend='disk'), 1)])
def test_checkpoint_hook_drops_the_notices_of_file_clients_only_it_creates(file_client_args, notices, logger,
                                                                           tmp_path):
    hook = HOOKS.build(dict(type='AtomicCheckpointHook', interval=1, file_client_args=file_client_args))
    runner = SimpleNamespace(work_dir=str(tmp_path), logger=logger,
                             message_hub=MessageHub.get_instance(f'quiet-{uuid.uuid4().hex}'))
    hook.before_train(runner)
    logger.warning('another warning')
    # (HardDiskBackend's notice only comes with the first FileClient of a process.)
    deprecated = [message for message in logger.records.messages if message.startswith('"FileClient" will be')]
    assert len(deprecated) == notices and 'another warning' in logger.records.messages
