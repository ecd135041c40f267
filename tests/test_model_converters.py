"""The converters of LIFT+'s checkpoints and of LIFT's ResNet and iNaturalist ones.

Each checkpoint is written here with the reference's key names and random tensors; its logits are computed by an
independent implementation of the reference's formulas and compared with lift_mm's model after conversion.
"""
import copy
import importlib.util
import json
import subprocess
import sys
from typing import Callable, Dict, List, NamedTuple, Tuple

import open_clip
import pytest
import timm
import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from demo_runs import REPO, one_thread
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, tiny_clip_arch, tiny_resnet_arch

CONVERTERS = REPO / 'tools/model_converters'
NUM_CLASSES = 5
SCALE = 25.
RANK = 4
PROMPTS = 3
AFT_RATIO = 0.05
AFT_SEED = 7


@pytest.fixture(autouse=True)
def single_thread():
    # Tiny models run faster on one thread than on cores other processes share.
    with one_thread():
        yield


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


class HostBlock(NamedTuple):
    """A ViT block's weights under LIFT+'s names (``norm1``, ``attn_in_proj``, ...: (weight, bias) pairs)."""
    weights: Dict[str, Tuple[torch.Tensor, torch.Tensor]]
    eps: float
    act: Callable
    num_heads: int


class HostViT(NamedTuple):
    """What LIFT+'s ViT forward needs of a pre-trained ViT: the embedded tokens, its blocks, its final norm."""
    embed: Callable
    blocks: List[HostBlock]
    norm: Callable


def clip_blocks(resblocks):
    """open_clip's blocks (of the image or the text tower) as LIFT+ names their weights."""
    return [HostBlock(dict(norm1=(b.ln_1.weight, b.ln_1.bias),
                           attn_in_proj=(b.attn.in_proj_weight, b.attn.in_proj_bias),
                           attn_out_proj=(b.attn.out_proj.weight, b.attn.out_proj.bias),
                           norm2=(b.ln_2.weight, b.ln_2.bias), mlp_in_proj=(b.mlp.c_fc.weight, b.mlp.c_fc.bias),
                           mlp_out_proj=(b.mlp.c_proj.weight, b.mlp.c_proj.bias)),
                      b.ln_1.eps, b.mlp.gelu, b.attn.num_heads) for b in resblocks]


def clip_host(visual):
    def embed(images):
        x = visual.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + visual.positional_embedding
        return visual.ln_pre(x)

    return HostViT(embed, clip_blocks(visual.transformer.resblocks), visual.ln_post)


def timm_host(vit):
    def embed(images):
        x = vit.patch_embed.proj(images).flatten(2).transpose(1, 2)
        return torch.cat([vit.cls_token.expand(x.shape[0], 1, -1), x], dim=1) + vit.pos_embed

    blocks = [HostBlock(dict(norm1=(b.norm1.weight, b.norm1.bias), attn_in_proj=(b.attn.qkv.weight, b.attn.qkv.bias),
                             attn_out_proj=(b.attn.proj.weight, b.attn.proj.bias), norm2=(b.norm2.weight, b.norm2.bias),
                             mlp_in_proj=(b.mlp.fc1.weight, b.mlp.fc1.bias),
                             mlp_out_proj=(b.mlp.fc2.weight, b.mlp.fc2.bias)),
                        b.norm1.eps, b.mlp.act, b.attn.num_heads) for b in vit.blocks]
    return HostViT(embed, blocks, vit.norm)


def lift_plus_logits(host, tuner, images):
    """LIFT+'s classifier logits from its formulas, with ``tuner`` keyed as LIFT+'s checkpoint is."""
    x = host.embed(images)
    batch, num_tokens, width = x.shape
    for index, block in enumerate(host.blocks):
        def get(name, default=None):
            return tuner.get(f'image_encoder.blocks.{index}.{name}', default)

        def tuned(name):
            # Full or bias tuning replaces the host's tensors, arbitrary fine-tuning the masked entries of them.
            host_weight, host_bias = block.weights[name]
            weight, bias = get(f'{name}_weight', host_weight), get(f'{name}_bias', host_bias)
            group, _, proj = name.partition('_')
            if get(f'{group}.aft.{proj}.masked_weight.mask') is not None:
                weight, bias = weight.clone(), bias.clone()
                for tensor, param in ((weight, 'weight'), (bias, 'bias')):
                    tensor[get(f'{group}.aft.{proj}.masked_{param}.mask')] = get(
                        f'{group}.aft.{proj}.masked_{param}.optimized_params')
            return weight, bias

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
        normed = F.layer_norm(x, (width, ), *tuned('norm1'), block.eps)
        q, k, v = F.linear(normed, *tuned('attn_in_proj')).chunk(3, dim=-1)
        if get('attn.lora.q.down') is not None:
            q = q + normed @ get('attn.lora.q.down') @ get('attn.lora.q.up') / RANK
            v = v + normed @ get('attn.lora.v.down') @ get('attn.lora.v.up') / RANK
        q, k, v = scale_shift('attn.ssf.in_proj', torch.cat([q, k, v], dim=-1)).chunk(3, dim=-1)
        heads = block.num_heads
        q, k, v = (t.reshape(batch, -1, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        weights = torch.softmax(q @ k.transpose(-1, -2) / (width // heads)**0.5, dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, -1, width)
        x = x + scale_shift('attn.ssf.out_proj', F.linear(attended, *tuned('attn_out_proj')))
        normed = F.layer_norm(x, (width, ), *tuned('norm2'), block.eps)
        hidden = scale_shift('mlp.ssf.in_proj', F.linear(normed, *tuned('mlp_in_proj')))
        branch = scale_shift('mlp.ssf.out_proj', F.linear(block.act(hidden), *tuned('mlp_out_proj')))
        if get('mlp.adapter.down.weight') is not None:
            branch = branch + bottleneck('mlp.adapter', branch)
        if get('adaptformer.scale') is not None:
            branch = branch + get('adaptformer.scale') * bottleneck('adaptformer', x)
        x = x + branch
    return cosine_logits(host.norm(x[:, 0]), tuner['classifier.weight'])


def lift_plus_tuner(host, methods, seed=0):
    """A LIFT+ tuner state dict of random tensors for ``methods`` ({LIFT+ option: its layers})."""
    generator = torch.Generator().manual_seed(seed)
    width = host.blocks[0].weights['norm1'][0].shape[0]

    def rand(*shape, mean=0.):
        return mean + 0.2 * torch.randn(shape, generator=generator)

    def bottleneck(prefix):
        return {f'{prefix}.norm.weight': rand(width, mean=1.), f'{prefix}.norm.bias': rand(width),
                f'{prefix}.down.weight': rand(RANK, width), f'{prefix}.down.bias': rand(RANK),
                f'{prefix}.up.weight': rand(width, RANK), f'{prefix}.up.bias': rand(width)}

    def lift_plus_mask(tensor):
        # The first int(n * ratio) of a permutation of the n entries, drawn by a generator seeded with aft_seed
        # for this tensor alone.
        chosen = torch.randperm(tensor.numel(), generator=torch.Generator().manual_seed(AFT_SEED))
        mask = torch.zeros(tensor.numel(), dtype=torch.bool)
        mask[chosen[:int(tensor.numel() * AFT_RATIO)]] = True
        return mask.view(tensor.shape)

    tuner = {}
    for method, layers in methods.items():
        for index in layers:
            weights = host.blocks[index].weights
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
            elif method.startswith('aft_'):
                groups = dict(aft_all=('attn', 'mlp'), aft_attn=('attn', ), aft_mlp=('mlp', ))[method]
                for name, tensors in weights.items():
                    group, _, proj = name.partition('_')
                    for param, tensor in zip(('weight', 'bias'), tensors):
                        if group in groups:
                            mask = lift_plus_mask(tensor)
                            entries[f'{group}.aft.{proj}.masked_{param}.mask'] = mask
                            entries[f'{group}.aft.{proj}.masked_{param}.optimized_params'] = (
                                tensor.detach()[mask] + rand(int(mask.sum())))
            elif method in ('fft', 'bitfit'):
                for name, tensors in weights.items():
                    for param, tensor in zip(('weight', 'bias'), tensors):
                        if method == 'fft' or param == 'bias':
                            entries[f'{name}_{param}'] = tensor.detach() + rand(*tensor.shape)
            tuner.update({f'image_encoder.blocks.{index}.{key}': value for key, value in entries.items()})
    tuner['classifier.weight'] = rand(NUM_CLASSES, width)
    return tuner


# A two-block timm ViT of LIFT+'s ImageNet-21k layout (no LayerScale), as wide as the tiny CLIP.
TIMM_VIT = dict(model_name='vit_tiny_patch16_224', img_size=32, patch_size=8, depth=2, embed_dim=64, num_heads=2)


@pytest.fixture(scope='module')
def vits(clip, tmp_path_factory):
    """By LIFT+ backbone, the pre-trained ViT as LIFT+'s forward sees it, the lift_mm backbone config and the
    model."""
    cfg = dict(TIMM_VIT)
    torch.manual_seed(4)
    vit = timm.create_model(cfg.pop('model_name'), **cfg).eval()
    vit_file = str(tmp_path_factory.mktemp('timm') / 'vit.pth')
    torch.save(vit.state_dict(), vit_file)
    return dict(clip=(clip_host(clip[0].visual), dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(),
                                                      pretrained=clip[1]), clip[0].visual),
                timm=(timm_host(vit), dict(type='TimmVisionTransformer', pretrained=vit_file, **TIMM_VIT), vit))


LIFT_PLUS_CASES = {
    'adaptformer': dict(adaptformer=(0, 1)),
    'adapter': dict(adapter=(0, 1)),
    'lora_last_block': dict(lora=(1, )),
    'ssf': dict(ssf=(0, 1)),
    'prompt_tuning': dict(pt=(0, 1)),
    'bitfit': dict(bitfit=(0, 1)),
    'full_last_block': dict(fft=(1, )),
    'composed': dict(lora=(0, 1), ssf=(0, 1), adapter=(0, 1), adaptformer=(0, 1)),
    'aft_all': dict(aft_all=(0, 1)),
    'aft_mlp_last_block': dict(aft_mlp=(1, )),
    'composed_with_prompts': dict(pt=(0, 1), lora=(0, 1), adaptformer=(0, 1)),
}
TIMM_CASES = ('composed_with_prompts', 'full_last_block')


@pytest.mark.parametrize('backbone,case', [('clip', case) for case in sorted(LIFT_PLUS_CASES)
                                           if case not in TIMM_CASES] + [('timm', case) for case in TIMM_CASES])
def test_lift_plus_checkpoints_give_the_reference_logits(scripts, vits, tmp_path, backbone, case):
    host, backbone_cfg, _ = vits[backbone]
    tuner = lift_plus_tuner(host, LIFT_PLUS_CASES[case])
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    # Names in an order other than sorted: category id i is the class lift_mm numbers i.
    names = ['Vulpes', 'Anas', 'Quercus', 'Bufo', 'Iris']
    categories = tmp_path / 'categories.json'
    categories.write_text(json.dumps([dict(id=i, name=name) for i, name in enumerate(names)]))
    with torch.no_grad():
        expected = lift_plus_logits(host, tuner, images)
        frozen = lift_plus_logits(host, {'classifier.weight': tuner['classifier.weight']}, images)
        state_dict, light_modules, _ = scripts['plus'].convert_lift_plus(dict(tuner=tuner), AFT_SEED, backbone)
        scripts['common'].reorder_classes(state_dict, str(categories))
        converted = MODELS.build(dict(
            type='ImageClassifier', backbone=dict(backbone_cfg, light_modules=light_modules, num_classes=NUM_CLASSES),
            head=dict(type='CosineClsHead', num_classes=NUM_CLASSES, in_channels=64, scale=SCALE))).eval()
        converted.load_state_dict(state_dict, strict=True)
        logits = converted(images, mode='tensor')
    assert not torch.allclose(expected, frozen, atol=1e-3), 'the random tuner must change the logits'
    # LIFT+'s row r is the r-th name in sorted order.
    rows = [sorted(names).index(name) for name in names]
    torch.testing.assert_close(logits, expected[:, rows], atol=2e-5, rtol=1e-4)


@pytest.fixture(scope='module')
def resnet_clip(tmp_path_factory):
    torch.manual_seed(6)
    model = open_clip.CLIP(**tiny_resnet_arch()).eval()
    return model, save_open_clip_checkpoint(model, tmp_path_factory.mktemp('rn') / 'rn.pt')


def lift_resnet_tuner(visual, lists, seed=0):
    """LIFT's ResNet tuner for ``lists``, holding random tensors, and the ResNet it describes.

    LIFT's lists hold, in module order, every parameter of the CLIP ResNet (``full_list``), every bias
    (``bias_list``) or every BatchNorm layer (``bn_list``); ``ssf_attn`` scales and shifts the pooled feature.
    """
    generator = torch.Generator().manual_seed(seed)
    tuned = copy.deepcopy(visual)
    tuner = {}
    named = list(tuned.named_parameters())
    with torch.no_grad():
        for list_name, params in (('full_list', named), ('bias_list', [p for p in named if p[0].endswith('bias')])):
            if list_name in lists:
                for index, (_, param) in enumerate(params):
                    param.add_(0.2 * torch.randn(param.shape, generator=generator))
                    tuner[f'{list_name}.{index}'] = param.detach().clone()
        if 'bn_list' in lists:
            norms = [module for module in tuned.modules() if isinstance(module, torch.nn.BatchNorm2d)]
            for index, norm in enumerate(norms):
                for tensor in (norm.weight, norm.bias, norm.running_mean):
                    tensor.add_(0.2 * torch.randn(tensor.shape, generator=generator))
                norm.running_var.uniform_(0.5, 1.5, generator=generator)
                tuner.update({f'bn_list.{index}.{key}': value.clone() for key, value in norm.state_dict().items()})
    if 'ssf_attn' in lists:
        width = visual.output_dim
        tuner['ssf_attn.scale'] = 1 + 0.2 * torch.randn(width, generator=generator)
        tuner['ssf_attn.shift'] = 0.2 * torch.randn(width, generator=generator)
    return tuner, tuned


@pytest.mark.parametrize('lists', [('full_list', ), ('bias_list', 'ssf_attn'), ('bn_list', )])
def test_lift_resnet_checkpoints_give_the_reference_logits(scripts, resnet_clip, lists):
    model, clip_file = resnet_clip
    tuner, tuned = lift_resnet_tuner(model.visual, lists)
    head = torch.randn(NUM_CLASSES, model.visual.output_dim, generator=torch.Generator().manual_seed(2))
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    state_dict, kinds = scripts['lift'].convert_lift_reference(dict(tuner=tuner, head=dict(weight=head)),
                                                               resnet_layers=(1, 1, 1, 1))
    converted = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPResNet', arch=tiny_resnet_arch(), pretrained=clip_file,
                      light_modules=[dict(type=kind) for kind in kinds]),
        head=dict(type='CosineClsHead', num_classes=NUM_CLASSES, in_channels=model.visual.output_dim,
                  scale=SCALE))).eval()
    converted.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        features = tuned(images)
        if 'ssf_attn' in lists:
            features = features * tuner['ssf_attn.scale'] + tuner['ssf_attn.shift']
        expected = cosine_logits(features, head)
        assert not torch.allclose(expected, cosine_logits(model.visual(images), head), atol=1e-3)
        torch.testing.assert_close(converted(images, mode='tensor'), expected, atol=2e-5, rtol=1e-4)


# A ResNet-50 layout of timm's with one bottleneck per stage and narrow channels (output width 4 * 32).
TIMM_RESNET = dict(model_name='resnet50', layers=(1, 1, 1, 1), channels=(4, 8, 16, 32), stem_width=8)


@pytest.fixture(scope='module')
def timm_resnet(tmp_path_factory):
    cfg = dict(TIMM_RESNET)
    torch.manual_seed(5)
    model = timm.create_model(cfg.pop('model_name'), **cfg).eval()
    path = str(tmp_path_factory.mktemp('timm_rn') / 'resnet.pth')
    torch.save(model.state_dict(), path)
    return model, path


def lift_plus_resnet_tuner(model, options, seed=0):
    """LIFT+'s ResNet tuner for ``options`` with random tensors, and the ResNet it describes.

    LIFT+ lists the bottlenecks of the four stages in a row; ``fft`` holds each one's parameters, ``bitfit`` its
    biases, ``bn`` its BatchNorm layers, under the name inside the bottleneck with dots as underscores; ``ssf``
    scales and shifts the pooled feature.
    """
    generator = torch.Generator().manual_seed(seed)
    tuned = copy.deepcopy(model)
    tuner = {}
    bottlenecks = [block for stage in (tuned.layer1, tuned.layer2, tuned.layer3, tuned.layer4) for block in stage]
    with torch.no_grad():
        for index, block in enumerate(bottlenecks):
            prefix = f'image_encoder.blocks.{index}_'
            for name, param in block.named_parameters():
                if 'fft' in options or ('bitfit' in options and name.endswith('bias')):
                    param.add_(0.2 * torch.randn(param.shape, generator=generator))
                    tuner[prefix + name.replace('.', '_')] = param.detach().clone()
            for name, norm in block.named_modules():
                if 'bn' in options and isinstance(norm, torch.nn.BatchNorm2d):
                    for tensor in (norm.weight, norm.bias, norm.running_mean):
                        tensor.add_(0.2 * torch.randn(tensor.shape, generator=generator))
                    norm.running_var.uniform_(0.5, 1.5, generator=generator)
                    tuner.update({f'{prefix}{name.replace(".", "_")}.{key}': value.clone()
                                  for key, value in norm.state_dict().items()})
    return tuner, tuned


@pytest.mark.parametrize('backbone,options', [('timm', ('fft', )), ('timm', ('bn', 'ssf')), ('clip', ('bitfit', ))])
def test_lift_plus_resnet_checkpoints_give_the_reference_logits(scripts, timm_resnet, resnet_clip, backbone, options):
    if backbone == 'timm':
        model, path = timm_resnet
        features = lambda net, images: net.forward_head(net.forward_features(images), pre_logits=True)  # noqa: E731
        backbone_cfg = dict(type='TimmResNet', pretrained=path, **TIMM_RESNET)
    else:
        model, path = resnet_clip[0].visual, resnet_clip[1]
        features = lambda net, images: net(images)  # noqa: E731
        backbone_cfg = dict(type='CLIPResNet', arch=tiny_resnet_arch(), pretrained=path)
    tuner, tuned = lift_plus_resnet_tuner(model, options)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feature = features(tuned, images)
    width = feature.shape[1]
    generator = torch.Generator().manual_seed(2)
    tuner['classifier.weight'] = torch.randn(NUM_CLASSES, width, generator=generator)
    if 'ssf' in options:
        tuner['image_encoder.ssf.scale'] = 1 + 0.2 * torch.randn(width, generator=generator)
        tuner['image_encoder.ssf.shift'] = 0.2 * torch.randn(width, generator=generator)
        feature = feature * tuner['image_encoder.ssf.scale'] + tuner['image_encoder.ssf.shift']
    expected = cosine_logits(feature, tuner['classifier.weight'])
    state_dict, light_modules, _ = scripts['plus'].convert_lift_plus(dict(tuner=tuner), backbone=backbone,
                                                                     resnet_layers=(1, 1, 1, 1))
    converted = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(backbone_cfg, light_modules=light_modules),
        head=dict(type='CosineClsHead', num_classes=NUM_CLASSES, in_channels=width, scale=SCALE))).eval()
    converted.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        assert not torch.allclose(expected, cosine_logits(features(model, images), tuner['classifier.weight']),
                                  atol=1e-3)
        torch.testing.assert_close(converted(images, mode='tensor'), expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize('options', [('bias_tuning', 'ln_tuning'), ('full_tuning_last_block', )])
def test_lift_timm_vit_checkpoints_give_the_reference_logits(scripts, vits, options):
    """LIFT's tuned host weights of an ImageNet-21k timm ViT: its biases (``bias_tuned``, in the blocks' module
    order), LayerNorms (``ln_tuned``) or blocks from a first one on (``block_tuned``)."""
    _, backbone_cfg, vit = vits['timm']
    tuned = copy.deepcopy(vit)
    generator = torch.Generator().manual_seed(0)
    tuner, kinds = {}, []
    with torch.no_grad():
        if 'bias_tuning' in options:
            biases = [param for name, param in tuned.blocks.named_parameters() if name.endswith('bias')]
            for index, param in enumerate(biases):
                param.add_(0.2 * torch.randn(param.shape, generator=generator))
                tuner[f'bias_tuned.{index}'] = param.clone()
            kinds.append(dict(type='BitFit'))
        if 'ln_tuning' in options:
            norms = [module for module in tuned.blocks.modules() if isinstance(module, torch.nn.LayerNorm)]
            for index, norm in enumerate(norms):
                norm.weight.add_(0.2 * torch.randn(norm.weight.shape, generator=generator))
                tuner[f'ln_tuned.{index}.weight'], tuner[f'ln_tuned.{index}.bias'] = norm.weight.clone(), norm.bias
            kinds.append(dict(type='LayerNormTuning'))
        if 'full_tuning_last_block' in options:
            for name, param in tuned.blocks[1].named_parameters():
                param.add_(0.2 * torch.randn(param.shape, generator=generator))
                tuner[f'block_tuned.0.{name}'] = param.clone()
            kinds.append(dict(type='FullFineTuning', blocks=1))
    head = torch.randn(NUM_CLASSES, 64, generator=generator)
    images = torch.randn(2, 3, 32, 32, generator=generator)
    state_dict, _ = scripts['lift'].convert_lift_reference(dict(tuner=tuner, head=dict(weight=head)),
                                                           first_tuned_block=1, backbone='timm')
    converted = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(backbone_cfg, light_modules=kinds),
        head=dict(type='CosineClsHead', num_classes=NUM_CLASSES, in_channels=64, scale=SCALE))).eval()
    converted.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        expected = cosine_logits(tuned.forward_head(tuned.forward_features(images), pre_logits=True), head)
        frozen = cosine_logits(vit.forward_head(vit.forward_features(images), pre_logits=True), head)
        assert not torch.allclose(expected, frozen, atol=1e-3)
        torch.testing.assert_close(converted(images, mode='tensor'), expected, atol=2e-5, rtol=1e-4)


# Class names of the text-side runs; the prompts fit the tiny CLIP's 16 tokens with 4 context vectors.
TEXT_CLASSES = ['cat', 'dog', 'oak tree', 'red fox', 'iris']
N_CTX = 4
# LIFT+'s text-side runs (no classifier) by the tuner keys they train.
LIFT_PLUS_TEXT_CASES = {
    'coop': ('text_encoder.ctx', ),
    'clip_adapter': ('image_adapter', 'text_adapter'),
    'projection_tuning': ('image_proj', 'text_proj'),
    'text_prompt_tuning': ('text_encoder.blocks.0.prompt', 'text_encoder.blocks.1.prompt'),
    'text_bitfit_last_block': ('text_encoder.blocks.1.bitfit', ),
}


def lift_plus_text_tuner(clip, keys, seed=0):
    """A LIFT+ tuner of a text-side run with random tensors for ``keys``."""
    generator = torch.Generator().manual_seed(seed)
    width, joint = clip.token_embedding.weight.shape[1], clip.text_projection.shape[1]

    def rand(*shape, mean=0.):
        return mean + 0.2 * torch.randn(shape, generator=generator)

    tuner = {}
    for key in keys:
        if key.endswith('_adapter'):
            tuner.update({f'{key}.norm.weight': rand(joint, mean=1.), f'{key}.norm.bias': rand(joint),
                          f'{key}.down.weight': rand(RANK, joint), f'{key}.down.bias': rand(RANK),
                          f'{key}.up.weight': rand(joint, RANK), f'{key}.up.bias': rand(joint)})
        elif key.endswith('bitfit'):
            block = clip_blocks(clip.transformer.resblocks)[int(key.split('.')[2])]
            prefix = key[:-len('bitfit')]
            tuner.update({f'{prefix}{name}_bias': bias.detach() + rand(*bias.shape)
                          for name, (_, bias) in block.weights.items()})
        elif key.endswith('_proj'):
            host = clip.visual.proj if key == 'image_proj' else clip.text_projection
            tuner[key] = host.detach() + rand(*host.shape)
        else:
            tuner[key] = rand(N_CTX if key.endswith('ctx') else PROMPTS, width)
    return tuner


def lift_plus_text_logits(clip, tuner, images):
    """LIFT+'s logits of a run without a classifier, from open_clip's own modules and LIFT+'s formulas."""
    model = copy.deepcopy(clip)
    with torch.no_grad():
        model.visual.proj.copy_(tuner.get('image_proj', model.visual.proj))
        model.text_projection.copy_(tuner.get('text_proj', model.text_projection))
        for index, block in enumerate(clip_blocks(model.transformer.resblocks)):
            for name, (_, bias) in block.weights.items():
                bias.copy_(tuner.get(f'text_encoder.blocks.{index}.{name}_bias', bias))
    ctx = tuner.get('text_encoder.ctx')
    # LIFT+'s CoOp template for coop_cls_pos='end': the context vectors replace the X's.
    template = 'a photo of a {}.' if ctx is None else 'X ' * len(ctx) + '{}.'
    ids = open_clip.tokenize([template.format(name) for name in TEXT_CLASSES], context_length=16)
    x = model.token_embedding(ids)
    if ctx is not None:
        x[:, 1:1 + len(ctx)] = ctx
    x = x + model.positional_embedding
    for index, block in enumerate(model.transformer.resblocks):
        prompt = tuner.get(f'text_encoder.blocks.{index}.prompt')
        if prompt is not None:
            # After the start token, in place of the previous block's prompts.
            x = torch.cat([x[:, :1], prompt.expand(len(x), -1, -1), x[:, -(ids.shape[1] - 1):]], dim=1)
        x = block(x, attn_mask=torch.full((x.shape[1], x.shape[1]), float('-inf')).triu(1))
    end = ids.argmax(dim=-1) + x.shape[1] - ids.shape[1]
    features = dict(image=model.encode_image(images),
                    text=model.ln_final(x[torch.arange(len(ids)), end]) @ model.text_projection)
    for side, value in features.items():
        if f'{side}_adapter.down.weight' in tuner:
            def get(name):
                return tuner[f'{side}_adapter.{name}']

            normed = F.layer_norm(value, value.shape[-1:], get('norm.weight'), get('norm.bias'))
            hidden = F.relu(F.linear(normed, get('down.weight'), get('down.bias')))
            features[side] = value + F.linear(hidden, get('up.weight'), get('up.bias'))
    image, text = (F.normalize(features[side], dim=-1) for side in ('image', 'text'))
    return model.logit_scale.exp() * image @ text.t()


@pytest.mark.parametrize('case', sorted(LIFT_PLUS_TEXT_CASES))
def test_lift_plus_text_side_checkpoints_give_the_reference_logits(scripts, clip, case):
    tuner = lift_plus_text_tuner(clip[0], LIFT_PLUS_TEXT_CASES[case])
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = lift_plus_text_logits(clip[0], tuner, images)
        frozen = lift_plus_text_logits(clip[0], {}, images)
        state_dict, light_modules, head = scripts['plus'].convert_lift_plus(dict(tuner=tuner))
        converted = MODELS.build(dict(
            type='CLIPImageClassifier',
            backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip[1],
                          out_projected=False, light_modules=light_modules),
            head=dict(head, num_classes=NUM_CLASSES, in_channels=64, classnames=TEXT_CLASSES))).eval()
        converted.load_state_dict(state_dict, strict=True)
        logits = converted(images, mode='tensor')
    assert not torch.allclose(expected, frozen, atol=1e-3), 'the random tuner must change the logits'
    torch.testing.assert_close(logits, expected, atol=2e-5, rtol=1e-4)


def test_lift_plus_text_side_converter_prints_the_head_options(scripts, clip, tmp_path, monkeypatch, capsys):
    tuner = lift_plus_text_tuner(clip[0], ('text_encoder.ctx', 'image_adapter', 'text_encoder.blocks.1.prompt'))
    src, dst = tmp_path / 'checkpoint.pth.tar', tmp_path / 'converted.pth'
    torch.save(dict(tuner=tuner), src)
    monkeypatch.setattr(sys, 'argv', ['lift_plus_to_mm.py', str(src), str(dst), '--coop-position', 'middle'])
    scripts['plus'].main()
    printed = capsys.readouterr().out
    assert ("head has {'type': 'TextEncoderClsHead', 'context': {'n_ctx': 4, 'position': 'middle'}, "
            "'text_light_modules': [{'type': 'PromptTuningDeep', 'length': 3, 'blocks': [1, 2]}], "
            "'clip_adapter': {'bottleneck': 4, 'image': True, 'text': False}}") in printed
    state_dict = torch.load(dst, weights_only=True)['state_dict']
    torch.testing.assert_close(state_dict['head.text_encoder.ctx'], tuner['text_encoder.ctx'])


def test_lift_resnet_lists_tell_rn50_from_rn101(scripts):
    # RN50 (3, 4, 6, 3 blocks) has 59 biases: 3 in the stem, 3 per block, 1 per downsampling, 4 in the pooling.
    head = dict(weight=torch.zeros(NUM_CLASSES, 1024))
    state_dict, kinds = scripts['lift'].convert_lift_reference(dict(
        tuner={f'bias_list.{i}': torch.full((1, ), float(i)) for i in range(59)}, head=head))
    assert kinds == ['BitFit']
    assert state_dict['backbone.visual.bn1.bias'].item() == 0
    assert state_dict['backbone.visual.layer1.0.downsample.1.bias'].item() == 6
    assert state_dict['backbone.visual.layer4.2.bn3.bias'].item() == 54
    assert state_dict['backbone.visual.attnpool.c_proj.bias'].item() == 58
    # RN101 (3, 4, 23, 3 blocks) has 106 BatchNorm layers: 3 in the stem, 10 in layer1, 13 in layer2, then layer3.
    state_dict, _ = scripts['lift'].convert_lift_reference(dict(
        tuner={f'bn_list.{i}.weight': torch.full((1, ), float(i)) for i in range(106)}, head=head))
    assert state_dict['backbone.visual.layer3.22.bn3.weight'].item() == 3 + 10 + 13 + 23 * 3 + 1 - 1


def test_lift_plus_converter_runs_without_lift_mm(clip, tmp_path):
    # As mmpretrain's converters: the script (and the module it shares) run where lift_mm cannot be imported.
    tuner = lift_plus_tuner(clip_host(clip[0].visual), dict(adaptformer=(0, 1)))
    src, dst, categories = tmp_path / 'checkpoint.pth.tar', tmp_path / 'converted.pth', tmp_path / 'categories.json'
    torch.save(dict(tuner=tuner), src)
    categories.write_text(json.dumps([dict(id=i, name=name) for i, name in enumerate('edcab')]))
    script = CONVERTERS / 'lift_plus_to_mm.py'
    code = ('import runpy, sys; sys.modules["lift_mm"] = None; '
            f'sys.argv = ["lift_plus_to_mm.py", {str(src)!r}, {str(dst)!r}, "--inat-categories", {str(categories)!r}]; '
            f'runpy.run_path({str(script)!r}, run_name="__main__")')
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "light_modules=[{'type': 'AdaptFormer', 'bottleneck': 4, 'blocks': [0, 2]}]" in result.stdout
    state_dict = torch.load(dst, weights_only=True)['state_dict']
    # Category i is named 'edcab'[i]; LIFT+'s row of name n is its rank in sorted order, 'abcde'.index(n).
    torch.testing.assert_close(state_dict['head.weight'], tuner['classifier.weight'][[4, 3, 2, 0, 1]])


def test_lift_inaturalist_checkpoints_need_and_take_the_categories(scripts, tmp_path, monkeypatch):
    # Category id i is named so that the sorted names run backwards: LIFT's row r is lift_mm's class 8141 - r.
    categories = write_categories(tmp_path / 'categories.json', [f'species {8141 - i:04d}' for i in range(8142)])
    head = torch.randn(8142, 4, generator=torch.Generator().manual_seed(0))
    src, dst = tmp_path / 'checkpoint.pth.tar', tmp_path / 'converted.pth'
    torch.save(dict(tuner={'vpt_list.0.prompt': torch.zeros(2, 4)}, head=dict(weight=head)), src)
    monkeypatch.setattr(sys, 'argv', ['lift_to_mm.py', str(src), str(dst)])
    with pytest.raises(SystemExit, match=r'checkpoint\.pth\.tar: the classifier has 8142 classes, as iNaturalist '
                       r'2018.*--inat-categories'):
        scripts['lift'].main()
    monkeypatch.setattr(sys, 'argv', ['lift_to_mm.py', str(src), str(dst), '--inat-categories', categories])
    scripts['lift'].main()
    torch.testing.assert_close(torch.load(dst, weights_only=True)['state_dict']['head.weight'], head.flip(0))


def write_categories(path, names):
    path.write_text(json.dumps([dict(id=i, name=name) for i, name in enumerate(names)]))
    return str(path)


def test_aft_masks_must_be_the_seeds(scripts, clip):
    tuner = lift_plus_tuner(clip_host(clip[0].visual), dict(aft_attn=(0, )))
    with pytest.raises(ValueError, match=rf"blocks\.0\.attn\.aft\.in_proj\.masked_weight\.mask is not LIFT\+'s mask "
                       rf"for aft_seed={AFT_SEED + 1}: pass the run's `aft_seed` with --aft-seed"):
        scripts['plus'].convert_lift_plus(dict(tuner=tuner), aft_seed=AFT_SEED + 1)


def lift_plus_checkpoint(*keys, classifier=True):
    tuner = {key: torch.zeros(2, 2) for key in keys}
    return dict(tuner={**tuner, 'classifier.weight': torch.zeros(2, 2)} if classifier else tuner)


CONVERSION_ERRORS = {
    'unknown block key': ('plus', lift_plus_checkpoint('image_encoder.blocks.0.mystery'), KeyError,
                          r"image_encoder\.blocks\.0\.mystery.*covers the classifier and the image encoder"),
    'text-side key': ('plus', lift_plus_checkpoint('text_encoder.blocks.0.prompt'), KeyError,
                      r"\['text_encoder'\] belong to text-side"),
    'not a LIFT+ checkpoint': ('plus', dict(head={}), KeyError,
                               r"Not a LIFT\+ checkpoint: it has \['head'\] but no 'tuner'"),
    'no classifier': ('plus', lift_plus_checkpoint('image_encoder.blocks.0.prompt', classifier=False), KeyError,
                      r"no 'classifier\.weight'"),
    'part of a block': ('plus', lift_plus_checkpoint('image_encoder.blocks.0.attn_in_proj_weight'), KeyError,
                        r"Block 0 trains \['attn_in_proj_weight'\] in place but not \['norm1_weight'"),
    'blocks with a gap': ('plus', lift_plus_checkpoint(*(f'image_encoder.blocks.{i}.prompt' for i in (0, 2))),
                          ValueError, r'VPTDeep is in blocks \[0, 2\], which are not consecutive'),
    'text-side logit scale': ('plus', lift_plus_checkpoint('text_encoder.ctx', 'logit_scale', classifier=False),
                              KeyError, r"\['logit_scale'\]\. This converter covers .* CoOp's context"),
    'text-side ResNet run': ('plus', lift_plus_checkpoint(*(f'image_encoder.blocks.{i}_bn1_bias' for i in range(16)),
                                                          'text_encoder.ctx', classifier=False),
                             KeyError, r"ResNet checkpoint has text-side tensors \['text_encoder\.ctx'\] but no "
                             'classifier'),
    'text-side timm backbone': ('plus', lift_plus_checkpoint('text_proj', classifier=False), ValueError,
                                r"backbone='timm' has none: convert it with backbone='clip'"),
    'ResNet of unknown depth': ('lift', dict(tuner={f'bias_list.{i}': torch.zeros(1) for i in range(7)}, head={}),
                                ValueError, r"\{'bias_list': 7\} entries, which fit none of .*'RN50'.*--resnet-layers"),
    'LIFT+ ResNet of unknown depth': ('plus', lift_plus_checkpoint(*(f'image_encoder.blocks.{i}_bn1_bias'
                                                                     for i in range(5))),
                                      ValueError, r'bottlenecks 0 to 4, which is not a ResNet of .*--resnet-layers'),
    'LIFT+ ResNet bias tuning in part': ('plus', lift_plus_checkpoint(*(f'image_encoder.blocks.{i}_bn1_bias'
                                                                        for i in range(16))), KeyError,
                                         r"16 tensors .* BitFit, which needs 52: \['layer1\.0\.bn2\.bias'"),
    'LIFT+ ResNet key of no bottleneck': ('plus', lift_plus_checkpoint(*(f'image_encoder.blocks.{i}_bn1_bias'
                                                                         for i in range(16)),
                                                                       'image_encoder.blocks.0_mystery_bias'),
                                          KeyError, r"\['layer1\.0\.mystery\.bias'\] are not in a bottleneck"),
    'ResNet list with a hole': ('lift', dict(tuner={f'bias_list.{i}': torch.zeros(1) for i in range(60) if i != 3},
                                             head={}), KeyError, r'entries of bias_list are not numbered 0 to 58'),
}


@pytest.mark.parametrize('case', sorted(CONVERSION_ERRORS))
def test_conversion_errors_name_the_key_and_the_fix(scripts, case):
    script, checkpoint, error, message = CONVERSION_ERRORS[case]
    convert = scripts['plus'].convert_lift_plus if script == 'plus' else scripts['lift'].convert_lift_reference
    with pytest.raises(error, match=message):
        convert(checkpoint, **(dict(backbone='timm') if 'timm' in case else {}))


def test_class_order_needs_a_fitting_categories_file(scripts, tmp_path):
    reorder = scripts['common'].reorder_classes
    with pytest.raises(ValueError, match=r'8142 classes, as iNaturalist 2018.*--inat-categories.*--keep-class-order'):
        reorder({'head.weight': torch.zeros(8142, 2)})
    kept = {'head.weight': torch.arange(8142.).view(-1, 1)}
    reorder(kept, keep_order=True)
    assert kept['head.weight'][-1].item() == 8141
    with pytest.raises(ValueError, match=r'cannot read the categories file .*missing\.json'):
        reorder({'head.weight': torch.zeros(3, 2)}, str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match=r'lists 2 categories but the classifier has 3 rows'):
        reorder({'head.weight': torch.zeros(3, 2)}, write_categories(tmp_path / 'two.json', 'ab'))
    with pytest.raises(ValueError, match=r"names \['a'\] are repeated"):
        reorder({'head.weight': torch.zeros(3, 2)}, write_categories(tmp_path / 'repeat.json', 'aab'))
    (tmp_path / 'bad.json').write_text(json.dumps([dict(id=0, name='a'), dict(id=0, name='b')]))
    with pytest.raises(ValueError, match=r'bad\.json, entry 1: expected .* "id" in \[0, 2\) used once'):
        reorder({'head.weight': torch.zeros(2, 2)}, str(tmp_path / 'bad.json'))


@pytest.mark.parametrize('kind,saves_statistics', [('BitFit', False), ('FullFineTuning', False),
                                                   ('BatchNormTuning', True)])
def test_resnet_checkpoints_hold_batchnorm_statistics_only_when_they_train(resnet_clip, kind, saves_statistics):
    # BitFit and full tuning train BatchNorm weights but run the layers in eval mode, with CLIP's statistics (as
    # LIFT and LIFT+ do), so converted checkpoints, which lack the statistics, load strictly.
    backbone = MODELS.build(dict(type='CLIPResNet', arch=tiny_resnet_arch(), pretrained=resnet_clip[1],
                                 light_modules=[kind]))
    state = backbone.state_dict()
    assert any(key.endswith('bn1.bias') for key in state)
    assert any(key.endswith('running_mean') for key in state) == saves_statistics
