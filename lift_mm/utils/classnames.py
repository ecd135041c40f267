"""Reading class names given as a list, a class-name file, or a dataset config."""
from typing import List, Optional, Sequence, Union

from mmengine.registry import DefaultScope

from .text_files import read_json, read_lines

ClassNames = Union[str, Sequence[str], dict]


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
    categories = read_json(path, 'categories file')
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


def load_classnames(source: ClassNames, num_classes: Optional[int] = None, key: str = 'classnames') -> List[str]:
    """Class names, in label order, from any of the forms a config may give.

    Args:
        source (str | Sequence[str] | dict): The names; or a class-name file, either of ``identifier class name``
            lines (ImageNet-LT ``n01440764 tench``, Places-LT ``airfield airfield``) or an iNaturalist
            ``categories.json``; or a dataset config whose ``metainfo['classes']`` gives them (for datasets with
            no class-name file, such as ``dict(type='CIFAR100LT', data_root='data/cifar100', split='test')``).
        num_classes (int, optional): If given, the number of names must equal it. Defaults to None.
        key (str): Config key the names came from, for error messages. Defaults to ``'classnames'``.

    Returns:
        list[str]: One name per class.
    """
    if isinstance(source, dict):
        from mmpretrain.registry import DATASETS
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            names = list(DATASETS.build(source).metainfo['classes'])
        origin = f"`{key}` (dataset {source.get('type')})"
    elif isinstance(source, str):
        names = parse_categories_json(source) if source.endswith('.json') else parse_classnames_file(source)
        origin = source
    else:
        names = [str(name) for name in source]
        origin = f'`{key}`'
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f'{origin} gives {len(names)} class names but num_classes is {num_classes}: '
                         'they must match.')
    return names
