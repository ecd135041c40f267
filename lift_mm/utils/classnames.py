"""Reading class names given as a list or as a long-tail class-name file."""
import os
from typing import List, Optional, Sequence, Union


def load_classnames(source: Union[str, Sequence[str]], num_classes: Optional[int] = None,
                    key: str = 'classnames') -> List[str]:
    """Class names from a list, or from a file of ``identifier class name`` lines.

    The file format is the one of ImageNet-LT (``n01440764 tench``) and Places-LT (``airfield airfield``):
    line ``i`` names class ``i``, and the name is everything after the first whitespace.

    Args:
        source (str | Sequence[str]): The names, or the path of a class-name file.
        num_classes (int, optional): If given, the number of names must equal it. Defaults to None.
        key (str): Config key the names came from, for error messages. Defaults to ``'classnames'``.

    Returns:
        list[str]: One name per class, in label order.
    """
    if isinstance(source, str):
        if not os.path.isfile(source):
            raise FileNotFoundError(f'`{key}`: class-name file {source!r} does not exist.')
        names = []
        with open(source, encoding='utf-8') as file:
            for line_number, line in enumerate(file, start=1):
                fields = line.strip().split(maxsplit=1)
                if len(fields) != 2:
                    raise ValueError(f'{source}, line {line_number}: expected "identifier class name", '
                                     f'got {line.rstrip()!r}.')
                names.append(fields[1])
        origin = source
    else:
        names = [str(name) for name in source]
        origin = f'`{key}`'
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f'{origin} gives {len(names)} class names but num_classes is {num_classes}: '
                         'they must match.')
    return names
