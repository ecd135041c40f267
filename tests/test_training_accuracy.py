"""Training accuracy per group: the training set through the test pipeline, during training
(TrainingAccuracyHook) and from a checkpoint (``tools/test.py --split train``)."""
import csv
import importlib.util
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dist import get_dist_info
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmpretrain.registry import DATASETS, HOOKS
from mmpretrain.visualization import UniversalVisualizer
from PIL import Image

import lift_mm  # noqa: F401
from lift_mm.engine import load_checkpoint_strictly
from lift_mm.engine.hooks.utils import per_class_indices, train_images_cfg
from demo_runs import REPO, demo_runner, free_port, last_metrics, load_tool, one_thread, run_test_tool

DEMO = 'configs/lift/lift_demo.py'


def test_per_class_indices_keep_at_most_n_of_each_class_the_same_way_each_time():
    labels = np.repeat([0, 1, 2, 3], [7, 1, 3, 2])
    chosen = per_class_indices(labels, 3, seed=5)
    assert chosen == sorted(set(chosen))
    assert np.bincount(labels[chosen], minlength=4).tolist() == [3, 1, 3, 2]
    assert per_class_indices(labels, 3, seed=5) == chosen
    draws = {tuple(per_class_indices(labels, 3, seed=seed)) for seed in range(10)}
    assert len(draws) > 1, 'the seed must choose which images of a large class are kept'
    assert per_class_indices(labels, None, seed=5) == list(range(len(labels)))


def test_train_images_cfg_unwraps_and_takes_the_test_pipeline():
    cfg = Config.fromfile(str(REPO / DEMO))
    inner = cfg.train_dataloader.dataset.to_dict()
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=3, dataset=inner)
    dataset = train_images_cfg(cfg, 'tool')
    assert dataset == dict(inner, pipeline=list(cfg.test_dataloader.dataset.pipeline))
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[inner, inner])
    with pytest.raises(TypeError, match=r"tool cannot find the pipeline of the training dataset 'ConcatDataset'"):
        train_images_cfg(cfg, 'tool')


def test_the_hook_draws_at_most_n_images_per_class_the_same_on_every_build(tmp_path, monkeypatch):
    runner = demo_runner(DEMO, tmp_path / 'work', tmp_path / 'data')
    draws = []
    for seed in (None, None, 1):
        hook = HOOKS.build(dict(type='TrainingAccuracyHook', max_per_class=4, seed=seed))
        hook.before_train(runner)
        draws.append(hook._loader.dataset.indices)
    labels = np.asarray(runner.train_dataloader.dataset.get_gt_labels())
    assert np.bincount(labels[draws[0]]).tolist() == np.minimum(np.bincount(labels), 4).tolist()
    assert draws[0] == draws[1] != draws[2]

    # With an evaluator that has no LongTailAccuracy the metrics are logged, no figure is drawn, and a warning
    # says so.
    warnings, images, scalars = [], [], []
    monkeypatch.setattr(runner.logger, 'warning', warnings.append)
    monkeypatch.setattr(runner.visualizer, 'add_image', lambda name, image, step: images.append(name))
    monkeypatch.setattr(runner.visualizer, 'add_scalars', lambda metrics, step: scalars.append(metrics))
    runner.cfg.test_evaluator = dict(type='Accuracy')
    hook = HOOKS.build(dict(type='TrainingAccuracyHook', max_per_class=1))
    hook.before_train(runner)
    assert warnings == ['TrainingAccuracyHook: the test evaluator has no LongTailAccuracy, so no training-accuracy '
                        'figure is sent to the visualizer; the metrics are logged.']
    hook.evaluate = lambda runner: {'train_accuracy/top1': 50.0}
    hook.after_train_epoch(runner)
    assert scalars == [{'train_accuracy/top1': 50.0}] and images == []


def test_the_hook_is_off_unless_a_config_adds_it():
    cfg = Config.fromfile(str(REPO / DEMO))
    assert 'TrainingAccuracyHook' not in {hook['type'] for hook in cfg.custom_hooks}
    assert 'TrainingAccuracyHook' not in {hook['type'] for hook in cfg.default_hooks.values()}


@pytest.mark.parametrize('cfg, message', [
    (dict(interval=0), r'`interval`=0 must be an integer >= 1\.'),
    (dict(interval=None), r'`interval`=None must be an integer >= 1\.'),
    (dict(max_per_class=0), r'`max_per_class`=0 must be an integer >= 1 \(or None\)\.'),
])
def test_bad_hook_settings_fail_at_build(cfg, message):
    with pytest.raises(ValueError, match=message):
        HOOKS.build(dict(type='TrainingAccuracyHook', **cfg))


def test_an_iteration_based_loop_is_refused():
    hook = HOOKS.build(dict(type='TrainingAccuracyHook'))
    runner = SimpleNamespace(train_loop=IterBasedTrainLoop.__new__(IterBasedTrainLoop))
    with pytest.raises(TypeError, match=r'the training loop is IterBasedTrainLoop; use an epoch-based `train_cfg`'):
        hook.before_train(runner)


def test_a_config_without_a_test_evaluator_is_refused():
    hook = HOOKS.build(dict(type='TrainingAccuracyHook'))
    runner = SimpleNamespace(train_loop=EpochBasedTrainLoop.__new__(EpochBasedTrainLoop),
                             cfg=Config(dict(test_dataloader=dict(batch_size=2))))
    with pytest.raises(KeyError, match=r'the config lacks `test_dataloader` or `test_evaluator`'):
        hook.before_train(runner)


def test_evaluates_every_k_epochs_and_after_the_last():
    hook = HOOKS.build(dict(type='TrainingAccuracyHook', interval=3))
    scalars = []
    runner = SimpleNamespace(epoch=0, max_epochs=7, train_loop=SimpleNamespace(max_epochs=7),
                             visualizer=SimpleNamespace(add_scalars=lambda metrics, step: scalars.append(step)),
                             logger=SimpleNamespace(info=lambda message: None))
    hook.evaluate = lambda runner: {'train_long_tail/top1': 50.0}
    for epoch in range(7):
        runner.epoch = epoch
        hook.after_train_epoch(runner)
    assert scalars == [3, 6, 7]


C0 = (31, 119, 180)  # matplotlib's first line colour, the run's line in the training-accuracy figure


def colour_pixels(image, colour) -> int:
    return int(np.all(np.asarray(image.convert('RGB')) == colour, axis=-1).sum())


def test_each_evaluation_sends_the_curves_so_far_to_the_visualizer(tmp_path):
    hook = HOOKS.build(dict(type='TrainingAccuracyHook', interval=2, prefix='fit'))
    # Set by before_train from the evaluator's LongTailAccuracy (its prefix 'long_tail'); the slow test below
    # covers it in a real run.
    hook._curve_prefix = 'fit_long_tail'
    values = iter([10.0, 60.0, 90.0])
    hook.evaluate = lambda runner: {f'fit_long_tail/{name}': next(values) for name in ('top1', )}
    visualizer = UniversalVisualizer(name='training_accuracy_images', vis_backends=[dict(type='LocalVisBackend')],
                                     save_dir=str(tmp_path))
    runner = SimpleNamespace(epoch=0, max_epochs=5, train_loop=SimpleNamespace(max_epochs=5), visualizer=visualizer,
                             experiment_name='run', logger=SimpleNamespace(info=lambda message: None))
    for epoch in range(5):
        runner.epoch = epoch
        hook.after_train_epoch(runner)
    files = sorted((tmp_path / 'vis_data' / 'vis_image').iterdir())
    assert [path.name for path in files] == ['fit_accuracy_2.png', 'fit_accuracy_4.png', 'fit_accuracy_5.png']
    lines = []
    for path in files:
        with Image.open(path) as image:
            # 2 x 2 panels of 3.4 x 2.5 inches at 100 dpi.
            assert image.size == (680, 500)
            assert len(image.convert('RGB').getcolors(maxcolors=100000)) > 20
            lines.append(colour_pixels(image, C0))
    # The first picture has one point, each later one more and a longer line.
    assert 0 < lines[0] < lines[1] < lines[2]
    assert [record['step'] for record in map(json.loads, (tmp_path / 'vis_data' / 'scalars.json').read_text()
                                             .splitlines())] == [2, 4, 5]


def load_test_tool():
    spec = importlib.util.spec_from_file_location('lift_test_tool', REPO / 'tools/test.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_train_of_the_test_tool_tests_the_training_images_with_the_test_pipeline(monkeypatch):
    tool = load_test_tool()
    monkeypatch.setattr(sys, 'argv', ['test.py', DEMO, 'ckpt.pth', '--split', 'train', '--cfg-options',
                                      'train_dataloader.dataset.data_root=elsewhere', 'test_dataloader.batch_size=3'])
    cfg = tool.merge_args(Config.fromfile(str(REPO / DEMO)), tool.parse_args())
    plain = Config.fromfile(str(REPO / DEMO))
    assert cfg.test_dataloader.dataset == dict(plain.train_dataloader.dataset, data_root='elsewhere',
                                               pipeline=list(plain.test_dataloader.dataset.pipeline))
    assert cfg.test_dataloader.batch_size == 3
    assert cfg.val_dataloader.dataset.split == 'test'


def test_split_train_of_the_test_tool_refuses_a_concatenated_training_set(monkeypatch):
    tool = load_test_tool()
    monkeypatch.setattr(sys, 'argv', ['test.py', DEMO, 'ckpt.pth', '--split', 'train'])
    cfg = Config.fromfile(str(REPO / DEMO))
    inner = cfg.train_dataloader.dataset.to_dict()
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[inner, inner])
    with pytest.raises(SystemExit, match=r"--split train cannot find the pipeline of the training dataset "
                                         r"'ConcatDataset' to replace it by the test pipeline"):
        tool.merge_args(cfg, tool.parse_args())


@pytest.fixture(scope='module')
def hooked_run(tmp_path_factory):
    """Two demo epochs with the hook on all images and a second one on 3 images per class."""
    tmp_path = tmp_path_factory.mktemp('hooked_run')
    hooks = [dict(type='TrainingAccuracyHook', interval=1),
             dict(type='TrainingAccuracyHook', max_per_class=3, prefix='train3')]
    options = {'train_cfg.max_epochs': 2, 'param_scheduler.end': 2, 'param_scheduler.T_max': 2}
    runner = demo_runner(DEMO, tmp_path / 'work', tmp_path / 'data', options,
                         edit=lambda cfg: cfg.custom_hooks.extend(hooks))
    with one_thread():
        runner.train()
    return runner, tmp_path


@pytest.mark.slow
def test_hook_logs_what_the_test_tool_reports_on_the_training_set(hooked_run):
    """The hooks' logs, then the test tool with ``--split train`` on the second epoch's checkpoint."""
    runner, tmp_path = hooked_run
    (scalars_file, ) = (tmp_path / 'work').glob('*/vis_data/scalars.json')
    logged = [json.loads(line) for line in scalars_file.read_text().splitlines()]
    logged = [record for record in logged if 'train_long_tail/top1' in record]
    assert [record['step'] for record in logged] == [1, 2]
    full, subsampled = [hook for hook in runner.hooks if type(hook).__name__ == 'TrainingAccuracyHook']
    labels = np.array([int(line.split()[1]) for line in (tmp_path / 'data' / 'train.txt').read_text().splitlines()])
    assert [full.prefix, len(full._loader.dataset)] == ['train', len(labels)]
    assert [subsampled.prefix, len(subsampled._loader.dataset)] == ['train3', np.minimum(np.bincount(labels), 3).sum()]
    # The top-1 accuracy of all training images is a whole number of them.
    correct = logged[-1]['train_long_tail/top1'] * len(labels) / 100
    assert correct == pytest.approx(round(correct), abs=1e-6)

    log = run_test_tool(DEMO, tmp_path / 'work' / 'epoch_2.pth', tmp_path / 'test', tmp_path / 'data',
                        flags=['--split', 'train'])
    tested = last_metrics(log)
    assert set(tested) >= {'top1', 'many', 'medium', 'few'}
    # The tool prints 4 decimals.
    assert {name: logged[-1][f'train_long_tail/{name}'] for name in tested} == pytest.approx(tested, abs=1e-4)


def evaluate_in_process(rank, world_size, port, root, out):
    """One of two processes: the hook's evaluation of the untrained demo model under DDP (gloo)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    runner = demo_runner(DEMO, root / 'ddp', root / 'data', launcher='pytorch')
    assert get_dist_info() == (rank, world_size)
    hook = evaluating_hook(runner)
    torch.save(dict(metrics=hook.evaluate(runner), share=len(hook._loader.sampler)), out / f'rank{rank}.pt')


def evaluating_hook(runner):
    hook = HOOKS.build(dict(type='TrainingAccuracyHook', max_per_class=7))
    hook.before_train(runner)
    return hook


@pytest.mark.slow
def test_two_processes_evaluate_as_one(tmp_path):
    with one_thread():
        runner = demo_runner(DEMO, tmp_path / 'single', tmp_path / 'data')
        hook = evaluating_hook(runner)
        single = hook.evaluate(runner)
        torch.multiprocessing.start_processes(evaluate_in_process, args=(2, free_port(), tmp_path, tmp_path),
                                              nprocs=2, start_method='fork')
    ranks = [torch.load(tmp_path / f'rank{rank}.pt') for rank in range(2)]
    # Each process predicts half of the images (the sampler pads an odd count), the evaluator gathers them.
    assert [rank['share'] for rank in ranks] == [(len(hook._loader.dataset) + 1) // 2] * 2
    assert ranks[0]['metrics'] == ranks[1]['metrics'] == pytest.approx(single, abs=1e-9)
    assert 0 < single['train_long_tail/top1'] < 100


plot_training_accuracy = load_tool('plot_training_accuracy')


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def write_launch(work_dir, name, records):
    folder = work_dir / name / 'vis_data'
    folder.mkdir(parents=True)
    (folder / 'scalars.json').write_text(''.join(json.dumps(record) + '\n' for record in records))


def test_plot_training_accuracy_joins_the_launches_of_a_resumed_run(tmp_path):
    run = tmp_path / 'run'
    groups = ('top1', 'many', 'medium', 'few')
    # Epochs 1 and 2, then a resumption from epoch 1 that evaluates epochs 2 and 3 again.
    write_launch(run, '20260101_000000', [
        {'lr': 0.1, 'epoch': 1, 'iter': 5, 'step': 5},
        {**{f'train_long_tail/{g}': 10.0 + i for i, g in enumerate(groups)}, 'step': 1},
        {**{f'train_long_tail/{g}': 20.0 + i for i, g in enumerate(groups)}, 'step': 2},
        {'train3_long_tail/top1': 99.0, 'step': 2}])
    write_launch(run, '20260101_010000', [
        {**{f'train_long_tail/{g}': 30.0 + i for i, g in enumerate(groups)}, 'step': 2},
        {**{f'train_long_tail/{g}': 40.0 + i for i, g in enumerate(groups)}, 'step': 3}])
    assert plot_training_accuracy.main([str(run), '--out', str(tmp_path / 'out'), '--dpi', '50']) == 0
    rows = read_csv(tmp_path / 'out' / 'training_accuracy.csv')
    assert [[row['run'], int(row['epoch'])] + [float(row[g]) for g in groups] for row in rows] == [
        ['run', 1, 10.0, 11.0, 12.0, 13.0], ['run', 2, 30.0, 31.0, 32.0, 33.0], ['run', 3, 40.0, 41.0, 42.0, 43.0]]
    with Image.open(tmp_path / 'out' / 'training_accuracy.png') as image:
        assert image.size == (340, 250)


def test_plot_training_accuracy_names_the_missing_metrics(tmp_path, capsys):
    write_launch(tmp_path / 'run', '20260101_000000', [
        {'lr': 0.1, 'epoch': 1, 'iter': 5, 'step': 5}, {'train_long_tail/top1': 10.0, 'step': 1}])
    with pytest.raises(ValueError, match=r"run: no \['train_long_tail/many', 'train_long_tail/medium', "
                                         r"'train_long_tail/few'\] in its training scalars .*TrainingAccuracyHook"):
        plot_training_accuracy.read_training_accuracy(tmp_path / 'run', 'train_long_tail')
    assert plot_training_accuracy.main([str(tmp_path / 'run'), '--prefix', 'val', '--out', str(tmp_path)]) == 2
    assert "run: no ['val/top1', 'val/many'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot_training_accuracy.main([str(tmp_path / 'run'), '--dpi', '0', '--out', str(tmp_path)])
    assert '--dpi must be at least 1, not 0.' in capsys.readouterr().err


def predicted_group_accuracy(runner, checkpoint):
    """Top-1 of all / many / medium / few training images through the test pipeline, by plain prediction."""
    model = runner.model
    load_checkpoint_strictly(model, str(checkpoint))
    model.eval()
    cfg = runner.cfg
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, pipeline=cfg.test_dataloader.dataset.pipeline))
    labels = np.asarray(dataset.get_gt_labels())
    predictions = []
    with torch.no_grad():
        for start in range(0, len(dataset), 64):
            samples = [dataset[i] for i in range(start, min(start + 64, len(dataset)))]
            data = model.data_preprocessor({'inputs': [s['inputs'] for s in samples],
                                            'data_samples': [s['data_samples'] for s in samples]})
            predictions.append(model(data['inputs'], mode='tensor').argmax(-1).numpy())
    correct = np.concatenate(predictions) == labels
    counts = np.bincount(labels)[labels]
    members = {'top1': counts > 0, 'many': counts > 100, 'medium': (counts >= 20) & (counts <= 100),
               'few': counts < 20}
    return {group: 100 * correct[member].mean() for group, member in members.items()}


@pytest.mark.slow
def test_plot_training_accuracy_draws_what_the_model_predicted(hooked_run, tmp_path):
    runner, root = hooked_run
    assert plot_training_accuracy.main([str(root / 'work'), '--labels', 'demo', '--out', str(tmp_path)]) == 0
    rows = read_csv(tmp_path / 'training_accuracy.csv')
    assert [(row['run'], int(row['epoch'])) for row in rows] == [('demo', 1), ('demo', 2)]
    for row in rows:
        expected = predicted_group_accuracy(runner, root / 'work' / f'epoch_{row["epoch"]}.pth')
        assert {group: float(row[group]) for group in expected} == pytest.approx(expected, abs=1e-6)
    with Image.open(tmp_path / 'training_accuracy.png') as image:
        assert image.size == (1020, 750)
    # During training each hook sent its figure of the epochs so far to the visualizer (LocalVisBackend).
    images = sorted(path.name for path in (root / 'work').glob('*/vis_data/vis_image/*.png'))
    assert images == ['train3_accuracy_1.png', 'train3_accuracy_2.png', 'train_accuracy_1.png',
                      'train_accuracy_2.png']
    for name in images:
        (path, ) = (root / 'work').glob(f'*/vis_data/vis_image/{name}')
        with Image.open(path) as image:
            assert image.size == (680, 500) and colour_pixels(image, C0) > 0
