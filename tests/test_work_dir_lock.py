"""The lock on a work dir while training: held, released, stale, and from another host."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from mmengine.logging import MMLogger

from lift_mm.engine import WorkDirInUseError, WorkDirLock
from lift_mm.engine.hooks import WorkDirLockHook

WORK_DIR_LOCK = Path(__file__).resolve().parents[1] / 'lift_mm' / 'engine' / 'work_dir_lock.py'
# A process that takes the lock, says so, then waits for a line on stdin and ends as the line says: 'exit'
# normally, 'raise' with an exception; or it is killed meanwhile.
HOLDER = f'''
import importlib.util, sys
spec = importlib.util.spec_from_file_location('work_dir_lock', {str(WORK_DIR_LOCK)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.WorkDirLock(sys.argv[1]).acquire()
print('locked', flush=True)
if sys.stdin.readline().strip() == 'raise':
    raise RuntimeError('training failed')
'''


@pytest.fixture
def holder(tmp_path):
    """Start a process holding the lock on ``tmp_path``; ``holder()`` gives it, once it holds the lock."""
    procs = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == 'locked'
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def lock_record(work_dir: Path) -> dict:
    return json.loads((work_dir / 'training.lock').read_text())


def test_a_second_run_fails_naming_the_first(tmp_path, holder):
    proc = holder()
    record = lock_record(tmp_path)
    assert record['pid'] == proc.pid and record['host'] == socket.gethostname()
    with pytest.raises(WorkDirInUseError, match=rf'{tmp_path} is in use by another training run: pid {proc.pid} '
                       rf"on {re.escape(socket.gethostname())}, started {record['started']} \(command: "):
        WorkDirLock(str(tmp_path)).acquire()
    assert lock_record(tmp_path) == record


@pytest.mark.parametrize('end', ['exit', 'raise'])
def test_the_lock_is_released_when_the_run_ends(end, tmp_path, holder):
    proc = holder()
    proc.communicate(end + '\n')
    assert proc.returncode == (0 if end == 'exit' else 1)
    assert not (tmp_path / 'training.lock').exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, holder):
    proc = holder()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = WorkDirLock(str(tmp_path))
    stale = lock.acquire()
    assert stale['pid'] == proc.pid and lock_record(tmp_path)['pid'] == os.getpid()
    lock.release()
    assert not (tmp_path / 'training.lock').exists()


def test_a_lock_whose_pid_now_belongs_to_another_process_is_stale(tmp_path):
    # The parent process runs, but it is not the one that wrote the lock: that one started at another time.
    record = dict(WorkDirLock._own_record(), pid=os.getppid(), process_start='1')
    (tmp_path / 'training.lock').write_text(json.dumps(record))
    assert WorkDirLock(str(tmp_path)).acquire() == record


def test_a_lock_from_another_host_is_refused_with_how_to_remove_it(tmp_path):
    record = dict(WorkDirLock._own_record(), host='other-host')
    (tmp_path / 'training.lock').write_text(json.dumps(record))
    with pytest.raises(WorkDirInUseError, match=rf'{tmp_path} is locked by a training run on another host: pid '
                       rf"{os.getpid()} on other-host, started .* cannot be checked from "
                       rf"{re.escape(socket.gethostname())}. If it no longer runs, delete "
                       rf"{tmp_path / 'training.lock'}"):
        WorkDirLock(str(tmp_path)).acquire()


def test_an_unreadable_lock_is_refused_with_how_to_remove_it(tmp_path):
    (tmp_path / 'training.lock').write_text('{"pid": 12')
    with pytest.raises(WorkDirInUseError, match=rf"{tmp_path / 'training.lock'} exists but cannot be read .* "
                       rf"delete {tmp_path / 'training.lock'}"):
        WorkDirLock(str(tmp_path)).acquire()


def test_the_hook_locks_the_work_dir_from_training_to_the_end_of_the_run(tmp_path):
    runner = SimpleNamespace(work_dir=str(tmp_path), logger=MMLogger.get_instance('work-dir-lock-test'))
    hook = WorkDirLockHook()
    hook.before_train(runner)
    assert lock_record(tmp_path)['pid'] == os.getpid()
    hook.after_run(runner)
    assert not (tmp_path / 'training.lock').exists()
