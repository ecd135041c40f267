"""Checkpoint files under interruption: atomic saves, the completeness check, and what auto-resume picks."""
import copy
import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
from mmpretrain.registry import HOOKS

import lift_mm  # noqa: F401
from lift_mm.engine import checkpoint_files
from lift_mm.engine.checkpoint_files import (ATOMIC_BACKEND, AtomicLocalBackend, CorruptCheckpointError,
                                             checkpoint_problem, find_resumable_checkpoint, partial_files,
                                             resolve_auto_resume)
from lift_mm.engine.hooks import AtomicCheckpointHook
from lift_mm.utils import atomic_files
from demo_runs import REPO, demo_runner, one_thread

DEMO = 'configs/lift/lift_demo.py'


@pytest.fixture
def warnings(monkeypatch):
    """The messages checkpoint_files logs."""
    messages = []
    monkeypatch.setattr(checkpoint_files, 'print_log', lambda message, **kwargs: messages.append(message))
    return messages


def save(path: Path, value: float, mtime: Optional[float] = None) -> Path:
    save_checkpoint(dict(state_dict=dict(weight=torch.full((64, ), value))), str(path))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def weight(path: Path) -> torch.Tensor:
    return torch.load(path)['state_dict']['weight']


def truncate(path: Path) -> Path:
    with open(path, 'r+b') as file:
        file.truncate(path.stat().st_size - 100)
    return path


def write_last_checkpoint(work_dir: Path, text: str) -> None:
    (work_dir / 'last_checkpoint').write_text(text)


# Atomic writes.


def test_atomic_backend_replaces_the_file_and_cleans_up_after_a_failed_write(tmp_path, monkeypatch):
    target = tmp_path / 'sub' / 'epoch_1.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old', target)
    backend.put_text('new', target)
    assert target.read_bytes() == b'new'

    def fail(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', fail)
    with pytest.raises(OSError, match='No space left'):
        backend.put(b'newer', target)
    assert target.read_bytes() == b'new' and partial_files(str(target.parent)) == []


class FullDiskFile(io.FileIO):
    """A file on a disk that fills up after the first 10 bytes written to it."""

    def write(self, data) -> int:
        super().write(bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_checkpoint_being_saved(tmp_path, monkeypatch):
    target = save(tmp_path / 'epoch_1.pth', 1.0)
    monkeypatch.setattr(atomic_files, 'open', FullDiskFile, raising=False)
    with pytest.raises(OSError, match=rf"No space left on device while saving: '{target}'") as raised:
        save_checkpoint(dict(state_dict=dict(weight=torch.full((64, ), 2.0))), str(target),
                        backend_args=dict(backend=ATOMIC_BACKEND))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert torch.equal(weight(target), torch.ones(64)) and partial_files(str(tmp_path)) == []


def test_a_save_killed_midway_leaves_the_previous_checkpoint_complete(tmp_path):
    target = save(tmp_path / 'epoch_1.pth', 1.0)
    write_last_checkpoint(tmp_path, str(target))
    # 200 MB take long enough to write and flush for the kill to land midway.
    script = ('import sys, torch\n'
              f'sys.path.insert(0, {str(REPO)!r})\n'
              'import lift_mm\n'
              'from mmengine.runner.checkpoint import save_checkpoint\n'
              'save_checkpoint(dict(state_dict=dict(weight=torch.full((50_000_000, ), 2.0))), sys.argv[1], '
              f'backend_args=dict(backend={ATOMIC_BACKEND!r}))\n')
    proc = subprocess.Popen([sys.executable, '-c', script, str(target)])
    deadline = time.monotonic() + 120
    while not partial_files(str(tmp_path)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'the save ended before it could be killed'
    assert partial_files(str(tmp_path)), 'the save was killed before it started writing'

    assert checkpoint_problem(str(target)) is None and torch.equal(weight(target), torch.ones(64))
    assert find_resumable_checkpoint(str(tmp_path)) == str(target)


def test_atomic_checkpoint_hook_saves_through_the_atomic_backend_and_removes_partial_files(tmp_path):
    hook = HOOKS.build(Config.fromfile(str(REPO / 'configs/lift/lift_demo.py')).default_hooks.checkpoint)
    assert isinstance(hook, AtomicCheckpointHook)
    assert isinstance(get_file_backend(str(tmp_path), backend_args=hook.backend_args), AtomicLocalBackend)

    partial = tmp_path / '.epoch_3.pth.0123abcd.partial'
    partial.write_bytes(b'PK\x03\x04')
    runner = SimpleNamespace(work_dir=str(tmp_path), logger=MMLogger.get_instance('atomic-hook-test'),
                             message_hub=MessageHub.get_instance('atomic-hook-test'))
    hook.before_train(runner)
    assert not partial.exists()


def test_atomic_checkpoint_hook_leaves_remote_storage_to_its_backend():
    hook = AtomicCheckpointHook(interval=1, out_dir='s3://bucket/checkpoints')
    assert not hook.atomic and hook.backend_args is None


# Completeness of checkpoint files.


def test_checkpoint_problem_finds_empty_cut_and_damaged_files(tmp_path):
    good = save(tmp_path / 'good.pth', 1.0)
    assert checkpoint_problem(str(good)) is None
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_problem(str(tmp_path / 'empty.pth')) == 'the file is empty'
    assert 'cut short or damaged' in checkpoint_problem(str(truncate(save(tmp_path / 'cut.pth', 1.0))))
    data = bytearray(good.read_bytes())
    # One flipped byte in the tensor's data.
    position = bytes(data).index(torch.full((64, ), 1.0).numpy().tobytes())
    data[position] ^= 0xFF
    (tmp_path / 'flipped.pth').write_bytes(bytes(data))
    assert 'fails the CRC-32 check' in checkpoint_problem(str(tmp_path / 'flipped.pth'))
    # Legacy (pickle) checkpoints cannot be checked beyond being empty.
    torch.save(dict(weight=torch.ones(2)), tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    assert checkpoint_problem(str(tmp_path / 'legacy.pth')) is None


def damage_name_field(path: Path) -> Path:
    """Damage one byte of the name of ``data.pkl`` in the zip directory of ``path``, a torch checkpoint."""
    data = bytearray(path.read_bytes())
    position = data.index(b'archive/data.pkl', data.index(b'PK\x01\x02')) + len('archive/')
    # Names are flagged as UTF-8; 0xFF is never valid UTF-8.
    data[position] = 0xFF
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_byte_in_a_zip_name_field_is_a_corrupt_checkpoint(tmp_path):
    damaged = damage_name_field(save(tmp_path / 'epoch_1.pth', 1.0))
    with pytest.raises(CorruptCheckpointError, match=rf'{damaged} is not a complete checkpoint: its zip archive is '
                       'cut short or damaged \\(UnicodeDecodeError'):
        _load_checkpoint(str(damaged))


def test_every_damaged_byte_is_harmless_or_a_corrupt_checkpoint(tmp_path):
    good = save(tmp_path / 'good.pth', 1.0).read_bytes()
    damaged, outcomes = tmp_path / 'damaged.pth', set()
    for position in range(len(good)):
        data = bytearray(good)
        data[position] ^= 0xFF
        damaged.write_bytes(bytes(data))
        try:
            loaded = checkpoint_files.load_local_checkpoint(str(damaged))
        except CorruptCheckpointError as err:
            assert str(err).startswith(f'{damaged} is not a complete checkpoint: '), (position, err)
            outcomes.add('corrupt')
        else:
            # Bytes neither reader uses, such as timestamps.
            assert torch.equal(loaded['state_dict']['weight'], torch.ones(64)), position
            outcomes.add('harmless')
    assert outcomes == {'corrupt', 'harmless'}


def test_loading_a_damaged_checkpoint_names_it(tmp_path):
    path = truncate(save(tmp_path / 'epoch_1.pth', 1.0))
    with pytest.raises(CorruptCheckpointError, match=rf'{path} is not a complete checkpoint: its zip archive'):
        _load_checkpoint(str(path))
    assert torch.equal(_load_checkpoint(str(save(tmp_path / 'good.pth', 3.0)))['state_dict']['weight'],
                       torch.full((64, ), 3.0))


# What auto-resume picks.


def test_resume_uses_the_checkpoint_last_checkpoint_names(tmp_path, warnings):
    older = save(tmp_path / 'epoch_1.pth', 1.0, mtime=1000)
    save(tmp_path / 'best_top1_epoch_2.pth', 2.0, mtime=3000)
    write_last_checkpoint(tmp_path, str(older))
    assert find_resumable_checkpoint(str(tmp_path)) == str(older) and warnings == []


def test_resume_skips_a_damaged_newest_checkpoint_with_a_warning(tmp_path, warnings):
    older = save(tmp_path / 'epoch_1.pth', 1.0, mtime=1000)
    newest = truncate(save(tmp_path / 'epoch_2.pth', 2.0, mtime=2000))
    write_last_checkpoint(tmp_path, str(newest))
    (tmp_path / '.epoch_3.pth.0123abcd.partial').write_bytes(b'PK')
    assert find_resumable_checkpoint(str(tmp_path)) == str(older)
    assert warnings[0].startswith(f'Not resuming from {newest}: its zip archive is cut short')


@pytest.mark.parametrize('last_checkpoint', [None, '', 'missing'], ids=['absent', 'empty', 'names-missing-file'])
def test_resume_falls_back_to_the_newest_complete_file(last_checkpoint, tmp_path, warnings):
    save(tmp_path / 'epoch_1.pth', 1.0, mtime=1000)
    newest = save(tmp_path / 'epoch_2.pth', 2.0, mtime=2000)
    if last_checkpoint is not None:
        write_last_checkpoint(tmp_path, last_checkpoint and str(tmp_path / 'epoch_3.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(newest)
    assert any(message.startswith(f'Resuming from {newest}, the newest complete checkpoint') for message in warnings)


@pytest.mark.parametrize('named', ['moved', 'junk'])
def test_resume_searches_the_work_dir_when_last_checkpoint_names_a_missing_file(named, tmp_path, warnings):
    save(tmp_path / 'epoch_1.pth', 1.0, mtime=1000)
    newest = save(tmp_path / 'epoch_2.pth', 2.0, mtime=2000)
    # The run's work dir was renamed after its last save; or a broken write left junk in last_checkpoint.
    text = str(tmp_path.parent / 'old_name' / 'epoch_2.pth') if named == 'moved' else 'epo\x00\ufffd'
    write_last_checkpoint(tmp_path, text)
    assert find_resumable_checkpoint(str(tmp_path)) == str(newest)
    assert warnings[0] == (f"{tmp_path / 'last_checkpoint'} names {text!r}, which does not exist; looking for "
                           f'checkpoints in {tmp_path}.')


def test_resume_refuses_to_start_afresh_when_the_named_checkpoint_and_all_others_are_missing(tmp_path, warnings):
    write_last_checkpoint(tmp_path, str(tmp_path.parent / 'old_name' / 'epoch_2.pth'))
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'last_checkpoint'} names the checkpoint "
                       rf"'{tmp_path.parent / 'old_name' / 'epoch_2.pth'}', which does not exist, and {tmp_path} "
                       r'holds no checkpoint .*delete .*last_checkpoint to start afresh'):
        find_resumable_checkpoint(str(tmp_path))


def test_resume_skips_a_checkpoint_with_a_damaged_name_field(tmp_path, warnings):
    older = save(tmp_path / 'epoch_1.pth', 1.0, mtime=1000)
    newest = damage_name_field(save(tmp_path / 'epoch_2.pth', 2.0, mtime=2000))
    write_last_checkpoint(tmp_path, str(newest))
    assert find_resumable_checkpoint(str(tmp_path)) == str(older)
    assert warnings[0].startswith(f'Not resuming from {newest}: its zip archive is cut short or damaged '
                                  '(UnicodeDecodeError')


def test_resume_refuses_when_every_checkpoint_is_damaged(tmp_path, warnings):
    damaged = truncate(save(tmp_path / 'epoch_1.pth', 1.0))
    write_last_checkpoint(tmp_path, str(damaged))
    with pytest.raises(CorruptCheckpointError, match=rf"No complete checkpoint to resume from in {tmp_path}: "
                       rf"\['{damaged}'\]"):
        find_resumable_checkpoint(str(tmp_path))


def test_resolve_auto_resume_only_changes_automatic_resumes(tmp_path):
    newest = save(tmp_path / 'epoch_1.pth', 1.0)
    write_last_checkpoint(tmp_path, str(newest))
    automatic = Config(dict(resume=True, load_from=None, work_dir=str(tmp_path)))
    resolve_auto_resume(automatic)
    assert automatic.resume and automatic.load_from == str(newest)

    explicit = Config(dict(resume=True, load_from='/elsewhere/epoch_3.pth', work_dir=str(tmp_path)))
    resolve_auto_resume(explicit)
    assert explicit.load_from == '/elsewhere/epoch_3.pth'

    fresh = Config(dict(resume=True, load_from=None, work_dir=str(tmp_path / 'new')))
    resolve_auto_resume(fresh)
    assert not fresh.resume and fresh.load_from is None


# The validation after a checkpoint, interrupted.


class InterruptValidation(Hook):
    """Fails the first validation of a run midway, as a kill would end it."""

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if batch_idx == 1:
            raise RuntimeError('killed during validation')


class RecordValidations(Hook):
    """The loop position and top-1 accuracy of each validation of a run."""

    def __init__(self) -> None:
        self.validations = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.validations.append((runner.iter, metrics['long_tail/top1']))


def test_an_iteration_based_run_interrupted_in_validation_validates_when_resumed(tmp_path):
    # 4 iterations, a checkpoint and a validation every 2 (the validation: 4 batches of 50 images).
    options = {
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=2),
        'param_scheduler': dict(by_epoch=False, end=4, T_max=4),
        'default_hooks.checkpoint.by_epoch': False, 'default_hooks.checkpoint.interval': 2,
        'log_processor.by_epoch': False, 'val_dataloader.batch_size': 50,
        'randomness': dict(seed=0, deterministic=True),
    }
    data_root = tmp_path / 'data'

    def train(name: str, *hooks: Hook, **resume) -> List[tuple]:
        # Merging takes `_delete_` out of the options.
        runner = demo_runner(DEMO, tmp_path / name, data_root, {**copy.deepcopy(options), **resume}, validate=True)
        recorder = RecordValidations()
        for hook in (recorder, *hooks):
            runner.register_hook(hook)
        with one_thread():
            runner.train()
        return recorder.validations

    expected = train('uninterrupted')
    assert [position for position, _ in expected] == [2, 4]

    with pytest.raises(RuntimeError, match='killed during validation'):
        train('interrupted', InterruptValidation())
    checkpoint = tmp_path / 'interrupted' / 'iter_2.pth'
    assert torch.load(checkpoint)['meta']['validation_pending']
    assert train('interrupted', resume=True, load_from=str(checkpoint)) == expected
    assert not torch.load(checkpoint)['meta'].get('validation_pending')
    assert not torch.load(tmp_path / 'interrupted' / 'iter_4.pth')['meta'].get('validation_pending')
