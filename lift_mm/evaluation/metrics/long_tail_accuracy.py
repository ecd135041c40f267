"""Accuracy metrics of the long-tail protocol (overall, per group, per
class)."""
import json
import logging
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpretrain.registry import METRICS

from lift_mm.datasets.long_tail_groups import GROUP_NAMES, long_tail_groups

# A class at 0% accuracy would make the harmonic mean 0 whatever the others
# do; LIFT floors per-class accuracy at 0.001% for it, and so do we.
_HMEAN_FLOOR = 1e-5


@METRICS.register_module()
class LongTailAccuracy(BaseMetric):
    """Top-k, many / medium / few and per-class accuracy of a classifier.

    The long-tail groups come from the per-class *training* counts (see
    :func:`~lift_mm.datasets.long_tail_groups`): ``class_counts=`` if given,
    else ``dataset_meta['group_counts']`` if the dataset defines it (CIFAR-100
    groups by the counts of its ``group_ratio``), else
    ``dataset_meta['class_counts']``, which :class:`~lift_mm.datasets.\
LongTailDataset` and its subclasses provide.

    Metrics (in percent, keys prefixed with ``prefix + '/'``):

    - ``top{k}``: top-k accuracy over all samples, for each k in ``topk``.
    - ``many`` / ``medium`` / ``few``: top-1 accuracy over the samples whose
      ground-truth class is in the group. On a class-balanced test set (as
      in ImageNet-LT, Places-LT, iNaturalist 2018 and CIFAR-100-LT) this
      equals LIFT's mean of the per-class accuracies of the group. A group
      without classes (e.g. few-shot on CIFAR-100-LT at ratio 10 grouped by
      its own counts, as LIFT+ does) is left out of the metrics with an
      info line saying it has no classes; a group whose classes have no
      evaluated sample is left out with a warning. No value is ``nan``.
    - ``mean_class``: mean per-class top-1 accuracy (balanced accuracy).
    - ``macro_f1``: mean F1 score over the classes.
    - ``worst_class``: lowest per-class top-1 accuracy.
    - ``hmean_class``: harmonic mean of per-class accuracy, each floored at
      0.001% as in LIFT.
    - ``gmean_class``: geometric mean of per-class accuracy (0 if any class
      is at 0%).

    Per-class statistics use the classes that have evaluated samples; if
    some classes have none, a warning says how many.

    Args:
        topk (int | Sequence[int]): The k of top-k accuracy.
            Defaults to ``(1, 5)``.
        many_thr (int): Classes with more training images are many-shot.
            Defaults to 100.
        few_thr (int): Classes with fewer training images are few-shot.
            Defaults to 20.
        class_counts (Sequence[int], optional): Training images per class,
            overriding the dataset meta information. Defaults to None.
        dump_file (str, optional): JSON file that receives, at every
            evaluation, the metrics, class names, training counts, groups,
            per-class accuracy and per-sample top-k predictions; read by
            ``tools/analysis/plot_long_tail.py``. Written by rank 0 only.
            Defaults to None.
        collect_device (str): Device for collecting results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str): Prefix of the metric names. Defaults to
            ``'long_tail'``.
        collect_dir (str, optional): Directory for collecting results across
            ranks with ``collect_device='cpu'``. Defaults to None.
    """
    default_prefix = 'long_tail'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, 5),
                 many_thr: int = 100,
                 few_thr: int = 20,
                 class_counts: Optional[Sequence[int]] = None,
                 dump_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        if not self.topk or any(
                not isinstance(k, int) or k < 1 for k in self.topk):
            raise ValueError(
                f'topk must be positive integers, got {topk!r}.')
        self.many_thr = many_thr
        self.few_thr = few_thr
        self.class_counts = None if class_counts is None else tuple(
            class_counts)
        if self.class_counts is not None:
            # Validate counts and thresholds now, not after a val epoch.
            long_tail_groups(self.class_counts, many_thr, few_thr)
        self.dump_file = dump_file

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        """Set the dataset meta information and check it has class counts,
        so a wrong dataset fails when the evaluator is built."""
        self._dataset_meta = dataset_meta
        self._counts()

    def _counts(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """Return the training counts and the counts defining the groups."""
        if self.class_counts is not None:
            return self.class_counts, self.class_counts
        meta = self.dataset_meta or {}
        if 'class_counts' not in meta:
            raise ValueError(
                f'{type(self).__name__} needs the per-class training counts '
                "under the dataset meta key 'class_counts', which this "
                f"dataset's metainfo (keys: {sorted(meta)}) lacks. Use "
                'LongTailDataset (or one of its subclasses) or pass '
                'class_counts=[...] to the metric.')
        counts = tuple(meta['class_counts'])
        group_counts = tuple(meta.get('group_counts', counts))
        if len(group_counts) != len(counts):
            raise ValueError(
                f"dataset meta 'group_counts' has {len(group_counts)} classes "
                f"but 'class_counts' has {len(counts)}.")
        long_tail_groups(group_counts, self.many_thr, self.few_thr)
        return counts, group_counts

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the ground truth and the top-k predicted labels of each
        sample.

        Args:
            data_batch: A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts with
                ``gt_label`` and ``pred_score`` (or ``pred_label`` when
                ``topk`` is ``(1,)``); ``sample_idx`` is kept when present.
        """
        maxk = max(self.topk)
        num_classes = len(self._counts()[0])
        for sample in data_samples:
            if 'pred_score' in sample:
                score = torch.as_tensor(sample['pred_score']).flatten()
                if score.numel() != num_classes:
                    raise ValueError(
                        f'pred_score has {score.numel()} classes but the '
                        f'training counts have {num_classes}; the model head '
                        'and the dataset disagree.')
                if maxk > num_classes:
                    raise ValueError(f'topk={self.topk} exceeds the '
                                     f'{num_classes} classes.')
                pred = score.topk(maxk).indices.tolist()
            elif 'pred_label' in sample and maxk == 1:
                pred = [int(torch.as_tensor(sample['pred_label']).flatten()[0])]
            else:
                raise ValueError(
                    f'{type(self).__name__} with topk={self.topk} needs '
                    "'pred_score' in each prediction (top-1 alone also "
                    "works from 'pred_label'); got keys "
                    f'{sorted(sample)}.')
            self.results.append(
                dict(
                    gt_label=int(
                        torch.as_tensor(sample['gt_label']).flatten()[0]),
                    pred_topk=pred,
                    sample_idx=sample.get('sample_idx')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the metrics from the results of all ranks.

        Args:
            results (List[dict]): What :meth:`process` kept, for the whole
                dataset.

        Returns:
            Dict[str, float]: The metrics, without prefix.
        """
        counts, group_counts = self._counts()
        num_classes = len(counts)
        if not results:
            raise ValueError(f'{type(self).__name__} got no predictions to '
                             'evaluate; is the evaluation dataset empty?')
        gt = np.array([res['gt_label'] for res in results], dtype=np.int64)
        preds = np.array([res['pred_topk'] for res in results],
                         dtype=np.int64)
        bad = np.flatnonzero((gt < 0) | (gt >= num_classes))
        if bad.size:
            raise ValueError(
                f'ground-truth label {gt[bad[0]]} is outside the '
                f'{num_classes} classes of the training counts.')
        if (preds >= num_classes).any():
            raise ValueError(
                f'predicted label {preds.max()} is outside the {num_classes} '
                'classes of the training counts; the model head and the '
                'dataset disagree.')

        correct = preds[:, 0] == gt
        metrics = {
            f'top{k}': 100.0 * float((preds[:, :k] == gt[:, None]).any(1).mean())
            for k in self.topk
        }
        groups = long_tail_groups(group_counts, self.many_thr, self.few_thr)
        rules = dict(
            many=f'more than {self.many_thr}',
            medium=f'{self.few_thr} to {self.many_thr}',
            few=f'fewer than {self.few_thr}')
        for name in GROUP_NAMES:
            # A missing key rather than nan, which would spoil the choice of
            # the best checkpoint, averages over runs and the JSON logs.
            if not groups[name].size:
                print_log(
                    f'{type(self).__name__}: the {name} group has no classes '
                    f'(no class has {rules[name]} training images in the '
                    f'counts that define the groups); {name} accuracy is not '
                    'reported.',
                    logger='current',
                    level=logging.INFO)
                continue
            in_group = np.isin(gt, groups[name])
            if not in_group.any():
                print_log(
                    f'{type(self).__name__}: no evaluated sample belongs to '
                    f'the {name} group ({groups[name].size} classes); {name} '
                    'accuracy is not reported.',
                    logger='current',
                    level=logging.WARNING)
                continue
            metrics[name] = 100.0 * float(correct[in_group].mean())

        per_class_total = np.bincount(gt, minlength=num_classes)
        per_class_correct = np.bincount(
            gt, weights=correct, minlength=num_classes)
        present = np.flatnonzero(per_class_total)
        if present.size < num_classes:
            print_log(
                f'{type(self).__name__}: {num_classes - present.size} of '
                f'{num_classes} classes have no evaluated sample; per-class '
                'metrics use the other classes.',
                logger='current',
                level=logging.WARNING)
        class_acc = per_class_correct[present] / per_class_total[present]
        metrics['mean_class'] = 100.0 * float(class_acc.mean())
        metrics['macro_f1'] = 100.0 * self._macro_f1(gt, preds[:, 0], present)
        metrics['worst_class'] = 100.0 * float(class_acc.min())
        metrics['hmean_class'] = 100.0 / float(
            np.mean(1.0 / np.maximum(class_acc, _HMEAN_FLOOR)))
        metrics['gmean_class'] = 0.0 if (class_acc == 0).any() else (
            100.0 * math.exp(float(np.log(class_acc).mean())))

        if self.dump_file:
            accuracy = np.full(num_classes, np.nan)
            accuracy[present] = 100.0 * class_acc
            self._dump(metrics, counts, group_counts, groups, accuracy,
                       per_class_total, results)
        return metrics

    @staticmethod
    def _macro_f1(gt: np.ndarray, pred: np.ndarray,
                  classes: np.ndarray) -> float:
        """Mean F1 over ``classes`` (those with ground-truth samples, as
        LIFT's ``f1_score(..., labels=np.unique(y_true))``)."""
        size = max(int(gt.max()), int(pred.max())) + 1
        tp = np.bincount(gt[pred == gt], minlength=size)[classes]
        predicted = np.bincount(pred, minlength=size)[classes]
        actual = np.bincount(gt, minlength=size)[classes]
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual); actual > 0.
        return float(np.mean(2.0 * tp / (predicted + actual)))

    def _dump(self, metrics: Dict[str, float], counts: Sequence[int],
              group_counts: Sequence[int], groups: Dict[str, np.ndarray],
              accuracy: np.ndarray, num_samples: np.ndarray,
              results: List[dict]) -> None:
        """Write the per-class and per-sample results to ``dump_file``."""

        def finite_or_none(value: float) -> Optional[float]:
            # JSON has no NaN; null marks "no samples".
            return None if math.isnan(value) else value

        classes = (self.dataset_meta or {}).get('classes')
        content = dict(
            metrics=metrics,
            prefix=self.prefix,
            many_thr=self.many_thr,
            few_thr=self.few_thr,
            classes=None if classes is None else list(classes),
            class_counts=list(counts),
            group_counts=list(group_counts),
            groups={name: idx.tolist()
                    for name, idx in groups.items()},
            per_class_accuracy=[finite_or_none(v) for v in accuracy.tolist()],
            per_class_num_samples=num_samples.tolist(),
            predictions=results,
        )
        parent = osp.dirname(osp.abspath(self.dump_file))
        os.makedirs(parent, exist_ok=True)
        with open(self.dump_file, 'w') as f:
            json.dump(content, f)
        print_log(
            f'{type(self).__name__}: per-class results written to '
            f'{self.dump_file}.',
            logger='current')
