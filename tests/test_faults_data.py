"""Data faults: unreadable images follow the dataset's policy, and annotation changes are caught on resume."""
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.logging import MessageHub, MMLogger
from mmpretrain.structures import DataSample
from PIL import Image

from lift_mm.datasets import LongTailDataset
from lift_mm.datasets.long_tail_dataset import UnreadableImageError
from lift_mm.engine.hooks import AnnotationFingerprintHook, SkippedImagesHook, annotation_fingerprint

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]


@pytest.fixture
def data_root(tmp_path) -> Path:
    """Two classes of two 8x8 images each, in the long-tail annotation format."""
    lines = []
    for label in range(2):
        for index in range(2):
            path = tmp_path / f'class{label}' / f'{index}.png'
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), 60 * label + index, dtype=np.uint8)).save(path)
            lines.append(f'class{label}/{index}.png {label}\n')
    (tmp_path / 'train.txt').write_text(''.join(lines))
    (tmp_path / 'classnames.txt').write_text('a first\nb second\n')
    return tmp_path


def dataset(data_root: Path, **kwargs) -> LongTailDataset:
    return LongTailDataset(ann_file='train.txt', classnames_file='classnames.txt', data_root=str(data_root),
                           pipeline=PIPELINE, **kwargs)


# Unreadable images.


@pytest.mark.parametrize('damage', ['corrupt', 'missing', 'empty'])
def test_an_unreadable_image_fails_naming_it_by_default(damage, data_root):
    image = data_root / 'class0' / '1.png'
    if damage == 'missing':
        image.unlink()
    else:
        image.write_bytes(b'' if damage == 'empty' else b'not a png at all')
    with pytest.raises(UnreadableImageError, match=rf"Cannot read the image {image} .*on_unreadable='skip'"):
        dataset(data_root)[1]


def test_skip_replaces_an_unreadable_image_and_marks_the_replacement(data_root):
    image = data_root / 'class0' / '1.png'
    image.write_bytes(b'not a png at all')
    data = dataset(data_root, on_unreadable='skip')
    np.random.seed(0)  # BaseDataset draws the replacement with numpy
    sample = data[1]
    assert sample['data_samples'].img_path != str(image)
    assert sample['data_samples'].skipped_images == (str(image), )
    assert 'skipped_images' not in data[0]['data_samples']


def test_pipeline_errors_on_readable_images_are_not_taken_for_unreadable_images(data_root):

    def broken_transform(results):
        raise KeyError('a bug in a transform')

    data = LongTailDataset(ann_file='train.txt', classnames_file='classnames.txt', data_root=str(data_root),
                           pipeline=[*PIPELINE[:1], broken_transform], on_unreadable='skip')
    with pytest.raises(KeyError, match='a bug in a transform'):
        data[0]


def test_unreadable_policy_is_checked(data_root):
    with pytest.raises(ValueError, match=r"`on_unreadable` must be one of \('error', 'skip'\), got 'ignore'"):
        dataset(data_root, on_unreadable='ignore')
    with pytest.raises(ValueError, match=r"`on_unreadable='skip'` is for training datasets"):
        dataset(data_root, on_unreadable='skip', test_mode=True)


def test_skipped_images_hook_totals_the_marked_samples_per_epoch(monkeypatch):
    hook, logged = SkippedImagesHook(), []
    runner = SimpleNamespace(logger=SimpleNamespace(warning=logged.append))
    marked = DataSample(metainfo=dict(skipped_images=('a.png', 'b.png')))
    for epoch_batches in ([[marked, DataSample()], [marked]], [[DataSample()]]):
        hook.before_train_epoch(runner)
        for batch in epoch_batches:
            hook.after_train_iter(runner, 0, dict(inputs=[], data_samples=batch))
        hook.after_train_epoch(runner)
    assert logged == ['SkippedImagesHook: 4 unreadable training image(s) were skipped and replaced by other samples '
                      'in this epoch; the warnings above name them.']


# Annotation fingerprints.


def fingerprint_runner(dataset, name: str) -> SimpleNamespace:
    return SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset), message_hub=MessageHub(name),
                           logger=MMLogger.get_instance(name))


def test_fingerprint_hook_passes_the_same_files_and_refuses_changed_ones(data_root):
    data = dataset(data_root)
    trained = fingerprint_runner(data, 'fingerprint-trained')
    AnnotationFingerprintHook().before_train(trained)
    saved = trained.message_hub.state_dict()

    resumed = fingerprint_runner(dataset(data_root), 'fingerprint-resumed')
    resumed.message_hub.load_state_dict(saved)
    AnnotationFingerprintHook().before_train(resumed)

    (data_root / 'classnames.txt').write_text('a first\nb another second\n')
    changed = fingerprint_runner(dataset(data_root), 'fingerprint-changed')
    changed.message_hub.load_state_dict(saved)
    with pytest.raises(RuntimeError, match=rf'changed since the checkpoint being resumed was saved: classnames_file '
                       rf'{data_root / "classnames.txt"}\. .*on_change=warn'):
        AnnotationFingerprintHook().before_train(changed)
    AnnotationFingerprintHook(on_change='warn').before_train(changed)
    assert changed.message_hub.get_info('train_annotation_fingerprint') == dataset(data_root).annotation_fingerprint()


def test_fingerprint_covers_plain_datasets_by_their_ann_file(data_root):
    plain = SimpleNamespace(ann_file=str(data_root / 'train.txt'))
    (path, digest), = annotation_fingerprint(plain).values()
    assert path == plain.ann_file and digest == dataset(data_root).annotation_fingerprint()['ann_file'][1]
    assert annotation_fingerprint(SimpleNamespace(ann_file='')) == {}
    with pytest.raises(ValueError, match=r"`on_change` must be one of \('error', 'warn'\), got 'ignore'"):
        AnnotationFingerprintHook(on_change='ignore')


def test_resume_passes_with_the_same_files_moved_elsewhere(data_root, tmp_path_factory):
    trained = fingerprint_runner(dataset(data_root), 'fingerprint-before-move')
    AnnotationFingerprintHook().before_train(trained)
    moved_root = shutil.copytree(data_root, tmp_path_factory.mktemp('moved') / 'data')
    moved = fingerprint_runner(dataset(moved_root), 'fingerprint-after-move')
    moved.message_hub.load_state_dict(trained.message_hub.state_dict())
    AnnotationFingerprintHook().before_train(moved)
    before = trained.message_hub.get_info('train_annotation_fingerprint')
    after = moved.message_hub.get_info('train_annotation_fingerprint')
    # Same contents, so no error; the new places are what a later resume compares with.
    assert {name: digest for name, (_, digest) in after.items()} == {
        name: digest for name, (_, digest) in before.items()}
    assert after == dataset(moved_root).annotation_fingerprint()
    assert all(path.startswith(str(moved_root)) for path, _ in after.values())
