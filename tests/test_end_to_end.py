"""The demo through the user-facing tools: train, test, resume, load_from, 2-process DDP and the inferencer."""
import re
import sys

import numpy as np
import pytest

from demo_runs import REPO, free_port, run_tool, warning_lines

CONFIG = 'configs/lift/lift_demo.py'
METRIC = re.compile(r'long_tail/top1: ([\d.]+)\s+long_tail/top5: [\d.]+\s+long_tail/many: ([\d.]+)\s+'
                    r'long_tail/medium: ([\d.]+)\s+long_tail/few: ([\d.]+)')

pytestmark = pytest.mark.slow


def metrics(log):
    found = METRIC.findall(log)
    assert found, 'no long-tail metrics in the log'
    return tuple(float(v) for v in found[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('e2e')
    work_dir, data_root = root / 'work', root / 'data'
    log = run_tool([sys.executable, 'tools/train.py', CONFIG], work_dir, data_root,
                   ['train_cfg.max_epochs=2', 'train_cfg.val_interval=1', 'param_scheduler.end=2',
                    'param_scheduler.T_max=2'])
    return dict(root=root, work_dir=work_dir, data_root=data_root, log=log)


def test_training_reports_many_medium_few_and_writes_compact_checkpoints(trained):
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS

    import lift_mm  # noqa: F401
    from lift_mm.datasets import GROUP_NAMES, long_tail_groups

    top1, many, medium, few = metrics(trained['log'])
    # The groups split the validation images, each class in one, so top-1 is their image-weighted mean.
    cfg = Config.fromfile(str(REPO / CONFIG))
    val = DATASETS.build({**cfg.val_dataloader.dataset, 'data_root': str(trained['data_root'])})
    images = np.bincount(val.get_gt_labels(), minlength=len(val.metainfo['classes']))
    groups = long_tail_groups(val.metainfo.get('group_counts', val.metainfo['class_counts']))
    sizes = [images[groups[name]].sum() for name in GROUP_NAMES]
    assert min(sizes) > 0 and sum(sizes) == len(val)
    assert top1 == pytest.approx(np.dot([many, medium, few], sizes) / len(val), abs=1e-3)
    checkpoint = trained['work_dir'] / 'epoch_2.pth'
    assert checkpoint.is_file() and checkpoint.stat().st_size < 200_000


def test_training_prints_no_warnings(trained):
    """Nothing that lift_mm causes or that says nothing to its users: mmcv-lite's missing op, pinned memory without
    an accelerator, MMEngine's FileClient notices."""
    assert warning_lines(trained['log']) == []


def test_test_tool_reproduces_validation_from_checkpoint(trained):
    log = run_tool([sys.executable, 'tools/test.py', CONFIG, str(trained['work_dir'] / 'epoch_2.pth')],
                   trained['root'] / 'test', trained['data_root'])
    assert metrics(log) == metrics(trained['log'])


def test_resume_continues_from_the_saved_epoch(trained):
    log = run_tool([sys.executable, 'tools/train.py', CONFIG, '--resume', str(trained['work_dir'] / 'epoch_1.pth')],
                   trained['root'] / 'resume', trained['data_root'],
                   ['train_cfg.max_epochs=2', 'param_scheduler.end=2', 'param_scheduler.T_max=2'])
    assert 'resumed epoch: 1' in log
    assert (trained['root'] / 'resume' / 'epoch_2.pth').is_file()


def test_load_from_starts_training_from_checkpoint_weights(trained):
    log = run_tool([sys.executable, 'tools/train.py', CONFIG], trained['root'] / 'load_from', trained['data_root'],
                   [f"load_from={trained['work_dir'] / 'epoch_2.pth'}", 'train_cfg.max_epochs=1'])
    assert 'Load checkpoint from' in log and 'missing keys' not in log


def test_inferencer_classifies_an_image_file(trained):
    from mmengine.config import Config
    from mmpretrain import ImageClassificationInferencer

    import lift_mm  # noqa: F401

    cfg = Config.fromfile(str(REPO / CONFIG))
    cfg.merge_from_dict(dict(zip(('train_dataloader.dataset.data_root', 'val_dataloader.dataset.data_root',
                                  'test_dataloader.dataset.data_root'), [str(trained['data_root'])] * 3)))
    inferencer = ImageClassificationInferencer(cfg, pretrained=str(trained['work_dir'] / 'epoch_2.pth'))
    image = trained['data_root'] / 'test' / 'red_square' / '0000.png'
    result = inferencer(str(image))[0]
    assert result['pred_class'] in cfg.classnames
    assert 0 <= result['pred_label'] < 10


def test_two_process_cpu_training_with_dist_train(trained):
    work_dir = trained['root'] / 'ddp'
    log = run_tool(['bash', 'tools/dist_train.sh', CONFIG, '2'], work_dir, trained['data_root'],
                   ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'], env=dict(PORT=str(free_port())))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    metrics(log)
    assert (work_dir / 'epoch_1.pth').is_file()


def test_lift_plus_demo_trains_on_its_mda_schedule_with_persistent_workers(trained):
    """LIFT+'s demo through the tools, with the config's 2 persistent data-loader workers: the hook moves the crops'
    smallest area along the convex schedule, min_area = 0.08 + (1 - sqrt(1 - t^2)) (1 - 0.08) at t = epoch / (2 - 1),
    and the run ends with the long-tail metrics and a compact checkpoint."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(REPO / 'configs/lift_plus/lift-plus_demo.py'))
    assert cfg.train_dataloader.num_workers == 2 and cfg.train_dataloader.persistent_workers
    work_dir = trained['root'] / 'lift_plus'
    log = run_tool([sys.executable, 'tools/train.py', 'configs/lift_plus/lift-plus_demo.py'], work_dir,
                   trained['data_root'], ['train_cfg.max_epochs=2', 'train_cfg.val_interval=2', 'param_scheduler.end=2',
                                          'param_scheduler.T_max=2'])
    areas = [float(a) for a in re.findall(r'AugmentationScheduleHook: epoch \d/2, .* minimum crop area: ([\d.]+) '
                                          r'\(convex\)', log)]
    assert areas == pytest.approx([0.08 + (1 - np.sqrt(1 - t**2)) * 0.92 for t in (0.0, 1.0)], abs=1e-4)
    metrics(log)
    assert warning_lines(log) == []
    assert (work_dir / 'epoch_2.pth').stat().st_size < 200_000
