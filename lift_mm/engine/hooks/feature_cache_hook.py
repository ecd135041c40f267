"""Training a head from encoder features computed once, instead of running the frozen encoder every epoch."""
import copy
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.dataset import BaseDataset, Compose
from mmengine.dist import all_reduce, barrier, get_dist_info
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from torch import nn
from torch.utils.data import DataLoader

from ...datasets.cached_features import CachedFeatureDataset
from ...models.classifiers import FeatureClassifier
from ..feature_extraction import extract_features, feature_cache_key
from .utils import unwrap_model

__all__ = ['FeatureCacheHook']


@HOOKS.register_module()
class FeatureCacheHook(Hook):
    """Train only the head, from features of the training set that the frozen encoder computes once.

    For models whose backbone and neck have nothing to train (classifier-only LIFT, ``light_modules=[]``), every
    epoch would run the same encoder on the same images. Before training, this hook encodes the training set
    once and replaces the training data loader by one over the cached features, with the same sampler (so the
    same order and batches) and no workers; validation and testing still run on images. The model must be a
    :class:`~lift_mm.models.classifiers.FeatureClassifier`, which takes features in place of images.

    **Augmentation is off.** Features can only be cached for a deterministic pipeline, so the training images
    go through ``pipeline``, by default the test data loader's (resize and crop, no random crop or flip), instead
    of the training pipeline; batch augmentations (Mixup, CutMix) are refused. Training from the cache gives the
    results (within float32 rounding) of training without it on the training images through that pipeline.

    The cache is a file in ``cache_dir`` named after its key (:func:`feature_cache_key`), which covers the
    encoder's weights, the data preprocessor, the pipeline and every training sample (annotation, image file
    size and modification time), so a stale cache is never read; with ``save=False`` it is kept in memory only.
    Under data parallelism every process encodes its share of the images, the shares are gathered, and rank 0
    writes the file.

    Args:
        pipeline (Sequence[dict], optional): Deterministic pipeline of the training images; None takes the test
            data loader's. Defaults to None.
        cache_dir (str, optional): Folder of the cache files; None is ``<work_dir>/feature_cache``. Share it
            between runs to reuse caches. Defaults to None.
        save (bool): Write the cache file and read it when it exists. Defaults to True.
        batch_size (int, optional): Images per forward pass of the encoding; None takes the training data
            loader's. Defaults to None.
        num_workers (int, optional): Data loading workers of the encoding; None takes the training data
            loader's. Defaults to None.
    """

    def __init__(self,
                 pipeline: Optional[Sequence[dict]] = None,
                 cache_dir: Optional[str] = None,
                 save: bool = True,
                 batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None) -> None:
        self.pipeline = None if pipeline is None else [dict(transform) for transform in pipeline]
        self.cache_dir = cache_dir
        self.save = save
        self.batch_size = batch_size
        self.num_workers = num_workers

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        check_cacheable(model)
        loader = runner.train_loop.dataloader
        pipeline = self.pipeline or default_pipeline(runner.cfg)
        dataset = with_pipeline(loader.dataset, pipeline)
        cache_dir = self.cache_dir or osp.join(runner.work_dir, 'feature_cache')
        num_workers = loader.num_workers if self.num_workers is None else self.num_workers
        features = self.cached_features(model, dataset, pipeline, cache_dir,
                                        batch_size=self.batch_size or loader.batch_size or 1,
                                        num_workers=num_workers, logger=runner.logger)
        runner.train_loop.dataloader = feature_loader(features, loader)
        runner.logger.info(f'FeatureCacheHook: training from {len(features)} cached features of width '
                           f'{features.features.shape[1]}; the training images went through the pipeline '
                           f'{[transform["type"] for transform in pipeline]}, without augmentation.')

    def cached_features(self, model: nn.Module, dataset: BaseDataset, pipeline: Sequence[dict], cache_dir: str,
                        batch_size: int, num_workers: int = 0, logger=None) -> CachedFeatureDataset:
        """The features of ``dataset`` from the cache file if every process has it, else encoded (and saved).

        Args:
            model (nn.Module): The classifier, not wrapped.
            dataset (BaseDataset): Training samples, with ``pipeline`` as their pipeline.
            pipeline (Sequence[dict]): The pipeline's config, part of the key.
            cache_dir (str): Folder of the cache file.
            batch_size (int): Images per forward pass of the encoding.
            num_workers (int): Data loading workers of the encoding. Defaults to 0.
            logger (MMLogger, optional): Where to report what was done. Defaults to None.
        """
        key = feature_cache_key(model, dataset, pipeline)
        path = osp.join(cache_dir, f'{key[:32]}.pth')
        if self.save:
            cached = CachedFeatureDataset.load(path, key, dataset.metainfo)
            # Every process must take the same branch: extraction gathers across processes.
            everywhere = torch.tensor(int(cached is not None))
            all_reduce(everywhere, op='min')
            if everywhere.item():
                _log(logger, f'FeatureCacheHook: loaded the cached features {path}.')
                return cached
        _log(logger, f'FeatureCacheHook: encoding {len(dataset)} training images once.')
        features = extract_features(model, dataset, batch_size=batch_size, num_workers=num_workers)
        if self.save:
            if get_dist_info()[0] == 0:
                features.save(path, key)
                _log(logger, f'FeatureCacheHook: saved the features to {path}.')
            barrier()
        return features


def _log(logger, message: str) -> None:
    if logger is not None:
        logger.info(message)


def check_cacheable(model: nn.Module) -> None:
    """Raise unless ``model`` can train from cached features: a FeatureClassifier with a frozen encoder and no
    batch augmentations."""
    if not isinstance(model, FeatureClassifier):
        raise TypeError(f'FeatureCacheHook needs a FeatureClassifier (model.type), which takes cached features in '
                        f'place of images; the model is a {type(model).__name__}.')
    trainable = model.trainable_encoder_parameters()
    if trainable:
        raise ValueError(f'FeatureCacheHook: the encoder trains {len(trainable)} parameter(s) (e.g. {trainable[0]}), '
                         'so its features change every step and cannot be cached. Caching is for models that '
                         'train only the head, e.g. `light_modules=[]`.')
    if model.data_preprocessor.batch_augments is not None:
        raise ValueError('FeatureCacheHook: batch augmentations (train_cfg.augments) act on images and cannot be '
                         'applied to cached features; remove them to train from cached features.')


def default_pipeline(cfg) -> list:
    """The test data loader's pipeline, the default deterministic pipeline of the cached training images."""
    loader = cfg.get('test_dataloader') or {}
    pipeline = loader.get('dataset', {}).get('pipeline')
    if not pipeline:
        raise ValueError('FeatureCacheHook: the config has no test_dataloader.dataset.pipeline to encode the '
                         'training images with; give the hook a deterministic `pipeline`.')
    return list(pipeline)


def with_pipeline(dataset: BaseDataset, pipeline: Sequence[dict]) -> BaseDataset:
    """A shallow copy of ``dataset`` (sharing its annotations) whose samples go through ``pipeline``."""
    if not isinstance(dataset, BaseDataset):
        raise TypeError(f'FeatureCacheHook caches datasets derived from MMEngine\'s BaseDataset, not '
                        f'{type(dataset).__name__} (dataset wrappers such as RepeatDataset are not supported).')
    dataset = copy.copy(dataset)
    dataset.pipeline = Compose(copy.deepcopy(list(pipeline)))
    return dataset


def feature_loader(features: CachedFeatureDataset, loader: DataLoader) -> DataLoader:
    """A loader over ``features`` that draws the batches ``loader`` draws, in the main process.

    ``loader``'s own sampler (or batch sampler) is reused: it only depends on the dataset's length, which the
    features share, so the cached run sees the same samples in the same order and batches, epoch by epoch.
    Workers would only add start-up time to reading tensors from memory.
    """
    if loader.batch_size is None:
        return DataLoader(features, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn)
    return DataLoader(features, batch_size=loader.batch_size, sampler=loader.sampler, drop_last=loader.drop_last,
                      collate_fn=loader.collate_fn)
