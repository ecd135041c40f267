"""Tests of tools/analysis/feature_analysis.py: its numbers against plain numpy on the features it extracted."""
import csv
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lift_mm.engine import load_checkpoint_strictly
from demo_runs import demo_runner, load_tool, one_thread, run_tool

CONFIG = 'configs/lift/lift_demo.py'
SHOTS = 30
HEAVY = 4.0
MODELS = ('epoch_1', 'zero-shot', 'heavy')
feature_analysis = load_tool('feature_analysis')


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def quantile_wasserstein(a, b):
    """W1 as the area between the two quantile functions (the tool integrates between the CDFs)."""
    a, b = np.sort(a), np.sort(b)
    levels = np.unique(np.concatenate([np.arange(1, len(a) + 1) / len(a), np.arange(1, len(b) + 1) / len(b), [0]]))
    middles = (levels[:-1] + levels[1:]) / 2
    quantile_a = a[np.ceil(middles * len(a)).astype(int) - 1]
    quantile_b = b[np.ceil(middles * len(b)).astype(int) - 1]
    return float(np.sum(np.abs(quantile_a - quantile_b) * np.diff(levels)))


def test_wasserstein_matches_hand_computation():
    # CDFs of {0, 1} and {0.5}: |1/2 - 0| on [0, 0.5) and |1/2 - 1| on [0.5, 1).
    assert feature_analysis.wasserstein_1d(np.array([0., 1.]), np.array([0.5])) == pytest.approx(0.5)
    # A shift moves every sample by the same distance.
    assert feature_analysis.wasserstein_1d(np.array([0., 1., 2.]), np.array([3., 4., 5.])) == pytest.approx(3)
    # {0, 0, 1} against {1}: |2/3 - 0| on [0, 1).
    assert feature_analysis.wasserstein_1d(np.array([0., 0., 1.]), np.array([1.])) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=7), rng.normal(1, 2, size=12)
    assert feature_analysis.wasserstein_1d(a, b) == pytest.approx(quantile_wasserstein(a, b))


def test_model_names_must_be_distinct_and_one_per_model():
    assert feature_analysis.model_labels(['a/epoch_3.pth', None], None) == ['epoch_3', 'zero-shot']
    with pytest.raises(ValueError, match=r"share the name 'epoch_3'; name them with --labels"):
        feature_analysis.model_labels(['a/epoch_3.pth', 'b/epoch_3.pth'], None)
    with pytest.raises(ValueError, match=r'2 models but 1 --labels; give one label per model'):
        feature_analysis.model_labels(['a.pth', None], ['lift'])


def test_class_means_need_every_class():
    features = torch.arange(8.).reshape(4, 2)
    means = feature_analysis.class_means(features, torch.tensor([0, 1, 0, 1]), 2, 'test')
    np.testing.assert_allclose(means, [[2., 3.], [4., 5.]])
    with pytest.raises(ValueError, match=r'the training set has no images of classes \[1\] \(1 in all\)'):
        feature_analysis.class_means(features, torch.tensor([0, 0, 2, 2]), 3, 'training')


def test_heatmaps_share_one_colour_scale():
    rng = np.random.default_rng(0)
    matrices = {'a': rng.uniform(-0.5, 1, (4, 4)), 'b': rng.uniform(0.2, 1, (4, 4)), 'c': rng.uniform(0, 1, (4, 4))}
    groups = {'many': np.array([0]), 'medium': np.array([1, 2]), 'few': np.array([3])}
    fig = feature_analysis.plot_similarity(matrices, list('wxyz'), groups, np.arange(4))
    limits = [ax.images[0].get_clim() for ax in fig.axes if ax.images]
    assert limits == [(min(m.min() for m in matrices.values()), 1.0)] * 3


@pytest.fixture(scope='module')
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp('feature_analysis')
    data_root = root / 'data'
    runner = demo_runner(CONFIG, root / 'train', data_root, {
        'train_cfg.max_epochs': 1, 'param_scheduler.end': 1, 'param_scheduler.T_max': 1})
    with one_thread():
        runner.train()
    # A third model: the trained one with its adapters' outputs scaled up, as heavier tuning would move them; and,
    # for the test, the trained one with its adapters' outputs zeroed, which is the zero-shot model.
    for name, factor in (('heavy', HEAVY), ('identity', 0.0)):
        checkpoint = torch.load(root / 'train' / 'epoch_1.pth')
        for key, value in checkpoint['state_dict'].items():
            if 'up_proj' in key:
                value.mul_(factor)
        torch.save(checkpoint, root / f'{name}.pth')
    out = root / 'out'
    log = run_tool([sys.executable, 'tools/analysis/feature_analysis.py', CONFIG, str(root / 'train' / 'epoch_1.pth'),
                    '--out', str(out), '--compare', 'zero-shot', str(root / 'heavy.pth'), '--shots', str(SHOTS),
                    '--bins', '8', '--save-features'], root / 'analysis', data_root)
    return dict(runner=runner, out=out, log=log, features=dict(np.load(out / 'features.npz')), root=root)


@pytest.mark.slow
def test_features_are_what_the_head_sees(analysed):
    runner, features = analysed['runner'], analysed['features']
    model = runner.model.eval()
    dataset = runner.test_dataloader.dataset
    batch = [dataset[i] for i in range(16)]
    with torch.no_grad():
        expected = model.extract_feat(model.data_preprocessor(
            {'inputs': [s['inputs'] for s in batch], 'data_samples': [s['data_samples'] for s in batch]})['inputs'])
    np.testing.assert_allclose(features['epoch_1/test_features'][:16], expected[-1].numpy(), atol=1e-5)
    np.testing.assert_array_equal(features['epoch_1/test_labels'], dataset.get_gt_labels())
    # --shots caps the training images of every class; the zero-shot model sees the same ones.
    counts = np.asarray(dataset.metainfo['class_counts'])
    np.testing.assert_array_equal(np.bincount(features['epoch_1/train_labels']), np.minimum(counts, SHOTS))
    np.testing.assert_array_equal(features['zero-shot/train_labels'], features['epoch_1/train_labels'])
    assert not np.allclose(features['zero-shot/test_features'], features['epoch_1/test_features'], atol=1e-3)
    # The zero-shot model is the foundation alone (LIFT's AdaptFormer starts as the identity), the third model the
    # checkpoint given last; both see the images as the first does (the config's CLIP normalisation).
    for name, checkpoint in (('zero-shot', 'identity.pth'), ('heavy', 'heavy.pth')):
        load_checkpoint_strictly(model, str(analysed['root'] / checkpoint))
        with torch.no_grad():
            expected = model.extract_feat(model.data_preprocessor({'inputs': [s['inputs'] for s in batch],
                                                                   'data_samples': [s['data_samples'] for s in batch]
                                                                   })['inputs'])
        np.testing.assert_allclose(features[f'{name}/test_features'][:16], expected[-1].numpy(), atol=1e-5)
    assert not np.allclose(features['heavy/test_features'], features['epoch_1/test_features'], atol=1e-3)
    assert 'few-shot mean shift' in analysed['log']


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.slow
def test_similarities_and_distributions_match_numpy(analysed):
    out, features = analysed['out'], analysed['features']
    # One panel per model, side by side (4.2 inches each, a colour bar beside the heatmaps; 150 dpi).
    for name, size in (('inter_class_similarity', (2010, 630)), ('intra_class_distribution', (1890, 510))):
        with Image.open(out / f'{name}.png') as image:
            assert image.size == size
            written = np.asarray(image.convert('RGB'))
        # The same picture went to the run's visualizer backend (the config's LocalVisBackend).
        (sent, ) = (analysed['root'] / 'analysis').glob(f'*/vis_data/vis_image/{name}_0.png')
        with Image.open(sent) as image:
            np.testing.assert_array_equal(np.asarray(image.convert('RGB')), written)
    dataset = analysed['runner'].test_dataloader.dataset
    counts = np.asarray(dataset.metainfo['class_counts'])
    names = list(dataset.metainfo['classes'])
    order = sorted(range(10), key=lambda k: -counts[k])
    groups = {'many': np.flatnonzero(counts > 100), 'medium': np.flatnonzero((counts >= 20) & (counts <= 100)),
              'few': np.flatnonzero(counts < 20)}
    off_diagonal = {(row['model'], row['group']): float(row['mean_off_diagonal'])
                    for row in read_csv(out / 'inter_class_similarity.csv')}
    distribution = {(row['model'], row['group']): row for row in read_csv(out / 'intra_class_distribution.csv')}
    histogram = read_csv(out / 'intra_class_histogram.csv')
    # One row group per model, in the order given.
    for table, rows_per_model in (('inter_class_similarity.csv', 4), ('intra_class_distribution.csv', 3)):
        assert [row['model'] for row in read_csv(out / table)] == [m for m in MODELS for _ in range(rows_per_model)]
    few_values = {}
    for model in MODELS:
        test_f, test_l = features[f'{model}/test_features'], features[f'{model}/test_labels']
        train_f, train_l = features[f'{model}/train_features'], features[f'{model}/train_labels']
        means = unit(np.stack([test_f[test_l == k].mean(0) for k in range(10)]))
        similarity = np.array([[float(means[i] @ means[j]) for j in range(10)] for i in range(10)])
        rows = read_csv(out / f'inter_class_similarity_{model}.csv')
        assert [row['class'] for row in rows] == [names[k] for k in order]
        np.testing.assert_allclose([[float(row[names[j]]) for j in order] for row in rows],
                                   similarity[np.ix_(order, order)], atol=1e-5)
        for group, classes in dict(groups, all=np.arange(10)).items():
            pairs = [similarity[i, j] for i in classes for j in range(10) if j != i]
            assert off_diagonal[model, group] == pytest.approx(np.mean(pairs), abs=1e-5)

        train_means = unit(np.stack([train_f[train_l == k].mean(0) for k in range(10)]))
        train_sims = np.sum(unit(train_f) * train_means[train_l], -1)
        test_sims = np.sum(unit(test_f) * train_means[test_l], -1)
        for group, classes in groups.items():
            a, b = train_sims[np.isin(train_l, classes)], test_sims[np.isin(test_l, classes)]
            row = distribution[model, group]
            assert (int(row['train_samples']), int(row['test_samples'])) == (len(a), len(b))
            assert float(row['train_mean']) == pytest.approx(a.mean(), abs=1e-5)
            assert float(row['test_mean']) == pytest.approx(b.mean(), abs=1e-5)
            assert float(row['mean_shift']) == pytest.approx(b.mean() - a.mean(), abs=1e-5)
            assert float(row['wasserstein']) == pytest.approx(quantile_wasserstein(a, b), abs=1e-5)
        few_values[model] = {'train': train_sims[np.isin(train_l, groups['few'])],
                             'test': test_sims[np.isin(test_l, groups['few'])]}
    # The models' histograms share 8 bins over the range of all their few-shot values.
    pooled = np.concatenate([v for splits in few_values.values() for v in splits.values()])
    for model, splits in few_values.items():
        for split, values in splits.items():
            rows = [row for row in histogram if (row['model'], row['split']) == (model, split)]
            lefts = [float(row['bin_left']) for row in rows]
            np.testing.assert_allclose(lefts + [float(rows[-1]['bin_right'])],
                                       np.linspace(pooled.min(), pooled.max(), 9), atol=1e-5)
            edges = np.array(lefts[1:])
            # The bin of each value is the number of inner edges at or below it (the last bin is closed). The
            # tool's similarities may differ from these in the last float bits: a value that close to an edge
            # may fall on either side.
            expected = np.bincount(np.sum(values[:, None] >= edges[None], axis=1), minlength=8)
            on_edge = np.isclose(values[:, None], edges[None], rtol=0, atol=1e-6).sum(0)
            tolerance = np.concatenate([on_edge, [0]]) + np.concatenate([[0], on_edge])
            counts = np.array([int(row['count']) for row in rows])
            assert np.all(np.abs(counts - expected) <= tolerance) and counts.sum() == len(values)
            assert sum(expected) == len(values) > 0
