"""Class weights from CLIP text features: the prompts (LIFT's ``prompt`` option), their encoding, and the map
into the space of the image backbone's feature."""
from typing import Dict, List, Optional, Sequence

import torch
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch.nn import functional as F

from ...utils.text_files import read_json
from .clip_text_encoder import CLIPTextEncoder

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
        path (str): The JSON file, UTF-8 with or without a byte-order mark.

    Returns:
        dict[str, list[str]]: The descriptions of each class name.
    """
    descriptors = read_json(path, '`text_init.descriptors` file',
                            hint='Set `text_init.descriptors` to an existing JSON file.')
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


@torch.no_grad()
def encode_class_prompts(encoder: CLIPTextEncoder, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Mean over ``templates`` of the L2-normalised text features of each class name.

    The text tower is the one every text-side component uses, :class:`CLIPTextEncoder` (which encodes in chunks,
    so thousands of classes fit in memory). Underscores in names become spaces.

    Args:
        encoder (CLIPTextEncoder): The text encoder.
        classnames (Sequence[str]): The class names.
        templates (Sequence[str]): ``str.format`` patterns with one ``{}`` for the class name.

    Returns:
        torch.Tensor: Features of shape (num_classes, embed_dim).
    """
    per_template = [F.normalize(encoder.encode_classes(classnames, template).float(), dim=-1)
                    for template in templates]
    return torch.stack(per_template).mean(dim=0)


def to_image_feature_space(text_features: torch.Tensor, visual_proj: Optional[torch.Tensor]) -> torch.Tensor:
    """Map text features into the space of the image backbone's feature and L2-normalise.

    CLIP ViT backbones output the feature before the visual projection, so text features go through the
    projection's transpose: ``normalize(normalize(t) @ proj.T)``. CLIP ResNets output the attention-pooled
    feature, already in the joint space: pass ``visual_proj=None`` and the features are only normalised.
    """
    text_features = F.normalize(text_features, dim=-1)
    if visual_proj is None:
        return text_features
    # The projection may already sit on the model's device while the text tower that encoded the classes does not.
    return F.normalize(text_features @ visual_proj.float().t().to(text_features.device), dim=-1)
