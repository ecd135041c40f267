"""Checkpoint files that survive interruption: atomic writes, integrity checks, and choosing what to resume.

MMEngine writes a checkpoint in place and only then updates ``work_dir/last_checkpoint``, and ``torch.load`` reads
cut-short or damaged files with obscure errors, or, for damaged tensor data, silently (it does not verify the
CRC-32 that torch stores for every record of its zip format). This module adds:

* :class:`AtomicLocalBackend`, a file backend (``backend_args=dict(backend='lift_atomic_local')``) that replaces a
  file in one step, used by :class:`~lift_mm.engine.hooks.AtomicCheckpointHook`;
* :func:`checkpoint_problem`, a check that a checkpoint file is complete, and :class:`CorruptCheckpointError`;
* a loader for local checkpoint paths, registered with MMEngine's ``CheckpointLoader`` in place of its own, which
  runs that check first, so ``--resume PATH``, ``load_from`` and ``tools/test.py`` name a damaged file;
* :func:`find_resumable_checkpoint` and :func:`resolve_auto_resume`, which pick the newest complete checkpoint for
  ``--resume`` without a path.
"""
import contextlib
import glob
import logging
import os.path as osp
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

from ..utils.atomic_files import partial_files, write_atomically
from ..utils.checkpoint_safety import PICKLE_MAGIC, ZIP_MAGIC, weights_only_refusal

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'CorruptCheckpointError', 'check_checkpoint_file', 'checkpoint_problem',
    'find_resumable_checkpoint', 'load_local_checkpoint', 'partial_files', 'resolve_auto_resume'
]

# Name of AtomicLocalBackend in MMEngine's file-backend registry.
ATOMIC_BACKEND = 'lift_atomic_local'
# The folder bit of the DOS attributes in a zip entry's external attributes.
_DOS_FOLDER_ATTRIBUTE = 0x10


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that is empty, cut short or damaged."""


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend, except that writing a file replaces it in one step.

    ``put`` writes the bytes to a hidden ``.<name>.<random>.partial`` file in the target's directory, flushes it to
    disk and renames it onto the target with :func:`os.replace`, which is atomic within a file system. Readers
    therefore see the previous file or the complete new one, never a part; a process killed while writing leaves
    at most the partial file behind (see :func:`partial_files`).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically, creating its directory if needed.

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Path to write data.
        """
        write_atomically(str(filepath), lambda file: file.write(obj))

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically.

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Path to write data.
            encoding (str): Encoding of the text. Defaults to 'utf-8'.
        """
        self.put(obj.encode(encoding), filepath)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint, or None if it is.

    Files in torch's zip format (what ``torch.save`` writes, and TorchScript archives) must have their central
    directory, and every record must match its CRC-32, which finds files cut short and damaged bytes anywhere.
    The records are read twice, by :mod:`zipfile` and by the reader ``torch.load`` uses, which must agree on
    their names and contents: damaged headers can make the two readers see different records. Other files must
    start as a pickle (torch's legacy format) and can only be checked for that.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str | None: A description of the problem, for error messages.
    """
    try:
        with open(path, 'rb') as file:
            magic = file.read(len(ZIP_MAGIC))
    except OSError as err:
        return f'it cannot be read ({err.strerror})'
    if not magic:
        return 'the file is empty'
    if magic != ZIP_MAGIC:
        return None if magic.startswith(PICKLE_MAGIC) else \
            (f'it does not start as files written by torch.save do (a zip archive, or a pickle for files of '
             f'torch < 1.6), but with {magic!r}: it is damaged, or not a checkpoint at all')
    # Damaged headers fail in either reader with any kind of error (bad names fail to decode, flags ask for
    # encryption or other compression, offsets point outside the file, ...): each of them means damage.
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                return f'its record {damaged!r} fails the CRC-32 check (damaged bytes)'
            checksums = {info.filename.split('/', 1)[-1]: (info.file_size, info.CRC) for info in archive.infolist()}
            # torch writes no folders, and its reader returns no data for a record marked as one (a name
            # ending in '/' or the DOS folder attribute), leaving whatever was in memory in its place.
            folders = [info.filename for info in archive.infolist()
                       if info.is_dir() or info.external_attr & _DOS_FOLDER_ATTRIBUTE]
            if folders:
                return f'its zip headers are damaged: the records {folders} are marked as folders'
    except Exception as err:  # noqa: BLE001
        return f'its zip archive is cut short or damaged ({type(err).__name__}: {err})'
    try:
        reader = torch._C.PyTorchFileReader(path)
        names = reader.get_all_records()
        differ = [name for name in names if checksums.get(name) != (reader.get_record_size(name),
                                                                    zlib.crc32(reader.get_record(name)))]
    except Exception as err:  # noqa: BLE001
        return f'torch cannot read its zip archive ({type(err).__name__}: {err})'
    if differ or len(names) != len(checksums):
        return f'its zip headers are damaged: torch reads other records than the zip directory lists ({differ})'
    return None


def check_checkpoint_file(path: str) -> None:
    """Raise :class:`CorruptCheckpointError` naming ``path`` if it is not a complete checkpoint.

    Args:
        path (str): A local checkpoint file.
    """
    problem = checkpoint_problem(path)
    if problem is not None:
        raise CorruptCheckpointError(
            f'{path} is not a complete checkpoint: {problem}. A save or copy was probably interrupted; use another '
            'checkpoint (`tools/train.py --resume` without a path picks the newest complete one).')


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location: Optional[Union[str, Callable]] = None) -> dict:
    """MMEngine's loader of local checkpoint files, refusing directories, incomplete files and files that
    weights-only unpickling refuses with an error that names them.

    Registered for paths without a URI prefix, so it serves ``Runner.resume``, ``load_from``, ``tools/test.py``
    and ``init_cfg=dict(type='Pretrained')`` alike.

    Args:
        filename (str): Local path of the checkpoint.
        map_location (str | Callable, optional): Same as :func:`torch.load`. Defaults to None.

    Returns:
        dict: The loaded checkpoint.
    """
    path = osp.expanduser(filename)
    if osp.isdir(path):
        raise IsADirectoryError(f'{filename} is a directory, not a checkpoint: give the path of a checkpoint file '
                                'in it (such as epoch_1.pth).')
    if osp.isfile(path):
        check_checkpoint_file(path)
    try:
        return load_from_local(filename, map_location)
    except pickle.UnpicklingError as error:
        raise weights_only_refusal(filename, error) from error


def _read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The path ``work_dir/last_checkpoint`` names, or None if the file is absent, empty or unreadable."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as file:
            return file.read().strip() or None
    return None


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of the run in ``work_dir``, for resuming without a path.

    The candidates are, first, the checkpoint ``work_dir/last_checkpoint`` names (MMEngine's ``CheckpointHook``
    rewrites it after every save), then the other ``*.pth`` files of ``work_dir`` and of the named checkpoint's
    directory (``CheckpointHook(out_dir=...)`` saves elsewhere), newest first by modification time. Candidates
    that fail :func:`checkpoint_problem` are skipped with a warning naming them. ``work_dir`` is searched even
    when ``last_checkpoint`` names a file that does not exist (the work dir was moved or renamed, or the file
    holds junk), so a run that has checkpoints never starts afresh.

    Args:
        work_dir (str): The work directory of the run.

    Returns:
        str | None: The checkpoint to resume from, or None if the run has saved none (start afresh).

    Raises:
        CorruptCheckpointError: If checkpoints exist but none of them is complete.
        FileNotFoundError: If ``last_checkpoint`` names a file that does not exist and there is no checkpoint
            to fall back to: the run saved checkpoints, and starting afresh would overwrite them.
    """
    last_checkpoint = osp.join(work_dir, 'last_checkpoint')
    named = _read_last_checkpoint(work_dir)
    named_exists = named is not None and osp.isfile(named)
    if named is not None and not named_exists:
        print_log(f'{last_checkpoint} names {named!r}, which does not exist; looking for checkpoints in {work_dir}.',
                  logger='current', level=logging.WARNING)
    # Only an existing named file vouches for its directory: a junk name could point anywhere, such as a folder
    # of unrelated weights.
    directories = {osp.abspath(work_dir)} | ({osp.dirname(osp.abspath(named))} if named_exists else set())
    found = {path for directory in directories for path in glob.glob(osp.join(glob.escape(directory), '*.pth'))
             if osp.isfile(path) and not (named_exists and osp.samefile(path, named))}
    candidates = ([named] if named_exists else []) + sorted(found, key=osp.getmtime, reverse=True)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if path != named:
                print_log(f'Resuming from {path}, the newest complete checkpoint in {osp.dirname(path)}.',
                          logger='current', level=logging.WARNING)
            return path
        print_log(f'Not resuming from {path}: {problem}. Trying an older checkpoint.', logger='current',
                  level=logging.WARNING)
    if candidates:
        raise CorruptCheckpointError(
            f'No complete checkpoint to resume from in {", ".join(sorted(directories))}: {candidates} are all '
            'damaged (see the warnings above). Delete them to start afresh, or resume from a copy with '
            '`--resume PATH`.')
    if named is not None:
        raise FileNotFoundError(
            f'{last_checkpoint} names the checkpoint {named!r}, which does not exist, and {work_dir} holds no '
            'checkpoint (*.pth): this run saved checkpoints, but they are elsewhere (was the work dir moved?). '
            f'Resume from one with `--resume PATH`, or delete {last_checkpoint} to start afresh.')
    return None


def resolve_auto_resume(cfg: Config) -> None:
    """Point an automatic resume (``resume=True`` without ``load_from``) at the newest complete checkpoint.

    MMEngine would resume from whatever ``work_dir/last_checkpoint`` names; this sets ``cfg.load_from`` to
    :func:`find_resumable_checkpoint` instead, or, when the run has no checkpoint yet, turns ``cfg.resume`` off so
    that training starts afresh as MMEngine does then. Other configs are left as they are.

    Args:
        cfg (Config): The config the runner will be built from, with its final ``work_dir``.
    """
    if cfg.get('resume') and cfg.get('load_from') is None:
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
        if not cfg.resume:
            print_log(f'No checkpoint to resume from in {cfg.work_dir}: training starts afresh.', logger='current')
