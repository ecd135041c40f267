"""Each light module against its formula, written out here with plain tensor algebra."""
import copy
import math
import re

import pytest
import torch
from mmengine.logging import MMLogger
from mmpretrain.registry import MODELS
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.models.peft.base import LightModule, check_light_module_keys
from tiny_clip import tiny_clip_arch

WIDTH, HEADS, TOKENS = 64, 2, 17


def build(clip_file, light_modules, num_classes=10):
    backbone = MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file,
                                 light_modules=light_modules, num_classes=num_classes)).eval()
    torch.manual_seed(11)
    for block in backbone.visual.transformer.resblocks:
        for param in block.light_modules.parameters():
            param.data.normal_(std=0.3)
    return backbone


def layer_norm(x, ln):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def reference_block(host, x, ln_1=None, qkv=None, attn_out=None, ln_2=None, mlp_in=None, mlp_out=None,
                    branch=None, weights=None):
    """A pre-norm CLIP block with explicit softmax attention; keyword functions modify one site each."""
    identity = lambda inp, out: out  # noqa: E731
    ln_1, qkv, attn_out, ln_2, mlp_in, mlp_out, branch = (f or identity for f in (
        ln_1, qkv, attn_out, ln_2, mlp_in, mlp_out, branch))
    w = dict(qkv=(host.attn.in_proj_weight, host.attn.in_proj_bias),
             attn_out=(host.attn.out_proj.weight, host.attn.out_proj.bias),
             mlp_in=(host.mlp.c_fc.weight, host.mlp.c_fc.bias), mlp_out=(host.mlp.c_proj.weight, host.mlp.c_proj.bias))
    w.update(weights or {})
    batch, tokens, width = x.shape
    head_dim = width // HEADS
    h = ln_1(x, layer_norm(x, host.ln_1))
    projected = qkv(h, h @ w['qkv'][0].T + w['qkv'][1])
    q, k, v = (t.reshape(batch, tokens, HEADS, head_dim).transpose(1, 2) for t in projected.chunk(3, dim=-1))
    weights_ = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
    attended = (weights_ @ v).transpose(1, 2).reshape(batch, tokens, width)
    x = x + attn_out(attended, attended @ w['attn_out'][0].T + w['attn_out'][1])
    h = ln_2(x, layer_norm(x, host.ln_2))
    hidden = mlp_in(h, h @ w['mlp_in'][0].T + w['mlp_in'][1])
    activated = F.gelu(hidden)
    out = mlp_out(activated, activated @ w['mlp_out'][0].T + w['mlp_out'][1])
    return x + branch(x, out)


def first_block(backbone):
    block = backbone.visual.transformer.resblocks[0]
    return block, block.block, block.light_modules


def check(block, expected_fn):
    x = torch.randn(2, TOKENS, WIDTH)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected_fn(x), rtol=1e-4, atol=1e-5)


def bottleneck(module, x):
    return F.relu(layer_norm(x, module.ln) @ module.down_proj.weight.T + module.down_proj.bias) \
        @ module.up_proj.weight.T + module.up_proj.bias


def low_rank(module, x):
    return x @ module.lora_A @ module.lora_B / module.lora_A.shape[1]


def scale_shift(module, x):
    return x * module.scale + module.shift


def test_plain_block_equals_reference(clip_file):
    block, host, _ = first_block(build(clip_file, []))
    check(block, lambda x: reference_block(host, x))


def test_adaptformer(clip_file):
    block, host, light = first_block(build(clip_file, [dict(type='AdaptFormer', bottleneck=8)]))
    m = light['AdaptFormer']
    check(block, lambda x: reference_block(
        host, x, branch=lambda stream, out: out + m.scale * bottleneck(m.bottleneck, stream)))


def test_adapter(clip_file):
    block, host, light = first_block(build(clip_file, [dict(type='Adapter', bottleneck=8)]))
    m = light['Adapter']
    check(block, lambda x: reference_block(host, x, branch=lambda stream, out: out + bottleneck(m.bottleneck, out)))


def test_lora_on_query_and_value(clip_file):
    block, host, light = first_block(build(clip_file, [dict(type='LoRA', bottleneck=4)]))
    m = light['LoRA']

    def qkv(h, out):
        zeros = torch.zeros_like(low_rank(m.q, h))
        return out + torch.cat([low_rank(m.q, h), zeros, low_rank(m.v, h)], dim=-1)

    check(block, lambda x: reference_block(host, x, qkv=qkv))
    assert m.q.lora_A.shape == (WIDTH, 4) and m.q.lora_B.shape == (4, WIDTH)


def test_lora_on_mlp(clip_file):
    block, host, light = first_block(build(clip_file, [dict(type='LoRAMLP', bottleneck=4)]))
    m = light['LoRAMLP']
    check(block, lambda x: reference_block(host, x, mlp_in=lambda h, out: out + low_rank(m.fc1, h),
                                           mlp_out=lambda a, out: out + low_rank(m.fc2, a)))
    assert m.fc1.lora_B.shape == (4, 4 * WIDTH) and m.fc2.lora_A.shape == (4 * WIDTH, 4)


@pytest.mark.parametrize('kind, sites', [
    ('SSFAttn', dict(qkv='qkv', attn_out='attn_out')),
    ('SSFMLP', dict(mlp_in='mlp_in', mlp_out='mlp_out')),
    ('SSFLayerNorm', dict(ln_1='ln_1', ln_2='ln_2')),
])
def test_ssf(clip_file, kind, sites):
    block, host, light = first_block(build(clip_file, [dict(type=kind)]))
    m = light[kind].ssf
    fns = {site: (lambda module: lambda inp, out: scale_shift(module, out))(m[name]) for site, name in sites.items()}
    check(block, lambda x: reference_block(host, x, **fns))


def test_lift_order_at_a_shared_site_whatever_the_config_order(clip_file):
    block, host, light = first_block(build(clip_file, [dict(type='AdaptFormer', bottleneck=8),
                                                       dict(type='Adapter', bottleneck=8)]))
    adapter, adaptformer = light['Adapter'], light['AdaptFormer']

    def branch(stream, out):
        out = out + bottleneck(adapter.bottleneck, out)
        return out + adaptformer.scale * bottleneck(adaptformer.bottleneck, stream)

    check(block, lambda x: reference_block(host, x, branch=branch))


@pytest.mark.parametrize('site_order', [0, 4])
def test_new_kind_acts_at_its_sites_in_its_site_order(clip_file, site_order):

    class Doubling(LightModule):
        """Doubles the MLP branch, before (order 0) or after (order 4) AdaptFormer (order 3) adds to it."""

        def __init__(self, context):
            super().__init__()

        def sites(self):
            return {'mlp_branch': lambda stream, out: 2 * out}

    Doubling.site_order = site_order
    block, host, light = first_block(build(clip_file, [dict(type=Doubling),
                                                       dict(type='AdaptFormer', bottleneck=8)]))
    m = light['AdaptFormer']

    def branch(stream, out):
        adapted = m.scale * bottleneck(m.bottleneck, stream)
        return 2 * (out + adapted) if site_order > m.site_order else 2 * out + adapted

    check(block, lambda x: reference_block(host, x, branch=branch))


def test_kind_at_a_site_the_host_lacks_is_refused_by_name(clip_file):
    with pytest.raises(ValueError, match=r"SSFOutput acts at \['output'\], which OpenCLIPTunableBlock does not "
                                         r"offer; its sites are \['tokens', 'ln_1'"):
        build(clip_file, ['SSFOutput'])


def test_vpt_deep_replaces_previous_prompts(clip_file):
    backbone = build(clip_file, [dict(type='VPTDeep', length=3)])
    blocks = backbone.visual.transformer.resblocks
    x = torch.randn(2, TOKENS, WIDTH)
    with torch.no_grad():
        after_first = blocks[0](x)
        assert after_first.shape == (2, TOKENS + 3, WIDTH)
        prompts = [b.light_modules['VPTDeep'].prompt.expand(2, -1, -1) for b in blocks]
        torch.testing.assert_close(after_first, reference_block(blocks[0].block, torch.cat([x, prompts[0]], 1)),
                                   rtol=1e-4, atol=1e-5)
        expected = reference_block(blocks[1].block, torch.cat([after_first[:, :TOKENS], prompts[1]], 1))
        torch.testing.assert_close(blocks[1](after_first), expected, rtol=1e-4, atol=1e-5)


def test_vpt_shallow_inserts_once_with_vpt_initialisation(clip_file):
    backbone = MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file,
                                 light_modules=[dict(type='VPTShallow', length=10)]))
    blocks = backbone.visual.transformer.resblocks
    assert [len(b.light_modules) for b in blocks] == [1, 0]
    prompt = blocks[0].light_modules['VPTShallow'].prompt
    bound = math.sqrt(6. / (3 * 8 * 8 + WIDTH))
    assert prompt.shape == (10, WIDTH) and prompt.abs().max() <= bound
    with torch.no_grad():
        assert backbone.embed(torch.randn(1, 3, 32, 32)).shape[1] == TOKENS
        feature = backbone(torch.randn(1, 3, 32, 32))[0]
    assert feature.shape == (1, WIDTH)


@pytest.mark.parametrize('kind, selected', [
    ('BitFit', lambda name: name.endswith('bias')),
    ('LayerNormTuning', lambda name: name.startswith(('ln_1.', 'ln_2.'))),
    ('FullFineTuning', lambda name: True),
])
def test_host_tuning_kinds_train_exactly_their_weights(clip_file, kind, selected):
    backbone = build(clip_file, [dict(type=kind, blocks=1)])
    blocks = backbone.visual.transformer.resblocks
    for name, param in blocks[1].block.named_parameters():
        assert param.requires_grad == selected(name), name
    assert not any(p.requires_grad for p in blocks[0].parameters())
    block, host, _ = first_block(backbone)
    check(blocks[1], lambda x: reference_block(blocks[1].block, x))


def test_sparse_tuning_draws_lift_masks_and_substitutes_values(clip_file):
    backbone = build(clip_file, [dict(type='SparseTuning', ratio=0.05, seed=3)])
    generator = torch.Generator().manual_seed(3)
    for block in backbone.visual.transformer.resblocks:
        host, updates = block.block, block.light_modules['SparseTuning'].updates
        linears = dict(qkv=(host.attn.in_proj_weight, host.attn.in_proj_bias),
                       attn_out=(host.attn.out_proj.weight, host.attn.out_proj.bias),
                       mlp_in=(host.mlp.c_fc.weight, host.mlp.c_fc.bias),
                       mlp_out=(host.mlp.c_proj.weight, host.mlp.c_proj.bias))
        substituted = {}
        for site in ('qkv', 'attn_out', 'mlp_in', 'mlp_out'):
            weight, bias = linears[site]
            out_dim, in_dim = weight.shape
            total = out_dim * (in_dim + 1)
            mask = torch.zeros(total, dtype=torch.bool)
            mask[torch.randperm(total, generator=generator)[:int(total * 0.05)]] = True
            mask = mask.view(out_dim, in_dim + 1)
            assert torch.equal(updates[site].weight_mask, mask[:, :-1])
            assert torch.equal(updates[site].bias_mask, mask[:, -1])
            new_weight, new_bias = weight.detach().clone(), bias.detach().clone()
            new_weight[mask[:, :-1]] = updates[site].optimized_weight.detach()
            new_bias[mask[:, -1]] = updates[site].optimized_bias.detach()
            substituted[site] = (new_weight, new_bias)
        check(block, lambda x: reference_block(host, x, weights=substituted))


def test_sparse_tuning_auto_ratio_follows_lift_rule(clip_file):
    backbone = build(clip_file, [dict(type='SparseTuning')], num_classes=1000)
    # 1000 / (12 * 2 blocks * 64) = 0.651, floored to a multiple of 0.001.
    assert backbone.visual.transformer.resblocks[0].light_modules['SparseTuning'].ratio == pytest.approx(0.651)


@pytest.mark.parametrize('kind', ['AdaptFormer', 'Adapter', 'LoRA', 'LoRAMLP'])
def test_zero_initialised_modules_start_as_the_frozen_model(clip_file, kind):
    fresh = MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file,
                              light_modules=[dict(type=kind, bottleneck=4)])).eval()
    plain = MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file,
                              light_modules=[])).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(images)[0], plain(images)[0])
    assert copy.deepcopy(fresh)(images)[0].shape == (2, WIDTH)


# Bad light-module configs: errors name the kind, the key and what it takes.


def test_a_key_the_kind_does_not_take_is_named_with_the_keys_it_takes(clip_file):
    # What --cfg-options model.backbone.light_modules.0.type=VPTDeep leaves of LIFT's AdaptFormer entry.
    with pytest.raises(TypeError, match=r"VPTDeep in `light_modules` does not take \['bottleneck'\]; it takes "
                       r"\['type', 'blocks', 'length', 'init'\]\. An entry whose `type` was changed .* give the whole "
                       r'list instead, as in --cfg-options model\.backbone\.light_modules=\[VPTDeep\]'):
        build(clip_file, [dict(type='VPTDeep', bottleneck='auto')])
    with pytest.raises(TypeError, match=r"SparseTuning in `light_modules` does not take \['rank', 'bottleneck'\]; "
                       r"it takes \['type', 'blocks', 'ratio', 'seed', 'linears', 'masks'\]"):
        build(clip_file, [dict(type='SparseTuning', rank=4, bottleneck=8)])


def test_a_kind_given_by_name_takes_its_defaults(clip_file):
    by_name = build(clip_file, ['VPTDeep', 'AdaptFormer'])
    by_dict = build(clip_file, [dict(type='VPTDeep'), dict(type='AdaptFormer')])
    for block, reference in zip(by_name.visual.transformer.resblocks, by_dict.visual.transformer.resblocks):
        assert {name: tuple(p.shape) for name, p in block.light_modules.named_parameters()} == \
            {name: tuple(p.shape) for name, p in reference.light_modules.named_parameters()}
    assert by_name.visual.transformer.resblocks[0].light_modules['VPTDeep'].prompt.shape == (10, WIDTH)
    with pytest.raises(TypeError, match=r'`light_modules` entries must be dicts with a `type`, or names of light '
                       r'modules; got 3'):
        build(clip_file, [3])


@pytest.mark.parametrize('blocks', [[0, 1, 2], [0.5, 2], '12', True, (1, False)])
def test_blocks_of_another_form_are_named_with_what_blocks_accepts(clip_file, blocks):
    with pytest.raises(ValueError, match=rf"AdaptFormer: `blocks`={re.escape(repr(blocks))} must be None \(every "
                       r'block\), an int k \(the last k blocks, 1 <= k <= 2\) or a range \[start, end\) of two ints '
                       r'with 0 <= start < end <= 2\.'):
        build(clip_file, [dict(type='AdaptFormer', blocks=blocks)])


@pytest.mark.parametrize('bottleneck', [True, '12', 2.0])
def test_a_bottleneck_that_is_no_int_is_named(clip_file, bottleneck):
    with pytest.raises(ValueError, match=rf"AdaptFormer: `bottleneck`={re.escape(repr(bottleneck))} must be 'auto', "
                       r"'auto_lift_plus' or an int in \[1, 64\] \(the width of the model\)"):
        build(clip_file, [dict(type='AdaptFormer', bottleneck=bottleneck)])


def test_an_auto_bottleneck_of_one_is_logged_once(clip_file, tmp_path):
    log_file = tmp_path / 'build.log'
    logger = MMLogger.get_instance(f'auto-bottleneck-{tmp_path.name}', log_file=str(log_file))
    # 2 ** floor(log2(K / 2L)) for L = 2 blocks: 1 below 8 classes (K = 7), 2 from 8 classes.
    backbone = build(clip_file, [dict(type='AdaptFormer')], num_classes=7)
    assert backbone.visual.transformer.resblocks[1].light_modules['AdaptFormer'].bottleneck.down_proj.out_features == 1
    build(clip_file, [dict(type='AdaptFormer')], num_classes=8)
    for handler in logger.handlers:
        handler.flush()
    lines = [line for line in log_file.read_text().splitlines() if "bottleneck='auto'" in line]
    assert len(lines) == 1
    assert lines[0].endswith("WARNING - AdaptFormer: bottleneck='auto' is 1 for 7 classes and 2 blocks (LIFT's rule "
                             '2 ** max(0, floor(log2(K / 2L))) gives 1 for fewer than 8 classes); set an integer '
                             '`bottleneck` for a wider one.')


def test_keys_of_kinds_that_take_any_keyword_are_left_to_the_kind():

    class Forwarding(LightModule):

        def __init__(self, context, **kwargs):
            super().__init__()

    check_light_module_keys(dict(type=Forwarding, anything=1), Forwarding, ('type', ))
    with pytest.raises(TypeError, match=r"LoRA in `light_modules` does not take \['anything'\]; it takes \['type', "
                       r"'bottleneck'\]"):
        check_light_module_keys(dict(type='LoRA', anything=1), MODELS.get('LoRA'), ('type', ))
