"""Does fine-tuning distort the tail? Feature diagnostics of a checkpoint (LIFT's Figures 3 and 4).

``python tools/analysis/feature_analysis.py CONFIG [CHECKPOINT] --out DIR [--compare [OTHER ...]]``

The features are what the head sees (the last output of the classifier's ``extract_feat``), extracted through
:func:`lift_mm.engine.extract_features` (shared among the processes of ``tools/dist_*.sh``-style launches, then
gathered) from the training images with the test pipeline (``--shots N``: at most N per class) and from the test
set. Without CHECKPOINT the model is the one the config builds (zero-shot: the foundation with its light modules
as initialised, which LIFT's AdaptFormer leaves the identity). ``--compare`` adds models drawn beside the first
with the same scales: checkpoints and ``zero-shot`` (the model without a checkpoint), in the order given; without a
value, the zero-shot model.

Written to DIR:

* ``inter_class_similarity.png``: cosine similarity of the class-mean test features, classes ordered by training
  count (head to tail), one heatmap per model on one colour scale;
  ``inter_class_similarity_<model>.csv``: that matrix, in that order;
  ``inter_class_similarity.csv``: per model and group (many / medium / few / all), the mean similarity of each
  class of the group to every other class (the off-diagonal entries of its rows), averaged over the group.
* ``intra_class_distribution.png``: for the few-shot classes, histograms of each sample's cosine similarity to
  its class's mean training feature, training against test samples, one panel per model on the same bins;
  ``intra_class_histogram.csv``: those counts;
  ``intra_class_distribution.csv``: per model and group, the mean similarity of the training and of the test
  samples, their difference (test minus training: the mean shift) and the 1-D Wasserstein distance between the
  two distributions (samples of all the group's classes pooled).
* ``features.npz`` with ``--save-features``: the features and labels (``<model>/train_features``, ...).

The two figures also go to the visualizer backends of the config (``visualizer.vis_backends``: TensorBoard, W&B,
...) as the images ``inter_class_similarity`` and ``intra_class_distribution`` at step 0; the default
``LocalVisBackend`` writes them to ``WORK_DIR/<timestamp>/vis_data/vis_image/``.
"""
import argparse
import copy
import csv
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmpretrain.registry import DATASETS  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import Subset  # noqa: E402

import lift_mm  # noqa: E402,F401  (registers components and the checkpoint allow-list)
from lift_mm.datasets import GROUP_NAMES, long_tail_groups  # noqa: E402
from lift_mm.engine import (add_runner_arguments, apply_runner_arguments, extract_features,  # noqa: E402
                            load_checkpoint_strictly, setup_distributed_without_cuda)
from lift_mm.engine.hooks.utils import per_class_indices, train_images_cfg, unwrap_model  # noqa: E402
from lift_mm.utils.figures import save_figure  # noqa: E402

ZERO_SHOT = 'zero-shot'
DPI = 150
# Class names as tick labels only while they stay readable.
MAX_NAMED_CLASSES = 30


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Inter-class similarity and tail intra-class distributions of the '
                                     'features a head sees (PNG + CSV).')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (none: the model the config builds)')
    parser.add_argument('--out', required=True, help='directory for the PNG and CSV files')
    parser.add_argument('--compare', nargs='*', metavar='OTHER',
                        help=f'checkpoints (or {ZERO_SHOT}, the model without a checkpoint) drawn beside the first; '
                        'without a value, the zero-shot model')
    parser.add_argument('--labels', nargs='+', help='a name per model (default: checkpoint file names)')
    parser.add_argument('--shots', type=int, help='at most this many training images per class (default: all)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the --shots draw (default: 0)')
    parser.add_argument('--bins', type=int, default=20, help='histogram bins (default: 20)')
    parser.add_argument('--many-thr', type=int, default=100,
                        help='classes with more training images are many-shot (default: 100)')
    parser.add_argument('--few-thr', type=int, default=20,
                        help='classes with fewer training images are few-shot (default: 20)')
    parser.add_argument('--batch-size', type=int, help="images per forward pass (default: the test loader's)")
    parser.add_argument('--save-features', action='store_true', help='also write the features to features.npz')
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    for key in ('shots', 'bins', 'batch_size'):
        value = getattr(args, key)
        if value is not None and value < 1:
            parser.error(f'--{key.replace("_", "-")} must be at least 1, not {value}.')
    return args


def model_labels(checkpoints: Sequence[Optional[str]], labels: Optional[Sequence[str]]) -> List[str]:
    """A distinct name per model: ``labels``, else the checkpoint file names (``zero-shot`` for none)."""
    if labels is None:
        labels = [ZERO_SHOT if path is None else osp.splitext(osp.basename(path))[0] for path in checkpoints]
        if len(set(labels)) < len(labels):
            raise ValueError(f'the models would share the name {labels[0]!r}; name them with --labels.')
    elif len(labels) != len(checkpoints):
        raise ValueError(f'{len(checkpoints)} models but {len(labels)} --labels; give one label per model.')
    elif len(set(labels)) < len(labels):
        raise ValueError(f'--labels {list(labels)} repeats a name; give each model its own.')
    return list(labels)


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """The 1-D Wasserstein (earth mover's) distance between two samples: the area between their empirical CDFs.

    Args:
        a (np.ndarray): One sample (1-D, not empty).
        b (np.ndarray): The other.

    Returns:
        float: The distance, in the samples' unit.
    """
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    points = np.sort(np.concatenate([a, b]))
    # Between consecutive points both CDFs are constant.
    cdf_a = np.searchsorted(a, points[:-1], side='right') / len(a)
    cdf_b = np.searchsorted(b, points[:-1], side='right') / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(points)))


def class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int, split: str) -> torch.Tensor:
    """The mean feature of every class; every class must have a sample in ``split``."""
    counts = torch.bincount(labels, minlength=num_classes)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f'the {split} set has no images of classes {missing[:10]} ({len(missing)} in all); '
                         'class means need every class.')
    sums = features.new_zeros(num_classes, features.shape[1]).index_add_(0, labels, features)
    return sums / counts[:, None].to(features)


def inter_class_similarity(test: Tuple[torch.Tensor, torch.Tensor], num_classes: int) -> np.ndarray:
    """Cosine similarity of the class-mean test features, in class-index order, shape (C, C)."""
    means = F.normalize(class_means(*test, num_classes, 'test'), dim=-1)
    return (means @ means.T).numpy()


def off_diagonal_means(similarity: np.ndarray, groups: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Per group (and ``all``): the mean over its classes of their mean similarity to every other class."""
    num_classes = len(similarity)
    rows = (similarity.sum(1) - np.diag(similarity)) / max(num_classes - 1, 1)
    members = dict(groups, all=np.arange(num_classes))
    return {name: float(rows[classes].mean()) if len(classes) else float('nan') for name, classes in members.items()}


def similarity_to_train_means(train: Tuple[torch.Tensor, torch.Tensor], samples: Tuple[torch.Tensor, torch.Tensor],
                              num_classes: int) -> np.ndarray:
    """The cosine similarity of each of ``samples`` to the mean training feature of its class."""
    means = F.normalize(class_means(*train, num_classes, 'training'), dim=-1)
    features, labels = samples
    return (F.normalize(features, dim=-1) * means[labels]).sum(-1).numpy()


def intra_class_statistics(train_sims: np.ndarray, test_sims: np.ndarray, train_labels: np.ndarray,
                           test_labels: np.ndarray, groups: Dict[str, np.ndarray]) -> Dict[str, dict]:
    """Per group: sample counts, mean similarity of training and test samples, mean shift and Wasserstein."""
    stats = {}
    for name, classes in groups.items():
        train, test = train_sims[np.isin(train_labels, classes)], test_sims[np.isin(test_labels, classes)]
        if len(train) and len(test):
            values = dict(train_mean=train.mean(), test_mean=test.mean(), mean_shift=test.mean() - train.mean(),
                          wasserstein=wasserstein_1d(train, test))
        else:
            values = dict.fromkeys(('train_mean', 'test_mean', 'mean_shift', 'wasserstein'), float('nan'))
        stats[name] = dict(train_samples=len(train), test_samples=len(test), **values)
    return stats


def write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def plot_similarity(matrices: Dict[str, np.ndarray], names: List[str], groups: Dict[str, np.ndarray],
                    order: np.ndarray) -> plt.Figure:
    """One heatmap per model on one colour scale, classes head to tail, group borders marked."""
    low = min(matrix.min() for matrix in matrices.values())
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices) + 0.8, 4.2), dpi=DPI, squeeze=False,
                             layout='constrained')
    position = np.empty(len(order), dtype=int)
    position[order] = np.arange(len(order))
    for ax, (label, matrix) in zip(axes[0], matrices.items()):
        image = ax.imshow(matrix, vmin=low, vmax=1.0, cmap='viridis', interpolation='nearest')
        ax.set_title(f'{label}: inter-class cosine similarity')
        ax.set_xlabel('class, most training images first')
        if len(order) <= MAX_NAMED_CLASSES:
            ticks = [names[i] for i in order]
            ax.set_xticks(range(len(order)), ticks, rotation=90, fontsize='x-small')
            ax.set_yticks(range(len(order)), ticks, fontsize='x-small')
        for name in GROUP_NAMES[1:]:
            if len(groups[name]):
                edge = position[groups[name]].min() - 0.5
                ax.axhline(edge, color='white', linewidth=0.8)
                ax.axvline(edge, color='white', linewidth=0.8)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label='cosine similarity')
    return fig


def plot_intra_class(histograms: Dict[str, Dict[str, np.ndarray]], edges: np.ndarray,
                     stats: Dict[str, dict]) -> plt.Figure:
    """One panel per model: few-shot training against test similarities to the class training means."""
    fig, axes = plt.subplots(1, len(histograms), figsize=(4.2 * len(histograms), 3.4), dpi=DPI, squeeze=False,
                             sharey=True, layout='constrained')
    for ax, (label, counts) in zip(axes[0], histograms.items()):
        for split, color in (('train', 'C0'), ('test', 'C1')):
            ax.stairs(counts[split] / max(counts[split].sum(), 1), edges, fill=True, alpha=0.45, color=color,
                      label=f'{split} ({counts[split].sum()})')
        few = stats[label]['few']
        ax.set_title(f'{label}: few-shot classes\nmean shift {few["mean_shift"]:.3f}, '
                     f'Wasserstein {few["wasserstein"]:.3f}')
        ax.set_xlabel("cosine similarity to the class's training mean")
        ax.legend(frameon=False)
    axes[0][0].set_ylabel('fraction of samples')
    return fig


def publish(fig: plt.Figure, name: str, out: str, runner: Runner) -> None:
    """Write the figure to ``out/name.png`` and send the same pixels to the runner's visualizer backends."""
    runner.visualizer.add_image(name, save_figure(fig, osp.join(out, f'{name}.png')), step=0)
    plt.close(fig)


def build_model_like(runner: Runner, cfg: Config) -> torch.nn.Module:
    """Another model, built as the runner built its own, on the same device.

    The runner merges the config's top-level ``data_preprocessor`` (the CLIP normalisation) into the model's;
    ``cfg.model`` alone would build a model that sees unnormalised images.
    """
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    return runner.build_model(model_cfg).to(next(unwrap_model(runner.model).parameters()).device)


def extract(model, dataset, args, cfg) -> Tuple[torch.Tensor, torch.Tensor]:
    loader = cfg.test_dataloader
    extracted = extract_features(model, dataset, batch_size=args.batch_size or loader.batch_size,
                                 num_workers=loader.get('num_workers', 0))
    return extracted.features.float().cpu(), extracted.labels.cpu()


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    apply_runner_arguments(cfg, args)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    others = [] if args.compare is None else args.compare or [ZERO_SHOT]
    checkpoints = [args.checkpoint] + [None if other == ZERO_SHOT else other for other in others]
    try:
        labels = model_labels(checkpoints, args.labels)
    except ValueError as error:
        sys.exit(f'error: {error}')
    setup_distributed_without_cuda(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    logger = runner.logger

    train_set = DATASETS.build(train_images_cfg(cfg, 'feature_analysis.py'))
    test_set = DATASETS.build(cfg.test_dataloader.dataset)
    num_classes = len(train_set.metainfo['classes'])
    counts = np.bincount(np.asarray(train_set.get_gt_labels()), minlength=num_classes)
    order = np.argsort(-counts, kind='stable')
    groups = long_tail_groups(counts, args.many_thr, args.few_thr)
    if not len(groups['few']):
        sys.exit(f'error: no few-shot class (fewer than --few-thr={args.few_thr} training images; the smallest '
                 f'class has {counts.min()}); raise --few-thr.')
    train_subset = Subset(train_set, per_class_indices(train_set.get_gt_labels(), args.shots, args.seed))
    logger.info(f'feature_analysis: {len(train_subset)} training and {len(test_set)} test images, '
                f'{num_classes} classes (' + ', '.join(f'{name} {len(groups[name])}' for name in GROUP_NAMES) + ')')

    features = {}
    for label, checkpoint in zip(labels, checkpoints):
        model = unwrap_model(runner.model) if not features else build_model_like(runner, cfg)
        if checkpoint is not None:
            load_checkpoint_strictly(model, checkpoint)
        logger.info(f'feature_analysis: extracting the features of {label} '
                    f'({checkpoint or "the model the config builds"})')
        features[label] = dict(train=extract(model, train_subset, args, cfg), test=extract(model, test_set, args, cfg))
        del model
    if not is_main_process():
        return

    os.makedirs(args.out, exist_ok=True)
    names = list(train_set.metainfo['classes'])
    matrices, similarity_rows, sims = {}, [], {}
    for label, split in features.items():
        matrix = inter_class_similarity(split['test'], num_classes)
        matrices[label] = matrix[np.ix_(order, order)]
        write_csv(osp.join(args.out, f'inter_class_similarity_{label}.csv'), ['class', *(names[i] for i in order)],
                  [[names[i], *row] for i, row in zip(order, matrices[label].tolist())])
        for group, value in off_diagonal_means(matrix, groups).items():
            similarity_rows.append([label, group, value])
        sims[label] = {name: similarity_to_train_means(split['train'], split[name], num_classes)
                       for name in ('train', 'test')}
    write_csv(osp.join(args.out, 'inter_class_similarity.csv'), ['model', 'group', 'mean_off_diagonal'],
              similarity_rows)
    publish(plot_similarity(matrices, names, groups, order), 'inter_class_similarity', args.out, runner)

    stats, histograms, distribution_rows, histogram_rows = {}, {}, [], []
    few_values = {label: {split: sims[label][split][np.isin(features[label][split][1].numpy(), groups['few'])]
                          for split in ('train', 'test')} for label in features}
    pooled = np.concatenate([values for splits in few_values.values() for values in splits.values()])
    edges = np.linspace(pooled.min(), pooled.max(), args.bins + 1)
    for label in features:
        stats[label] = intra_class_statistics(sims[label]['train'], sims[label]['test'],
                                              features[label]['train'][1].numpy(),
                                              features[label]['test'][1].numpy(), groups)
        for group, values in stats[label].items():
            distribution_rows.append([label, group, *values.values()])
        histograms[label] = {split: np.histogram(values, edges)[0] for split, values in few_values[label].items()}
        for split, counts_of_bins in histograms[label].items():
            histogram_rows += [[label, split, left, right, count]
                               for left, right, count in zip(edges[:-1], edges[1:], counts_of_bins.tolist())]
    write_csv(osp.join(args.out, 'intra_class_distribution.csv'),
              ['model', 'group', *next(iter(stats[labels[0]].values())).keys()], distribution_rows)
    write_csv(osp.join(args.out, 'intra_class_histogram.csv'), ['model', 'split', 'bin_left', 'bin_right', 'count'],
              histogram_rows)
    publish(plot_intra_class(histograms, edges, stats), 'intra_class_distribution', args.out, runner)
    if args.save_features:
        np.savez(osp.join(args.out, 'features.npz'),
                 **{f'{label}/{split}_{kind}': tensor.numpy() for label, splits in features.items()
                    for split, pair in splits.items() for kind, tensor in zip(('features', 'labels'), pair)})
    for label in labels:
        few = stats[label]['few']
        logger.info(f'feature_analysis: {label}: few-shot mean shift {few["mean_shift"]:.4f}, Wasserstein '
                    f'{few["wasserstein"]:.4f}')
    logger.info(f'feature_analysis: wrote the figures and tables to {args.out}')


if __name__ == '__main__':
    main()
