"""Encoder features of a dataset, computed once (by :func:`lift_mm.engine.extract_features`), served as a
dataset for training a head without running the encoder."""
import json
import os.path as osp
from typing import Optional

import numpy as np
import torch
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

from ..utils.atomic_files import write_atomically

__all__ = ['CACHE_FORMAT', 'CachedFeatureDataset']

# Bump when the file layout or what a key covers changes, so that older caches are not read.
CACHE_FORMAT = 2


@DATASETS.register_module()
class CachedFeatureDataset(Dataset):
    """Precomputed encoder features of a dataset's samples with their labels, served as model inputs.

    Item ``i`` is ``dict(inputs=features[i], data_samples=DataSample with gt_label labels[i])``, the format of a
    packed image sample, so MMEngine's data loaders, samplers and collate functions work unchanged; a
    :class:`~lift_mm.models.classifiers.FeatureClassifier` takes the collated features in place of images.
    ``metainfo`` and :meth:`get_gt_labels` are the source dataset's, so hooks that read the training set (class
    counts) see the same data.

    Args:
        features (torch.Tensor): Features of shape (N, C).
        labels (torch.Tensor): Class indices of shape (N, ).
        metainfo (dict, optional): Meta information of the source dataset (``classes``, ...). Defaults to None.
    """

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, metainfo: Optional[dict] = None) -> None:
        if features.dim() != 2 or labels.shape != features.shape[:1]:
            raise ValueError(f'CachedFeatureDataset needs (N, C) features and (N, ) labels, got '
                             f'{tuple(features.shape)} and {tuple(labels.shape)}.')
        self.features = features
        self.labels = labels.long()
        self._metainfo = dict(metainfo or {})

    @property
    def metainfo(self) -> dict:
        return dict(self._metainfo)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.features[index], data_samples=DataSample().set_gt_label(self.labels[index]))

    def get_gt_labels(self) -> np.ndarray:
        return self.labels.numpy()

    def save(self, path: str, key: str) -> None:
        """Write the features to ``path`` under ``key``, atomically (a killed run leaves no partial file)."""
        content = dict(format=CACHE_FORMAT, key=key, features=self.features, labels=self.labels,
                       metainfo=json.dumps(self._metainfo, default=str))
        write_atomically(path, lambda file: torch.save(content, file))

    @classmethod
    def load(cls, path: str, key: str, metainfo: Optional[dict] = None) -> Optional['CachedFeatureDataset']:
        """The features saved at ``path`` under ``key``; None if there are none, or others (another key).

        Args:
            path (str): Cache file.
            key (str): Key the cache must have been saved under (see :func:`lift_mm.engine.feature_cache_key`).
            metainfo (dict, optional): Meta information to serve; the file keeps it only as text.
                Defaults to None.
        """
        if not osp.isfile(path):
            return None
        saved = torch.load(path, map_location='cpu', weights_only=True)
        if saved.get('format') != CACHE_FORMAT or saved.get('key') != key:
            return None
        return cls(saved['features'], saved['labels'], metainfo)
