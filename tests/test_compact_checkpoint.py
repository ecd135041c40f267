import importlib.util
import io
import subprocess
import sys
from copy import deepcopy

import pytest
import torch
from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401
from lift_mm.models.utils import fingerprint, make_state_dict_compact
from demo_runs import REPO
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch

CONVERTER = REPO / 'tools/model_converters/lift_to_mm.py'


def load_converter():
    spec = importlib.util.spec_from_file_location('lift_to_mm', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def clip_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('clip')
    return [save_open_clip_checkpoint(make_tiny_clip(seed=s), folder / f'tiny{s}.pt') for s in (8, 9)]


def build_classifier(pretrained, light_modules=(dict(type='AdaptFormer', bottleneck=4), ), **backbone):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=pretrained,
                      light_modules=list(light_modules), num_classes=3, **backbone),
        head=dict(type='CosineClsHead', num_classes=3, in_channels=64))).eval()


def perturb_trainable(model, seed=0):
    torch.manual_seed(seed)
    for param in model.parameters():
        if param.requires_grad:
            param.data.add_(torch.randn_like(param) * 0.1)


def test_state_dict_holds_trained_weights_and_fingerprint_only(clip_files):
    model = build_classifier(clip_files[0])
    state = model.state_dict()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(state) == trainable | {'backbone.foundation_fingerprint'}
    assert state['backbone.foundation_fingerprint'].dtype == torch.uint8


class Owner(torch.nn.Module):
    """A frozen foundation and a trained head: what make_state_dict_compact needs, without a backbone."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.foundation = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).requires_grad_(False)
        self.head = torch.nn.Linear(4, 2)
        make_state_dict_compact(self, 'foundation')


def test_make_state_dict_compact_on_any_module_and_its_copies():
    owner = Owner(seed=0)
    assert set(owner.state_dict()) == {'head.weight', 'head.bias', 'foundation_fingerprint'}
    assert torch.equal(owner.foundation_fingerprint, fingerprint(owner.foundation))
    # A deep copy checks its own tensors: writing to the copy's frozen weights fails the copy's save only.
    copy = deepcopy(owner)
    with torch.no_grad():
        copy.foundation[0].weight.add_(1)
    with pytest.raises(RuntimeError, match=r'changed after they were loaded \(1 tensors: 0.weight\)'):
        copy.state_dict()
    assert set(owner.state_dict()) == {'head.weight', 'head.bias', 'foundation_fingerprint'}
    other = Owner(seed=1)
    with pytest.raises(RuntimeError, match='trained on foundation weights'):
        other.load_state_dict(owner.state_dict())
    same = Owner(seed=0)
    with torch.no_grad():
        same.head.weight.zero_()
    same.load_state_dict(owner.state_dict(), strict=True)
    assert torch.equal(same.head.weight, owner.head.weight)


def test_compact_state_dict_round_trips_strictly(clip_files):
    model = build_classifier(clip_files[0])
    perturb_trainable(model)
    restored = build_classifier(clip_files[0])
    restored.load_state_dict(model.state_dict(), strict=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(restored(images, mode='tensor'), model(images, mode='tensor'))


def test_other_foundation_weights_are_refused_with_both_identities(clip_files):
    state = build_classifier(clip_files[0]).state_dict()
    saved_id = bytes(state['backbone.foundation_fingerprint'].tolist()).hex()[:16]
    other = build_classifier(clip_files[1])
    own_id = bytes(other.backbone.foundation_fingerprint.tolist()).hex()[:16]
    with pytest.raises(RuntimeError, match=f'trained on foundation weights {saved_id}.*built with foundation '
                       f'weights {own_id}'):
        other.load_state_dict(state)
    overridden = build_classifier(clip_files[1], check_fingerprint=False)
    overridden.load_state_dict(state, strict=True)


def test_host_weights_tuned_in_place_are_saved(clip_files):
    model = build_classifier(clip_files[0], light_modules=[dict(type='BitFit')])
    keys = set(model.state_dict())
    assert 'backbone.visual.transformer.resblocks.0.block.attn.in_proj_bias' in keys
    assert 'backbone.visual.transformer.resblocks.0.block.attn.in_proj_weight' not in keys


def test_full_state_dict_option_keeps_everything(clip_files):
    model = build_classifier(clip_files[0], compact_state_dict=False)
    assert 'backbone.visual.conv1.weight' in model.state_dict()


@pytest.mark.slow
def test_vit_b16_adaptformer_checkpoint_is_about_11_mb():
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch='ViT-B-16', pretrained=None, num_classes=1000),
        head=dict(type='CosineClsHead', num_classes=1000, in_channels=768)))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    model(torch.randn(1, 3, 224, 224), mode='tensor').sum().backward()
    optimizer.step()
    buffer = io.BytesIO()
    torch.save(dict(state_dict=model.state_dict(), optimizer=optimizer.state_dict()), buffer)
    # 617,868 adapter + 768,000 head weights, each with a momentum buffer, in fp32.
    expected = 2 * (617_868 + 768_000) * 4
    assert expected <= buffer.tell() < expected + 200_000


# Reference-code names (LIFT's ViT_Tuner) for block i, next to lift_mm's, written out for each kind.
REFERENCE_NAMES = {
    'AdaptFormer': {f'adaptformer_list.{{i}}.{p}': f'AdaptFormer.bottleneck.{p}' for p in (
        'ln.weight', 'ln.bias', 'down_proj.weight', 'down_proj.bias', 'up_proj.weight', 'up_proj.bias')}
    | {'adaptformer_list.{i}.scale': 'AdaptFormer.scale'},
    'Adapter': {f'adapter_list.{{i}}.{p}': f'Adapter.bottleneck.{p}' for p in (
        'ln.weight', 'ln.bias', 'down_proj.weight', 'down_proj.bias', 'up_proj.weight', 'up_proj.bias')},
    'LoRA': {f'lora_list.{{i}}.{qv}.{ab}': f'LoRA.{qv}.{ab}' for qv in 'qv' for ab in ('lora_A', 'lora_B')},
    'LoRAMLP': {f'lora_mlp_list.{{i}}.{n}.{ab}': f'LoRAMLP.fc{n}.{ab}' for n in '12' for ab in ('lora_A', 'lora_B')},
    'SSFAttn': {'ssf_attn_list.{i}.attn_in.scale': 'SSFAttn.ssf.qkv.scale',
                'ssf_attn_list.{i}.attn_in.shift': 'SSFAttn.ssf.qkv.shift',
                'ssf_attn_list.{i}.attn_out.scale': 'SSFAttn.ssf.attn_out.scale',
                'ssf_attn_list.{i}.attn_out.shift': 'SSFAttn.ssf.attn_out.shift'},
    'SSFMLP': {f'ssf_mlp_list.{{i}}.{s}.{p}': f'SSFMLP.ssf.{s}.{p}' for s in ('mlp_in', 'mlp_out')
               for p in ('scale', 'shift')},
    'SSFLayerNorm': {f'ssf_ln_list.{{i}}.{s}.{p}': f'SSFLayerNorm.ssf.{s}.{p}' for s in ('ln_1', 'ln_2')
                     for p in ('scale', 'shift')},
    'SparseTuning': {f'masked_linear_list.{{i}}.{ref}.optimized_{p}': f'SparseTuning.updates.{ours}.optimized_{p}'
                     for ref, ours in (('attn_in', 'qkv'), ('attn_out', 'attn_out'), ('mlp_in', 'mlp_in'),
                                       ('mlp_out', 'mlp_out')) for p in ('weight', 'bias')},
    'VPTDeep': {'vpt_list.{i}.prompt': 'VPTDeep.prompt'},
}


def reference_checkpoint(model, kind):
    prefix = 'backbone.visual.transformer.resblocks'
    state = model.state_dict()
    tuner = {}
    for i in range(2):
        for ref, ours in REFERENCE_NAMES[kind].items():
            tuner[ref.format(i=i)] = state[f'{prefix}.{i}.light_modules.{ours}']
    return dict(tuner=tuner, head=dict(weight=state['head.weight']))


@pytest.mark.parametrize('kind', sorted(REFERENCE_NAMES))
def test_converter_maps_reference_checkpoints(clip_files, tmp_path, kind):
    light_modules = [dict(type=kind, bottleneck=4) if kind in ('AdaptFormer', 'Adapter', 'LoRA', 'LoRAMLP')
                     else dict(type=kind, ratio=0.1) if kind == 'SparseTuning' else dict(type=kind)]
    trained = build_classifier(clip_files[0], light_modules)
    perturb_trainable(trained)
    src, dst = tmp_path / 'checkpoint.pth.tar', tmp_path / 'converted.pth'
    torch.save(reference_checkpoint(trained, kind), src)
    result = subprocess.run([sys.executable, 'tools/model_converters/lift_to_mm.py', str(src), str(dst)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"'type': '{kind}'" in result.stdout
    restored = build_classifier(clip_files[0], light_modules)
    restored.load_state_dict(torch.load(dst, weights_only=True)['state_dict'], strict=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(restored(images, mode='tensor'), trained(images, mode='tensor'))


def test_converter_maps_host_tuning_in_reference_order():
    convert_lift_reference = load_converter().convert_lift_reference
    biases = {f'bias_tuned.{k}': torch.full((1, ), float(k)) for k in range(12)}
    norms = {f'ln_tuned.{k}.weight': torch.zeros(1) for k in range(4)}
    state, kinds = convert_lift_reference(dict(tuner={**biases, **norms}, head={'weight': torch.zeros(3, 4)}))
    prefix = 'backbone.visual.transformer.resblocks'
    assert state[f'{prefix}.0.block.attn.in_proj_bias'].item() == 0
    assert state[f'{prefix}.0.block.ln_1.bias'].item() == 2
    assert state[f'{prefix}.1.block.mlp.c_proj.bias'].item() == 10
    assert f'{prefix}.1.block.ln_2.weight' in state
    assert kinds == ['BitFit', 'LayerNormTuning']


def test_converter_is_self_contained(tmp_path):
    # As mmpretrain's converters: the script runs where lift_mm cannot be imported at all.
    src, dst = tmp_path / 'checkpoint.pth.tar', tmp_path / 'converted.pth'
    torch.save(dict(tuner={'bias_tuned.0': torch.ones(1)}, head={'weight': torch.zeros(3, 4)}), src)
    code = ('import runpy, sys; sys.modules["lift_mm"] = None; '
            f'sys.argv = ["lift_to_mm.py", {str(src)!r}, {str(dst)!r}]; '
            f'runpy.run_path({str(CONVERTER)!r}, run_name="__main__")')
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    state = torch.load(dst, weights_only=True)['state_dict']
    assert list(state) == ['backbone.visual.transformer.resblocks.0.block.attn.in_proj_bias', 'head.weight']


def test_converter_rejects_unknown_keys_by_name(tmp_path):
    src = tmp_path / 'checkpoint.pth.tar'
    torch.save(dict(tuner={'mystery_list.0.weight': torch.zeros(1)}, head={}), src)
    result = subprocess.run([sys.executable, 'tools/model_converters/lift_to_mm.py', str(src),
                             str(tmp_path / 'out.pth')], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and 'mystery_list.0.weight' in result.stderr
    torch.save(dict(state_dict={}), src)
    result = subprocess.run([sys.executable, 'tools/model_converters/lift_to_mm.py', str(src),
                             str(tmp_path / 'out.pth')], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "lacks ['head', 'tuner']" in result.stderr
