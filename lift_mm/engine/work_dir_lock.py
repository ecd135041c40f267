"""A lock on a work dir while a run trains in it, so that two runs never write into the same one.

Two runs in one work dir overwrite each other's checkpoints and ``last_checkpoint``, and each deletes the other's
old checkpoints (``max_keep_ckpts``) and partial files, even while they are being saved. :class:`WorkDirLock` is
a file, ``work_dir/training.lock``, created exclusively and holding the owner's pid, host, start time and
command. A lock left by a run that was killed is stale: on the same host, when its process no longer runs (or
its pid now belongs to another process, or the machine was restarted), it is taken over. A lock from another
host cannot be checked, and is only removed by hand.
"""
import atexit
import contextlib
import json
import os
import os.path as osp
import socket
import sys
from datetime import datetime, timezone
from typing import Optional

from mmengine.utils import mkdir_or_exist

__all__ = ['LOCK_NAME', 'WorkDirInUseError', 'WorkDirLock']

# Name of the lock file in the work dir.
LOCK_NAME = 'training.lock'


class WorkDirInUseError(RuntimeError):
    """Another training run holds the lock on the work dir."""


def _read_line(path: str) -> Optional[str]:
    with contextlib.suppress(OSError):
        with open(path, encoding='utf-8') as file:
            return file.read().strip()
    return None


def _process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started, in clock ticks since boot (Linux); None where this cannot be read."""
    stat = _read_line(f'/proc/{pid}/stat')
    # The command name, in parentheses, may hold spaces; the start time is the 20th field after it.
    return stat.rsplit(')', 1)[1].split()[19] if stat else None


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


class WorkDirLock:
    """The lock on one work dir.

    Args:
        work_dir (str): The work dir of the run.
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self._record: Optional[dict] = None

    @staticmethod
    def _own_record() -> dict:
        return dict(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC'),
            boot_id=_read_line('/proc/sys/kernel/random/boot_id'),
            process_start=_process_start(os.getpid()),
            command=' '.join(sys.argv))

    @staticmethod
    def _describe(holder: dict) -> str:
        return (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')} "
                f"(command: {holder.get('command')})")

    def _stale(self, holder: dict) -> bool:
        """Whether the run that wrote ``holder`` (on this host) no longer runs."""
        if holder.get('boot_id') and holder['boot_id'] != _read_line('/proc/sys/kernel/random/boot_id'):
            return True  # the machine restarted since
        if not isinstance(holder.get('pid'), int) or not _process_runs(holder['pid']):
            return True
        # A killed run's pid may belong to another process now; and a run of this process that ended in an
        # exception may have left its lock behind.
        start = _process_start(holder['pid'])
        return (start is not None and start != holder.get('process_start')) or holder['pid'] == os.getpid()

    def _holder(self) -> Optional[dict]:
        """The record in the lock file; None if there is none; raises if the file cannot be read."""
        try:
            with open(self.path, encoding='utf-8') as file:
                holder = json.load(file)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise WorkDirInUseError(
                f'{self.path} exists but cannot be read ({err}): another training run may be writing it or use '
                f'{self.work_dir}. If no run uses this work dir, delete {self.path} and start again.') from err
        if not isinstance(holder, dict):
            raise WorkDirInUseError(f'{self.path} does not hold a lock record. If no run uses {self.work_dir}, '
                                    f'delete {self.path} and start again.')
        return holder

    def acquire(self) -> Optional[dict]:
        """Take the lock, taking over a stale one.

        Returns:
            dict | None: The record of the stale lock taken over (pid, host, started, command), for a warning.

        Raises:
            WorkDirInUseError: If another run holds the lock, or a lock from another host or one that cannot be
                read is in the way; the message names the holder and how to remove the lock.
        """
        mkdir_or_exist(self.work_dir)
        record, taken_over = self._own_record(), None
        # Two attempts: one, and one after taking over a stale lock (another run may take it first).
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue
                if holder.get('host') != record['host']:
                    raise WorkDirInUseError(
                        f'{self.work_dir} is locked by a training run on another host: {self._describe(holder)}. '
                        f'Whether it still runs cannot be checked from {record["host"]}. If it no longer runs, '
                        f'delete {self.path} and start again; otherwise train in another work dir.')
                if not self._stale(holder):
                    raise WorkDirInUseError(
                        f'{self.work_dir} is in use by another training run: {self._describe(holder)}. Two runs '
                        "in one work dir overwrite each other's checkpoints: wait for it to end, stop it, or "
                        'train in another work dir (--work-dir).')
                # Another run may have taken over the stale lock meanwhile: its new lock stays.
                if self._holder() == holder:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self.path)
                taken_over = holder
                continue
            try:
                with os.fdopen(fd, 'w', encoding='utf-8') as file:
                    json.dump(record, file)
                    file.flush()
                    os.fsync(file.fileno())
            except BaseException:
                # An empty lock (a full disk) would block every later run.
                os.remove(self.path)
                raise
            self._record = record
            atexit.register(self.release)
            return taken_over
        raise WorkDirInUseError(f'Another training run took the lock {self.path} first: '
                                f'{self._describe(self._holder() or {})}.')

    def release(self) -> None:
        """Remove the lock file if this lock holds it; does nothing otherwise."""
        if self._record is None:
            return
        atexit.unregister(self.release)
        # A run that took over the lock meanwhile (this one was thought dead) keeps it.
        with contextlib.suppress(OSError, ValueError, WorkDirInUseError):
            if self._holder() == self._record:
                os.remove(self.path)
        self._record = None
