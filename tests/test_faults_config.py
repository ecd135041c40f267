"""Bad configs fail through tools/train.py when the runner is built or before the first iteration, with a message
naming the key, not after data loading or training started."""
import importlib.util
import sys

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from demo_runs import REPO

DEMO = REPO / 'configs/lift/lift_demo.py'


@pytest.fixture(scope='module')
def train_tool():
    spec = importlib.util.spec_from_file_location('lift_train_tool', REPO / 'tools/train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(tool, monkeypatch, tmp_path, data_root, *options):
    data = [f'{loader}.dataset.data_root={data_root}' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    # A runner per test: instances of the logger and visualizer are named after the experiment.
    monkeypatch.setattr(sys, 'argv', ['train.py', str(DEMO), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                                      f'experiment_name={tmp_path.name}', *data, *options])
    tool.main()


@pytest.mark.parametrize('options, error, match', [
    (['model.backbone.light_modules.0.type=NoSuchModule'], KeyError,
     r"Unknown light module type 'NoSuchModule' in `light_modules`; registered light modules: \[.*'AdaptFormer'"),
    (['model.backbone.light_modules.0.type=VPTDeep'], TypeError,
     r"VPTDeep in `light_modules` does not take \['bottleneck'\]; it takes \['type', 'blocks', 'length', 'init'\]\. "
     r".* "
     r'--cfg-options model\.backbone\.light_modules=\[VPTDeep\]'),
    (['model.backbone.light_modules.0.bottleneck=65'], ValueError,
     r"AdaptFormer: `bottleneck`=65 must be 'auto', 'auto_lift_plus' or an int in \[1, 64\] \(the width of the "
     r"model\)"),
    (['model.backbone.light_modules.0.blocks=[1,3]'], ValueError,
     r'AdaptFormer: `blocks`=\[1, 3\] must be a range \[start, end\) with 0 <= start < end <= 2'),
    (['model.backbone.light_modules.0.blocks=3'], ValueError,
     r'AdaptFormer: `blocks`=3 must be between 1 and 2'),
    (['model.head.num_classes=9', 'data_preprocessor.num_classes=9'], ValueError,
     r'`classnames` gives 10 class names but num_classes is 9'),
    (['model.backbone.pretrained=laion400m_e32'], ValueError,
     r"`model.backbone.pretrained`='laion400m_e32' is neither a file nor usable as a tag"),
    (['model.backbone.arch=ViT-B-16', 'model.backbone.pretrained=no_such_tag'], ValueError,
     r"`model.backbone.pretrained`='no_such_tag' is neither an existing file nor an open_clip tag of 'ViT-B-16'; "
     r"valid tags: \[.*'openai'"),
    (['model.backbone.pretrained=/no/such/dir/ViT-B-16.pt'], FileNotFoundError,
     r"`model.backbone.pretrained`='/no/such/dir/ViT-B-16.pt': no such checkpoint file"),
], ids=['light-module-name', 'switched-light-module-keeps-keys', 'bottleneck', 'block-range', 'last-blocks',
        'classnames-count', 'pretrained-tag', 'pretrained-tag-of-named-arch', 'pretrained-file'])
def test_bad_model_config_fails_when_the_model_is_built(options, error, match, train_tool, monkeypatch, tmp_path):
    data_root = tmp_path / 'data'
    with pytest.raises(error, match=match):
        train(train_tool, monkeypatch, tmp_path, data_root, *options)
    # The demo data is generated when the dataset is first built: it was not.
    assert not data_root.exists()


def test_a_light_module_is_switched_from_the_command_line(train_tool, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['train.py', str(DEMO), '--cfg-options',
                                      'model.backbone.light_modules=[VPTDeep,LoRA]'])
    cfg = train_tool.merge_args(Config.fromfile(str(DEMO)), train_tool.parse_args())
    assert cfg.model.backbone.light_modules == ['VPTDeep', 'LoRA']
    backbone = MODELS.build(cfg.model.backbone)
    assert [list(block.light_modules) for block in backbone.visual.transformer.resblocks] == [['VPTDeep', 'LoRA']] * 2


@pytest.mark.slow
def test_head_classes_differing_from_the_dataset_fail_before_the_first_iteration(train_tool, monkeypatch,
                                                                                 tmp_path):
    from lift_mm.datasets.synthetic_long_tail import synthetic_class_names
    names = ','.join(synthetic_class_names(11))
    with pytest.raises(AssertionError, match=r'The `num_classes` \(11\) in CosineClsHead of CLIPImageClassifier '
                       r'does not matches the length of class information in `metainfo` 10\) in SyntheticLongTail'):
        train(train_tool, monkeypatch, tmp_path, tmp_path / 'data', 'model.head.num_classes=11',
              f'model.head.classnames=[{names}]')
    assert not list((tmp_path / 'work').glob('*.pth'))
