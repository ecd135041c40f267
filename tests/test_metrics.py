"""Tests of LongTailAccuracy against independent computations."""
import json
import logging
import math
import os
import statistics

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.dataset import DefaultSampler
from mmengine.evaluator import Evaluator

from lift_mm.evaluation.metrics import LongTailAccuracy, long_tail_accuracy
from demo_runs import free_port

COUNTS = (300, 150, 101, 100, 60, 20, 19, 8, 3, 1)  # 3 many, 3 medium, 4 few


def make_samples(num_samples, num_classes=len(COUNTS), seed=0):
    """Random scores and labels as mmpretrain DataSample dicts."""
    gen = torch.Generator().manual_seed(seed)
    gts = torch.randint(num_classes, (num_samples, ), generator=gen)
    scores = torch.rand(num_samples, num_classes, generator=gen,
                        dtype=torch.float64)
    # Make about half the samples right, so the numbers are not trivial.
    boost = torch.rand(num_samples, generator=gen) < 0.5
    scores[boost, gts[boost]] += 1.0
    return [
        dict(pred_score=scores[i], gt_label=gts[i:i + 1], sample_idx=i)
        for i in range(num_samples)
    ]


def reference_metrics(samples, counts, topk=(1, 5), many_thr=100, few_thr=20):
    """Plain-Python long-tail metrics, written independently of the metric."""
    gts = [int(s['gt_label'][0]) for s in samples]
    ranked = [
        sorted(range(len(s['pred_score'])),
               key=lambda c, s=s: -float(s['pred_score'][c])) for s in samples
    ]
    preds = [r[0] for r in ranked]
    out = {}
    for k in topk:
        out[f'top{k}'] = 100 * sum(g in r[:k] for g, r in zip(gts, ranked)) / len(gts)
    group_of = {
        c: 'many' if n > many_thr else 'few' if n < few_thr else 'medium'
        for c, n in enumerate(counts)
    }
    for name in ('many', 'medium', 'few'):
        hits = [p == g for p, g in zip(preds, gts) if group_of[g] == name]
        out[name] = 100 * sum(hits) / len(hits) if hits else math.nan
    classes = sorted(set(gts))
    acc = {}
    f1 = []
    for c in classes:
        total = sum(g == c for g in gts)
        tp = sum(p == c and g == c for p, g in zip(preds, gts))
        fp = sum(p == c and g != c for p, g in zip(preds, gts))
        fn = total - tp
        acc[c] = tp / total
        f1.append(2 * tp / (2 * tp + fp + fn))
    values = list(acc.values())
    out['mean_class'] = 100 * statistics.mean(values)
    out['macro_f1'] = 100 * statistics.mean(f1)
    out['worst_class'] = 100 * min(values)
    out['hmean_class'] = 100 * statistics.harmonic_mean(
        [max(v, 1e-5) for v in values])
    out['gmean_class'] = 0.0 if 0 in values else 100 * statistics.geometric_mean(
        values)
    return out, acc


def evaluate(metric, samples, batch_size=7):
    for start in range(0, len(samples), batch_size):
        metric.process(None, samples[start:start + batch_size])
    return metric.evaluate(len(samples))


def assert_metrics_close(actual, expected, prefix='long_tail'):
    assert set(actual) == {f'{prefix}/{k}' for k in expected}
    for key, value in expected.items():
        got = actual[f'{prefix}/{key}']
        if math.isnan(value):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(value, abs=1e-9), key


def test_matches_independent_computation():
    samples = make_samples(203)
    metric = LongTailAccuracy()
    metric.dataset_meta = dict(classes=tuple('abcdefghij'), class_counts=COUNTS)
    expected, _ = reference_metrics(samples, COUNTS)
    assert_metrics_close(evaluate(metric, samples), expected)


def test_hand_computed_example_from_pred_labels():
    # Class 0 (many): 3/4 right, class 1 (medium): 1/2, class 2 (few): 1/2.
    gts = [0, 0, 0, 0, 1, 1, 2, 2]
    preds = [0, 0, 0, 1, 1, 0, 2, 0]
    samples = [
        dict(pred_label=torch.tensor([p]), gt_label=torch.tensor([g]))
        for p, g in zip(preds, gts)
    ]
    metric = LongTailAccuracy(topk=1, class_counts=(200, 50, 5), prefix='lt')
    result = evaluate(metric, samples, batch_size=3)
    assert result == pytest.approx({
        'lt/top1': 62.5,
        'lt/many': 75.0,
        'lt/medium': 50.0,
        'lt/few': 50.0,
        'lt/mean_class': 175 / 3,
        # F1: class 0 2*3/(5+4), class 1 2*1/(2+2), class 2 2*1/(1+2)
        'lt/macro_f1': 100 * (6 / 9 + 2 / 4 + 2 / 3) / 3,
        'lt/worst_class': 50.0,
        'lt/hmean_class': 100 * 3 / (1 / 0.75 + 2 / 0.5),
        'lt/gmean_class': 100 * (0.75 * 0.5 * 0.5)**(1 / 3),
    })


def test_group_accuracy_is_over_samples_not_classes():
    # Many group: class 0 has 4 right samples, class 1 one wrong sample.
    samples = [
        dict(pred_label=torch.tensor([p]), gt_label=torch.tensor([g]))
        for p, g in [(0, 0)] * 4 + [(0, 1), (2, 2)]
    ]
    metric = LongTailAccuracy(topk=(1, ), class_counts=(500, 400, 5))
    result = evaluate(metric, samples)
    assert result['long_tail/many'] == pytest.approx(80.0)
    assert result['long_tail/mean_class'] == pytest.approx(100 * 2 / 3)
    # The medium group has no classes: no key rather than nan.
    assert 'long_tail/medium' not in result
    assert result['long_tail/worst_class'] == 0.0
    assert result['long_tail/gmean_class'] == 0.0
    # The 0% class is floored at 0.001% for the harmonic mean, as LIFT does.
    assert result['long_tail/hmean_class'] == pytest.approx(
        100 * 3 / (1 + 1 / 1e-5 + 1))


@pytest.fixture
def warnings_logged(monkeypatch):
    """Messages the metric logs at WARNING level."""
    messages = []

    def record(msg, logger=None, level=logging.INFO):
        if level >= logging.WARNING:
            messages.append(msg)

    monkeypatch.setattr(long_tail_accuracy, 'print_log', record)
    return messages


@pytest.fixture
def messages_logged(monkeypatch):
    """(level, message) of everything the metric logs."""
    messages = []
    monkeypatch.setattr(
        long_tail_accuracy, 'print_log',
        lambda msg, logger=None, level=logging.INFO: messages.append(
            (level, msg)))
    return messages


def test_group_without_classes_is_left_out_and_said_so(messages_logged):
    samples = make_samples(20, num_classes=3)
    metric = LongTailAccuracy(topk=(1, 2), class_counts=(500, 400, 5))
    result = evaluate(metric, samples)
    expected, _ = reference_metrics(samples, (500, 400, 5), topk=(1, 2))
    assert math.isnan(expected.pop('medium'))
    assert_metrics_close(result, expected)
    assert messages_logged == [(
        logging.INFO,
        'LongTailAccuracy: the medium group has no classes (no class has 20 '
        'to 100 training images in the counts that define the groups); '
        'medium accuracy is not reported.')]


def test_group_whose_classes_have_no_samples_is_left_out_with_a_warning(
        messages_logged):
    samples = [s for s in make_samples(60, num_classes=3)
               if int(s['gt_label'][0]) != 2]
    metric = LongTailAccuracy(topk=1, class_counts=(500, 50, 5))
    result = evaluate(metric, samples)
    assert 'long_tail/few' not in result
    assert {'long_tail/many', 'long_tail/medium'} <= set(result)
    assert not any(math.isnan(value) for value in result.values())
    assert (logging.WARNING,
            'LongTailAccuracy: no evaluated sample belongs to the few group '
            '(1 classes); few accuracy is not reported.') in messages_logged


def test_classes_without_samples_are_left_out_of_class_metrics(
        warnings_logged):
    samples = [s for s in make_samples(200) if int(s['gt_label'][0]) != 4]
    metric = LongTailAccuracy(class_counts=COUNTS)
    result = evaluate(metric, samples)
    expected, _ = reference_metrics(samples, COUNTS)
    assert_metrics_close(result, expected)
    assert len(warnings_logged) == 1
    assert '1 of 10 classes have no evaluated sample' in warnings_logged[0]


def test_group_counts_take_precedence_over_class_counts():
    samples = make_samples(120)
    group_counts = tuple(reversed(COUNTS))
    metric = LongTailAccuracy(topk=(1, 3))
    metric.dataset_meta = dict(class_counts=COUNTS, group_counts=group_counts)
    expected, _ = reference_metrics(samples, group_counts, topk=(1, 3))
    assert_metrics_close(evaluate(metric, samples), expected)


def test_class_counts_argument_overrides_dataset_meta():
    samples = make_samples(50)
    metric = LongTailAccuracy(class_counts=COUNTS, many_thr=50, few_thr=10)
    metric.dataset_meta = dict(class_counts=(1, ) * 10)
    expected, _ = reference_metrics(samples, COUNTS, many_thr=50, few_thr=10)
    assert_metrics_close(evaluate(metric, samples), expected)


def test_dump_file_holds_per_class_and_per_sample_results(tmp_path):
    samples = make_samples(64)
    dump = tmp_path / 'out' / 'result.json'
    metric = LongTailAccuracy(dump_file=str(dump))
    classes = tuple(f'class {i}' for i in range(10))
    metric.dataset_meta = dict(classes=classes, class_counts=COUNTS)
    result = evaluate(metric, samples)
    content = json.loads(dump.read_text())
    expected, per_class = reference_metrics(samples, COUNTS)
    assert content['classes'] == list(classes)
    assert content['class_counts'] == list(COUNTS)
    assert content['groups'] == dict(
        many=[0, 1, 2], medium=[3, 4, 5], few=[6, 7, 8, 9])
    assert (content['many_thr'], content['few_thr']) == (100, 20)
    for key, value in result.items():
        assert content['metrics'][key.split('/', 1)[1]] == value
    for c, acc in enumerate(content['per_class_accuracy']):
        assert acc == pytest.approx(100 * per_class[c])
    assert content['per_class_num_samples'] == [
        sum(int(s['gt_label'][0]) == c for s in samples) for c in range(10)
    ]
    first = content['predictions'][0]
    assert first['sample_idx'] == 0
    assert first['gt_label'] == int(samples[0]['gt_label'][0])
    assert first['pred_topk'] == torch.topk(samples[0]['pred_score'],
                                            5).indices.tolist()
    assert len(content['predictions']) == 64


def test_evaluator_sets_dataset_meta_and_fails_early_without_counts():
    with pytest.raises(
            ValueError,
            match=r"dataset meta key 'class_counts'.*Use LongTailDataset.*"
            r'class_counts=\[\.\.\.\]'):
        Evaluator(dict(type='LongTailAccuracy')).dataset_meta = dict(
            classes=('a', 'b'))


def test_registered_metric_builds_from_config():
    evaluator = Evaluator(dict(type='LongTailAccuracy', topk=(1, 2)))
    evaluator.dataset_meta = dict(class_counts=(300, 50, 5))
    samples = make_samples(30, num_classes=3)
    evaluator.process(samples)
    result = evaluator.evaluate(30)
    expected, _ = reference_metrics(samples, (300, 50, 5), topk=(1, 2))
    assert_metrics_close(result, expected)


@pytest.mark.parametrize('kwargs,samples,match', [
    (dict(), [dict(pred_label=torch.tensor([0]), gt_label=torch.tensor([0]))],
     r"topk=\(1, 5\) needs 'pred_score'"),
    (dict(topk=(1, 20)), None, r'topk=\(1, 20\) exceeds the 10 classes'),
    (dict(), make_samples(2, num_classes=6),
     'pred_score has 6 classes but the training counts have 10'),
])
def test_process_rejects_unusable_predictions(kwargs, samples, match):
    metric = LongTailAccuracy(class_counts=COUNTS, **kwargs)
    with pytest.raises(ValueError, match=match):
        metric.process(None, samples or make_samples(2))


@pytest.mark.parametrize('pred,gt,match', [
    (5, 0, 'predicted label 5 is outside the 2 classes'),
    (0, 3, 'ground-truth label 3 is outside the 2 classes'),
])
def test_compute_rejects_labels_outside_the_counts(pred, gt, match):
    metric = LongTailAccuracy(topk=1, class_counts=(100, 10))
    metric.process(None, [
        dict(pred_label=torch.tensor([pred]), gt_label=torch.tensor([gt]))
    ])
    with pytest.raises(ValueError, match=match):
        metric.evaluate(1)


def test_process_without_counts_names_the_key():
    with pytest.raises(ValueError, match="meta key 'class_counts'"):
        LongTailAccuracy().process(None, make_samples(1))


@pytest.mark.parametrize('kwargs,match', [
    (dict(topk=(0, 1)), 'topk must be positive integers'),
    (dict(class_counts=(5, 3), many_thr=10, few_thr=20), 'must not exceed'),
])
def test_constructor_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LongTailAccuracy(**kwargs)


# ---------------------------------------------------------------- distributed


def _dist_worker(rank, world_size, port, samples, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group(
        'gloo', rank=rank, world_size=world_size)
    # mmengine collects results under ./.dist_test by default.
    os.chdir(out_dir)
    try:
        metric = LongTailAccuracy(dump_file=os.path.join(out_dir, 'dist.json'))
        metric.dataset_meta = dict(class_counts=COUNTS)
        # The sampler pads the last rank, as in a real validation loop.
        indices = list(DefaultSampler(range(len(samples)), shuffle=False))
        for start in range(0, len(indices), 4):
            metric.process(None,
                           [samples[i] for i in indices[start:start + 4]])
        result = metric.evaluate(len(samples))
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(metrics=result, processed=len(indices)), f)
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.parametrize('num_samples', [41])  # odd: ranks split unevenly
def test_two_processes_match_one_process(tmp_path, num_samples):
    samples = make_samples(num_samples)
    single = LongTailAccuracy(dump_file=str(tmp_path / 'single.json'))
    single.dataset_meta = dict(class_counts=COUNTS)
    expected = evaluate(single, samples)

    mp.spawn(
        _dist_worker,
        args=(2, free_port(), samples, str(tmp_path)),
        nprocs=2,
        join=True)
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            # Each rank saw half of the samples plus padding, and all ranks
            # receive the metrics computed on rank 0.
            assert json.load(f) == dict(
                metrics=expected, processed=(num_samples + 1) // 2)
    single_dump = json.loads((tmp_path / 'single.json').read_text())
    dist_dump = json.loads((tmp_path / 'dist.json').read_text())
    assert dist_dump == single_dump
    assert [p['sample_idx'] for p in dist_dump['predictions']
            ] == list(range(num_samples))


def test_evaluating_nothing_is_an_error():
    metric = LongTailAccuracy(class_counts=COUNTS)
    with pytest.raises(ValueError, match='got no predictions to evaluate'):
        metric.compute_metrics([])
