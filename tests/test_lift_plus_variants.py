"""LIFT+'s method variants, options of the light-module kinds and of the linear head, against their formulas
written out here: initialisations by their statistics, automatic sizes by integer arithmetic, masks by LIFT+'s
seeded permutations, forwards by plain tensor algebra in LIFT+'s order."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS
from test_light_modules import (TOKENS, WIDTH, bottleneck, build, check, first_block, low_rank, reference_block,
                                scale_shift)

import lift_mm  # noqa: F401
from lift_mm.models.peft.base import BlockContext
from lift_mm.models.peft.sparse_tuning import lift_plus_block_masks
from tiny_clip import tiny_clip_arch

SITES = ('qkv', 'attn_out', 'mlp_in', 'mlp_out')


def context(num_classes=None, num_blocks=None, width=768):
    """A ViT-B-like block (12 blocks) of an entry covering ``num_blocks`` of them."""
    return BlockContext(embed_dims=width, mlp_dims=4 * width, num_heads=12, num_layers=12, block_index=0,
                        num_tokens=197, patch_size=(16, 16), num_classes=num_classes, num_blocks=num_blocks)


def build_kind(cfg, **context_args):
    return MODELS.build(cfg, default_args=dict(context=context(**context_args)))


def normal_tail(k):
    """P(|z| > k) for a standard normal z."""
    return 1 - math.erf(k / math.sqrt(2))


# AdaptFormer and Adapter: the down projection starts Kaiming-normal (LIFT) or Kaiming-uniform (LIFT+), with
# negative slope sqrt(5): gain sqrt(2 / (1 + 5)), so std sqrt(1 / (3 fan_in)) and uniform bound sqrt(1 / fan_in).


@pytest.mark.parametrize('kind', ['AdaptFormer', 'Adapter'])
@pytest.mark.parametrize('down_init', [None, 'kaiming_normal', 'kaiming_uniform'])
def test_adapter_down_projection_starts_as_configured(kind, down_init):
    cfg = dict(type=kind, bottleneck=64) if down_init is None else dict(type=kind, bottleneck=64, down_init=down_init)
    torch.manual_seed(0)
    mlp = build_kind(cfg).bottleneck
    weight = mlp.down_proj.weight.detach()
    assert weight.shape == (64, 768)
    std, bound = math.sqrt(1 / (3 * 768)), math.sqrt(1 / 768)
    beyond_bound = (weight.abs() > bound).float().mean().item()
    if down_init == 'kaiming_uniform':
        assert weight.abs().max() <= bound and weight.abs().max() > 0.99 * bound
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
        assert beyond_bound == 0
    else:
        assert weight.std().item() == pytest.approx(std, rel=0.03)
        # A normal of that std passes the uniform bound (sqrt(3) std) 8.3% of the time.
        assert beyond_bound == pytest.approx(normal_tail(math.sqrt(3)), abs=0.01)
    for zero in (mlp.down_proj.bias, mlp.up_proj.weight, mlp.up_proj.bias):
        assert not zero.any()
    assert sum(p.numel() for p in mlp.parameters()) == 2 * 768 + 768 * 64 + 64 + 64 * 768 + 768


def test_an_unknown_down_init_is_named():
    with pytest.raises(ValueError, match=r"AdaptFormer: `down_init`='xavier' must be one of \['kaiming_normal', "
                                         r"'kaiming_uniform'\]\."):
        build_kind(dict(type='AdaptFormer', bottleneck=8, down_init='xavier'))


# Automatic sizes: LIFT+'s 2 ** max(0, floor(log2(K / (d L)))) over the L blocks of the entry, d per kind.


def largest_power_of_two(num_classes, divisor, num_blocks):
    """The largest power of two p with p d L <= K, at least 1, by integer arithmetic."""
    size = 1
    while 2 * size * divisor * num_blocks <= num_classes:
        size *= 2
    return size


SIZED_KINDS = {
    'Adapter': (2, 'bottleneck', lambda m: m.bottleneck.down_proj.out_features),
    'AdaptFormer': (2, 'bottleneck', lambda m: m.bottleneck.down_proj.out_features),
    'LoRA': (4, 'bottleneck', lambda m: m.q.lora_A.shape[1]),
    'VPTDeep': (1, 'length', lambda m: m.prompt.shape[0]),
}


@pytest.mark.parametrize('kind', list(SIZED_KINDS))
@pytest.mark.parametrize('num_classes', [1000, 365, 100, 8142, 3])
@pytest.mark.parametrize('num_blocks', [12, 6, 1])
def test_lift_plus_sizes_follow_its_rule(kind, num_classes, num_blocks):
    divisor, key, size_of = SIZED_KINDS[kind]
    module = build_kind({'type': kind, key: 'auto_lift_plus'}, num_classes=num_classes, num_blocks=num_blocks)
    assert size_of(module) == largest_power_of_two(num_classes, divisor, num_blocks)


def test_lift_sizes_still_count_every_block_of_the_encoder():
    # LIFT's rule K / 2L takes the encoder's 12 blocks whatever the range: 1000 / 24 -> 32, not 1000 / 12 -> 64.
    for kind in ('AdaptFormer', 'LoRA'):
        assert SIZED_KINDS[kind][2](build_kind(dict(type=kind), num_classes=1000, num_blocks=6)) == 32


def test_lift_plus_sizes_count_the_blocks_of_the_range(clip_file):
    # The tiny CLIP has 2 blocks; 10 classes: K / L gives 8 prompts over 1 block, 4 over both.
    one = build(clip_file, [dict(type='VPTDeep', length='auto_lift_plus', blocks=1)], num_classes=10)
    both = build(clip_file, [dict(type='VPTDeep', length='auto_lift_plus')], num_classes=10)
    assert [len(b.light_modules) for b in one.visual.transformer.resblocks] == [0, 1]
    assert one.visual.transformer.resblocks[1].light_modules['VPTDeep'].prompt.shape == (8, WIDTH)
    assert [b.light_modules['VPTDeep'].prompt.shape[0] for b in both.visual.transformer.resblocks] == [4, 4]


@pytest.mark.parametrize('cfg, context_args, message', [
    (dict(type='VPTDeep', length='auto'), dict(num_classes=100),
     r"VPTDeep: `length`='auto' must be 'auto_lift_plus' or a positive int\."),
    (dict(type='VPTDeep', length=0), dict(), r"VPTDeep: `length`=0 must be 'auto_lift_plus' or a positive int\."),
    (dict(type='LoRAMLP', bottleneck='auto_lift_plus'), dict(num_classes=100),
     r"LoRAMLP: `bottleneck`='auto_lift_plus' must be 'auto' or an int in \[1, 768\] \(the width of the model\)\."),
    (dict(type='LoRA', bottleneck='auto_lift_plus'), dict(),
     r"LoRA: bottleneck='auto_lift_plus' needs the number of classes: set `num_classes` on the backbone or give "
     r'an integer bottleneck\.'),
    (dict(type='VPTDeep', init='xavier'), dict(),
     r"VPTDeep: `init`='xavier' must be 'uniform' \(LIFT's\) or 'normal' \(LIFT\+'s\)\."),
])
def test_sizes_and_inits_a_kind_does_not_take_are_named(cfg, context_args, message):
    with pytest.raises(ValueError, match=message):
        build_kind(cfg, **context_args)


# Prompt tuning: LIFT+'s pt is VPTDeep with N(0, 0.02^2) prompts.


def test_lift_plus_prompts_start_normal():
    torch.manual_seed(0)
    prompt = build_kind(dict(type='VPTDeep', length=64, init='normal')).prompt.detach()
    assert prompt.shape == (64, 768)
    assert prompt.mean().abs().item() < 0.001
    assert prompt.std().item() == pytest.approx(0.02, rel=0.03)
    assert (prompt.abs() > 0.04).float().mean().item() == pytest.approx(normal_tail(2), abs=0.006)


def test_prompts_give_lift_plus_outputs_in_its_token_order(clip_file):
    backbone = build(clip_file, [dict(type='VPTDeep', length=3, init='normal')])
    blocks = backbone.visual.transformer.resblocks
    x = torch.randn(2, TOKENS, WIDTH)
    with torch.no_grad():
        ours = blocks[1](blocks[0](x))
        # LIFT+: [class token, prompts, patches], the prompts between replaced by the next block's.
        theirs = x
        for block in blocks:
            prompt = block.light_modules['VPTDeep'].prompt.expand(2, -1, -1)
            theirs = reference_block(block.block, torch.cat([theirs[:, :1], prompt, theirs[:, -(TOKENS - 1):]], 1))
    assert ours.shape == theirs.shape == (2, TOKENS + 3, WIDTH)
    reordered = torch.cat([ours[:, :1], ours[:, TOKENS:], ours[:, 1:TOKENS]], 1)
    torch.testing.assert_close(reordered, theirs, rtol=1e-4, atol=1e-5)


# Arbitrary fine-tuning: LIFT+'s per-tensor masks, each from a generator freshly seeded with the seed.

GROUPS = {'all': SITES, 'attn': SITES[:2], 'mlp': SITES[2:]}
# The ratio rules K / (L (a C + b)), with the weights and biases of each group being (a C + b) C.
RATIO_TERMS = {'all': (12, 9), 'attn': (4, 4), 'mlp': (8, 5)}


def host_linears(host):
    return dict(qkv=(host.attn.in_proj_weight, host.attn.in_proj_bias),
                attn_out=(host.attn.out_proj.weight, host.attn.out_proj.bias),
                mlp_in=(host.mlp.c_fc.weight, host.mlp.c_fc.bias),
                mlp_out=(host.mlp.c_proj.weight, host.mlp.c_proj.bias))


def seeded_mask(tensor, ratio, seed):
    """LIFT+'s mask: the first int(n ratio) entries of a permutation drawn by a generator seeded for this tensor."""
    permutation = torch.randperm(tensor.numel(), generator=torch.Generator().manual_seed(seed))
    flat = torch.zeros(tensor.numel(), dtype=torch.bool)
    flat[permutation[:int(tensor.numel() * ratio)]] = True
    return flat.reshape(tensor.shape)


def build_aft(clip_file, linears, seed=5, num_classes=100):
    return MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file,
                             num_classes=num_classes,
                             light_modules=[dict(type='SparseTuning', masks='lift_plus', ratio='auto_lift_plus',
                                                 linears=linears, seed=seed)]))


@pytest.mark.parametrize('linears', ['all', 'attn', 'mlp'])
def test_lift_plus_masks_follow_its_ratio_rule_and_seeding(clip_file, linears):
    backbone = build_aft(clip_file, linears)
    slope, offset = RATIO_TERMS[linears]
    ratio = 100 / (2 * (WIDTH * slope + offset))
    blocks = backbone.visual.transformer.resblocks
    group_entries = sum(t.numel() for site in GROUPS[linears] for t in host_linears(blocks[0].block)[site])
    assert ratio == pytest.approx(100 * WIDTH / (2 * group_entries))
    trained = 0
    for block in blocks:
        module = block.light_modules['SparseTuning']
        assert module.ratio == ratio and list(module.updates) == list(GROUPS[linears])
        for site, (weight, bias) in host_linears(block.block).items():
            if site not in GROUPS[linears]:
                continue
            update = module.updates[site]
            assert torch.equal(update.weight_mask, seeded_mask(weight, ratio, 5))
            assert torch.equal(update.bias_mask, seeded_mask(bias, ratio, 5))
            assert torch.equal(update.optimized_weight, weight[update.weight_mask])
            assert torch.equal(update.optimized_bias, bias[update.bias_mask])
            trained += int(weight.numel() * ratio) + int(bias.numel() * ratio)
    assert sum(p.numel() for p in backbone.parameters() if p.requires_grad) == trained
    # What the converter rebuilds from LIFT+'s seed and sizes.
    expected = lift_plus_block_masks(WIDTH, 4 * WIDTH, ratio, 5, linears)
    assert list(expected) == list(GROUPS[linears])
    for site, (weight_mask, bias_mask) in expected.items():
        assert torch.equal(weight_mask, blocks[1].light_modules['SparseTuning'].updates[site].weight_mask)
        assert torch.equal(bias_mask, blocks[1].light_modules['SparseTuning'].updates[site].bias_mask)


def test_lift_plus_masks_depend_on_the_seed_alone(clip_file):
    masks = {}
    for name, seed in (('first', 5), ('again', 5), ('other', 6)):
        torch.manual_seed(len(name))  # the global seed plays no part
        updates = build_aft(clip_file, 'mlp', seed=seed).visual.transformer.resblocks[0].light_modules[
            'SparseTuning'].updates
        masks[name] = [updates[site].weight_mask for site in ('mlp_in', 'mlp_out')]
    assert all(torch.equal(a, b) for a, b in zip(masks['first'], masks['again']))
    assert not any(torch.equal(a, b) for a, b in zip(masks['first'], masks['other']))
    # Equal sizes, equal flat positions: fc1's (4C, C) and fc2's (C, 4C) weights.
    assert torch.equal(masks['first'][0].flatten(), masks['first'][1].flatten())


def test_lift_plus_masks_substitute_their_values(clip_file):
    backbone = build(clip_file, [dict(type='SparseTuning', masks='lift_plus', ratio=0.05, linears='attn', seed=2)])
    block, host, light = first_block(backbone)
    substituted = {}
    for site, (weight, bias) in host_linears(host).items():
        if site in GROUPS['attn']:
            update = light['SparseTuning'].updates[site]
            weight, bias = weight.detach().clone(), bias.detach().clone()
            weight[seeded_mask(weight, 0.05, 2)] = update.optimized_weight.detach()
            bias[seeded_mask(bias, 0.05, 2)] = update.optimized_bias.detach()
            substituted[site] = (weight, bias)
    check(block, lambda x: reference_block(host, x, weights=substituted))


def test_a_lift_plus_ratio_above_one_trains_every_entry(clip_file):
    module = build_aft(clip_file, 'all', num_classes=10**5).visual.transformer.resblocks[0].light_modules[
        'SparseTuning']
    assert module.ratio == 1
    assert all(update.weight_mask.all() and update.bias_mask.all() for update in module.updates.values())


@pytest.mark.parametrize('cfg, message', [
    (dict(linears='ffn'), r"SparseTuning: `linears`='ffn' must be one of \['all', 'attn', 'mlp'\]\."),
    (dict(masks='random'), r"SparseTuning: `masks`='random' must be one of \['lift', 'lift_plus'\]\."),
    (dict(ratio=1.5), r"SparseTuning: `ratio`=1\.5 must be 'auto', 'auto_lift_plus' or in \(0, 1\]\."),
])
def test_sparse_tuning_options_of_another_value_are_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type='SparseTuning', **cfg), default_args=dict(context=context(num_classes=10), shared={}))


# SSF: LIFT+ scales and shifts the outputs of the four linears, after LoRA's update of q and v and before the
# adapter, which is SSFAttn and SSFMLP together.


def test_ssf_on_the_four_linears_in_lift_plus_order(clip_file):
    block, host, light = first_block(build(clip_file, [dict(type='Adapter', bottleneck=4), dict(type='SSFMLP'),
                                                       dict(type='LoRA', bottleneck=4), dict(type='SSFAttn')]))
    attn, mlp, lora, adapter = (light[kind] for kind in ('SSFAttn', 'SSFMLP', 'LoRA', 'Adapter'))

    def qkv(h, out):
        q, k, v = out.chunk(3, dim=-1)
        return scale_shift(attn.ssf['qkv'], torch.cat([q + low_rank(lora.q, h), k, v + low_rank(lora.v, h)], -1))

    def branch(stream, out):
        return out + bottleneck(adapter.bottleneck, out)

    check(block, lambda x: reference_block(
        host, x, qkv=qkv, attn_out=lambda inp, out: scale_shift(attn.ssf['attn_out'], out),
        mlp_in=lambda inp, out: scale_shift(mlp.ssf['mlp_in'], out),
        mlp_out=lambda inp, out: scale_shift(mlp.ssf['mlp_out'], out), branch=branch))
    assert sum(p.numel() for p in attn.parameters()) + sum(p.numel() for p in mlp.parameters()) == \
        2 * (3 * WIDTH + WIDTH + 4 * WIDTH + WIDTH)


# Classifiers: LIFT+ starts every classifier, its linear one too, from unit-norm rows uniform in [-1, 1]^d.


def lift_plus_random_weight(num_classes, width):
    return torch.empty(num_classes, width).uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5)


@pytest.mark.parametrize('cfg', [dict(type='LIFTLinearClsHead', random_init='unit_uniform'),
                                 dict(type='CosineClsHead')])
def test_heads_start_as_lift_plus_classifiers(cfg):
    torch.manual_seed(3)
    head = MODELS.build(dict(num_classes=50, in_channels=32, **cfg))
    torch.manual_seed(3)
    torch.testing.assert_close(head.weight.detach(), lift_plus_random_weight(50, 32))
    if cfg['type'] == 'LIFTLinearClsHead':
        assert not head.bias.any()


def test_lift_linear_head_keeps_lift_kaiming_start_and_names_other_inits():
    torch.manual_seed(3)
    weight = MODELS.build(dict(type='LIFTLinearClsHead', num_classes=500, in_channels=64)).weight.detach()
    # Kaiming-normal with fan-in 64: std sqrt(2 / 64), rows far from unit norm.
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 64), rel=0.03)
    with pytest.raises(ValueError, match=r"LIFTLinearClsHead: `random_init`='normal' must be 'kaiming_normal' "
                                         r"\(LIFT's\) or 'unit_uniform' \(LIFT\+'s\)\."):
        MODELS.build(dict(type='LIFTLinearClsHead', num_classes=5, in_channels=8, random_init='normal'))
