"""Writing a file so that readers see the old one or the complete new one, never a part."""
import contextlib
import glob
import os
import os.path as osp
import uuid
from typing import IO, Callable, List

# Suffix of the hidden files a write fills before renaming them onto their target.
PARTIAL_SUFFIX = '.partial'


def _sync_directory(directory: str) -> None:
    """Flush a directory entry to disk, so that a rename in it survives a power cut (POSIX only)."""
    if os.name != 'posix':
        return
    # Some file systems (network and FUSE ones) cannot sync a directory; the rename is then as durable as they
    # make it, and the write must not fail for that.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Replace ``path`` in one step with what ``write`` puts into an open binary file.

    ``write`` fills a hidden ``.<name>.<random>.partial`` file in the target's directory (created if needed),
    which is flushed to disk and renamed onto ``path`` with :func:`os.replace`, atomic within a file system. If
    anything fails, the partial file is removed and the file already at ``path`` is unchanged; a process killed
    while writing leaves at most the partial file (see :func:`partial_files`).

    Args:
        path (str): The file to write.
        write (Callable): Writes the content into the file object it is given.

    Raises:
        OSError: With ``path`` as its file name, when writing fails for a full disk, a quota or another system
            error (whose own message would name no file, or the hidden partial one).
    """
    directory, name = osp.split(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = osp.join(directory, f'.{name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}')
    try:
        with open(partial, 'xb') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        if isinstance(err, OSError):
            raise OSError(err.errno, f'{err.strerror} while saving', str(path)) from err
        raise
    _sync_directory(directory)


def partial_files(directory: str) -> List[str]:
    """The partial files that interrupted :func:`write_atomically` calls left in ``directory``."""
    return sorted(glob.glob(osp.join(glob.escape(directory), f'.*{PARTIAL_SUFFIX}')))
