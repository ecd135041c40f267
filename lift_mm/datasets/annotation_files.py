"""Readers for the annotation files of the long-tail benchmarks.

ImageNet-LT, Places-LT and iNaturalist 2018 ship annotation files with one
``relative/path label`` line per image (class-name files are read by
:mod:`lift_mm.utils.classnames`). The readers validate every line once and
report problems with the file path and the 1-based line number, because a
wrong line usually means a wrong file (e.g. a val list given as the train
list) rather than noise to skip.
"""
import hashlib
import os
import os.path as osp
from typing import List, Tuple

import numpy as np

from ..utils.text_files import read_lines


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
