"""tools/analysis/benchmark.py, and the training-step shortcuts whose speed and memory it measures."""
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401
from lift_mm.models.backbones.clip_vit import quick_gelu
from demo_runs import REPO
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch

TOOL = REPO / 'tools/analysis/benchmark.py'
DEMO_TTE = 'configs/lift/lift_demo_tte.py'
KINETO_LOG_LINE = re.compile(r'^(VERBOSE|INFO|WARNING|STAGE|ERROR|USDT):\d{4}-.*$', re.MULTILINE)


def load_tool(path=TOOL):
    spec = importlib.util.spec_from_file_location(f'{path.stem}_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


benchmark = load_tool()


def run_tool(*args):
    # No PYTHONPATH: the tool finds lift_mm from its own location, as tools/train.py does.
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    result = subprocess.run([sys.executable, str(TOOL), *args], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # The profiler that counts CPU allocations logs nothing: not its start and stop, nor (built for CUDA, on a
    # machine without a GPU) `gpuGetDeviceCount failed`.
    assert not KINETO_LOG_LINE.findall(result.stderr), result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def by_figure(lines):
    return {line['figure']: line for line in lines}


@pytest.mark.slow
def test_cli_prints_every_figure_as_a_json_line():
    lines = run_tool(DEMO_TTE, '--batch-size', '2', '--iters', '2', '--warmup', '1', '--tte')
    figures = by_figure(lines)
    assert [line['figure'] for line in lines] == ['setup', 'parameters', 'train_step', 'inference',
                                                  'inference_tte', 'done']
    model = MODELS.build(Config.fromfile(str(REPO / DEMO_TTE)).model)
    assert figures['parameters'] == dict(figure='parameters',
                                         trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                                         total=sum(p.numel() for p in model.parameters()))
    assert figures['setup']['input_size'] == [32, 32] and figures['setup']['batch_size'] == 2
    for name in ('train_step', 'inference', 'inference_tte'):
        figure = figures[name]
        assert len(figure['s_per_iter_all']) == 2
        # Both are printed to five significant digits.
        assert figure['images_per_s'] == pytest.approx(2 / figure['s_per_iter'], rel=1e-3)
        assert figure['peak_step_memory_mib'] > 0 and figure['peak_memory_mib'] > 0
    assert figures['inference_tte']['views'] == 5 and figures['inference_tte']['tte_model'] == 'AverageLogitsTTA'


@pytest.mark.slow
def test_variants_are_measured_in_one_run():
    lines = run_tool(DEMO_TTE, '--batch-size', '2', '--iters', '1', '--warmup', '0', '--only', 'train',
                     '--variant', 'model.backbone.with_cp=False', '--variant', 'model.backbone.with_cp=True')
    setups = {line['variant']: line['with_cp'] for line in lines if line['figure'] == 'setup'}
    assert setups == {'model.backbone.with_cp=False': False, 'model.backbone.with_cp=True': True}
    assert sorted(line['variant'] for line in lines if line['figure'] == 'train_step') == sorted(setups)
    assert not [line for line in lines if line['figure'].startswith('inference')]


@pytest.mark.slow
def test_feature_classifier_gets_a_cached_feature_figure():
    lines = run_tool('configs/lift/lift_demo_classifier-only_cached.py', '--batch-size', '2', '--iters',
                     '1', '--warmup', '0', '--only', 'train')
    figures = by_figure(lines)
    assert figures['train_step_cached_features']['feature_width'] == 64
    assert figures['parameters']['trainable'] == 640  # the head alone: 10 classes x 64


@pytest.mark.parametrize('argv, message', [
    (['--amp', 'fp16'], 'fp16 needs CUDA'),
    (['--iters', '0'], '--iters must be at least 1'),
])
def test_bad_arguments_are_explained(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args([DEMO_TTE, *argv])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('amp, device, expected', [
    ('none', 'cpu', dict(type='OptimWrapper')),
    ('bf16', 'cpu', dict(type='AutocastOptimWrapper', dtype='bfloat16')),
    ('bf16', 'cuda', dict(type='AmpOptimWrapper', dtype='bfloat16')),
    ('fp16', 'cuda', dict(type='AmpOptimWrapper', dtype='float16')),
])
def test_amp_picks_the_optim_wrapper_of_the_device(amp, device, expected):
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01))))
    wrapper = benchmark.optim_wrapper_cfg(cfg, amp, device)
    assert {key: wrapper[key] for key in expected} == expected and wrapper['optimizer']['lr'] == 0.01


def test_steps_take_turns_in_alternating_order():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in 'ab'}
    timings = benchmark.time_interleaved(steps, warmup=1, iters=3, device='cpu')
    assert calls == ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b']
    assert all(len(timing['s_per_iter_all']) == 3 for timing in timings.values())


def test_cpu_step_memory_is_the_peak_of_the_allocations():
    mib = 2**20

    def step():
        first = torch.empty(8 * mib, dtype=torch.uint8)
        second = torch.empty(4 * mib, dtype=torch.uint8)
        del first, second
        return torch.empty(2 * mib, dtype=torch.uint8)

    assert benchmark.cpu_peak_step_memory(step) == 12 * mib


def test_input_size_comes_from_the_clip_backbone_or_the_pipeline():
    cfg = Config.fromfile(str(REPO / DEMO_TTE))
    model = MODELS.build(cfg.model)
    assert benchmark.model_input_size(cfg, model, None) == (32, 32)
    assert benchmark.model_input_size(cfg, model, 48) == (48, 48)
    assert benchmark.model_input_size(cfg, torch.nn.Module(), None) == (32, 32)


def test_quick_gelu_values_and_gradient_are_open_clips():
    x = torch.randn(4, 33, dtype=torch.double, requires_grad=True)
    torch.testing.assert_close(quick_gelu(x), x * torch.sigmoid(1.702 * x), rtol=0, atol=0)
    assert torch.autograd.gradcheck(quick_gelu, (x, ))


def saved_bytes(function, x):
    """Bytes of the distinct storages that autograd keeps for the backward pass of ``function(x)``."""
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function(x)
    return sum(saved.values())


def test_quick_gelu_keeps_half_the_activations_of_its_formula():
    x = torch.randn(8, 64, requires_grad=True)
    assert saved_bytes(quick_gelu, x) == x.numel() * 4
    assert saved_bytes(lambda t: t * torch.sigmoid(1.702 * t), x) == 2 * x.numel() * 4


@pytest.fixture(scope='module')
def quick_gelu_clip(tmp_path_factory):
    return save_open_clip_checkpoint(make_tiny_clip(seed=3, quick_gelu=True),
                                     tmp_path_factory.mktemp('clip') / 'tiny_quick_gelu.pt')


def reference_forward(backbone, images):
    """The backbone's function written with open_clip's own block modules and AdaptFormer's formula."""
    visual = backbone.visual
    tokens = backbone.embed(images)
    for block in visual.transformer.resblocks:
        host, adapter = block.block, block.light_modules['AdaptFormer']
        stream = tokens + host.attention(q_x=host.ln_1(tokens))
        tokens = stream + adapter(stream, host.mlp(host.ln_2(stream)))
    return visual.ln_post(tokens[:, 0])


def test_training_step_shortcuts_keep_outputs_and_gradients(quick_gelu_clip):
    """The fused QuickGELU and the class-token-only last block change neither outputs nor gradients."""
    backbone = MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=quick_gelu_clip,
                                 quick_gelu=True, num_classes=10))
    torch.manual_seed(5)
    for param in backbone.parameters():
        if param.requires_grad:
            param.data.normal_(std=0.2)
    reference = copy.deepcopy(backbone)
    images = torch.randn(3, 3, 32, 32)
    output, expected = backbone(images)[0], reference_forward(reference, images)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)
    output.square().sum().backward()
    expected.square().sum().backward()
    for (name, param), (_, reference_param) in zip(backbone.named_parameters(), reference.named_parameters()):
        if param.requires_grad:
            torch.testing.assert_close(param.grad, reference_param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_annotation_benchmark_times_building_the_dataset_it_describes(capsys):
    tool = load_tool(REPO / 'tools/analysis/benchmark_annotations.py')
    assert tool.main(['--classes', '12', '--max-images', '40', '--imbalance', '8', '--repeats', '2']) == 0
    figures = json.loads(capsys.readouterr().out)
    sizes = lift_mm.datasets.exponential_class_sizes(40, 12, 8)
    assert (figures['images'], figures['classes']) == (sum(sizes), 12)
    assert len(figures['wall_s']) == len(figures['cpu_s']) == 2
    assert figures['median_wall_s'] == sum(figures['wall_s']) / 2
    with pytest.raises(SystemExit):
        tool.parse_args(['--repeats', '0'])
    assert 'must be at least 1' in capsys.readouterr().err
