"""Reading class names given as a list, a class-name file, or a dataset config."""
from typing import List, Optional, Sequence, Union

from mmengine.registry import DefaultScope

from ..datasets.annotation_files import parse_categories_json, parse_classnames_file

ClassNames = Union[str, Sequence[str], dict]


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
