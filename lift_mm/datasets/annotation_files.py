"""Readers for the plain-text files of the long-tail benchmarks.

ImageNet-LT, Places-LT and iNaturalist 2018 ship annotation files with one
``relative/path label`` line per image; class names come in ``key name``
lines. The readers validate every line once and report problems with the
file path and the 1-based line number, because a wrong line usually means a
wrong file (e.g. a val list given as the train list) rather than noise to skip.
"""
import hashlib
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np

# UTF-8; a byte-order mark at the start is dropped.
TEXT_ENCODING = 'utf-8-sig'


def read_text(path: str, what: str) -> str:
    """Read a UTF-8 text file, with or without a byte-order mark.

    Editors on Windows write a byte-order mark at the start of UTF-8 files;
    read as part of the text it would become part of the first path or name.

    Args:
        path (str): File to read.
        what (str): Description of the file for error messages, such as
            ``'annotation file'``.

    Returns:
        str: The decoded text.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If the file is not valid UTF-8. The message names the
            file, the line and the encoding expected.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}. Check data_root '
                                'and the file argument of the dataset config.')
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


def parse_annotation_file(path: str,
                          num_classes: int,
                          classes_source: str = 'the class-name file'
                          ) -> Tuple[List[str], np.ndarray]:
    """Parse an annotation file with ``relative/path label`` lines.

    Args:
        path (str): The annotation file.
        num_classes (int): Labels must lie in ``[0, num_classes)``.
        classes_source (str): Where ``num_classes`` comes from, quoted in the
            error for an out-of-range label. Defaults to
            ``'the class-name file'``.

    Returns:
        Tuple[List[str], np.ndarray]: Image paths exactly as written in the
        file and their ``int64`` labels.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not UTF-8, a line is not exactly a
            relative path inside ``data_root/data_prefix`` and a non-negative
            integer, a label is out of range, or an image path appears twice.
            The message names the file and line.
    """
    paths: List[str] = []
    labels: List[int] = []
    first_line = {}
    for lineno, line in enumerate(read_lines(path, 'annotation file'), 1):
        fields = line.split()
        where = f'{path}, line {lineno}'
        if len(fields) != 2:
            raise ValueError(
                f'{where}: expected "relative/path label" (two fields '
                f'separated by whitespace; paths contain no spaces), got '
                f'{line!r}.')
        img_path, label = fields
        if not (label.isascii() and label.isdigit()):
            raise ValueError(f'{where}: the label {label!r} is not a '
                             'non-negative integer.')
        if osp.isabs(img_path):
            raise ValueError(
                f'{where}: the image path {img_path!r} is absolute; write it '
                'relative to data_root/data_prefix (e.g. drop the leading '
                '"/").')
        if osp.normpath(img_path).split(os.sep)[0] == os.pardir:
            raise ValueError(
                f'{where}: the image path {img_path!r} leaves '
                'data_root/data_prefix through "..". Write paths inside it, '
                'or set data_root/data_prefix to a folder holding every '
                'image.')
        label_id = int(label)
        if label_id >= num_classes:
            raise ValueError(
                f'{where}: label {label_id} is out of range [0, '
                f'{num_classes}); {classes_source} lists {num_classes} '
                'classes. Check that the annotation and class-name files '
                'belong to the same dataset.')
        if img_path in first_line:
            raise ValueError(
                f'{where}: the image {img_path!r} is listed again (first on '
                f'line {first_line[img_path]}). Remove the duplicate line.')
        first_line[img_path] = lineno
        paths.append(img_path)
        labels.append(label_id)
    if not paths:
        raise ValueError(f'{path}: the annotation file lists no images.')
    return paths, np.asarray(labels, dtype=np.int64)


def parse_classnames_file(path: str) -> List[str]:
    """Parse a class-name file with one ``key name with spaces`` line each.

    Line ``i`` names class ``i``, e.g. ``n01440764 tench`` (ImageNet wnid) or
    ``airfield airfield`` (Places folder). The name is everything after the
    first field, kept verbatim (underscores are not replaced).

    Args:
        path (str): The class-name file.

    Returns:
        List[str]: The class names in label order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not UTF-8, a line has no name after its
            key, a key repeats, or the file is empty. The message names the
            file and line.
    """
    names: List[str] = []
    first_line = {}
    for lineno, line in enumerate(read_lines(path, 'class-name file'), 1):
        fields = line.split(maxsplit=1)
        where = f'{path}, line {lineno}'
        if len(fields) != 2:
            raise ValueError(
                f'{where}: expected "key class name" (e.g. "n01440764 '
                f'tench"), got {line!r}. Line i names class i, so every line '
                'needs a key and a name.')
        key, name = fields
        if key in first_line:
            raise ValueError(f'{where}: the key {key!r} is repeated (first on '
                             f'line {first_line[key]}).')
        first_line[key] = lineno
        names.append(name.strip())
    if not names:
        raise ValueError(f'{path}: the class-name file lists no classes.')
    return names


def parse_categories_json(path: str) -> List[str]:
    """Read class names from an iNaturalist ``categories.json``.

    The file is a list of dicts with at least ``'id'`` (the label used in
    the annotation files) and ``'name'``; class ``i`` is named by the entry
    whose ``'id'`` is ``i``, wherever it stands in the list.

    Args:
        path (str): The JSON file.

    Returns:
        List[str]: The class names in label order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not UTF-8 JSON, not such a list, or the
            ids are not exactly ``0 .. len - 1``. The message names the
            entry.
    """
    try:
        categories = json.loads(read_text(path, 'categories file'))
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not valid JSON ({err}).') from None
    if not isinstance(categories, list) or not categories:
        raise ValueError(f'{path}: expected a non-empty JSON list of '
                         '{"id": ..., "name": ...} objects.')
    names = [None] * len(categories)
    for index, entry in enumerate(categories):
        where = f'{path}, entry {index}'
        if not isinstance(entry, dict) or not isinstance(
                entry.get('id'), int) or not isinstance(entry.get('name'), str):
            raise ValueError(f'{where}: expected an object with an integer '
                             f'"id" and a string "name", got {entry!r:.200}.')
        cat_id = entry['id']
        if not 0 <= cat_id < len(categories):
            raise ValueError(f'{where}: id {cat_id} is outside [0, '
                             f'{len(categories)}); ids must number the '
                             'categories from 0.')
        if names[cat_id] is not None:
            raise ValueError(f'{where}: id {cat_id} is used twice.')
        names[cat_id] = entry['name']
    return names


def file_sha256(path: str) -> str:
    """SHA-256 of a file's contents, as 64 hex digits.

    Args:
        path (str): The file.

    Returns:
        str: The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
