"""Faults met by whole runs of the tools: killed runs resume to the same result, damaged checkpoints, other
foundation weights, unreadable images, changed annotation files, and a rank that dies or hangs in data-parallel
training.

Runs are subprocesses in their own sessions, killed with SIGKILL (every process of the run, launcher and DDP
workers included, as when a job is killed) at a point read from their log output.
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import suppress
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch

import lift_mm  # noqa: F401  (allow-lists MMEngine checkpoints for weights-only loading)
from lift_mm.datasets import SyntheticLongTail
from lift_mm.models.utils import build_open_clip, fingerprint, fingerprint_hex
from demo_runs import REPO, free_port, tool_environment
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch

pytestmark = pytest.mark.slow

DEMO = REPO / 'configs/lift/lift_demo.py'
# One thread per process: runs share 2 cores with their data-loader workers (and DDP ranks), and OpenMP threads
# spinning on busy cores roughly doubled the CPU time of these small runs.
ENV = tool_environment(PYTHONUNBUFFERED='1')
RUN_TIMEOUT = 600
# The metrics line of a validation or test run, e.g. "Epoch(val) [2][7/7]    long_tail/top1: 45.0000 ...".
METRICS = re.compile(r'\((?:val|test)\) \[[\d\[\]/ ]+\]\s+(long_tail/top1: .*?)\s+data_time')
# Iterations of a demo epoch (462 training images, 32 per batch and process) by number of processes.
ITERS_PER_EPOCH = {1: 15, 2: 8}
# Epoch-based: 2 epochs, a checkpoint after each; iteration-based: 24 iterations, a checkpoint every 7, which
# does not divide the 15 (one process) or 8 (two processes) iterations of an epoch, and a log line for each.
# Validation only at the end.
LOOPS = dict(
    epoch=dict(config='train_cfg = dict(max_epochs=2, val_interval=2)\n'
               'param_scheduler = dict(end=2, T_max=2)\n',
               final='epoch_2.pth'),
    iter=dict(config="train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=24, val_interval=24)\n"
              'param_scheduler = dict(by_epoch=False, end=24, T_max=24)\n'
              'default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=7))\n'
              'log_processor = dict(by_epoch=False)\n',
              final='iter_24.pth'),
)
# Killed mid-epoch after a checkpoint: at iteration 5 of epoch 2 (epoch-based: the run resumes from the end of
# epoch 1); at iteration 18, the 3rd of epoch 2 (one process) or the 2nd of epoch 3 (two processes), after the
# checkpoint of iteration 14 (iteration-based: the run resumes there, mid-epoch).
KILL_AT = dict(epoch=r'Epoch\(train\)\s*\[2\]\[\s*5/', iter=r'Iter\(train\)\s*\[\s*18/24\]')


def train_command(config: Path, work_dir: Path, data_root: Path, procs: int = 1, options: Sequence[str] = (),
                  resume: Optional[str] = None) -> List[str]:
    launcher = [sys.executable, 'tools/train.py', str(config)] if procs == 1 else \
        ['bash', 'tools/dist_train.sh', str(config), str(procs)]
    resume_args = [] if resume is None else ['--resume'] + ([resume] if resume != 'auto' else [])
    return [*launcher, '--work-dir', str(work_dir), *resume_args, '--cfg-options', *data_options(data_root),
            *options]


def data_options(data_root: Path) -> List[str]:
    return [f'{loader}.dataset.data_root={data_root}' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def run(command: Sequence[str], expect_success: bool = True) -> str:
    """Run a tool to its end; its output (stdout and stderr)."""
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**ENV, 'PORT': str(free_port())},
                            timeout=RUN_TIMEOUT)
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == expect_success, f'exit code {result.returncode}:\n{output[-5000:]}'
    return output


def process_groups(pid: int) -> Dict[int, List[int]]:
    """Process groups of ``pid`` and all its descendants, with the pids in each (from /proc)."""
    table = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            with suppress(OSError):
                with open(f'/proc/{entry}/stat') as stat:
                    fields = stat.read().rsplit(')', 1)[1].split()
                table[int(entry)] = (int(fields[1]), int(fields[2]))
    tree, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in table.items() if ppid == parent]
        tree += children
        frontier += children
    groups: Dict[int, List[int]] = {}
    for member in tree:
        if member in table and table[member][1] != os.getpgrp():
            groups.setdefault(table[member][1], []).append(member)
    return groups


def wait_until_gone(groups: Sequence[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for group in groups:
        while True:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f'process group {group} still runs'
            time.sleep(0.05)


def kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL every process of a run: torchrun starts each worker in a session of its own."""
    groups = process_groups(proc.pid)
    for group in groups:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=60)
    wait_until_gone(list(groups))


def start(command: Sequence[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**ENV, 'PORT': str(free_port())})


def read_until(proc: subprocess.Popen, pattern: str, lines: List[str]) -> None:
    """Collect the output of ``proc`` until a line matches ``pattern``; kill it all if that takes too long."""
    watchdog = threading.Timer(RUN_TIMEOUT, kill_run, [proc])
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if re.search(pattern, line):
                return
    finally:
        watchdog.cancel()
    pytest.fail(f'{pattern!r} never appeared in the output:\n{"".join(lines[-60:])}')


def run_and_kill(command: Sequence[str], pattern: str) -> str:
    """Run a tool until its output matches ``pattern``, then SIGKILL all its processes; its output."""
    proc, lines = start(command), []
    try:
        read_until(proc, pattern, lines)
    finally:
        kill_run(proc)
        proc.stdout.close()
    return ''.join(lines)


def final_metrics(log: str) -> str:
    found = METRICS.findall(log)
    assert found, f'no metrics in the log:\n{log[-3000:]}'
    return found[-1]


def training_state(path: Path) -> Dict[str, np.ndarray]:
    """Every tensor that training produced in a checkpoint: weights, optimizer state, and the logged history of
    the loss and learning rate of every iteration."""
    checkpoint = torch.load(path, map_location='cpu')
    state = {f'state_dict.{name}': value.numpy() for name, value in checkpoint['state_dict'].items()}
    for index, param_state in checkpoint['optimizer']['state'].items():
        state.update({f'optimizer.{index}.{name}': value.numpy() for name, value in param_state.items()})
    for name in ('train/loss', 'train/lr'):
        values, counts = checkpoint['message_hub']['log_scalars'][name].data
        state[f'log.{name}'], state[f'log.{name}.counts'] = values, counts
    return state


def assert_same_training_state(expected: Path, actual: Path) -> None:
    expected_state, actual_state = training_state(expected), training_state(actual)
    assert expected_state.keys() == actual_state.keys()
    differ = [name for name in expected_state if not np.array_equal(expected_state[name], actual_state[name])]
    assert not differ, f'{actual} differs from {expected} in {differ}'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('data') / 'lift-demo'
    SyntheticLongTail(data_root=str(root))  # generates the images once, for every run of this module
    return root


@pytest.fixture(scope='module')
def configs(tmp_path_factory) -> Dict[str, Path]:
    """The demo in deterministic mode, epoch- and iteration-based."""
    folder = tmp_path_factory.mktemp('configs')
    paths = {}
    for loop, spec in LOOPS.items():
        paths[loop] = folder / f'demo_{loop}.py'
        paths[loop].write_text(f'_base_ = [{str(DEMO)!r}]\nrandomness = dict(seed=0, deterministic=True)\n'
                               + spec['config'])
    return paths


@pytest.fixture(scope='module')
def uninterrupted(configs, data_root, tmp_path_factory):
    """Uninterrupted runs, each made once: ``uninterrupted(loop, procs)`` gives its work dir and log."""
    runs = {}

    def get(loop: str, procs: int):
        if (loop, procs) not in runs:
            work_dir = tmp_path_factory.mktemp(f'uninterrupted-{loop}-{procs}')
            runs[loop, procs] = work_dir, run(train_command(configs[loop], work_dir, data_root, procs))
        return runs[loop, procs]

    return get


# 1. Kill and resume.


@pytest.mark.parametrize('procs', [1, 2], ids=['one-process', 'ddp-2'])
@pytest.mark.parametrize('loop', ['epoch', 'iter'])
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(loop, procs, configs, data_root, uninterrupted,
                                                                  tmp_path):
    expected_dir, expected_log = uninterrupted(loop, procs)
    command = train_command(configs[loop], tmp_path, data_root, procs)
    killed_log = run_and_kill(command, KILL_AT[loop])
    final = LOOPS[loop]['final']
    assert not (tmp_path / final).exists() and (tmp_path / 'last_checkpoint').is_file(), killed_log[-3000:]

    resumed_log = run(train_command(configs[loop], tmp_path, data_root, procs, resume='auto'))
    resumed_at = re.search(r'resumed epoch: (\d+), iter: (\d+)', resumed_log)
    assert resumed_at, resumed_log[-3000:]
    if loop == 'epoch':
        # The partial second epoch is trained again from the start.
        assert resumed_at.groups() == ('1', str(ITERS_PER_EPOCH[procs]))
    else:
        assert resumed_at.group(2) == '14' and 'Advance dataloader 14 steps' in resumed_log
    assert_same_training_state(expected_dir / final, tmp_path / final)
    assert final_metrics(resumed_log) == final_metrics(expected_log)


def all_metrics(log: str) -> List[str]:
    return METRICS.findall(log)


def test_a_validation_killed_after_its_checkpoint_is_run_on_resume(configs, data_root, tmp_path):
    # Validation after each of the 2 epochs, one image per batch: 200 batches, long enough to be killed in.
    options = ['train_cfg.val_interval=1', 'val_dataloader.batch_size=1']
    expected = all_metrics(run(train_command(configs['epoch'], tmp_path / 'uninterrupted', data_root,
                                             options=options)))
    assert len(expected) == 2

    # Killed while validating epoch 1 (mid-run), then, resumed, while validating epoch 2 (the last).
    work_dir = tmp_path / 'killed'
    killed_log = run_and_kill(train_command(configs['epoch'], work_dir, data_root, options=options),
                              r'Epoch\(val\)\s*\[1\]\[\s*5/')
    assert torch.load(work_dir / 'epoch_1.pth')['meta'].get('validation_pending'), killed_log[-3000:]
    resumed_log = run_and_kill(train_command(configs['epoch'], work_dir, data_root, options=options, resume='auto'),
                               r'Epoch\(val\)\s*\[2\]\[\s*5/')
    assert 'resumed epoch: 1' in resumed_log
    assert resumed_log.index('Epoch(val) [1]') < resumed_log.index('Epoch(train) [2]'), resumed_log[-3000:]
    # Its validation finished, the checkpoint records it.
    assert not torch.load(work_dir / 'epoch_1.pth')['meta'].get('validation_pending')
    assert torch.load(work_dir / 'epoch_2.pth')['meta'].get('validation_pending')

    last_log = run(train_command(configs['epoch'], work_dir, data_root, options=options, resume='auto'))
    assert 'resumed epoch: 2' in last_log and 'Epoch(train)' not in last_log
    assert not torch.load(work_dir / 'epoch_2.pth')['meta'].get('validation_pending')
    # The metric history is complete and as the uninterrupted run's.
    assert all_metrics(resumed_log)[:1] + all_metrics(last_log) == expected


# 2. Checkpoints are written atomically; damaged ones are skipped or named.


def copy_run(work_dir: Path, destination: Path) -> Path:
    """A copy of a run's work dir, with ``last_checkpoint`` naming the copy's checkpoint."""
    shutil.copytree(work_dir, destination)
    last = Path((destination / 'last_checkpoint').read_text().strip())
    (destination / 'last_checkpoint').write_text(str(destination / last.name))
    return destination


def test_auto_resume_skips_a_damaged_newest_checkpoint(configs, data_root, uninterrupted, tmp_path):
    work_dir = copy_run(uninterrupted('epoch', 1)[0], tmp_path / 'run')
    newest = work_dir / 'epoch_2.pth'
    # A save killed without atomic writes: the newest checkpoint cut short; and the partial file an atomic save
    # leaves when killed.
    with open(newest, 'r+b') as file:
        file.truncate(newest.stat().st_size // 2)
    partial = work_dir / '.epoch_2.pth.0123abcd.partial'
    partial.write_bytes(b'PK\x03\x04')

    # Retraining epoch 2 is left to the kill-and-resume tests: one epoch suffices to see where training resumes
    # (a shorter schedule than the checkpoint's, which resuming refuses unless told to warn).
    log = run(train_command(configs['epoch'], work_dir, data_root, resume='auto',
                            options=['train_cfg.max_epochs=1',
                                     'default_hooks.checkpoint_compatibility.on_config_change=warn']))
    assert f'Not resuming from {newest}: its zip archive is cut short' in log, log[-3000:]
    assert 'resumed epoch: 1, iter: 15' in log
    assert f'removed {partial}' in log and not partial.exists()


def test_a_damaged_checkpoint_given_explicitly_is_named(configs, data_root, uninterrupted, tmp_path):
    expected_dir, _ = uninterrupted('epoch', 1)
    damaged = tmp_path / 'damaged.pth'
    shutil.copy(expected_dir / 'epoch_1.pth', damaged)
    # One flipped byte of tensor data, which torch.load alone would not notice.
    with zipfile.ZipFile(damaged) as archive:
        record = next(info for info in archive.infolist() if '/data/' in info.filename and info.file_size)
    with open(damaged, 'r+b') as file:
        file.seek(record.header_offset + 26)
        name_length, extra_length = struct.unpack('<HH', file.read(4))
        file.seek(record.header_offset + 30 + name_length + extra_length)
        byte = file.read(1)[0]
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte ^ 0xFF]))
    # tools/test.py and load_from read checkpoints through the same loader (see test_faults_checkpoints.py).
    log = run(train_command(configs['epoch'], tmp_path / 'work', data_root, resume=str(damaged)),
              expect_success=False)
    assert re.search(rf'CorruptCheckpointError: {re.escape(str(damaged))} is not a complete checkpoint: its record '
                     r"'archive/data/\d+' fails the CRC-32 check", log), log[-3000:]
    assert 'Epoch(train)' not in log


# Two runs in one work dir.


def test_a_second_run_in_the_same_work_dir_fails_at_once_naming_the_first(configs, data_root, tmp_path):
    # The first run trains long enough to outlast the start of the second.
    first = start(train_command(configs['epoch'], tmp_path, data_root, options=['train_cfg.max_epochs=100']))
    lines = []
    try:
        read_until(first, r'Epoch\(train\)\s*\[1\]\[\s*5/', lines)
        log = run(train_command(configs['epoch'], tmp_path, data_root), expect_success=False)
        assert re.search(rf'WorkDirInUseError: {tmp_path} is in use by another training run: pid {first.pid} on '
                         r'\S+, started [\d-]+ [\d:]+ UTC', log), log[-3000:]
        assert 'Epoch(train)' not in log and first.poll() is None
        # The first run goes on saving checkpoints.
        read_until(first, r'Epoch\(train\)\s*\[3\]\[\s*5/', lines)
    finally:
        kill_run(first)
        first.stdout.close()
    newest = Path((tmp_path / 'last_checkpoint').read_text())
    assert newest.parent == tmp_path and torch.load(newest)['meta']['epoch'] >= 2


# 3. Other foundation weights than the checkpoint's.


@pytest.fixture(scope='module')
def other_foundation(tmp_path_factory):
    """A tiny CLIP file with other weights than the demo's, and the fingerprint of its image tower."""
    path = save_open_clip_checkpoint(make_tiny_clip(seed=1), tmp_path_factory.mktemp('clip') / 'other.pt')
    return path, fingerprint_hex(fingerprint(build_open_clip(tiny_clip_arch(), path).visual))


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_other_foundation_weights_fail_before_work_unless_overridden(tool, configs, data_root, uninterrupted,
                                                                     other_foundation, tmp_path):
    expected_dir, _ = uninterrupted('epoch', 1)
    checkpoint = expected_dir / 'epoch_2.pth'
    trained_on = fingerprint_hex(torch.load(checkpoint)['state_dict']['backbone.foundation_fingerprint'])
    other_path, other_fingerprint = other_foundation

    def command(*options):
        options = [f'model.backbone.pretrained={other_path}', *options]
        if tool == 'train':
            return train_command(configs['epoch'], tmp_path / 'work', data_root, options=options,
                                 resume=str(checkpoint))
        return [sys.executable, 'tools/test.py', str(configs['epoch']), str(checkpoint), '--work-dir',
                str(tmp_path / 'work'), '--cfg-options', *data_options(data_root), *options]

    log = run(command(), expect_success=False)
    assert re.search(rf'RuntimeError: The checkpoint was trained on foundation weights {trained_on}, but this '
                     rf'model was built with foundation weights {other_fingerprint}', log), log[-3000:]
    assert 'check_fingerprint=False' in log and not re.search(r'Epoch\((train|test)\)', log)

    log = run(command('model.backbone.check_fingerprint=False'))
    assert ('resumed epoch: 2' in log) if tool == 'train' else final_metrics(log)


# 5. Data faults: unreadable images, and annotation files changed between a run and its resumption.


def test_unreadable_training_images_fail_by_default_or_are_skipped_and_counted(configs, data_root, tmp_path):
    data = Path(shutil.copytree(data_root, tmp_path / 'data'))
    damaged = [data / 'train' / 'red_square' / '0007.png', data / 'train' / 'brown_stripes' / '0002.png']
    for image in damaged:
        image.write_bytes(b'not a png at all')

    log = run(train_command(configs['epoch'], tmp_path / 'error', data), expect_success=False)
    assert re.search(rf'UnreadableImageError: Cannot read the image ({"|".join(map(str, damaged))})', log), \
        log[-3000:]

    log = run(train_command(configs['epoch'], tmp_path / 'skip', data,
                            options=['train_dataloader.dataset.on_unreadable=skip', 'train_cfg.max_epochs=1']))
    skipped = re.findall(r'Skipping the unreadable image (\S+) ', log)
    assert set(skipped) == set(map(str, damaged))
    # The workers' warnings and the hook's total of the replaced samples that reached the model agree.
    assert f'SkippedImagesHook: {len(skipped)} unreadable training image(s) were skipped' in log
    assert (tmp_path / 'skip' / 'epoch_1.pth').is_file()


def test_resume_refuses_changed_annotation_files_unless_overridden(configs, data_root, uninterrupted, tmp_path):
    checkpoints = uninterrupted('epoch', 1)[0]
    # The fingerprint is of the files' contents, so an unchanged copy of the data would resume.
    data = Path(shutil.copytree(data_root, tmp_path / 'data'))
    lines = (data / 'train.txt').read_text().splitlines(keepends=True)
    (data / 'train.txt').write_text(''.join(lines[1:]))  # class 0 keeps 149 of its 150 images

    log = run(train_command(configs['epoch'], tmp_path / 'work', data, resume=str(checkpoints / 'epoch_1.pth')),
              expect_success=False)
    assert re.search(r'RuntimeError: The training annotation files changed since the checkpoint being resumed was '
                     rf'saved: ann_file {re.escape(str(data / "train.txt"))}', log), log[-3000:]
    assert 'default_hooks.annotation_fingerprint.on_change=warn' in log and 'Epoch(train)' not in log

    # Resumed after its last epoch, the run only shows that it gets past the check.
    log = run(train_command(configs['epoch'], tmp_path / 'work', data, resume=str(checkpoints / 'epoch_2.pth'),
                            options=['default_hooks.annotation_fingerprint.on_change=warn']))
    assert 'WARNING - The training annotation files changed' in log and 'resumed epoch: 2' in log


# 6. A rank dies or hangs in data-parallel training.


@pytest.mark.parametrize('fault', ['killed', 'hung'])
def test_when_a_rank_dies_or_hangs_the_others_exit_with_an_error(fault, configs, data_root, tmp_path):
    timeout = 30 if fault == 'killed' else 10
    command = train_command(configs['epoch'], tmp_path, data_root, procs=2,
                            options=[f'env_cfg.dist_cfg.timeout={timeout}'])
    proc, lines = start(command), []
    try:
        read_until(proc, r'Epoch\(train\)\s*\[1\]\[\s*5/', lines)
        groups = process_groups(proc.pid)
        # torchrun starts each rank as the leader of its own process group.
        ranks = {}
        for leader in groups:
            with open(f'/proc/{leader}/environ', 'rb') as environ:
                variables = dict(item.split(b'=', 1) for item in environ.read().split(b'\0') if b'=' in item)
            if b'RANK' in variables:
                ranks[int(variables[b'RANK'])] = leader
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[1], signal.SIGKILL if fault == 'killed' else signal.SIGSTOP)
        faulted_at = time.monotonic()
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout))
        reader.start()
        if fault == 'killed':
            # torchrun stops the other rank and fails.
            returncode = proc.wait(timeout=120)
            wait_until_gone(list(groups))
            assert returncode != 0 and time.monotonic() - faulted_at < 120
        else:
            # Rank 0 waits for the stopped rank as long as the process group's timeout, then fails by itself
            # (torchrun's clean-up of the stopped rank is left out: it waits 30 s for SIGTERM to work first).
            wait_until_gone([ranks[0]], timeout=timeout + 60)
            assert time.monotonic() - faulted_at >= timeout
    finally:
        kill_run(proc)
    reader.join(timeout=60)
    if fault == 'hung':
        assert f'Timed out waiting {timeout * 1000}ms' in ''.join(lines), ''.join(lines[-60:])
