"""CLIP text features of class names, mapped into the space of the image backbone's feature."""
from typing import Optional, Sequence

import torch
from torch.nn import functional as F

# Classes encoded per text-tower call: bounds memory for datasets with thousands of classes.
TEXT_BATCH = 256


@torch.no_grad()
def encode_class_prompts(clip: torch.nn.Module, tokenizer, classnames: Sequence[str],
                         templates: Sequence[str]) -> torch.Tensor:
    """Mean over ``templates`` of the L2-normalised text features of each class name.

    Underscores in names become spaces. Returns a (num_classes, embed_dim) tensor.
    """
    names = [name.replace('_', ' ') for name in classnames]
    per_template = []
    for template in templates:
        prompts = [template.format(name) for name in names]
        chunks = [clip.encode_text(tokenizer(prompts[i:i + TEXT_BATCH])) for i in range(0, len(prompts), TEXT_BATCH)]
        per_template.append(F.normalize(torch.cat(chunks).float(), dim=-1))
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
