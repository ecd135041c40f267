"""Tests of the long-tail datasets, groups and class sizes."""
import hashlib
import json
import math
import multiprocessing
import os
import os.path as osp
import pickle
from pathlib import Path

import numpy as np
import pytest
from mmpretrain.registry import DATASETS
from PIL import Image

from lift_mm.datasets import (CIFAR100LT, LongTailDataset, SyntheticLongTail, exponential_class_sizes, long_tail_groups,
                              select_long_tail_indices, synthetic_long_tail)

# ---------------------------------------------------------------- groups


def test_groups_boundaries_follow_lift():
    counts = [101, 100, 20, 19, 500, 0]
    groups = long_tail_groups(counts)
    assert list(groups) == ['many', 'medium', 'few']
    assert groups['many'].tolist() == [0, 4]
    assert groups['medium'].tolist() == [1, 2]
    assert groups['few'].tolist() == [3, 5]


def test_groups_custom_thresholds_partition_all_classes():
    counts = np.random.RandomState(0).randint(0, 60, size=50)
    groups = long_tail_groups(counts, many_thr=40, few_thr=10)
    assert groups['many'].tolist() == [i for i, c in enumerate(counts) if c > 40]
    assert groups['medium'].tolist() == [
        i for i, c in enumerate(counts) if 10 <= c <= 40
    ]
    assert groups['few'].tolist() == [i for i, c in enumerate(counts) if c < 10]
    merged = np.sort(np.concatenate(list(groups.values())))
    assert merged.tolist() == list(range(50))


@pytest.mark.parametrize('counts,kwargs,match', [
    ([10, 5], dict(many_thr=10, few_thr=20), 'few_thr .20. must not exceed'),
    ([10, -1], {}, 'class 1 has count -1'),
    ([1.5, 2.0], {}, 'must hold integers'),
    ([[1, 2]], {}, r'1-D .* shape \(1, 2\)'),
    ([], {}, 'non-empty'),
])
def test_groups_reject_bad_input(counts, kwargs, match):
    with pytest.raises(ValueError, match=match):
        long_tail_groups(counts, **kwargs)


# ---------------------------------------------------------------- sizes


def test_cifar_lt_sizes_match_lift_formula():
    for ratio, total in ((100, 10847), (50, 12608), (10, 19573)):
        sizes = exponential_class_sizes(500, 100, ratio)
        # LIFT: int(img_max * imb_factor ** (cls_idx / (cls_num - 1.0)))
        expected = [int(500.0 * (1 / ratio)**(i / 99.0)) for i in range(100)]
        assert sizes == expected
        assert sum(sizes) == total
    sizes = exponential_class_sizes(500, 100, 100)
    assert (sizes[0], sizes[99]) == (500, 5)
    assert exponential_class_sizes(500, 100, 1) == [500] * 100


def test_sizes_reject_bad_arguments():
    with pytest.raises(ValueError, match='imbalance_ratio .* at least 1'):
        exponential_class_sizes(500, 100, 0.5)
    with pytest.raises(ValueError, match='num_classes must be at least 2'):
        exponential_class_sizes(500, 1, 10)


# ---------------------------------------------------------------- LongTailDataset

CLASS_LINES = [
    'n01440764 tench', 'n01443537 goldfish', 'n01484850 great white shark',
    'n01491361 tiger_shark'
]


def write_lt(root: Path, train=None, val=None, classnames=None) -> Path:
    """Write a tiny ImageNet-LT style dataset description under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    if train is None:
        train = [f'train/c{c}/{i}.jpg {c}' for c, n in enumerate((5, 3, 2, 1))
                 for i in range(n)]
    if val is None:
        val = [f'val/c{c}/{i}.jpg {c}' for c in range(4) for i in range(2)]
    (root / 'classnames.txt').write_text('\n'.join(classnames or CLASS_LINES) +
                                         '\n')
    (root / 'train.txt').write_text('\n'.join(train) + '\n')
    (root / 'val.txt').write_text('\n'.join(val) + '\n')
    return root


def test_dataset_loads_samples_classes_and_train_counts(tmp_path):
    root = write_lt(tmp_path / 'lt')
    dataset = LongTailDataset(
        ann_file='val.txt',
        classnames_file='classnames.txt',
        class_counts_file='train.txt',
        data_root=str(root),
        data_prefix='images')
    assert len(dataset) == 8
    assert dataset.metainfo['classes'] == ('tench', 'goldfish',
                                           'great white shark', 'tiger_shark')
    assert dataset.metainfo['class_counts'] == (5, 3, 2, 1)
    assert dataset.get_gt_labels().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    info = dataset.get_data_info(3)
    assert info['img_path'] == osp.join(str(root), 'images', 'val/c1/1.jpg')
    assert info['gt_label'] == 1
    assert dataset.get_cat_ids(7) == [3]


def test_dataset_counts_default_to_ann_file_and_builds_from_registry(tmp_path):
    root = write_lt(tmp_path / 'lt')
    dataset = DATASETS.build(
        dict(
            type='LongTailDataset',
            ann_file=str(root / 'train.txt'),
            classnames_file=str(root / 'classnames.txt')))
    assert dataset.metainfo['class_counts'] == (5, 3, 2, 1)
    assert dataset.get_data_info(0)['img_path'] == 'train/c0/0.jpg'


def test_dataset_metainfo_is_ready_with_lazy_init(tmp_path):
    root = write_lt(tmp_path / 'lt')
    dataset = LongTailDataset(
        'val.txt',
        'classnames.txt',
        data_root=str(root),
        class_counts_file='train.txt',
        lazy_init=True,
        metainfo=dict(task='demo'))
    assert not dataset._fully_initialized
    assert dataset.metainfo == dict(
        task='demo',
        classes=('tench', 'goldfish', 'great white shark', 'tiger_shark'),
        class_counts=(5, 3, 2, 1))


def test_dataset_accepts_trailing_blank_lines(tmp_path):
    root = write_lt(tmp_path / 'lt')
    with open(root / 'train.txt', 'a') as f:
        f.write('\n\n')
    dataset = LongTailDataset('train.txt', 'classnames.txt', str(root))
    assert len(dataset) == 11


def build_from(root, **kwargs):
    args = dict(
        ann_file='val.txt',
        classnames_file='classnames.txt',
        class_counts_file='train.txt',
        data_root=str(root))
    args.update(kwargs)
    return LongTailDataset(**args)


@pytest.mark.parametrize('val_lines,match', [
    (['val/a.jpg 0', 'val/b.jpg 1 extra'], r'val.txt, line 2: expected'),
    (['val/a.jpg'], r'val.txt, line 1: expected'),
    (['val/a.jpg 0', '', 'val/b.jpg 1'], r'val.txt, line 2: expected'),
    (['val/a.jpg x1'], r"line 1: the label 'x1' is not a non-negative"),
    (['val/a.jpg -1'], r"line 1: the label '-1' is not a non-negative"),
    (['val/a.jpg 1_0'], r"the label '1_0' is not"),
    (['val/a.jpg 0', 'val/b.jpg 4'],
     r'line 2: label 4 is out of range \[0, 4\).*lists 4 classes'),
    (['val/a.jpg 0', 'val/b.jpg 1', 'val/a.jpg 2'],
     r"line 3: the image 'val/a.jpg' is listed again \(first on line 1\)"),
    (['/abs/a.jpg 0'], r'line 1: the image path .* is absolute'),
    (['val/a.jpg 0', '../a.jpg 1'],
     r"line 2: the image path '../a.jpg' leaves data_root/data_prefix "
     r'through "\.\."'),
    (['val/../../a.jpg 0'],
     r"line 1: the image path 'val/../../a.jpg' leaves data_root/data_prefix"),
])
def test_dataset_rejects_malformed_annotation_lines(tmp_path, val_lines, match):
    root = write_lt(tmp_path / 'lt', val=val_lines)
    with pytest.raises(ValueError, match=match) as err:
        build_from(root)
    assert str(root / 'val.txt') in str(err.value)


def test_dataset_accepts_paths_that_stay_inside_the_image_folder(tmp_path):
    root = write_lt(tmp_path / 'lt', val=['val/x/../a.jpg 0', './val/b.jpg 1'])
    dataset = build_from(root)
    assert [dataset.get_data_info(i)['img_path'] for i in range(2)] == [
        osp.join(str(root), 'val/x/../a.jpg'),
        osp.join(str(root), './val/b.jpg')
    ]


def test_dataset_reads_files_with_a_utf8_byte_order_mark(tmp_path):
    root = write_lt(tmp_path / 'lt')
    for name in ('val.txt', 'train.txt', 'classnames.txt'):
        text = (root / name).read_text(encoding='utf-8')
        (root / name).write_bytes(b'\xef\xbb\xbf' + text.encode('utf-8'))
    dataset = build_from(root)
    assert dataset.get_data_info(0)['img_path'] == osp.join(
        str(root), 'val/c0/0.jpg')
    assert dataset.metainfo['classes'][0] == 'tench'
    assert dataset.metainfo['class_counts'] == (5, 3, 2, 1)


@pytest.mark.parametrize('name,what', [('val.txt', 'annotation file'),
                                       ('classnames.txt', 'class-name file')])
def test_dataset_names_file_line_and_encoding_of_non_utf8_text(
        tmp_path, name, what):
    root = write_lt(tmp_path / 'lt')
    lines = (root / name).read_text(encoding='utf-8').splitlines()
    lines[2] += '\xe7'  # 'ç', one byte in Latin-1
    (root / name).write_bytes('\n'.join(lines).encode('latin-1'))
    with pytest.raises(
            ValueError,
            match=rf"{name}, line 3: the {what} is not valid UTF-8 "
            r"\(invalid continuation byte at byte \d+: b'\\xe7'\). Save it as "
            'UTF-8'):
        build_from(root)


def test_dataset_rejects_empty_annotation_file(tmp_path):
    root = write_lt(tmp_path / 'lt')
    (root / 'val.txt').write_text('\n')
    with pytest.raises(ValueError, match='lists no images'):
        build_from(root)


def test_dataset_validates_counts_file_too(tmp_path):
    root = write_lt(tmp_path / 'lt', train=['t/a.jpg 0', 't/b.jpg 9'])
    with pytest.raises(ValueError, match=r'train.txt, line 2: label 9'):
        build_from(root)


def test_dataset_names_classes_without_training_images(tmp_path):
    train = ['t/a.jpg 0', 't/b.jpg 0', 't/c.jpg 2']
    root = write_lt(tmp_path / 'lt', train=train)
    with pytest.raises(
            ValueError,
            match=r"train.txt: class 1 \('goldfish'\), 3 \('tiger_shark'\) "
            'has no training images'):
        build_from(root)


def test_dataset_val_file_as_counts_file_is_caught(tmp_path):
    # A val list that misses a class cannot serve as training counts.
    root = write_lt(tmp_path / 'lt', val=['v/a.jpg 0', 'v/b.jpg 1'])
    with pytest.raises(ValueError, match='class 2 .* has no training images'):
        build_from(root, class_counts_file='val.txt')


@pytest.mark.parametrize('lines,match', [
    (['n1 tench', 'n2'], r'classnames.txt, line 2: expected "key class name"'),
    (['n1 tench', 'n1 goldfish'],
     r"classnames.txt, line 2: the key 'n1' is repeated \(first on line 1\)"),
    (['n1 tench', '', 'n3 shark'], r'classnames.txt, line 2: expected'),
])
def test_dataset_rejects_malformed_classnames(tmp_path, lines, match):
    root = write_lt(tmp_path / 'lt', classnames=lines)
    with pytest.raises(ValueError, match=match):
        build_from(root)


def test_dataset_reports_fewer_classnames_than_labels(tmp_path):
    root = write_lt(tmp_path / 'lt', classnames=CLASS_LINES[:3])
    with pytest.raises(
            ValueError,
            match=r'train.txt, line 11: label 3 is out of range \[0, 3\); '
            r"the class-name file '.*classnames.txt' lists 3 classes"):
        build_from(root)


@pytest.mark.parametrize('missing,what', [('val.txt', 'annotation file'),
                                          ('classnames.txt', 'class-name file'),
                                          ('train.txt', 'annotation file')])
def test_dataset_missing_files(tmp_path, missing, what):
    root = write_lt(tmp_path / 'lt')
    os.remove(root / missing)
    with pytest.raises(FileNotFoundError, match=f'{what} not found: .*{missing}'):
        build_from(root)


@pytest.mark.parametrize('kwargs', [
    dict(metainfo=dict(classes=('a', 'b', 'c', 'd'))),
    dict(metainfo=dict(class_counts=(1, 1, 1, 1))),
    dict(classes=('a', 'b', 'c', 'd')),
])
def test_dataset_rejects_overridden_derived_metainfo(tmp_path, kwargs):
    root = write_lt(tmp_path / 'lt')
    with pytest.raises(ValueError, match='remove them from the dataset config'):
        build_from(root, **kwargs)


def test_dataset_parses_imagenet_lt_sized_file(tmp_path):
    # How long it takes is measured by tools/analysis/benchmark_annotations.py, not asserted here.
    root = tmp_path / 'big'
    counts = exponential_class_sizes(1280, 1000, 256)
    train = [
        f'train/n{c:08d}/n{c:08d}_{i}.JPEG {c}' for c, n in enumerate(counts)
        for i in range(n)
    ]
    classnames = [f'n{c:08d} class {c}' for c in range(1000)]
    write_lt(root, train=train, val=train[:10], classnames=classnames)
    dataset = LongTailDataset('train.txt', 'classnames.txt', str(root))
    assert len(dataset) == sum(counts) > 100_000
    assert dataset.metainfo['class_counts'] == tuple(counts)


# ---------------------------------------------------------------- SyntheticLongTail


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    """The default synthetic dataset, generated once for the module."""
    root = tmp_path_factory.mktemp('synthetic') / 'demo'
    SyntheticLongTail(str(root))
    return root


def test_synthetic_default_counts_groups_and_files(demo_root):
    train = SyntheticLongTail(str(demo_root))
    test = SyntheticLongTail(str(demo_root), split='test', test_mode=True)
    expected = [math.floor(150 * (1 / 30)**(i / 9)) for i in range(10)]
    assert train.metainfo['class_counts'] == tuple(expected)
    assert test.metainfo['class_counts'] == tuple(expected)
    assert np.bincount(train.get_gt_labels()).tolist() == expected
    assert np.bincount(test.get_gt_labels()).tolist() == [20] * 10
    classes = train.metainfo['classes']
    assert len(set(classes)) == 10 and classes[0] == 'red_square'
    groups = long_tail_groups(train.metainfo['class_counts'])
    assert all(len(groups[name]) > 0 for name in ('many', 'medium', 'few'))
    for name in ('train.txt', 'test.txt', 'classnames.txt'):
        assert (demo_root / name).is_file()
    with Image.open(train.get_data_info(0)['img_path']) as img:
        assert img.size == (32, 32) and img.mode == 'RGB'


def test_synthetic_runs_through_a_pipeline(demo_root):
    dataset = SyntheticLongTail(
        str(demo_root),
        split='test',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')])
    sample = dataset[25]
    assert tuple(sample['inputs'].shape) == (3, 32, 32)
    assert sample['data_samples'].gt_label.tolist() == [1]


def _shape_colours(dataset):
    """Mean colour of the bright (shape) pixels of each image."""
    colours = []
    for i in range(len(dataset)):
        with Image.open(dataset.get_data_info(i)['img_path']) as img:
            pixels = np.asarray(img, dtype=np.float64).reshape(-1, 3)
        colours.append(pixels[pixels.max(1) > 100].mean(0))
    return np.stack(colours)


def test_synthetic_classes_are_learnable(demo_root):
    # The nearest class-mean shape colour, fitted on train, must classify test.
    train = SyntheticLongTail(str(demo_root))
    test = SyntheticLongTail(str(demo_root), split='test')
    train_x, train_y = _shape_colours(train), train.get_gt_labels()
    centroids = np.stack([train_x[train_y == c].mean(0) for c in range(10)])
    test_x, test_y = _shape_colours(test), test.get_gt_labels()
    pred = np.argmin(((test_x[:, None] - centroids[None])**2).sum(-1), 1)
    assert (pred == test_y).mean() >= 0.9


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


SMALL = dict(num_classes=4, max_count=12, imbalance_ratio=4, test_per_class=2)


def test_synthetic_generation_is_deterministic(tmp_path):
    SyntheticLongTail(str(tmp_path / 'a'), **SMALL)
    SyntheticLongTail(str(tmp_path / 'b'), **SMALL)
    SyntheticLongTail(str(tmp_path / 'c'), seed=1, **SMALL)
    assert _tree_digest(tmp_path / 'a') == _tree_digest(tmp_path / 'b')
    assert _tree_digest(tmp_path / 'a') != _tree_digest(tmp_path / 'c')
    assert sorted(os.listdir(tmp_path)) == ['a', 'b', 'c']  # no temp leftovers


def test_synthetic_rejects_other_parameters_in_existing_root(tmp_path):
    SyntheticLongTail(str(tmp_path / 'a'), **SMALL)
    with pytest.raises(ValueError,
                       match="was generated with .*'max_count': 12.*Use "
                       'another data_root'):
        SyntheticLongTail(str(tmp_path / 'a'), **dict(SMALL, max_count=20))


def test_synthetic_rejects_foreign_non_empty_root(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='not empty but has no'):
        SyntheticLongTail(str(tmp_path / 'a'), **SMALL)


def test_synthetic_fills_an_existing_empty_root(tmp_path):
    (tmp_path / 'a').mkdir()
    dataset = SyntheticLongTail(str(tmp_path / 'a'), **SMALL)
    assert dataset.metainfo['class_counts'] == (12, 7, 4, 3)


def test_synthetic_losing_the_rename_race_uses_the_winner(tmp_path, monkeypatch):
    root = str(tmp_path / 'a')
    real_replace = os.replace

    def replace_after_another_rank(src, dst):
        # Another rank finishes first; our rename onto its folder must fail.
        other = str(tmp_path / 'other')
        os.makedirs(other)
        synthetic_long_tail._generate(other, _params(SMALL))
        real_replace(other, dst)
        real_replace(src, dst)

    monkeypatch.setattr(synthetic_long_tail.os, 'replace',
                        replace_after_another_rank)
    dataset = SyntheticLongTail(root, **SMALL)
    assert len(dataset) == 12 + 7 + 4 + 3
    assert sorted(os.listdir(tmp_path)) == ['a']


def _params(kwargs):
    return dict(
        dict(
            num_classes=10,
            max_count=150,
            imbalance_ratio=30,
            test_per_class=20,
            image_size=32,
            seed=0), **kwargs)


def _build_in_child(root):
    SyntheticLongTail(root, **SMALL)


def test_synthetic_concurrent_generation_in_two_processes(tmp_path):
    root = str(tmp_path / 'a')
    ctx = multiprocessing.get_context('fork')
    procs = [ctx.Process(target=_build_in_child, args=(root, ))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert sorted(os.listdir(tmp_path)) == ['a']
    reference = tmp_path.parent / (tmp_path.name + '_ref')
    SyntheticLongTail(str(reference), **SMALL)
    assert _tree_digest(Path(root)) == _tree_digest(reference)


@pytest.mark.parametrize('kwargs,match', [
    (dict(split='val'), r"split must be one of \('train', 'test'\)"),
    (dict(num_classes=51), r'num_classes must be in \[2, 50\]'),
    (dict(max_count=10, imbalance_ratio=30), 'last class without images'),
])
def test_synthetic_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticLongTail(str(tmp_path / 'a'), **kwargs)
    assert not (tmp_path / 'a').exists()


# ---------------------------------------------------------------- benchmarks


@pytest.mark.parametrize('dataset_type,prefix', [('ImageNetLT', 'ImageNet_LT'),
                                                 ('PlacesLT', 'Places_LT')])
def test_benchmarks_pick_split_file_and_train_counts(tmp_path, dataset_type,
                                                     prefix):
    root = write_lt(tmp_path / 'lt')
    os.rename(root / 'train.txt', root / f'{prefix}_train.txt')
    os.rename(root / 'val.txt', root / f'{prefix}_val.txt')
    (root / f'{prefix}_test.txt').write_text('val/x.jpg 3\nval/y.jpg 2\n')
    datasets = {
        split: DATASETS.build(
            dict(type=dataset_type, data_root=str(root), split=split))
        for split in ('train', 'val', 'test')
    }
    assert {split: len(d) for split, d in datasets.items()} == dict(
        train=11, val=8, test=2)
    for dataset in datasets.values():
        assert dataset.metainfo['class_counts'] == (5, 3, 2, 1)
        assert dataset.metainfo['classes'][2] == 'great white shark'
    assert datasets['test'].get_data_info(0)['img_path'] == osp.join(
        str(root), 'val/x.jpg')
    with pytest.raises(ValueError,
                       match=r"split must be one of \('train', 'val', "
                       r"'test'\), got 'minival'"):
        DATASETS.build(dict(type=dataset_type, data_root=str(root),
                            split='minival'))


def write_inat(root: Path, categories) -> Path:
    root.mkdir(parents=True)
    (root / 'categories.json').write_text(json.dumps(categories))
    (root / 'iNaturalist18_train.txt').write_text(
        'train_val2018/Plantae/2/a.jpg 2\ntrain_val2018/Plantae/2/b.jpg 2\n'
        'train_val2018/Animalia/0/c.jpg 0\ntrain_val2018/Fungi/1/d.jpg 1\n')
    (root / 'iNaturalist18_val.txt').write_text(
        'train_val2018/Fungi/1/e.jpg 1\n')
    return root


def test_inaturalist_names_classes_by_category_id(tmp_path):
    categories = [
        dict(id=2, name='Quercus robur', kingdom='Plantae'),
        dict(id=0, name='Hermodice carunculata', kingdom='Animalia'),
        dict(id=1, name='Amanita muscaria', kingdom='Fungi'),
    ]
    root = write_inat(tmp_path / 'inat', categories)
    train = DATASETS.build(dict(type='INaturalist2018', data_root=str(root)))
    val = DATASETS.build(
        dict(type='INaturalist2018', data_root=str(root), split='val'))
    expected = ('Hermodice carunculata', 'Amanita muscaria', 'Quercus robur')
    assert train.metainfo['classes'] == val.metainfo['classes'] == expected
    assert val.metainfo['class_counts'] == (1, 1, 2)
    assert val.get_gt_labels().tolist() == [1]
    with pytest.raises(ValueError, match=r"\('train', 'val'\), got 'test'"):
        DATASETS.build(
            dict(type='INaturalist2018', data_root=str(root), split='test'))


@pytest.mark.parametrize('categories,match', [
    ({'id': 0}, 'expected a non-empty JSON list'),
    ([dict(id=0, name='a'), dict(id=0, name='b'),
      dict(id=1, name='c')], 'entry 1: id 0 is used twice'),
    ([dict(id=0, name='a'), dict(id=3, name='b'),
      dict(id=1, name='c')], r'entry 1: id 3 is outside \[0, 3\)'),
    ([dict(id=0, name='a'), dict(id=1), dict(id=2, name='c')],
     'entry 1: expected an object with an integer "id" and a string "name"'),
])
def test_inaturalist_rejects_bad_categories(tmp_path, categories, match):
    root = write_inat(tmp_path / 'inat', categories)
    with pytest.raises(ValueError, match=match) as err:
        DATASETS.build(dict(type='INaturalist2018', data_root=str(root)))
    assert 'categories.json' in str(err.value)


def test_inaturalist_reads_categories_with_a_byte_order_mark(tmp_path):
    root = write_inat(tmp_path / 'inat', [])
    (root / 'categories.json').write_bytes(b'\xef\xbb\xbf' + json.dumps(
        [dict(id=i, name=f'species {i}') for i in range(3)]).encode('utf-8'))
    dataset = DATASETS.build(dict(type='INaturalist2018', data_root=str(root)))
    assert dataset.metainfo['classes'] == ('species 0', 'species 1',
                                           'species 2')


def test_inaturalist_rejects_invalid_json(tmp_path):
    root = write_inat(tmp_path / 'inat', [])
    (root / 'categories.json').write_text('[{"id": 0,')
    with pytest.raises(ValueError, match='categories.json: not valid JSON'):
        DATASETS.build(dict(type='INaturalist2018', data_root=str(root)))


# ---------------------------------------------------------------- CIFAR-100-LT


class Python2Array:
    """Pickles as numpy 1.x under Python 2 pickled arrays, the form of the
    real archive: the image bytes as a str (read back with Latin-1)."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __reduce__(self):
        reconstruct, (cls, shape, _), state = self.array.__reduce__()
        *header, raw = state
        return reconstruct, (cls, shape, 'b'), (*header, raw.decode('latin1'))


def dump_cifar_file(content: dict, path: Path, python2: bool) -> None:
    if not python2:
        with open(path, 'wb') as f:
            pickle.dump(content, f)
        return
    content = {
        key: Python2Array(value) if isinstance(value, np.ndarray) else value
        for key, value in content.items()
    }
    # numpy 1.x named the module of _reconstruct numpy.core.multiarray.
    data = pickle.dumps(content, protocol=2).replace(
        b'cnumpy._core.multiarray\n', b'cnumpy.core.multiarray\n')
    path.write_bytes(data)


def write_cifar(root: Path, train_per_class: int, test_per_class: int,
                seed: int = 1, python2: bool = False) -> Path:
    """Write a CIFAR-100 python archive with shuffled labels.

    Pixel (0, 0) and (0, 1) of the red channel hold the image index, so
    tests can tell which images were kept.
    """
    folder = root / 'cifar-100-python'
    folder.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    for split, per_class in (('train', train_per_class), ('test', test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(100), per_class))
        data = np.zeros((labels.size, 3072), dtype=np.uint8)
        data[:, 0] = np.arange(labels.size) // 256
        data[:, 1] = np.arange(labels.size) % 256
        dump_cifar_file(
            dict(data=data, fine_labels=labels.tolist()), folder / split,
            python2)
    dump_cifar_file(
        dict(fine_label_names=[f'name_{i}' for i in range(100)]),
        folder / 'meta', python2)
    return root


def image_index(img: np.ndarray) -> int:
    return int(img[0, 0, 0]) * 256 + int(img[0, 1, 0])


def lift_selection(labels, sizes):
    """LIFT's gen_imbalanced_data, on numpy's global generator."""
    state = np.random.get_state()
    try:
        np.random.seed(0)
        selected = []
        for the_class, the_img_num in zip(np.unique(labels), sizes):
            idx = np.where(labels == the_class)[0]
            np.random.shuffle(idx)
            selected.extend(idx[:the_img_num].tolist())
    finally:
        np.random.set_state(state)
    return selected


def test_selection_matches_lift_procedure():
    labels = np.random.RandomState(3).permutation(np.repeat(np.arange(100), 500))
    sizes = exponential_class_sizes(500, 100, 100)
    assert select_long_tail_indices(labels, sizes).tolist() == lift_selection(
        labels, sizes)


@pytest.fixture(scope='module')
def full_cifar(tmp_path_factory):
    """A full-size (50000 + 10000 images) archive with blank images."""
    return write_cifar(tmp_path_factory.mktemp('cifar'), 500, 100)


def test_cifar100_lt_ratio_100_matches_lift(full_cifar):
    dataset = CIFAR100LT(str(full_cifar), split='train', imbalance_ratio=100)
    sizes = exponential_class_sizes(500, 100, 100)
    assert len(dataset) == 10847
    assert dataset.metainfo['class_counts'] == tuple(sizes)
    assert dataset.metainfo['group_counts'] == tuple(sizes)
    assert dataset.metainfo['classes'][:2] == ('name_0', 'name_1')
    labels = dataset.get_gt_labels()
    assert np.bincount(labels).tolist() == sizes
    assert (sizes[0], sizes[99]) == (500, 5)
    with open(full_cifar / 'cifar-100-python' / 'train', 'rb') as f:
        archive_labels = np.asarray(pickle.load(f)['fine_labels'])
    kept = [image_index(dataset.get_data_info(i)['img'])
            for i in range(len(dataset))]
    assert kept == lift_selection(archive_labels, sizes)
    assert (archive_labels[kept] == labels).all()


@pytest.mark.parametrize('ratio,total', [(50, 12608), (10, 19573)])
def test_cifar100_lt_other_ratios_group_by_ratio_100(full_cifar, ratio, total):
    dataset = CIFAR100LT(
        str(full_cifar), imbalance_ratio=ratio, lazy_init=True)
    assert sum(dataset.metainfo['class_counts']) == total
    assert dataset.metainfo['group_counts'] == tuple(
        exponential_class_sizes(500, 100, 100))


@pytest.mark.parametrize('ratio', [100, 50, 10])
def test_cifar100_lt_group_ratio_none_groups_by_its_own_counts(full_cifar, ratio):
    # LIFT+'s grouping: each ratio by its own training counts.
    dataset = CIFAR100LT(str(full_cifar), split='test', imbalance_ratio=ratio, group_ratio=None, lazy_init=True)
    own = tuple(exponential_class_sizes(500, 100, ratio))
    assert dataset.metainfo['class_counts'] == dataset.metainfo['group_counts'] == own


def test_cifar100_lt_ratio_10_by_its_own_counts_reports_no_few_group(full_cifar):
    from lift_mm.evaluation.metrics import LongTailAccuracy
    dataset = CIFAR100LT(str(full_cifar), split='test', imbalance_ratio=10, group_ratio=None, lazy_init=True)
    metric = LongTailAccuracy(topk=1)
    metric.dataset_meta = dataset.metainfo
    # One test image per class; classes 0-4 right (all many-shot: sizes 500 down to 101), the others taken for the
    # next class, so class 0 is also predicted for class 99 (F1 2/3) and classes 1-4 have F1 1.
    many = sum(size > 100 for size in exponential_class_sizes(500, 100, 10))
    results = [dict(gt_label=c, pred_topk=[c if c < 5 else (c + 1) % 100]) for c in range(100)]
    assert metric.compute_metrics(results) == pytest.approx(dict(
        top1=5.0, many=100 * 5 / many, medium=0.0, mean_class=5.0, macro_f1=4 + 2 / 3, worst_class=0.0,
        hmean_class=100 / (5 / 1 + 95 / 1e-5) * 100, gmean_class=0.0))


@pytest.mark.parametrize('group_ratio', [0.5, '100'])
def test_cifar100_lt_rejects_a_bad_group_ratio(full_cifar, group_ratio):
    with pytest.raises(ValueError, match=r"CIFAR100LT group_ratio must be at least 1 .* or None .*, got "):
        CIFAR100LT(str(full_cifar), group_ratio=group_ratio, lazy_init=True)


def test_cifar100_lt_test_split_is_balanced_with_train_counts(full_cifar):
    dataset = CIFAR100LT(
        str(full_cifar),
        split='test',
        test_mode=True,
        pipeline=[dict(type='PackInputs')])
    assert len(dataset) == 10000
    assert np.bincount(dataset.get_gt_labels()).tolist() == [100] * 100
    assert dataset.metainfo['class_counts'] == tuple(
        exponential_class_sizes(500, 100, 100))
    assert [image_index(dataset.get_data_info(i)['img'])
            for i in range(5)] == list(range(5))
    sample = dataset[3]
    assert tuple(sample['inputs'].shape) == (3, 32, 32)


def test_cifar100_balanced_keeps_every_image(tmp_path):
    root = write_cifar(tmp_path, 6, 2)
    dataset = CIFAR100LT(str(root), imbalance_ratio=1)
    assert len(dataset) == 600
    assert sorted(image_index(dataset.get_data_info(i)['img'])
                  for i in range(600)) == list(range(600))
    assert dataset.metainfo['class_counts'] == (6, ) * 100
    assert dataset.metainfo['group_counts'] == tuple(
        exponential_class_sizes(6, 100, 100))


def test_cifar100_lt_image_layout_is_hwc_rgb(tmp_path):
    root = write_cifar(tmp_path, 1, 1)
    path = root / 'cifar-100-python' / 'test'
    with open(path, 'rb') as f:
        content = pickle.load(f)
    content['data'][0] = np.repeat(np.array([10, 20, 30], np.uint8), 1024)
    with open(path, 'wb') as f:
        pickle.dump(content, f)
    img = CIFAR100LT(str(root), split='test',
                     imbalance_ratio=1).get_data_info(0)['img']
    assert img.shape == (32, 32, 3)
    assert img[5, 7].tolist() == [10, 20, 30]


def test_cifar100_lt_errors(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match='cifar-100-python/meta.*not found.*extracted '
                       'into data_root.*nothing is downloaded'):
        CIFAR100LT(str(tmp_path / 'nowhere'))
    root = write_cifar(tmp_path / 'small', 6, 2)
    # floor(6 * 0.01 ** (i / 99)) first reaches 0 at i = 39.
    with pytest.raises(ValueError,
                       match='imbalance_ratio=100 leaves class 39 without '
                       'training images'):
        CIFAR100LT(str(root))
    with pytest.raises(ValueError, match=r"split must be one of \('train', "
                       r"'test'\), got 'val'"):
        CIFAR100LT(str(root), split='val')
    with pytest.raises(ValueError, match="derives \\['class_counts'\\]"):
        CIFAR100LT(str(root), metainfo=dict(class_counts=(1, ) * 100))
    with open(root / 'cifar-100-python' / 'train', 'wb') as f:
        pickle.dump(dict(data=np.zeros((3, 3072), np.uint8)), f)
    with pytest.raises(ValueError, match=r"train: missing \['fine_labels'\]"):
        CIFAR100LT(str(root), imbalance_ratio=1)


def test_cifar100_lt_reads_the_python2_archive_form(tmp_path):
    root = write_cifar(tmp_path, 6, 2, python2=True)
    assert b'cnumpy.core.multiarray\n_reconstruct' in (
        root / 'cifar-100-python' / 'train').read_bytes()
    dataset = CIFAR100LT(str(root), imbalance_ratio=1)
    assert sorted(image_index(dataset.get_data_info(i)['img'])
                  for i in range(600)) == list(range(600))
    assert dataset.metainfo['classes'][99] == 'name_99'


class CreatesMarker:
    """Unpickling this creates the file ``path``, as a crafted archive
    could run any code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, 'w')


@pytest.mark.parametrize('part', ['meta', 'train'])
def test_cifar100_lt_refuses_an_archive_that_would_run_code(tmp_path, part):
    root = write_cifar(tmp_path / 'data', 6, 2)
    marker = tmp_path / 'code_ran'
    path = root / 'cifar-100-python' / part
    with open(path, 'wb') as f:
        pickle.dump(dict(data=np.zeros((600, 3072), np.uint8),
                         fine_labels=CreatesMarker(marker),
                         fine_label_names=CreatesMarker(marker)), f)
    with pytest.raises(
            pickle.UnpicklingError,
            match=rf"cifar-100-python/{part} cannot be read as part of the "
            r"CIFAR-100 python archive \(refused the global 'io.open', "
            r'which reading the file would call: it is not on the allow-list\)'
            r'. The archive holds only dicts, lists, strings and numpy arrays'):
        CIFAR100LT(str(root), imbalance_ratio=1)
    assert not marker.exists()


def test_cifar100_lt_names_damaged_archive_files(tmp_path):
    root = write_cifar(tmp_path, 6, 2)
    path = root / 'cifar-100-python' / 'meta'
    path.write_bytes(b'')
    with pytest.raises(pickle.UnpicklingError,
                       match=r'cifar-100-python/meta cannot be read as part '
                       r'of the CIFAR-100 python archive \(Ran out of input'):
        CIFAR100LT(str(root), imbalance_ratio=1)
    with open(path, 'wb') as f:
        pickle.dump([f'name_{i}' for i in range(100)], f)
    with pytest.raises(ValueError, match=r'cifar-100-python/meta: expected a '
                       'dict, got list; is this the CIFAR-100 python archive'):
        CIFAR100LT(str(root), imbalance_ratio=1)


def test_cifar100_lt_rejects_an_unbalanced_archive(tmp_path):
    root = write_cifar(tmp_path, 6, 2)
    path = root / 'cifar-100-python' / 'train'
    with open(path, 'rb') as f:
        content = pickle.load(f)
    labels = content['fine_labels']
    labels[labels.index(5)] = 4  # class 5 now has 5 images, class 4 has 7
    with open(path, 'wb') as f:
        pickle.dump(content, f)
    with pytest.raises(ValueError,
                       match='class 5 has 5 images, fewer than the 6 to keep'
                       '.*not the full CIFAR-100 training set'):
        CIFAR100LT(str(root), imbalance_ratio=1)


# ---------------------------------------------------------------- configs

CONFIG_DIR = Path(__file__).parents[1] / 'configs' / '_base_' / 'datasets'


def write_benchmark_images(root: Path, ann_files, classnames_name,
                           classnames_text, num_classes=3):
    """Write real JPEGs listed in benchmark-style annotation files."""
    root.mkdir(parents=True)
    (root / classnames_name).write_text(classnames_text)
    for name, per_class in ann_files.items():
        lines = []
        for label in range(num_classes):
            for i in range(per_class[label]):
                rel = f'img/{name}_{label}_{i}.jpg'
                (root / 'img').mkdir(exist_ok=True)
                Image.new('RGB', (40, 30), (label * 80, 10, 10)).save(root / rel)
                lines.append(f'{rel} {label}')
        (root / name).write_text('\n'.join(lines) + '\n')


def build_from_config(config: str, split: str, data_root: Path):
    from mmengine import Config
    cfg = Config.fromfile(str(CONFIG_DIR / config))
    dataset_cfg = cfg[f'{split}_dataloader']['dataset']
    dataset_cfg['data_root'] = str(data_root)
    return cfg, DATASETS.build(dataset_cfg)


@pytest.mark.parametrize('config,prefix,classnames,splits', [
    ('imagenet-lt_bs128_clip-224.py', 'ImageNet_LT',
     'n1 tench\nn2 goldfish\nn3 shark\n', ('train', 'val', 'test')),
    ('places-lt_bs128_clip-224.py', 'Places_LT',
     'airfield airfield\nalley alley\narch arch\n', ('train', 'val', 'test')),
    ('inat2018_bs128_clip-224.py', 'iNaturalist18',
     json.dumps([dict(id=i, name=f'species {i}') for i in range(3)]),
     ('train', 'val')),
])
def test_benchmark_configs_build_and_run_their_pipelines(
        tmp_path, config, prefix, classnames, splits):
    root = tmp_path / 'data'
    classnames_name = ('categories.json'
                       if prefix == 'iNaturalist18' else 'classnames.txt')
    write_benchmark_images(
        root, {f'{prefix}_{split}.txt': (3, 2, 1)
               for split in splits}, classnames_name, classnames)
    for split in ('train', 'val', 'test'):
        cfg, dataset = build_from_config(config, split, root)
        assert dataset.metainfo['class_counts'] == (3, 2, 1)
        sample = dataset[0]
        assert tuple(sample['inputs'].shape) == (3, 224, 224)
        assert dataset.test_mode == (split != 'train')
        loader = cfg[f'{split}_dataloader']
        assert loader['batch_size'] == 128 and loader['persistent_workers']
        assert loader['sampler'] == dict(
            type='DefaultSampler', shuffle=split == 'train')
    assert cfg.data_preprocessor['to_rgb'] is True
    assert cfg.data_preprocessor['mean'] == pytest.approx(
        [122.7709383, 116.7460125, 104.09373615])
    assert cfg.data_preprocessor['std'] == pytest.approx(
        [68.5005327, 66.6321579, 70.32316305])
    assert cfg.val_evaluator == cfg.test_evaluator == dict(
        type='LongTailAccuracy', topk=(1, 5))


def test_benchmark_configs_set_their_class_numbers():
    from mmengine import Config
    expected = {
        'imagenet-lt_bs128_clip-224.py': 1000,
        'places-lt_bs128_clip-224.py': 365,
        'inat2018_bs128_clip-224.py': 8142,
        'cifar100-lt_bs128_clip-224.py': 100,
        'lift-demo_bs32_32px.py': 10,
    }
    for config, num_classes in expected.items():
        cfg = Config.fromfile(str(CONFIG_DIR / config))
        assert cfg.data_preprocessor['num_classes'] == num_classes, config


def test_cifar_config_builds_from_memory_images(full_cifar):
    for split in ('train', 'val', 'test'):
        cfg, dataset = build_from_config('cifar100-lt_bs128_clip-224.py', split,
                                         full_cifar)
        assert len(dataset) == (10847 if split == 'train' else 10000)
        assert tuple(dataset[0]['inputs'].shape) == (3, 224, 224)
    assert cfg.data_preprocessor['to_rgb'] is False
    assert all(t['type'] != 'LoadImageFromFile'
               for t in cfg.train_dataloader['dataset']['pipeline'])


def test_demo_config_keeps_32px_images(demo_root):
    for split in ('train', 'val', 'test'):
        cfg, dataset = build_from_config('lift-demo_bs32_32px.py', split,
                                         demo_root)
        assert len(dataset) == (462 if split == 'train' else 200)
        assert tuple(dataset[0]['inputs'].shape) == (3, 32, 32)
        loader = cfg[f'{split}_dataloader']
        assert (loader['batch_size'], loader['num_workers']) == (32, 2)
        assert loader['persistent_workers']
    assert cfg.val_evaluator == dict(type='LongTailAccuracy', topk=(1, 5))
