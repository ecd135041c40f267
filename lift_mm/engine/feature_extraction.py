"""Running a classifier's encoder over a dataset once: the features for cached training, head initialisation
and diagnostics, and the key that says when such features are stale."""
import hashlib
import json
import os
import os.path as osp
from typing import Callable, Optional, Sequence

import torch
from mmengine.dataset import BaseDataset, pseudo_collate
from mmengine.dist import all_gather, get_dist_info
from mmengine.utils import ProgressBar
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..datasets.cached_features import CACHE_FORMAT, CachedFeatureDataset
from ..models.utils import fingerprint

__all__ = ['extract_features', 'feature_cache_key']

# Settings of mmpretrain's data preprocessors that change what the encoder sees.
PREPROCESSOR_SETTINGS = ('to_rgb', '_enable_normalize', 'pad_size_divisor', 'pad_value')


def _update_json(digest: 'hashlib._Hash', value) -> None:
    digest.update(json.dumps(value, sort_keys=True, default=repr).encode())
    digest.update(b'\n')


def feature_cache_key(model: nn.Module, dataset: BaseDataset, pipeline: Sequence[dict]) -> str:
    """A hex key that changes whenever the cached features of ``dataset`` could differ.

    It covers the encoder (the :func:`~lift_mm.models.utils.fingerprint` of the model's backbone and neck:
    architecture, activations and every parameter and persistent buffer by value, frozen ones included), the data
    preprocessor's normalisation, the pipeline config, and every sample: its annotation and, for local image
    files, their size and modification time. Hashing ViT-B/16's weights takes about a second.

    Args:
        model (nn.Module): The classifier (``backbone``, optional ``neck``, ``data_preprocessor``).
        dataset (BaseDataset): The dataset, with ``pipeline`` as its pipeline.
        pipeline (Sequence[dict]): The pipeline's config.

    Returns:
        str: A SHA-256 hex digest.
    """
    digest = hashlib.sha256()
    _update_json(digest, dict(format=CACHE_FORMAT, preprocessor=type(model.data_preprocessor).__name__,
                              dataset=type(dataset).__name__, length=len(dataset), pipeline=list(pipeline)))
    for part in ('backbone', 'neck'):
        module = getattr(model, part, None)
        digest.update(f'{part}:{type(module).__name__}:'.encode())
        if module is not None:
            # Taken now, not at construction: weights loaded since then must change the key.
            digest.update(fingerprint(module).numpy().tobytes())
    preprocessor = model.data_preprocessor
    _update_json(digest, {name: getattr(preprocessor, name, None) for name in PREPROCESSOR_SETTINGS})
    for name in ('mean', 'std'):
        value = getattr(preprocessor, name, None)
        _update_json(digest, value.tolist() if isinstance(value, torch.Tensor) else None)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        path = info.get('img_path')
        if isinstance(path, str) and osp.isfile(path):
            stat = os.stat(path)
            info = dict(info, file_size=stat.st_size, file_mtime_ns=stat.st_mtime_ns)
        _update_json(digest, info)
    return digest.hexdigest()


@torch.no_grad()
def extract_features(model: nn.Module,
                     dataset: Dataset,
                     batch_size: int,
                     num_workers: int = 0,
                     progress: bool = True,
                     encode: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> CachedFeatureDataset:
    """Run every sample of ``dataset`` through the model's data preprocessor and encoder once.

    The features are the last output of ``model.extract_feat`` in eval mode, what a head receives, unless
    ``encode`` says otherwise. Under data parallelism each process encodes every ``world_size``-th sample (from
    its rank on) and the shards are gathered, so every process returns all features, in dataset order.

    Args:
        model (nn.Module): The classifier, not wrapped in DDP.
        dataset (Dataset): Samples packed as images (``inputs``, ``data_samples`` with ``gt_label``).
        batch_size (int): Images per forward pass.
        num_workers (int): Data loading workers. Defaults to 0.
        progress (bool): Show a progress bar on rank 0. Defaults to True.
        encode (Callable, optional): Maps a batch of preprocessed images to features of shape (B, C). Defaults
            to None, the last output of ``model.extract_feat``.

    Returns:
        CachedFeatureDataset: Features and labels of all samples, with the dataset's metainfo.
    """
    rank, world_size = get_dist_info()
    if len(dataset) < world_size:
        # A process without samples could not tell the others the width of the features.
        raise ValueError(f'extract_features: {len(dataset)} samples cannot be shared among {world_size} processes; '
                         'encode them with fewer processes.')
    indices = list(range(rank, len(dataset), world_size))
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=pseudo_collate)
    bar = ProgressBar(len(indices)) if progress and rank == 0 else None
    was_training = model.training
    model.eval()
    features, labels = [], []
    try:
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            inputs = data['inputs']
            features.append((model.extract_feat(inputs)[-1] if encode is None else encode(inputs)).cpu())
            labels.append(torch.cat([sample.gt_label for sample in data['data_samples']]).cpu())
            if bar is not None:
                bar.update(len(labels[-1]))
    finally:
        model.train(was_training)
    if bar is not None:
        # The bar leaves its line open; later log lines start on a fresh one.
        bar.file.write('\n')
    features, labels = torch.cat(features), torch.cat(labels)
    if world_size > 1:
        features, labels = _gather_shards(features, labels, len(dataset), world_size)
    return CachedFeatureDataset(features, labels, getattr(dataset, 'metainfo', None))


def _gather_shards(features: torch.Tensor, labels: torch.Tensor, total: int, world_size: int):
    """Interleave the strided shards of every process back into dataset order."""
    largest = -(-total // world_size)
    padded = features.new_zeros(largest, features.shape[1])
    padded[:len(features)] = features
    padded_labels = labels.new_zeros(largest)
    padded_labels[:len(labels)] = labels
    all_features = features.new_empty(total, features.shape[1])
    all_labels = labels.new_empty(total)
    for rank, (shard, shard_labels) in enumerate(zip(all_gather(padded), all_gather(padded_labels))):
        count = len(range(rank, total, world_size))
        all_features[rank::world_size] = shard[:count].cpu()
        all_labels[rank::world_size] = shard_labels[:count].cpu()
    return all_features, all_labels
