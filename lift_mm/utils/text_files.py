"""Reading the UTF-8 text and JSON files that users bring (annotation lists, class names, descriptors).

Problems are reported with the file path and the 1-based line number, because a wrong line usually means a
wrong file rather than noise to skip.
"""
import json
import os.path as osp
from typing import Any, List

# UTF-8; a byte-order mark at the start is dropped.
TEXT_ENCODING = 'utf-8-sig'
DATASET_HINT = 'Check data_root and the file argument of the dataset config.'


def read_text(path: str, what: str, hint: str = DATASET_HINT) -> str:
    """Read a UTF-8 text file, with or without a byte-order mark.

    Editors on Windows write a byte-order mark at the start of UTF-8 files;
    read as part of the text it would become part of the first path or name.

    Args:
        path (str): File to read.
        what (str): Description of the file for error messages, such as
            ``'annotation file'``.
        hint (str): How to point to the right file, appended to the error for
            a missing file. Defaults to a hint about dataset configs.

    Returns:
        str: The decoded text.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the file is not valid UTF-8. The message names the
            file, the line and the encoding expected.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}. {hint}')
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return data.decode(TEXT_ENCODING)
    except UnicodeDecodeError as err:
        lineno = data.count(b'\n', 0, err.start) + 1
        raise ValueError(
            f'{path}, line {lineno}: the {what} is not valid UTF-8 '
            f'({err.reason} at byte {err.start}: '
            f'{data[err.start:err.end]!r}). Save it as UTF-8, e.g. '
            f'`iconv -f latin1 -t utf-8` for a Latin-1 file.') from None


def read_lines(path: str, what: str) -> List[str]:
    """Read a text file into lines, dropping blank lines at its very end.

    Blank lines at the end carry no data, so trailing newlines from editors
    are accepted; blank lines elsewhere are kept for the callers to reject.

    Args:
        path (str): File to read, UTF-8 (see :func:`read_text`).
        what (str): Description of the file for error messages, such as
            ``'annotation file'``.

    Returns:
        List[str]: The lines without line endings.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the file is not valid UTF-8.
    """
    return read_text(path, what).rstrip().splitlines()


def read_json(path: str, what: str, hint: str = DATASET_HINT) -> Any:
    """Read a UTF-8 JSON file, with or without a byte-order mark.

    Args:
        path (str): File to read (see :func:`read_text`).
        what (str): Description of the file for error messages.
        hint (str): How to point to the right file, appended to the error for
            a missing file. Defaults to a hint about dataset configs.

    Returns:
        Any: The parsed value.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the file is not valid UTF-8 or not valid JSON; the
            message names the file and the line.
    """
    try:
        return json.loads(read_text(path, what, hint))
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not valid JSON ({err}).') from None
