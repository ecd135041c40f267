"""Let torch's weights-only ``torch.load`` read the checkpoints that MMEngine writes.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: unpickling may only build tensors, containers
and allow-listed globals, so a checkpoint cannot run code when loaded. MMEngine 0.10.7 calls
``torch.load(filename, map_location=...)`` (``load_checkpoint``, ``Runner.resume``, ``load_from``,
``tools/test.py``) without ``weights_only``, and its checkpoints hold more than tensors:

* ``message_hub['log_scalars']`` maps names to :class:`mmengine.logging.HistoryBuffer`, whose pickled state has
  numpy arrays (``_log_history``, ``_count_history``) and ``statistics_methods``, the functions
  ``HistoryBuffer.min/max/current/mean``. Pickle protocol 2 (torch's) stores a function with a dotted name as
  ``getattr(HistoryBuffer, 'min')``, so the stream calls ``builtins.getattr``.
* ``message_hub['runtime_info']`` holds numpy scalars (``eta`` is a ``numpy.float64``) and, like
  ``meta['dataset_meta']``, a copy of the training dataset's metainfo, which may hold numpy arrays.

:func:`register_checkpoint_safe_globals` allow-lists exactly these, keeping weights-only loading on. Real
``getattr`` would let a crafted file reach any attribute (and through it any function), so ``builtins.getattr`` is
mapped to a stand-in that only returns HistoryBuffer's four statistics methods and refuses everything else.

Plain pickles that users bring (the CIFAR-100 python archive) are read by :class:`AllowListUnpickler` with an
allow-list in the same form, such as :func:`numpy_safe_globals`.
"""
import pickle
from typing import IO, Callable, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# MMEngine registers these on every HistoryBuffer (HistoryBuffer._set_default_statistics).
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

# Dtypes of the numpy arrays and scalars allow-listed: bool and the integer and floating types, which cover
# HistoryBuffer's float64 / int64 histories, the float64 ``eta`` and numeric arrays in dataset metainfo.
_NUMPY_DTYPE_CODES = '?bhilqBHILQefd'
_NUMPY_MULTIARRAY_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')

# The first bytes of a zip archive (a local file header), and of a pickle of protocol 2 or later.
ZIP_MAGIC = b'PK\x03\x04'
PICKLE_MAGIC = b'\x80'


def history_buffer_getattr(obj: object, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during weights-only loading.

    Args:
        obj (object): Must be the class :class:`HistoryBuffer`.
        name (str): Must be one of its default statistics methods: min, max, current, mean.

    Returns:
        Callable: ``getattr(HistoryBuffer, name)``.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Weights-only load refused getattr({obj!r}, {name!r}): lift_mm only allows '
        f'getattr(HistoryBuffer, name) for name in {_HISTORY_BUFFER_STATISTICS}, as MMEngine checkpoints need.')


def numpy_safe_globals() -> List[SafeGlobal]:
    """The globals that numpy arrays, scalars and dtypes of the allow-listed dtypes pickle with.

    Returns:
        list: Callables, or ``(callable, 'module.name')`` pairs for the names under which pickles refer to them.
    """
    # Taken from what numpy's pickling emits, so they are right for the installed numpy version.
    reconstruct = np.ndarray((0, )).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    dtype_classes = sorted({type(np.dtype(code)) for code in _NUMPY_DTYPE_CODES}, key=lambda cls: cls.__name__)
    return [
        # numpy arrays pickle as _reconstruct(ndarray, shape, dtype) and then ndarray.__setstate__; numpy >= 2
        # names the module numpy._core.multiarray, older numpy numpy.core.multiarray, and files of both exist.
        np.ndarray,
        *[(reconstruct, f'{module}._reconstruct') for module in _NUMPY_MULTIARRAY_MODULES],
        # numpy scalars pickle as scalar(dtype, bytes).
        *[(scalar, f'{module}.scalar') for module in _NUMPY_MULTIARRAY_MODULES],
        # dtypes pickle as dtype(code, ...) and then __setstate__ on the instance, whose type (numpy >= 1.25) is
        # a per-dtype class such as numpy.dtypes.Float64DType.
        np.dtype,
        *dtype_classes,
    ]


def checkpoint_safe_globals() -> List[SafeGlobal]:
    """The globals MMEngine checkpoints need, in the form ``torch.serialization.add_safe_globals`` takes.

    Returns:
        list: Callables, or ``(callable, 'module.name')`` pairs for the names under which pickles refer to them.
    """
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr'), *numpy_safe_globals()]


class AllowListUnpickler(pickle.Unpickler):
    """An unpickler that builds only allow-listed globals, for plain pickle files a user brings.

    Building an object from a pickle calls the globals the file names, so reading an unchecked file can run any
    code. This one resolves only the globals of ``safe_globals`` (named as pickles name them, like torch's
    weights-only loading) and raises :class:`pickle.UnpicklingError` naming any other; containers, strings, bytes
    and numbers need no global.

    Args:
        file (IO[bytes]): The open pickle file.
        safe_globals (Sequence): Callables, or ``(callable, 'module.name')`` pairs, as returned by
            :func:`numpy_safe_globals`.
        **kwargs: Other arguments of :class:`pickle.Unpickler`, such as ``encoding``.
    """

    def __init__(self, file: IO[bytes], safe_globals: Sequence[SafeGlobal], **kwargs) -> None:
        super().__init__(file, **kwargs)
        self.safe_globals = dict(
            (entry[1], entry[0]) if isinstance(entry, tuple) else (f'{entry.__module__}.{entry.__qualname__}', entry)
            for entry in safe_globals)

    def find_class(self, module: str, name: str) -> Callable:
        """The allow-listed global ``module.name``; refuses any other."""
        qualified = f'{module}.{name}'
        if qualified not in self.safe_globals:
            raise pickle.UnpicklingError(f'refused the global {qualified!r}, which reading the file would call: it '
                                         'is not on the allow-list')
        return self.safe_globals[qualified]


def is_torch_file(path: str) -> bool:
    """Whether ``path`` starts as the files ``torch.save`` writes do: a zip archive (torch >= 1.6, and TorchScript
    archives) or a pickle of protocol 2 or later (torch's legacy format)."""
    with open(path, 'rb') as file:
        return file.read(len(ZIP_MAGIC)).startswith((ZIP_MAGIC, PICKLE_MAGIC))


def weights_only_refusal(source: str, error: pickle.UnpicklingError,
                         accepts: str = 'a checkpoint written by torch.save') -> pickle.UnpicklingError:
    """The error to raise when torch's weights-only loading refuses a file: it names the file and what loads.

    torch's own message advises loading with ``weights_only=False``, which would run whatever code the file holds;
    only the reason torch gives (the detail it was raised with) is kept.

    Args:
        source (str): The file that was refused, and the key that named it if known.
        error (pickle.UnpicklingError): What ``torch.load`` raised.
        accepts (str): What the key takes. Defaults to 'a checkpoint written by torch.save'.

    Returns:
        pickle.UnpicklingError: The error to raise instead, ``from error``.
    """
    # torch raises its advice `from None` inside the handler of the unpickler's own error.
    reason = error.__context__ if isinstance(error.__context__, pickle.UnpicklingError) else error
    return pickle.UnpicklingError(
        f'{source} cannot be loaded safely: torch\'s weights-only unpickling refused it ({str(reason).strip()}). '
        f'It takes {accepts}, holding tensors, containers, numbers and strings plus what MMEngine writes '
        '(allow-listed in lift_mm/utils/checkpoint_safety.py); anything else could run code when loaded. If the '
        'file is such a checkpoint from a source you trust, re-save just its weights: '
        '`torch.save(dict(state_dict=model.state_dict()), path)`.')


def register_checkpoint_safe_globals() -> None:
    """Allow-list the globals of MMEngine checkpoints for torch's weights-only loading.

    Idempotent: torch keeps the allow-list as a set. Files with any other global are still refused.
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
