"""Checkpoints that do not fit: testing and resuming refuse them naming the keys, load_from warns, resuming refuses
changed settings, and checkpoint paths that are directories, not checkpoints or refused by weights-only loading
are named with what the key takes."""
import copy
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401
from lift_mm.datasets.synthetic_long_tail import synthetic_class_names
from lift_mm.engine import (CheckpointMismatchError, CorruptCheckpointError, apply_runner_arguments,
                            load_checkpoint_strictly)
from lift_mm.models.utils import build_open_clip
from demo_runs import demo_runner, last_metrics, one_thread, tool_environment
from tiny_clip import tiny_clip_arch

REPO = Path(__file__).resolve().parents[1]
CONFIG = 'configs/lift/lift_demo.py'
# One epoch of the demo (15 iterations) with its checkpoint, epoch_1.pth.
ONE_EPOCH = {'train_cfg.max_epochs': 1}
ADAPTER = 'backbone.visual.transformer.resblocks.{}.light_modules.AdaptFormer.bottleneck.down_proj.weight'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The demo trained for one epoch: its data, config and checkpoint."""
    root = tmp_path_factory.mktemp('compatibility')
    with one_thread():
        runner = demo_runner(CONFIG, root / 'work', root / 'data', ONE_EPOCH)
        runner.train()
    return SimpleNamespace(root=root, data_root=root / 'data', checkpoint=root / 'work' / 'epoch_1.pth',
                           cfg=copy.deepcopy(runner.cfg))


def model_checkpoint(trained, path: Path, **changes) -> Path:
    """A checkpoint of the demo model with ``changes`` to its config, as MMEngine writes its state dict."""
    cfg = Config(copy.deepcopy(trained.cfg._cfg_dict.to_dict()))
    cfg.merge_from_dict(changes)
    model = MODELS.build(cfg.model)
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)
    return path


def nine_classes(trained, path):
    names = synthetic_class_names(9)
    return model_checkpoint(trained, path, **{'model.head.num_classes': 9, 'model.head.classnames': names,
                                              'model.backbone.num_classes': 9})


def other_bottleneck(trained, path):
    return model_checkpoint(trained, path,
                            **{'model.backbone.light_modules': [dict(type='AdaptFormer', bottleneck=4)]})


def no_light_modules(trained, path):
    return model_checkpoint(trained, path, **{'model.backbone.light_modules': []})


def saved(content):
    def write(trained, path):
        torch.save(content(trained) if callable(content) else content, path)
        return path
    return write


def runner_for(trained, tmp_path, options=None):
    return demo_runner(CONFIG, tmp_path / 'work', trained.data_root, {**ONE_EPOCH, **(options or {})})


# Testing loads strictly.


@pytest.mark.parametrize('make, options, error, match', [
    (nine_classes, {}, CheckpointMismatchError,
     r'does not fit the model of this config, so the results would not be the checkpoint\'s:\n'
     r'  other shapes \(1\): head\.weight \[9, 64\] in the checkpoint, \[10, 64\] in the model\n'
     r"Test it with the config it was trained with \(the checkpoint keeps it in meta\['cfg'\]\)"),
    (other_bottleneck, {}, CheckpointMismatchError,
     r'other shapes \(\d+\): ' + re.escape(ADAPTER.format(0)) + r' \[4, 64\] in the checkpoint, \[2, 64\] in the '
     r'model'),
    (no_light_modules, {}, CheckpointMismatchError,
     r'missing from the checkpoint \(\d+\): backbone\.visual\.transformer\.resblocks\.0\.light_modules\.AdaptFormer'),
    (lambda trained, path: trained.checkpoint, {'model.backbone.light_modules': []}, CheckpointMismatchError,
     r'not in the model \(\d+\): backbone\.visual\.transformer\.resblocks\.0\.light_modules\.AdaptFormer'),
    (saved({}), {}, ValueError, r'it is empty, there are no weights to load; it takes an MMEngine checkpoint'),
    (saved(dict(meta={}, state_dict={})), {}, ValueError, r'`state_dict` is empty, there are no weights to load'),
    (saved(lambda trained: dict(model=torch.load(trained.checkpoint)['state_dict'])), {}, ValueError,
     r"it has entries that are not tensors \(\{'model': 'OrderedDict'\}\), so it is not a state dict; it takes an "
     r"MMEngine checkpoint .*`torch\.save\(dict\(state_dict=checkpoint\['model'\]\), path\)`"),
    (saved(torch.ones(3)), {}, ValueError, r'holds a Tensor, not a checkpoint: it takes an MMEngine checkpoint \(a '
     r'dict whose `state_dict` maps parameter names to tensors'),
], ids=['nine-classes', 'other-bottleneck', 'no-light-modules', 'light-modules-not-in-the-model', 'empty',
        'empty-state-dict', 'nested-under-model', 'bare-tensor'])
def test_testing_refuses_a_checkpoint_that_does_not_fit_naming_the_keys(make, options, error, match, trained,
                                                                        tmp_path):
    path = make(trained, tmp_path / 'checkpoint.pth')
    runner = runner_for(trained, tmp_path, {'load_from': str(path), **options})
    with pytest.raises(error, match=rf'The checkpoint {re.escape(str(path))} \(`load_from`, the CHECKPOINT of '
                       rf'tools/test.py\)(.|\n)*{match}'):
        runner.test()


def test_testing_a_checkpoint_that_fits_reproduces_its_weights(trained, tmp_path):
    runner = runner_for(trained, tmp_path, {'load_from': str(trained.checkpoint)})
    runner.test()
    saved_state = torch.load(trained.checkpoint)['state_dict']
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, saved_state[key])


@pytest.mark.slow
def test_test_tool_fails_on_a_checkpoint_with_other_classes(trained, tmp_path):
    path = nine_classes(trained, tmp_path / 'nine_classes.pth')
    command = [sys.executable, 'tools/test.py', CONFIG, str(path), '--work-dir', str(tmp_path / 'work'),
               '--cfg-options', *(f'{loader}.dataset.data_root={trained.data_root}' for loader in
                                  ('train_dataloader', 'val_dataloader', 'test_dataloader'))]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=tool_environment())
    assert result.returncode != 0
    assert 'CheckpointMismatchError' in result.stderr
    assert 'head.weight [9, 64] in the checkpoint, [10, 64] in the model' in result.stderr
    with pytest.raises(AssertionError, match='no long-tail metrics'):
        last_metrics(result.stdout + result.stderr)


def test_the_inferencer_loads_strictly_through_load_checkpoint_strictly(trained, tmp_path):
    from mmpretrain import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(trained.cfg, pretrained=False)
    with pytest.raises(CheckpointMismatchError, match=rf'The checkpoint {re.escape(str(tmp_path))}/nine\.pth does '
                       r'not fit the model:\n  other shapes \(1\): head\.weight \[9, 64\]'):
        load_checkpoint_strictly(inferencer.model, str(nine_classes(trained, tmp_path / 'nine.pth')))
    load_checkpoint_strictly(inferencer.model, str(trained.checkpoint))
    torch.testing.assert_close(inferencer.model.head.weight,
                               torch.load(trained.checkpoint)['state_dict']['head.weight'])


def test_the_tools_check_checkpoints_whatever_runtime_the_config_has():
    args = SimpleNamespace(local_rank=0, launcher='none', work_dir='work', config='own_config.py')
    own = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook'))))
    apply_runner_arguments(own, args)
    assert own.default_hooks.checkpoint_compatibility == dict(type='CheckpointCompatibilityHook')
    switched_off = Config(dict(default_hooks=dict(checkpoint_compatibility=None)))
    apply_runner_arguments(switched_off, args)
    assert switched_off.default_hooks.checkpoint_compatibility is None


# load_from keeps fine-tuning semantics and warns.


def test_load_from_loads_what_fits_and_warns_listing_the_rest(trained, tmp_path, monkeypatch):
    path = nine_classes(trained, tmp_path / 'nine_classes.pth')
    initialised = runner_for(trained, tmp_path / 'initialised', {'train_cfg.max_epochs': 0})
    initialised.train()
    runner = runner_for(trained, tmp_path, {'load_from': str(path), 'train_cfg.max_epochs': 0})
    warnings = []
    monkeypatch.setattr(runner.logger, 'warning', lambda message, *args, **kwargs: warnings.append(message))
    runner.train()
    assert any(message.startswith(f'`load_from`={str(path)!r} does not fit the model exactly; training starts with '
                                  'these entries as the model initialised them') and
               'head.weight [9, 64] in the checkpoint, [10, 64] in the model' in message for message in warnings)
    saved_state = torch.load(path)['state_dict']
    torch.testing.assert_close(runner.model.state_dict()[ADAPTER.format(1)], saved_state[ADAPTER.format(1)])
    torch.testing.assert_close(runner.model.head.weight, initialised.model.head.weight)


# Resuming loads strictly and refuses changed settings.


@pytest.mark.parametrize('options, difference', [
    ({'train_dataloader.batch_size': 16}, 'train_dataloader.batch_size: 32 in the checkpoint, 16 now'),
    ({'optim_wrapper.optimizer.lr': 0.02}, 'optim_wrapper.optimizer.lr: 0.01 in the checkpoint, 0.02 now'),
    ({'train_cfg.max_epochs': 2}, 'train_cfg.max_epochs: 1 in the checkpoint, 2 now'),
    ({'model.backbone.light_modules': [dict(type='LoRA', bottleneck=2)]},
     "model.backbone.light_modules: [{'bottleneck': 'auto', 'type': 'AdaptFormer'}] in the checkpoint, "
     "[{'type': 'LoRA', 'bottleneck': 2}] now"),
], ids=['batch-size', 'learning-rate', 'schedule-length', 'light-modules'])
def test_resume_refuses_settings_that_change_the_results(options, difference, trained, tmp_path):
    runner = runner_for(trained, tmp_path, {'load_from': str(trained.checkpoint), 'resume': True, **options})
    with pytest.raises(CheckpointMismatchError, match=rf'The checkpoint to resume, {re.escape(str(trained.checkpoint))}'
                       r' \(`--resume`, `load_from`\) was saved with other settings than this run(.|\n)*'
                       + re.escape(difference) + r'(.|\n)*on_config_change=warn'):
        runner.train()


def test_resume_with_the_same_settings_continues(trained, tmp_path):
    runner = runner_for(trained, tmp_path, {'load_from': str(trained.checkpoint), 'resume': True})
    runner.train()
    assert runner.epoch == 1


def test_resume_with_changed_settings_warns_when_asked_to(trained, tmp_path, monkeypatch):
    runner = runner_for(trained, tmp_path, {'load_from': str(trained.checkpoint), 'resume': True,
                                            'optim_wrapper.optimizer.lr': 0.02,
                                            'default_hooks.checkpoint_compatibility.on_config_change': 'warn'})
    warnings = []
    monkeypatch.setattr(runner.logger, 'warning', lambda message, *args, **kwargs: warnings.append(message))
    runner.train()
    assert any('was saved with other settings than this run' in message
               and 'optim_wrapper.optimizer.lr: 0.01 in the checkpoint, 0.02 now' in message for message in warnings)
    assert runner.epoch == 1


def test_resume_refuses_a_checkpoint_that_does_not_fit_naming_the_keys(trained, tmp_path):
    runner = runner_for(trained, tmp_path, {
        'load_from': str(trained.checkpoint), 'resume': True,
        'model.backbone.light_modules': [dict(type='AdaptFormer', bottleneck=4)],
        'default_hooks.checkpoint_compatibility.on_config_change': 'warn'})
    with pytest.raises(CheckpointMismatchError, match=r'does not fit the model of this config:\n  other shapes '
                       r'\(\d+\): ' + re.escape(ADAPTER.format(0)) + r' \[2, 64\] in the checkpoint, \[4, 64\] in the '
                       r'model(.|\n)*Resume with the config the run was trained with'):
        runner.train()


# Paths that are not checkpoints: name the key and what it takes.


@pytest.mark.parametrize('options, source', [
    ({}, r'The checkpoint {} \(`load_from`, the CHECKPOINT of tools/test.py\)'),
    ({'resume': True}, r'The checkpoint to resume, {} \(`--resume`, `load_from`\)'),
], ids=['test', 'resume'])
def test_a_directory_as_checkpoint_is_named_with_the_key(options, source, trained, tmp_path):
    runner = runner_for(trained, tmp_path, {'load_from': str(trained.root / 'work'), **options})
    run = runner.train if options.get('resume') else runner.test
    with pytest.raises(IsADirectoryError, match=source.format(re.escape(str(trained.root / 'work'))) +
                       r' is a directory; it takes a checkpoint file such as .*epoch_1\.pth'):
        run()
    with pytest.raises(IsADirectoryError, match=r'is a directory, not a checkpoint: give the path of a checkpoint '
                       r'file in it'):
        _load_checkpoint(str(trained.root / 'work'))


class RunsCode:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return os.system, ('true', )


def test_weights_only_refusal_names_the_file_without_torch_advice(tmp_path):
    path = tmp_path / 'code.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1)), payload=RunsCode()), path)
    with pytest.raises(pickle.UnpicklingError, match=rf"{re.escape(str(path))} cannot be loaded safely: torch's "
                       r'weights-only unpickling refused it \(.*GLOBAL posix\.system.*\)\. It takes a checkpoint '
                       r'written by torch\.save') as error:
        _load_checkpoint(str(path))
    assert 'will likely succeed' not in str(error.value) and 'weights_only` set to `False' not in str(error.value)


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('not a checkpoint')
    with pytest.raises(CorruptCheckpointError, match=rf'{re.escape(str(path))} is not a complete checkpoint: it does '
                       r"not start as files written by torch\.save do .* but with b'not ': it is damaged, or not a "
                       r'checkpoint at all'):
        _load_checkpoint(str(path))


# `pretrained` that is not CLIP weights.


@pytest.mark.parametrize('content, error, match', [
    ('directory', IsADirectoryError, r'is a directory; it takes an open_clip tag such as \'openai\', or a CLIP '
     r'checkpoint file of the architecture'),
    ('text', ValueError, r'is not a checkpoint \(it does not start as files written by torch\.save do\); it takes '
     r'an open_clip tag'),
    ('tensor', ValueError, r'holds no CLIP weights of this architecture \(.*\); it takes an open_clip tag'),
    ('lift-checkpoint', ValueError, r'holds no CLIP weights of this architecture \(.*\); it takes an open_clip tag'
     r'.*A checkpoint of a trained lift_mm model goes to `load_from` or tools/test\.py instead'),
    ('code', pickle.UnpicklingError, r"cannot be loaded safely: torch's weights-only unpickling refused it \(.*GLOBAL "
     r'posix\.system.*\)\. It takes an open_clip tag'),
], ids=['directory', 'text', 'bare-tensor', 'lift-checkpoint', 'code'])
def test_pretrained_that_is_not_clip_weights_names_the_key(content, error, match, trained, tmp_path):
    path = tmp_path / 'clip.pt'
    if content == 'directory':
        path.mkdir()
    elif content == 'text':
        path.write_text('ViT-B-16')
    elif content == 'tensor':
        torch.save(torch.ones(3), path)
    elif content == 'lift-checkpoint':
        path = trained.checkpoint
    else:
        torch.save(dict(payload=RunsCode()), path)
    with pytest.raises(error, match=rf'`pretrained`={re.escape(repr(str(path)))} ' + match) as raised:
        build_open_clip(tiny_clip_arch(), str(path))
    assert 'will likely succeed' not in str(raised.value)
