"""Tests of tools/analysis/check_dataset.py and plot_long_tail.py."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lift_mm.evaluation.metrics import LongTailAccuracy
from demo_runs import REPO, load_tool

TOOLS = REPO / 'tools' / 'analysis'


check_dataset = load_tool('check_dataset')
plot_long_tail = load_tool('plot_long_tail')


def run_tool(name, *args, cwd=REPO):
    """Run a tool as a user would: from the repository root, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    return subprocess.run([sys.executable, str(TOOLS / f'{name}.py'), *args],
                          cwd=cwd,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


# ---------------------------------------------------------------- check_dataset


def test_check_dataset_cli_generates_and_checks_the_demo(tmp_path):
    data_root = tmp_path / 'demo'
    options = [
        f'{split}_dataloader.dataset.data_root={data_root}'
        for split in ('train', 'val', 'test')
    ]
    proc = run_tool('check_dataset',
                    'configs/_base_/datasets/lift-demo_bs32_32px.py',
                    '--cfg-options', *options)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # floor(150 * (1 / 30) ** (i / 9)): 150 102 70 48 33 22 15 10 7 5
    assert 'classes: 10, images: 462' in out
    assert 'images per class: max 150, min 5, imbalance ratio 30.0' in out
    assert ('groups by class_counts (many > 100, medium 20-100, few < 20): '
            'many 2, medium 4, few 4 classes') in out
    assert 'all 462 image files open' in out
    assert 'classes: 10, images: 200' in out
    assert 'images per class: max 20, min 20, imbalance ratio 1.0' in out
    assert 'same dataset as val, checked above' in out
    assert out.rstrip().endswith('OK')


def write_config(tmp_path: Path, train_lines, val_lines) -> Path:
    """A LongTailDataset config over real PNGs, three classes."""
    data = tmp_path / 'data'
    (data / 'img').mkdir(parents=True)
    (data / 'classnames.txt').write_text('a apple\nb bear\nc cat\n')
    for name, lines in (('train.txt', train_lines), ('val.txt', val_lines)):
        (data / name).write_text('\n'.join(lines) + '\n')
        for line in lines:
            Image.new('RGB', (8, 8), (200, 0, 0)).save(data / line.split()[0])
    common = dict(
        type='LongTailDataset',
        data_root=str(data),
        classnames_file='classnames.txt',
        class_counts_file='train.txt')
    config = tmp_path / 'config.py'
    config.write_text(
        f'train_dataloader = dict(dataset=dict(ann_file="train.txt", '
        f'**{common!r}))\n'
        f'val_dataloader = dict(dataset=dict(ann_file="val.txt", '
        f'**{common!r}))\n')
    return config


TRAIN = [f'img/t{i}.png {c}' for i, c in enumerate([0] * 150 + [1] * 30 + [2])]
VAL = ['img/v0.png 0', 'img/v1.png 1', 'img/v2.png 2', 'img/v3.png 2']


def test_check_dataset_reports_statistics(tmp_path, capsys):
    config = write_config(tmp_path, TRAIN, VAL)
    assert check_dataset.main([str(config), '--split', 'train', 'val']) == 0
    out = capsys.readouterr().out
    assert 'classes: 3, images: 181' in out
    assert 'images per class: max 150, min 1, imbalance ratio 150.0' in out
    assert 'classes: 3, images: 4' in out
    assert 'images per class: max 2, min 1, imbalance ratio 2.0' in out
    assert 'training images per class: max 150, min 1, imbalance ratio ' \
        '150.0' in out
    assert 'many 1, medium 1, few 1 classes' in out


def test_check_dataset_thresholds_are_configurable(tmp_path, capsys):
    config = write_config(tmp_path, TRAIN, VAL)
    assert check_dataset.main([
        str(config), '--split', 'val', '--many-thr', '20', '--few-thr', '2'
    ]) == 0
    assert ('(many > 20, medium 2-20, few < 2): many 2, medium 0, few 1 '
            'classes') in capsys.readouterr().out


@pytest.mark.parametrize('workers', [1, 2])
def test_check_dataset_lists_missing_and_broken_images(tmp_path, capsys,
                                                       workers):
    config = write_config(tmp_path, TRAIN, VAL)
    data = tmp_path / 'data'
    os.remove(data / 'img' / 'v1.png')
    (data / 'img' / 'v3.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    status = check_dataset.main(
        [str(config), '--workers', str(workers), '--split', 'train', 'val'])
    assert status == 1
    captured = capsys.readouterr()
    assert 'all 181 image files open' in captured.out
    lines = captured.err.strip().splitlines()
    assert lines[:2] == [
        'FAILED', 'val: 2 of 4 image files are missing or unreadable:'
    ]
    assert lines[2].startswith(f'  {data / "img" / "v1.png"}: '
                               'FileNotFoundError')
    assert lines[3].startswith(f'  {data / "img" / "v3.png"}: ')
    assert len(lines) == 4


def test_check_dataset_decodes_as_training_does(tmp_path, capsys):
    # Pillow opens a Targa file, but the OpenCV decoder that loads training images cannot: the check must fail.
    config = write_config(tmp_path, TRAIN, VAL)
    targa = tmp_path / 'data' / 'img' / 'v2.png'
    Image.new('RGB', (8, 8), (200, 0, 0)).save(targa, format='TGA')
    with Image.open(targa) as image:
        image.load()
    assert check_dataset.main([str(config), '--split', 'val']) == 1
    assert capsys.readouterr().err.strip().splitlines()[1:] == [
        'val: 1 of 4 image files are missing or unreadable:',
        f'  {targa}: it cannot be decoded as an image'
    ]


def test_check_dataset_reports_unbuildable_and_missing_splits(tmp_path,
                                                              capsys):
    config = write_config(tmp_path, TRAIN, VAL + ['img/v0.png 1'])
    assert check_dataset.main([str(config)]) == 1
    err = capsys.readouterr().err
    assert ("val: cannot build the dataset: "
            f"{tmp_path / 'data' / 'val.txt'}, line 5: the image "
            "'img/v0.png' is listed again (first on line 1)") in err
    assert 'test: the config has no test_dataloader.dataset' in err


def test_check_images_of_in_memory_datasets():

    class InMemory:

        def __len__(self):
            return 2

        def get_data_info(self, idx):
            return dict(img=np.zeros((2, 2, 3), np.uint8), gt_label=idx)

    assert check_dataset.check_images(InMemory(), workers=1) == (0, [])


# ---------------------------------------------------------------- plot_long_tail


def write_dump(path: Path, accuracies, counts=(300, 120, 60, 25, 10, 3),
               drop_class=None):
    """Evaluate hand-made predictions with per-class accuracies (in tenths)
    through LongTailAccuracy and return the dump file."""
    metric = LongTailAccuracy(
        class_counts=counts, dump_file=str(path), topk=(1, ))
    samples = []
    for cls, right in enumerate(accuracies):
        if cls == drop_class:
            continue
        for i in range(10):
            pred = cls if i < right else (cls + 1) % len(counts)
            samples.append(
                dict(pred_label=torch.tensor([pred]),
                     gt_label=torch.tensor([cls])))
    metric.process(None, samples)
    metric.evaluate(len(samples))
    return path


def test_plot_cli_writes_a_png_with_one_panel_per_result(tmp_path):
    first = write_dump(tmp_path / 'ce.json', [10, 9, 7, 5, 2, 0])
    second = write_dump(tmp_path / 'lift.json', [9, 9, 8, 8, 7, 6])
    out = tmp_path / 'figs' / 'long_tail.png'
    proc = run_tool('plot_long_tail', str(first), str(second), '--labels', 'CE',
                    'LIFT', '--out', str(out))
    assert proc.returncode == 0, proc.stderr
    assert f'wrote {out}' in proc.stdout
    with Image.open(out) as img:
        assert img.format == 'PNG'
        # Two per-class panels and the group bar chart, each a column of a
        # two-column paper, at print resolution.
        width, height = plot_long_tail.PANEL_SIZE
        assert plot_long_tail.DPI == 300
        assert img.size == (round(3 * width * 300), round(height * 300))
        colours = img.convert('RGB').getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50


def test_plot_notes_classes_without_samples(tmp_path, capsys):
    dump = write_dump(tmp_path / 'r.json', [10, 9, 7, 5, 2, 0], drop_class=4)
    content = json.loads(dump.read_text())
    assert content['per_class_accuracy'][4] is None
    out = tmp_path / 'one.png'
    assert plot_long_tail.main([str(dump), '--out', str(out)]) == 0
    assert (f'{dump}: 1 classes had no evaluated sample and are not drawn.'
            in capsys.readouterr().out)
    with Image.open(out) as img:
        width, height = plot_long_tail.PANEL_SIZE
        assert img.size == (round(2 * width * 300), round(height * 300))


def test_plot_rejects_bad_inputs(tmp_path, capsys):
    good = write_dump(tmp_path / 'good.json', [5] * 6)
    out = str(tmp_path / 'x.png')
    assert plot_long_tail.main([str(good), '--labels', 'a', 'b', '--out',
                                out]) == 2
    assert '1 results but 2 --labels' in capsys.readouterr().err

    content = json.loads(good.read_text())
    del content['per_class_accuracy']
    (tmp_path / 'partial.json').write_text(json.dumps(content))
    assert plot_long_tail.main([str(tmp_path / 'partial.json'), '--out',
                                out]) == 2
    assert ("partial.json: missing key(s) ['per_class_accuracy']"
            in capsys.readouterr().err)

    (tmp_path / 'bad.json').write_text('{"metrics": ')
    assert plot_long_tail.main([str(tmp_path / 'bad.json'), '--out', out]) == 2
    assert 'bad.json: not valid JSON' in capsys.readouterr().err

    assert plot_long_tail.main([str(tmp_path / 'none.json'), '--out',
                                out]) == 2
    assert 'none.json' in capsys.readouterr().err
    assert not Path(out).exists()


def synthetic_result(num_classes: int, seed: int) -> dict:
    """A dump-like result of many classes (counts 500 to 5, random accuracies)."""
    rng = np.random.default_rng(seed)
    counts = np.floor(500 * 0.01**(np.arange(num_classes) / (num_classes - 1))).astype(int) + 5
    accuracy = rng.integers(0, 11, num_classes) * 10.0
    groups = dict(many=np.flatnonzero(counts > 100), medium=np.flatnonzero((counts >= 20) & (counts <= 100)),
                  few=np.flatnonzero(counts < 20))
    metrics = {name: float(accuracy[idx].mean()) for name, idx in groups.items()}
    metrics.update(top1=float(accuracy.mean()), mean_class=float(accuracy.mean()))
    return dict(metrics=metrics, many_thr=100, few_thr=20, class_counts=counts.tolist(),
                groups={name: idx.tolist() for name, idx in groups.items()}, per_class_accuracy=accuracy.tolist())


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_plot_is_readable_for_print(tmp_path):
    few = [plot_long_tail.load_result(str(write_dump(tmp_path / f'{name}.json', acc)))
           for name, acc in (('ce', [10, 10, 7, 5, 2, 0]), ('lift', [10, 9, 8, 8, 7, 6]))]
    many = synthetic_result(200, seed=0)
    fig, skipped = plot_long_tail.plot_figure([*few, many], ['CE', 'LIFT', 'many classes'])
    assert skipped == [0, 0, 0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = fig.axes[:4]
    for ax, result in zip(panels, [*few, many]):
        # Classes run left to right from the most frequent, with at least three labelled ticks.
        low, high = ax.get_xlim()
        assert low < high
        assert len([t for t in ax.get_xticks() if low <= t <= high]) >= 3
        # No group name hides a point, even one at 100 %.
        points = ax.collections[0]
        centres = points.get_transform().transform(points.get_offsets())
        names = [t for t in ax.texts if t.get_text() in ('many', 'medium', 'few')]
        assert sorted({t.get_text() for t in names}) == ['few', 'many', 'medium']
        for text in names:
            box = text.get_window_extent(renderer)
            assert not any(box.x0 <= x <= box.x1 and box.y0 - 3 <= y <= box.y1 + 3 for x, y in centres)
        # A running mean only where there are classes enough to average.
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        num_classes = len(result['class_counts'])
        trend = [t for t in legend if t.startswith('running mean')]
        assert trend == ([f'running mean of {num_classes // 20} classes'] if num_classes >= 100 else [])
        # The group segments sit at the metric's many / medium / few accuracies.
        segments = sorted(round(float(seg[0][1]), 6) for lines in ax.collections[1:] for seg in lines.get_segments())
        assert segments == sorted(round(result['metrics'][g], 6) for g in ('many', 'medium', 'few'))
    # The bar chart's legend hides none of the bar values (the overall bars included).
    bars = panels[3]
    values = [t for t in bars.texts if t.get_text()]
    assert len(values) == 3 * 4
    legend_box = bars.get_legend().get_window_extent(renderer)
    assert not any(boxes_overlap(legend_box, t.get_window_extent(renderer)) for t in values)
    assert not any(boxes_overlap(legend_box, p.get_window_extent(renderer)) for p in bars.patches)


def test_readme_shows_how_to_make_the_plot_and_the_demo_figure():
    readme = (REPO / 'README.md').read_text()
    section = readme[readme.index('## Long-tail plots'):]
    section = section[:section.index('\n## ', 1)]
    assert '--cfg-options test_evaluator.dump_file=' in section
    figure = re.search(r'!\[[^\]]*\]\((docs/[\w.-]+\.png)\)', section).group(1)
    with Image.open(REPO / figure) as img:
        assert img.format == 'PNG'
