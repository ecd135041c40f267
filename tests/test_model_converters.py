"""The converters of LIFT+'s checkpoints and of LIFT's ResNet and iNaturalist ones.

Each checkpoint is written here with the reference's key names and random tensors; its logits are computed by an
independent implementation of the reference's formulas and compared with lift_mm's model after conversion.
"""
import copy
import importlib.util
import json
import subprocess
import sys

import open_clip
import pytest
import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from demo_runs import REPO
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch, tiny_resnet_arch

CONVERTERS = REPO / 'tools/model_converters'
NUM_CLASSES = 5
SCALE = 25.
RANK = 4
PROMPTS = 3


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, CONVERTERS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def scripts():
    return dict(plus=load_script('lift_plus_to_mm'), lift=load_script('lift_to_mm'),
                common=load_script('lift_checkpoints'))


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    model = make_tiny_clip(seed=3)
    return model, save_open_clip_checkpoint(model, tmp_path_factory.mktemp('clip') / 'tiny.pt')


def cosine_logits(features, weight):
    return SCALE * F.normalize(features, dim=-1) @ F.normalize(weight, dim=-1).t()


def lift_plus_logits(visual, tuner, images):
    """LIFT+'s classifier logits from its formulas, with ``tuner`` keyed as LIFT+'s checkpoint is."""
    width = visual.conv1.out_channels
    batch = images.shape[0]
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(batch, 1, -1), x], dim=1) + visual.positional_embedding
    x = visual.ln_pre(x)
    num_tokens = x.shape[1]
    for index, block in enumerate(visual.transformer.resblocks):
        def get(name, default=None):
            return tuner.get(f'image_encoder.blocks.{index}.{name}', default)

        def bottleneck(prefix, value):
            normed = F.layer_norm(value, (width, ), get(f'{prefix}.norm.weight'), get(f'{prefix}.norm.bias'))
            hidden = F.relu(F.linear(normed, get(f'{prefix}.down.weight'), get(f'{prefix}.down.bias')))
            return F.linear(hidden, get(f'{prefix}.up.weight'), get(f'{prefix}.up.bias'))

        def scale_shift(prefix, value):
            if get(f'{prefix}.scale') is None:
                return value
            return value * get(f'{prefix}.scale') + get(f'{prefix}.shift')

        if get('prompt') is not None:
            # Prompts go after the class token and replace the previous block's.
            x = torch.cat([x[:, :1], get('prompt').expand(batch, -1, -1), x[:, -(num_tokens - 1):]], dim=1)
        normed = F.layer_norm(x, (width, ), get('norm1_weight', block.ln_1.weight), get('norm1_bias', block.ln_1.bias),
                              block.ln_1.eps)
        qkv = F.linear(normed, get('attn_in_proj_weight', block.attn.in_proj_weight),
                       get('attn_in_proj_bias', block.attn.in_proj_bias))
        q, k, v = qkv.chunk(3, dim=-1)
        if get('attn.lora.q.down') is not None:
            q = q + normed @ get('attn.lora.q.down') @ get('attn.lora.q.up') / RANK
            v = v + normed @ get('attn.lora.v.down') @ get('attn.lora.v.up') / RANK
        q, k, v = scale_shift('attn.ssf.in_proj', torch.cat([q, k, v], dim=-1)).chunk(3, dim=-1)
        heads = block.attn.num_heads
        q, k, v = (t.reshape(batch, -1, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        weights = torch.softmax(q @ k.transpose(-1, -2) / (width // heads)**0.5, dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, -1, width)
        out = F.linear(attended, get('attn_out_proj_weight', block.attn.out_proj.weight),
                       get('attn_out_proj_bias', block.attn.out_proj.bias))
        x = x + scale_shift('attn.ssf.out_proj', out)
        normed = F.layer_norm(x, (width, ), get('norm2_weight', block.ln_2.weight), get('norm2_bias', block.ln_2.bias),
                              block.ln_2.eps)
        hidden = scale_shift('mlp.ssf.in_proj', F.linear(normed, get('mlp_in_proj_weight', block.mlp.c_fc.weight),
                                                          get('mlp_in_proj_bias', block.mlp.c_fc.bias)))
        branch = F.linear(block.mlp.gelu(hidden), get('mlp_out_proj_weight', block.mlp.c_proj.weight),
                          get('mlp_out_proj_bias', block.mlp.c_proj.bias))
        branch = scale_shift('mlp.ssf.out_proj', branch)
        if get('mlp.adapter.down.weight') is not None:
            branch = branch + bottleneck('mlp.adapter', branch)
        if get('adaptformer.scale') is not None:
            branch = branch + get('adaptformer.scale') * bottleneck('adaptformer', x)
        x = x + branch
    return cosine_logits(visual.ln_post(x[:, 0]), tuner['classifier.weight'])


def lift_plus_tuner(visual, methods, seed=0):
    """A LIFT+ tuner state dict of random tensors for ``methods`` ({LIFT+ option: its layers})."""
    generator = torch.Generator().manual_seed(seed)
    width = visual.conv1.out_channels

    def rand(*shape, mean=0.):
        return mean + 0.2 * torch.randn(shape, generator=generator)

    def bottleneck(prefix):
        return {f'{prefix}.norm.weight': rand(width, mean=1.), f'{prefix}.norm.bias': rand(width),
                f'{prefix}.down.weight': rand(RANK, width), f'{prefix}.down.bias': rand(RANK),
                f'{prefix}.up.weight': rand(width, RANK), f'{prefix}.up.bias': rand(width)}

    tuner = {}
    for method, layers in methods.items():
        for index in layers:
            block = visual.transformer.resblocks[index]
            host = dict(norm1=block.ln_1, attn_in_proj=None, attn_out_proj=block.attn.out_proj, norm2=block.ln_2,
                        mlp_in_proj=block.mlp.c_fc, mlp_out_proj=block.mlp.c_proj)
            entries = {}
            if method == 'adaptformer':
                entries = {**bottleneck('adaptformer'), 'adaptformer.scale': rand(mean=1.)}
            elif method == 'adapter':
                entries = bottleneck('mlp.adapter')
            elif method == 'lora':
                entries = {f'attn.lora.{p}.{n}': rand(*shape) for p in 'qv'
                           for n, shape in (('down', (width, RANK)), ('up', (RANK, width)))}
            elif method == 'ssf':
                entries = {f'{m}.ssf.{site}.{p}': rand(dim, mean=float(p == 'scale'))
                           for m, site, dim in (('attn', 'in_proj', 3 * width), ('attn', 'out_proj', width),
                                                ('mlp', 'in_proj', 4 * width), ('mlp', 'out_proj', width))
                           for p in ('scale', 'shift')}
            elif method == 'pt':
                entries = {'prompt': rand(PROMPTS, width)}
            elif method in ('fft', 'bitfit'):
                for name, module in host.items():
                    for param in ('weight', 'bias') if method == 'fft' else ('bias', ):
                        value = getattr(block.attn, f'in_proj_{param}') if module is None else getattr(module, param)
                        entries[f'{name}_{param}'] = value.detach() + rand(*value.shape)
            tuner.update({f'image_encoder.blocks.{index}.{key}': value for key, value in entries.items()})
    tuner['classifier.weight'] = rand(NUM_CLASSES, width)
    return tuner


def build_vit_classifier(clip_file, light_modules):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file,
                      light_modules=light_modules, num_classes=NUM_CLASSES),
        head=dict(type='CosineClsHead', num_classes=NUM_CLASSES, in_channels=64, scale=SCALE))).eval()


LIFT_PLUS_CASES = {
    'adaptformer': dict(adaptformer=(0, 1)),
    'adapter': dict(adapter=(0, 1)),
    'lora_last_block': dict(lora=(1, )),
    'ssf': dict(ssf=(0, 1)),
    'prompt_tuning': dict(pt=(0, 1)),
    'bitfit': dict(bitfit=(0, 1)),
    'full_last_block': dict(fft=(1, )),
    'composed': dict(lora=(0, 1), ssf=(0, 1), adapter=(0, 1), adaptformer=(0, 1)),
}


@pytest.mark.parametrize('case', sorted(LIFT_PLUS_CASES))
def test_lift_plus_checkpoints_give_the_reference_logits(scripts, clip, tmp_path, case):
    model, clip_file = clip
    visual = model.visual
    tuner = lift_plus_tuner(visual, LIFT_PLUS_CASES[case])
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    # Names in an order other than sorted: category id i is the class lift_mm numbers i.
    names = ['Vulpes', 'Anas', 'Quercus', 'Bufo', 'Iris']
    categories = tmp_path / 'categories.json'
    categories.write_text(json.dumps([dict(id=i, name=name) for i, name in enumerate(names)]))
    with torch.no_grad():
        expected = lift_plus_logits(visual, tuner, images)
        frozen = lift_plus_logits(visual, {'classifier.weight': tuner['classifier.weight']}, images)
        state_dict, light_modules = scripts['plus'].convert_lift_plus(dict(tuner=tuner))
        scripts['common'].reorder_classes(state_dict, str(categories))
        converted = build_vit_classifier(clip_file, light_modules)
        converted.load_state_dict(state_dict, strict=True)
        logits = converted(images, mode='tensor')
    assert not torch.allclose(expected, frozen, atol=1e-3), 'the random tuner must change the logits'
    # LIFT+'s row r is the r-th name in sorted order.
    rows = [sorted(names).index(name) for name in names]
    torch.testing.assert_close(logits, expected[:, rows], atol=2e-5, rtol=1e-4)
