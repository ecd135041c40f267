"""Training the head from cached features: FeatureClassifier, CachedFeatureDataset and FeatureCacheHook."""
import copy
import errno
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import RepeatDataset
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample
from torch import distributed, multiprocessing

import lift_mm  # noqa: F401
from lift_mm.datasets import CachedFeatureDataset
from lift_mm.engine import FeatureCacheHook, extract_features, feature_cache_key, feature_extraction
from lift_mm.engine.hooks import feature_cache_hook
from lift_mm.utils.atomic_files import partial_files
from demo_runs import REPO, free_port

CACHED = 'configs/lift/lift_demo_classifier-only_cached.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
METRIC = re.compile(r'long_tail/(\w+): ([\d.]+)')


def load_cfg():
    return Config.fromfile(str(REPO / CACHED))


@pytest.fixture(scope='module')
def cfg():
    return load_cfg()


def build_dataset(cfg, data_root, pipeline=None):
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset.update(data_root=str(data_root), pipeline=copy.deepcopy(pipeline or cfg.test_pipeline))
    return DATASETS.build(dataset)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory, cfg):
    root = tmp_path_factory.mktemp('demo') / 'data'
    build_dataset(cfg, root)  # SyntheticLongTail writes the images on first use
    return root


def build_model(cfg, **changes):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(changes)
    model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    return MODELS.build(model_cfg)


def image_batch(dataset, size=6):
    return dict(inputs=[dataset[i]['inputs'] for i in range(size)],
                data_samples=[dataset[i]['data_samples'] for i in range(size)])


def test_preprocessor_normalises_images_and_passes_features_through(cfg, data_root):
    model = build_model(cfg)
    settings = {key: value for key, value in cfg.data_preprocessor.items() if key != 'type'}
    batch = image_batch(build_dataset(cfg, data_root))
    images = model.data_preprocessor(copy.deepcopy(batch), True)
    expected = ClsDataPreprocessor(**settings)(copy.deepcopy(batch), True)
    torch.testing.assert_close(images['inputs'], expected['inputs'], rtol=0, atol=0)
    features = [torch.randn(64) for _ in range(3)]
    samples = [DataSample().set_gt_label(label) for label in (4, 0, 9)]
    passed = model.data_preprocessor(dict(inputs=features, data_samples=samples), True)
    torch.testing.assert_close(passed['inputs'], torch.stack(features), rtol=0, atol=0)
    assert [int(sample.gt_label) for sample in passed['data_samples']] == [4, 0, 9]


def test_feature_batches_refuse_batch_augments(cfg):
    model = build_model(cfg, train_cfg=dict(augments=dict(type='Mixup', alpha=0.8)))
    features = dict(inputs=torch.randn(2, 64), data_samples=[DataSample().set_gt_label(1)] * 2)
    with pytest.raises(RuntimeError, match='cannot be applied to cached features'):
        model.data_preprocessor(features, True)
    assert model.data_preprocessor(features, False)['inputs'].shape == (2, 64)


def test_classifier_gives_from_features_what_it_gives_from_images(cfg, data_root):
    model = build_model(cfg).eval()
    model.head.loss_module.set_class_counts(range(1, 11))
    data = model.data_preprocessor(image_batch(build_dataset(cfg, data_root)), True)
    features = model.extract_feat(data['inputs'])[-1]
    assert model.extract_feat(features) == (features, )
    torch.testing.assert_close(model(features, mode='tensor'), model(data['inputs'], mode='tensor'))
    torch.testing.assert_close(model(features, data['data_samples'], mode='loss')['loss'],
                               model(data['inputs'], data['data_samples'], mode='loss')['loss'])


def test_classifier_refuses_what_cannot_work_with_features(cfg):
    with pytest.raises(TypeError, match='needs a FeatureDataPreprocessor'):
        build_model(cfg, data_preprocessor=dict(type='ClsDataPreprocessor'))
    with pytest.raises(ValueError, match="stage='backbone' cannot"):
        build_model(cfg).extract_feat(torch.randn(2, 64), stage='backbone')


def test_extracted_features_are_the_encoders_and_survive_a_round_trip(cfg, data_root, tmp_path):
    model = build_model(cfg)
    dataset = build_dataset(cfg, data_root)
    cached = extract_features(model, dataset, batch_size=64, progress=False)
    assert len(cached) == len(dataset) and cached.metainfo['classes'] == dataset.metainfo['classes']
    assert (cached.get_gt_labels() == dataset.get_gt_labels()).all()
    data = model.data_preprocessor(image_batch(dataset, 5), False)
    with torch.no_grad():
        torch.testing.assert_close(cached.features[:5], model.extract_feat(data['inputs'])[-1])
    item = cached[3]
    assert torch.equal(item['inputs'], cached.features[3]) and int(item['data_samples'].gt_label) == cached.labels[3]
    cached.save(str(tmp_path / 'cache.pth'), key='abc')
    loaded = CachedFeatureDataset.load(str(tmp_path / 'cache.pth'), key='abc')
    assert torch.equal(loaded.features, cached.features) and torch.equal(loaded.labels, cached.labels)
    assert CachedFeatureDataset.load(str(tmp_path / 'cache.pth'), key='other') is None


def test_extraction_takes_any_encoder_and_refuses_more_processes_than_samples(cfg, data_root, monkeypatch):
    model = build_model(cfg)
    dataset = torch.utils.data.Subset(build_dataset(cfg, data_root), [4, 0, 7])
    doubled = extract_features(model, dataset, batch_size=2, progress=False,
                               encode=lambda inputs: 2 * model.extract_feat(inputs)[-1])
    plain = extract_features(model, dataset, batch_size=2, progress=False)
    torch.testing.assert_close(doubled.features, 2 * plain.features)
    assert doubled.labels.tolist() == [dataset[i]['data_samples'].gt_label.item() for i in range(3)]
    monkeypatch.setattr(feature_extraction, 'get_dist_info', lambda: (0, 4))
    with pytest.raises(ValueError, match='3 samples cannot be shared among 4 processes'):
        extract_features(model, dataset, batch_size=2, progress=False)


def test_cache_key_changes_with_weights_preprocessing_pipeline_and_images(cfg, data_root):
    model = build_model(cfg)
    dataset = build_dataset(cfg, data_root)
    pipeline = list(cfg.test_pipeline)
    key = feature_cache_key(model, dataset, pipeline)
    assert feature_cache_key(build_model(cfg), build_dataset(cfg, data_root), pipeline) == key
    with torch.no_grad():
        model.backbone.visual.ln_post.bias.add_(1)
    assert feature_cache_key(model, dataset, pipeline) != key
    model = build_model(cfg)
    model.data_preprocessor.mean.add_(1)
    assert feature_cache_key(model, dataset, pipeline) != key
    other = copy.deepcopy(pipeline)
    other[1]['interpolation'] = 'bicubic'
    assert feature_cache_key(build_model(cfg), build_dataset(cfg, data_root, other), other) != key
    path = dataset.get_data_info(0)['img_path']
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert feature_cache_key(build_model(cfg), dataset, pipeline) != key
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_cache_key_covers_the_neck_activation_not_only_its_weights(cfg, data_root):
    # The features go through the neck's activation: equal weights under another activation are another encoder.
    def with_neck(activation):
        neck = dict(type='LinearNeck', in_channels=64, out_channels=64, gap_dim=0, act_cfg=dict(type=activation))
        torch.manual_seed(0)
        return build_model(cfg, neck=neck)

    relu, gelu = with_neck('ReLU'), with_neck('GELU')
    assert all(torch.equal(a, b) for a, b in zip(relu.neck.state_dict().values(), gelu.neck.state_dict().values()))
    dataset = build_dataset(cfg, data_root)
    pipeline = list(cfg.test_pipeline)
    assert feature_cache_key(relu, dataset, pipeline) == feature_cache_key(with_neck('ReLU'), dataset, pipeline)
    assert feature_cache_key(relu, dataset, pipeline) != feature_cache_key(gelu, dataset, pipeline)


def test_hook_reads_only_a_cache_of_the_same_encoder(cfg, data_root, tmp_path, monkeypatch):
    calls = []

    def counting_extract(*args, **kwargs):
        calls.append(1)
        return extract_features(*args, **kwargs)

    monkeypatch.setattr(feature_cache_hook, 'extract_features', counting_extract)
    hook, model, dataset = FeatureCacheHook(), build_model(cfg), build_dataset(cfg, data_root)
    first = hook.cached_features(model, dataset, cfg.test_pipeline, str(tmp_path), batch_size=64)
    second = hook.cached_features(model, dataset, cfg.test_pipeline, str(tmp_path), batch_size=64)
    assert len(calls) == 1 and torch.equal(first.features, second.features)
    assert len(list(tmp_path.glob('*.pth'))) == 1
    with torch.no_grad():
        model.backbone.visual.ln_post.weight.mul_(2)
    stale_free = hook.cached_features(model, dataset, cfg.test_pipeline, str(tmp_path), batch_size=64)
    assert len(calls) == 2 and not torch.allclose(stale_free.features, first.features)
    in_memory = FeatureCacheHook(save=False).cached_features(model, dataset, cfg.test_pipeline,
                                                             str(tmp_path / 'unused'), batch_size=64)
    assert len(calls) == 3 and not (tmp_path / 'unused').exists()
    torch.testing.assert_close(in_memory.features, stale_free.features)


def test_hook_refuses_what_it_cannot_cache(cfg, data_root):
    with pytest.raises(TypeError, match='needs a FeatureClassifier'):
        feature_cache_hook.check_cacheable(build_model(cfg, type='ImageClassifier'))
    adapted = build_model(cfg, backbone=dict(cfg.model.backbone, light_modules=[dict(type='AdaptFormer')]))
    with pytest.raises(ValueError, match='cannot be cached'):
        feature_cache_hook.check_cacheable(adapted)
    with pytest.raises(ValueError, match='batch augmentations'):
        feature_cache_hook.check_cacheable(build_model(cfg, train_cfg=dict(augments=dict(type='Mixup', alpha=0.8))))
    with pytest.raises(ValueError, match='give the hook a deterministic `pipeline`'):
        feature_cache_hook.default_pipeline(Config(dict(test_dataloader=None)))
    with pytest.raises(TypeError, match='RepeatDataset'):
        feature_cache_hook.with_pipeline(RepeatDataset(build_dataset(cfg, data_root), times=2), cfg.test_pipeline)


def extract_in_process_group(rank, world_size, port, data_root, out_file):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        cfg = load_cfg()
        cached = extract_features(build_model(cfg), build_dataset(cfg, data_root), batch_size=16, progress=False)
        if rank == 1:
            torch.save(dict(features=cached.features, labels=cached.labels), out_file)
    finally:
        distributed.destroy_process_group()


@pytest.mark.slow
def test_processes_extract_their_shares_and_gather_them_in_dataset_order(cfg, data_root, tmp_path):
    out_file = str(tmp_path / 'gathered.pth')
    multiprocessing.spawn(extract_in_process_group, args=(2, free_port(), str(data_root), out_file), nprocs=2)
    gathered = torch.load(out_file, weights_only=True)
    alone = extract_features(build_model(cfg), build_dataset(cfg, data_root), batch_size=16, progress=False)
    torch.testing.assert_close(gathered['features'], alone.features)
    assert torch.equal(gathered['labels'], alone.labels)


def train(config, work_dir, data_root):
    options = [f'{loader}.dataset.data_root={data_root}' for loader in LOADERS]
    command = [sys.executable, 'tools/train.py', config, '--work-dir', str(work_dir), '--cfg-options', *options,
               'train_cfg.max_epochs=2', 'train_cfg.val_interval=1']
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    val = [line for line in (result.stdout + result.stderr).splitlines() if 'Epoch(val) [2]' in line]
    checkpoint = torch.load(work_dir / 'epoch_2.pth', map_location='cpu')
    return dict(METRIC.findall(val[-1])), checkpoint['state_dict']


@pytest.mark.slow
def test_training_from_the_cache_matches_training_on_images(tmp_path, data_root):
    # The uncached run: the same classifier-only model, trained on images through the same deterministic
    # pipeline (the test pipeline), with the encoder run in every iteration.
    uncached_config = tmp_path / 'uncached.py'
    uncached_config.write_text(f"_base_ = ['{REPO / 'tests/configs/ablations/lift_demo_classifier-only.py'}']\n"
                               'train_dataloader = dict(dataset=dict(pipeline=_base_.test_pipeline))\n')
    metrics, weights = train(str(uncached_config), tmp_path / 'uncached', data_root)
    cached_metrics, cached_weights = train(CACHED, tmp_path / 'cached', data_root)
    assert cached_metrics == metrics
    assert weights.keys() == cached_weights.keys()
    torch.testing.assert_close(cached_weights['head.weight'], weights['head.weight'], rtol=1e-5, atol=1e-5)
    assert len(list((tmp_path / 'cached' / 'feature_cache').glob('*.pth'))) == 1


def test_a_failed_cache_save_keeps_the_previous_cache_and_leaves_no_partial_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'cache' / 'features.pth')
    old = CachedFeatureDataset(torch.ones(3, 4), torch.tensor([0, 1, 2]))
    old.save(path, 'key')

    def disk_full(obj, file, *args, **kwargs):
        file.write(b'PK\x03\x04 half a cache')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(OSError, match=rf"No space left on device while saving: '{re.escape(path)}'"):
        CachedFeatureDataset(torch.zeros(3, 4), torch.tensor([2, 1, 0])).save(path, 'key')
    monkeypatch.undo()
    loaded = CachedFeatureDataset.load(path, 'key')
    assert torch.equal(loaded.features, old.features) and torch.equal(loaded.labels, old.labels)
    assert partial_files(osp.dirname(path)) == []
