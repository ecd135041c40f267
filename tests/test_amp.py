"""Mixed-precision training: AutocastOptimWrapper on the CPU, MMEngine's AmpOptimWrapper on CUDA."""
import copy
import importlib.util
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

import lift_mm  # noqa: F401
from lift_mm.engine import AutocastOptimWrapper, mixed_precision_optim_wrapper
from demo_runs import REPO

DEMO = 'configs/lift/lift_demo.py'
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def test_bfloat16_autocasts_on_cpu_and_does_not_scale_the_loss():
    torch.manual_seed(0)
    model, inputs = nn.Linear(8, 4), torch.randn(5, 8)
    reference = copy.deepcopy(model)
    wrapper = AutocastOptimWrapper(optimizer=sgd(model), device='cpu')
    with wrapper.optim_context(model):
        output = model(inputs)
    assert output.dtype == torch.bfloat16
    with torch.autocast('cpu', dtype=torch.bfloat16):
        reference(inputs).float().square().mean().backward()
    wrapper.backward(output.float().square().mean())
    torch.testing.assert_close(model.weight.grad, reference.weight.grad, rtol=0, atol=0)
    before = model.weight.detach().clone()
    wrapper.step()
    wrapper.zero_grad()
    assert not torch.equal(model.weight, before)


def test_state_dict_round_trip():
    model = nn.Linear(4, 2)
    wrapper = AutocastOptimWrapper(optimizer=sgd(model), device='cpu')
    with wrapper.optim_context(model):
        wrapper.update_params(model(torch.randn(3, 4)).float().sum())
    state = wrapper.state_dict()
    assert 'loss_scaler' in state
    restored = AutocastOptimWrapper(optimizer=sgd(model), device='cpu')
    restored.load_state_dict(state)
    assert restored.optimizer.state_dict()['param_groups'] == wrapper.optimizer.state_dict()['param_groups']


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(dtype='float16', device='cpu'), ValueError, 'float16 autocast needs a GPU'),
    (dict(dtype='float32'), ValueError, "must be 'bfloat16' or 'float16'"),
    (dict(dtype=torch.float64), ValueError, 'must be torch.bfloat16 or torch.float16'),
    (dict(dtype='float16', device='cuda', loss_scale='static'), TypeError, "must be 'dynamic', a float or a dict"),
])
def test_bad_settings_are_explained(kwargs, error, message):
    with pytest.raises(error, match=message):
        AutocastOptimWrapper(optimizer=sgd(nn.Linear(2, 2)), **kwargs)


def demo_model_and_batch(device):
    cfg = Config.fromfile(str(REPO / DEMO))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.data_preprocessor = copy.deepcopy(cfg.data_preprocessor)
    model = MODELS.build(model_cfg).to(device)
    model.head.loss_module.set_class_counts(range(1, 11))
    generator = torch.Generator().manual_seed(0)
    batch = dict(inputs=torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=generator),
                 data_samples=[DataSample().set_gt_label(label) for label in (0, 3, 3, 9)])
    return cfg, model.train(), batch


def check_mixed_precision_step(model, batch, wrapper, dtype):
    """One training step runs the linear layers in ``dtype`` and updates every trainable parameter."""
    dtypes = []
    model.head.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    before = {name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad}
    losses = model.train_step(batch, wrapper)
    assert dtypes == [dtype] and torch.isfinite(losses['loss'])
    for name, param in model.named_parameters():
        if param.requires_grad and name.endswith(('down_proj.weight', 'head.weight')):
            assert not torch.equal(param, before[name]), name


def test_demo_training_step_in_bfloat16_on_cpu():
    cfg, model, batch = demo_model_and_batch('cpu')
    wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='AutocastOptimWrapper', dtype='bfloat16'))
    check_mixed_precision_step(model, batch, wrapper, torch.bfloat16)


def load_train_tool():
    spec = importlib.util.spec_from_file_location('lift_train_tool', REPO / 'tools/train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('has_cuda, wrapper', [
    (True, dict(type='AmpOptimWrapper', loss_scale='dynamic')),
    (False, dict(type='AutocastOptimWrapper', dtype='bfloat16')),
])
def test_amp_switch_of_the_train_tool_picks_the_wrapper_of_the_device(monkeypatch, has_cuda, wrapper):
    tool = load_train_tool()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: has_cuda)
    monkeypatch.setattr(sys, 'argv', ['train.py', DEMO, '--amp'])
    cfg = tool.merge_args(Config.fromfile(REPO / DEMO), tool.parse_args())
    optimizer = Config.fromfile(REPO / DEMO).optim_wrapper.optimizer
    assert cfg.optim_wrapper.to_dict() == dict(wrapper, optimizer=optimizer.to_dict())


@pytest.mark.slow
def test_one_demo_epoch_with_amp_through_the_train_tool(tmp_path):
    data_root = tmp_path / 'data'
    options = [f'{loader}.dataset.data_root={data_root}' for loader in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    result = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO, '--amp', '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         *options, 'train_cfg.max_epochs=1'],
        cwd=REPO, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'Epoch(train) [1]' in log and (tmp_path / 'work' / 'epoch_1.pth').is_file()
    wrapper = "type='AmpOptimWrapper'" if torch.cuda.is_available() else "type='AutocastOptimWrapper'"
    assert wrapper in log


@cuda
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_mmengine_amp_optim_wrapper_trains_the_demo_on_cuda(dtype):
    cfg, model, batch = demo_model_and_batch('cuda')
    wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='AmpOptimWrapper',
                                              dtype=str(dtype).split('.')[-1]))
    check_mixed_precision_step(model, batch, wrapper, dtype)


@cuda
def test_float16_scales_the_loss_on_cuda():
    wrapper = AutocastOptimWrapper(optimizer=sgd(nn.Linear(2, 2).cuda()), dtype='float16', device='cuda')
    assert wrapper.loss_scaler.is_enabled() and wrapper.loss_scaler.get_scale() == 2.0**16


@pytest.mark.parametrize('device, dtype, expected', [
    ('cuda', None, dict(type='AmpOptimWrapper', loss_scale='dynamic')),
    ('cuda', 'bfloat16', dict(type='AmpOptimWrapper', dtype='bfloat16')),
    ('cpu', None, dict(type='AutocastOptimWrapper', dtype='bfloat16')),
    ('cpu', 'bfloat16', dict(type='AutocastOptimWrapper', dtype='bfloat16')),
])
def test_mixed_precision_optim_wrapper_keeps_the_optimizer_and_leaves_the_config(device, dtype, expected):
    original = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01), clip_grad=dict(max_norm=1.0))
    wrapper = mixed_precision_optim_wrapper(original, device, dtype)
    assert {key: wrapper[key] for key in expected} == expected
    assert wrapper['optimizer'] == original['optimizer'] and wrapper['clip_grad'] == original['clip_grad']
    assert original['type'] == 'OptimWrapper' and 'dtype' not in original


def test_mixed_precision_on_the_cpu_refuses_float16():
    with pytest.raises(ValueError, match=r"Mixed precision on 'cpu' autocasts to bfloat16 only, not float16"):
        mixed_precision_optim_wrapper(dict(type='OptimWrapper'), 'cpu', 'float16')
