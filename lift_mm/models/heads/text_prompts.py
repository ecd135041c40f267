"""Prompt sets for initialising class weights from CLIP text features (LIFT's ``prompt`` option)."""
import json
import os
from typing import Dict, List, Sequence

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

PROMPT_SETS = ('default', 'ensemble', 'classname', 'descriptor')


def prompt_templates(prompt: str) -> List[str]:
    """The templates of a named prompt set, as ``str.format`` patterns with one ``{}`` for the class name.

    Args:
        prompt (str): ``'default'`` (``'a photo of a {}.'``), ``'classname'`` (the bare name) or ``'ensemble'``
            (the 80 ImageNet templates of CLIP, as shipped by open_clip). ``'descriptor'`` has no templates: its
            prompts are per-class descriptions, see :func:`load_descriptors`.

    Returns:
        list[str]: The templates.
    """
    if prompt == 'default':
        return ['a photo of a {}.']
    if prompt == 'classname':
        return ['{}']
    if prompt == 'ensemble':
        # open_clip ships the templates as functions of the class name; applied to '{}' they become patterns.
        return [template('{}') for template in OPENAI_IMAGENET_TEMPLATES]
    raise ValueError(f'`text_init.prompt`={prompt!r} has no templates; valid prompt sets: {list(PROMPT_SETS)}.')


def load_descriptors(path: str) -> Dict[str, List[str]]:
    """Read a descriptor file: a JSON object mapping each class name to a non-empty list of descriptions.

    Args:
        path (str): The JSON file.

    Returns:
        dict[str, list[str]]: The descriptions of each class name.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'`text_init.descriptors`: descriptor file {path!r} does not exist.')
    with open(path, encoding='utf-8') as file:
        descriptors = json.load(file)
    if not isinstance(descriptors, dict):
        raise ValueError(f'`text_init.descriptors`: {path} must hold a JSON object mapping class names to lists of '
                         f'descriptions, not a {type(descriptors).__name__}.')
    for name, descriptions in descriptors.items():
        if (not isinstance(descriptions, list) or not descriptions
                or not all(isinstance(text, str) for text in descriptions)):
            raise ValueError(f'`text_init.descriptors`: {path}: the entry of {name!r} must be a non-empty list of '
                             f'strings, got {descriptions!r}.')
    return descriptors


def class_descriptions(descriptors: Dict[str, List[str]], classnames: Sequence[str],
                       path: str) -> List[List[str]]:
    """The descriptions of every class, in label order.

    A class is looked up by its name, and then by the name with underscores as spaces (the form prompts use).

    Args:
        descriptors (dict[str, list[str]]): From :func:`load_descriptors`.
        classnames (Sequence[str]): The class names.
        path (str): The descriptor file, for error messages.

    Returns:
        list[list[str]]: One list of descriptions per class.
    """
    found, missing = [], []
    for name in classnames:
        descriptions = descriptors.get(name, descriptors.get(name.replace('_', ' ')))
        if descriptions is None:
            missing.append(name)
        found.append(descriptions)
    if missing:
        shown = ', '.join(repr(name) for name in missing[:10])
        more = f' and {len(missing) - 10} more' if len(missing) > 10 else ''
        raise KeyError(f'`text_init.descriptors`: {path} has no descriptions of {len(missing)} of the '
                       f'{len(classnames)} classes: {shown}{more}.')
    return found
