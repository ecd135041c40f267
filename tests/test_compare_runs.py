"""Tests of tools/analysis/compare_runs.py on demo runs trained and tested through the tools."""
import csv
import importlib.util
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS
from PIL import Image

import lift_mm  # noqa: F401
from demo_runs import REPO, last_metrics, run_test_tool, run_tool

TOOL = REPO / 'tools' / 'analysis' / 'compare_runs.py'
DEMO = 'configs/lift/lift_demo.py'
SPARSE = """_base_ = [{base!r}]
model = dict(backbone=dict(light_modules=[dict(type='SparseTuning', ratio=0.1)]))
"""
GROUPS = ('top1', 'many', 'medium', 'few')


def load_tool():
    spec = importlib.util.spec_from_file_location('compare_runs', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare_runs = load_tool()


def trainable_and_total(config) -> tuple:
    """Parameter counts of the config's model, built here rather than read from a log."""
    model = MODELS.build(Config.fromfile(str(config)).model)
    # The first mode switch releases the text tower, as training does before ParameterCountHook counts.
    model.train()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Two finished demo runs: AdaptFormer for 1 epoch and SparseTuning for 2, each tested in its work dir.

    Returns:
        dict: run name -> (work dir, config, epochs, test metrics from the test tool's text log).
    """
    root = tmp_path_factory.mktemp('compare_runs')
    data_root = root / 'data'
    sparse = root / 'sparse_demo.py'
    sparse.write_text(SPARSE.format(base=str(REPO / DEMO)))
    result = {}
    for name, config, epochs in (('adaptformer', REPO / DEMO, 1), ('sparse', sparse, 2)):
        work_dir = root / name
        run_tool([sys.executable, 'tools/train.py', str(config)], work_dir, data_root,
                 [f'train_cfg.max_epochs={epochs}'])
        log = run_test_tool(str(config), work_dir / f'epoch_{epochs}.pth', work_dir, data_root)
        result[name] = (work_dir, config, epochs, last_metrics(log))
    return result


@pytest.mark.slow
def test_compare_runs_reads_counts_epochs_and_test_metrics(runs, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, str(TOOL), *(str(run[0]) for run in runs.values()), '--out', str(out),
                           '--table'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(out / 'runs.csv', newline='') as f:
        rows = {row['run']: row for row in csv.DictReader(f)}
    assert set(rows) == set(runs)
    table = {line.split(' | ')[0].lstrip('| '): line for line in proc.stdout.splitlines() if line.startswith('| ')}
    for name, (_, config, epochs, metrics) in runs.items():
        row = rows[name]
        trainable, total = trainable_and_total(config)
        assert (int(row['trainable']), int(row['total']), int(row['epochs'])) == (trainable, total, epochs)
        assert float(row['trainable_share']) == pytest.approx(100 * trainable / total)
        for group in GROUPS:
            # The text log rounds to 4 decimals.
            assert float(row[group]) == pytest.approx(metrics[group], abs=1e-4)
        cells = [cell.strip() for cell in table[name].strip('|').split('|')]
        assert cells == [name, str(epochs), f'{trainable:,}', f'{total:,}', f'{100 * trainable / total:.4g} %',
                         *(f'{metrics[group]:.2f}' for group in GROUPS)]
    # Different light modules: the runs differ in what the plots show.
    assert rows['adaptformer']['trainable'] != rows['sparse']['trainable']
    for picture in ('accuracy_vs_parameters.png', 'accuracy_vs_fraction.png', 'groups.png'):
        with Image.open(out / picture) as image:
            assert image.format == 'PNG' and min(image.size) > 100


@pytest.mark.slow
def test_compare_runs_names_what_a_work_dir_lacks(runs, tmp_path, capsys):
    trained = runs['adaptformer'][0]
    launches = sorted(path for path in trained.iterdir() if path.is_dir())
    # The training launch alone: trained, never tested.
    untested = tmp_path / 'untested'
    shutil.copytree(launches[0], untested / launches[0].name)
    with pytest.raises(ValueError, match=r'untested: no test results .*tools/test.py CONFIG CHECKPOINT --work-dir'):
        compare_runs.read_run(untested)
    # The test launch alone: no training log with parameter counts.
    untrained = tmp_path / 'untrained'
    shutil.copytree(launches[-1], untrained / launches[-1].name)
    with pytest.raises(ValueError, match=r"untrained: no parameter counts .*ParameterCountHook"):
        compare_runs.read_run(untrained)
    assert compare_runs.main([str(untested), str(trained), '--out', str(tmp_path / 'out')]) == 2
    # A cut training scalars file: the line is named.
    scalars = next(untested.glob('*/vis_data/scalars.json'))
    lines = scalars.read_text().splitlines()
    scalars.write_text('\n'.join(lines + ['{"lr": 0.01, "epo']) + '\n')
    with pytest.raises(ValueError, match=rf'scalars\.json:{len(lines) + 1}: not a JSON line'):
        compare_runs.read_run(untested)
    assert 'untested: no test results' in capsys.readouterr().err


def test_compare_runs_refuses_a_folder_without_runs(tmp_path, capsys):
    with pytest.raises(ValueError, match=r'missing: not a folder; give the --work-dir'):
        compare_runs.read_run(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match=r'empty: no run folder \(<timestamp>/\) in it; is it the --work-dir'):
        compare_runs.read_run(tmp_path / 'empty')
    assert compare_runs.main([str(tmp_path), str(tmp_path), '--out', str(tmp_path / 'out')]) == 2
    assert 'run names' in capsys.readouterr().err and not (tmp_path / 'out').exists()


def test_a_group_without_classes_is_na_in_the_table_and_empty_in_the_csv(tmp_path):
    # LongTailAccuracy leaves out a group without classes (no few-shot class on CIFAR-100-LT ratio 10 by its own
    # counts); read_run gives None for it.
    run = dict(epochs=5, trainable=10, total=1000, trainable_share=1.0, top1=80.0, many=85.0, medium=70.0, few=None)
    assert compare_runs.markdown_table({'r10': run}).splitlines()[-1] == (
        '| r10 | 5 | 10 | 1,000 | 1 % | 80.00 | 85.00 | 70.00 | n/a |')
    compare_runs.write_csv({'r10': run}, tmp_path / 'runs.csv')
    with open(tmp_path / 'runs.csv', newline='') as f:
        row, = csv.DictReader(f)
    assert (row['medium'], row['few']) == ('70.0', '')
