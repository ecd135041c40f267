from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseTTAModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn
from torch.nn import functional as F


def _is_multi_view(inputs) -> bool:
    """Whether collated ``inputs`` hold several views of each image: a list over views, each view a list of
    image tensors (``pseudo_collate``) or one ``(images, C, H, W)`` tensor (``default_collate``)."""
    if isinstance(inputs, torch.Tensor) or not isinstance(inputs, Sequence) or not inputs:
        return False
    view = inputs[0]
    return view.dim() == 4 if isinstance(view, torch.Tensor) else isinstance(view, Sequence)


def _describe(inputs) -> str:
    """What collated ``inputs`` are, for error messages: type, length and the shape of the first tensor."""
    if isinstance(inputs, torch.Tensor):
        return f'one tensor of shape {tuple(inputs.shape)}'
    if isinstance(inputs, Sequence) and inputs:
        first = inputs[0]
        item = f'tensor of shape {tuple(first.shape)}' if isinstance(first, torch.Tensor) else type(first).__name__
        return f'a {type(inputs).__name__} of {len(inputs)} items, the first a {item}'
    return repr(inputs)


@MODELS.register_module()
class AverageLogitsTTA(BaseTTAModel):
    """Test-time ensembling that averages the classifier's logits over the views of each image (LIFT's TTE).

    mmpretrain's ``AverageClsScoreTTA`` averages softmax scores; LIFT averages logits, so this runs the wrapped
    classifier in ``mode='tensor'`` on every view, takes the mean of the logits of each image's views and
    predicts from it: ``pred_score = softmax(mean logits)``, ``pred_label = argmax``. The views come from a
    test pipeline ending in :class:`MultiViewCrop` (or mmcv's ``TestTimeAug``): after collation, ``inputs``
    and ``data_samples`` are lists over views of the batch's images. Each view of the batch is a list of image
    tensors (MMEngine's default ``pseudo_collate``) or one stacked ``(images, C, H, W)`` tensor (the
    ``default_collate`` of mmpretrain's configs and ``tools/test.py``). All views of the batch are run through
    the data preprocessor and the model ``chunk_size`` images at a time, so memory is bounded whatever the
    number of views.

    Args:
        module (dict | nn.Module): The classifier (an ``ImageClassifier`` or any model whose ``mode='tensor'``
            forward returns logits).
        chunk_size (int): Most images per forward pass. Defaults to 256.
        data_preprocessor (dict | nn.Module, optional): Replaces the classifier's data preprocessor, see
            ``BaseTTAModel``. Defaults to None.
    """

    def __init__(self,
                 module: Union[dict, nn.Module],
                 chunk_size: int = 256,
                 data_preprocessor: Union[dict, nn.Module, None] = None) -> None:
        if not (isinstance(chunk_size, int) and chunk_size > 0):
            raise ValueError(f'AverageLogitsTTA: `chunk_size`={chunk_size!r} must be a positive integer.')
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        self.chunk_size = chunk_size

    def mean_logits(self, views: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        """Mean logits over the views; ``views[v][i]`` is view ``v`` of image ``i`` (``views[v]`` a list of images
        or a stacked tensor). Returns (images, classes)."""
        num_views, num_images = len(views), len(views[0])
        flat = [image for view in views for image in view]
        logits = []
        for start in range(0, len(flat), self.chunk_size):
            batch = self.module.data_preprocessor(dict(inputs=flat[start:start + self.chunk_size]), False)
            logits.append(self.module(batch['inputs'], mode='tensor'))
        return torch.cat(logits).view(num_views, num_images, -1).mean(dim=0)

    def test_step(self, data: dict) -> List[DataSample]:
        """Predictions from the mean logits of each image's views."""
        views = data['inputs']
        if not _is_multi_view(views):
            raise TypeError('AverageLogitsTTA needs several views per image, `inputs` as a list over views (each a '
                            'list of images or a stacked batch), as a test pipeline (`tta_pipeline`) ending in '
                            f'MultiViewCrop or TestTimeAug gives; got {_describe(views)}.')
        scores = F.softmax(self.mean_logits(views), dim=1)
        labels = scores.argmax(dim=1, keepdim=True)
        samples: Optional[Sequence] = data.get('data_samples')
        samples = samples[0] if samples is not None else [DataSample() for _ in range(len(scores))]
        return [sample.set_pred_score(score).set_pred_label(label)
                for sample, score, label in zip(samples, scores, labels)]

    def merge_preds(self, data_samples_list: List[List[DataSample]]) -> List[DataSample]:
        """Not used: :meth:`test_step` merges logits, before predictions exist."""
        raise NotImplementedError('AverageLogitsTTA merges logits in test_step, not predictions.')
