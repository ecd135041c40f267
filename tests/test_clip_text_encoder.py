"""CLIPTextEncoder against open_clip's text tower and against the text transformer written out here."""
import math

import pytest
import torch
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.models.heads import CLIPTextEncoder
from lift_mm.models.utils import SharedCLIP
from tiny_clip import tiny_clip_arch

NAMES = ['golden_retriever', 'cat', 'sea lion', 'go', 'tabby cat of the kind with stripes']
HEADS = 2


@pytest.fixture(scope='module')
def clip():
    return SharedCLIP(tiny_clip_arch(), None)


def randomise(encoder, std=0.3, seed=7):
    """Draw the trained weights at random, so that zero-initialised ones (LoRA's B) act."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for block in encoder.text.resblocks:
            for param in block.light_modules.parameters():
                param.normal_(std=std)
    return encoder


def open_clip_features(model, tokens, embeddings=None):
    """open_clip's own text path (transformer with its causal mask, ln_final, pooling at the end token,
    projection), optionally fed embeddings other than the tokens' own."""
    if embeddings is None:
        return model.encode_text(tokens)
    x = model.transformer(embeddings + model.positional_embedding, attn_mask=model.attn_mask)
    x = model.ln_final(x)[torch.arange(len(tokens)), tokens.argmax(-1)]
    return x @ model.text_projection


def masked_block(host, x, lora=None):
    """A CLIP text block with explicit softmax attention under the causal mask; ``lora`` adds to q and v."""
    batch, tokens, width = x.shape
    head_dim = width // HEADS
    h = F.layer_norm(x, (width, ), host.ln_1.weight, host.ln_1.bias, host.ln_1.eps)
    q, k, v = (h @ host.attn.in_proj_weight.T + host.attn.in_proj_bias).chunk(3, dim=-1)
    if lora is not None:
        q = q + h @ lora.q.lora_A @ lora.q.lora_B / lora.q.lora_A.shape[1]
        v = v + h @ lora.v.lora_A @ lora.v.lora_B / lora.v.lora_A.shape[1]
    q, k, v = (t.reshape(batch, tokens, HEADS, head_dim).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    future = torch.ones(tokens, tokens, dtype=torch.bool).triu(1)
    attended = (scores.masked_fill(future, float('-inf')).softmax(-1) @ v).transpose(1, 2).reshape(x.shape)
    x = x + attended @ host.attn.out_proj.weight.T + host.attn.out_proj.bias
    h = F.layer_norm(x, (width, ), host.ln_2.weight, host.ln_2.bias, host.ln_2.eps)
    return x + F.gelu(h @ host.mlp.c_fc.weight.T + host.mlp.c_fc.bias) @ host.mlp.c_proj.weight.T + host.mlp.c_proj.bias


def test_plain_features_equal_open_clip_encode_text(clip):
    encoder = CLIPTextEncoder(clip, chunk_size=2)
    tokens = encoder.tokenizer([f'a photo of a {name.replace("_", " ")}.' for name in NAMES])
    with torch.no_grad():
        features = encoder.encode_classes(NAMES)
        torch.testing.assert_close(features, clip.model.encode_text(tokens), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(encoder.encode_classes(NAMES, '{}'), clip.model.encode_text(
            encoder.tokenizer([name.replace('_', ' ') for name in NAMES])), rtol=1e-5, atol=1e-5)
    assert features.shape == (len(NAMES), encoder.output_dims) == (len(NAMES), 32)
    assert not encoder.trainable
    assert list(encoder.state_dict()) == ['foundation_fingerprint']


def test_an_unmasked_text_tower_keeps_every_token():
    arch = tiny_clip_arch()
    arch['text_cfg'].update(no_causal_mask=True, layers=1)
    unmasked = SharedCLIP(arch, None)
    encoder = CLIPTextEncoder(unmasked)
    assert not encoder.causal
    tokens = encoder.tokenizer([f'a photo of a {name.replace("_", " ")}.' for name in NAMES])
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_classes(NAMES), unmasked.model.encode_text(tokens), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize('position, coop_template', [
    ('end', 'X X X X {}.'), ('front', '{} X X X X.'), ('middle', 'X X {} X X.')])
def test_context_vectors_as_coop_places_them(clip, position, coop_template):
    encoder = CLIPTextEncoder(clip, context=dict(n_ctx=4, position=position))
    assert encoder.trainable and encoder.ctx.shape == (4, 64)
    assert abs(encoder.ctx.std().item() - 0.02) < 0.01
    # CoOp's prompts: placeholder words X where the context goes, the class name, the template's '.'.
    names = [name.replace('_', ' ') for name in NAMES]
    tokens = encoder.tokenizer([coop_template.format(name) for name in names])
    x_id = encoder.tokenizer.encode('X')[0]
    embeddings = clip.model.token_embedding(tokens).detach()
    embeddings[tokens == x_id] = encoder.ctx.detach().repeat(len(NAMES), 1)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_classes(NAMES), open_clip_features(clip.model, tokens, embeddings),
                                   rtol=1e-5, atol=1e-5)


def test_context_started_from_a_phrase_equals_the_phrase_prompt(clip):
    encoder = CLIPTextEncoder(clip, context=dict(init='a photo of a'))
    assert encoder.ctx.shape == (4, 64) and encoder.ctx.requires_grad
    tokens = encoder.tokenizer([f'a photo of a {name.replace("_", " ")}.' for name in NAMES])
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_classes(NAMES), clip.model.encode_text(tokens), rtol=1e-5,
                                   atol=1e-5)


def test_causal_block_equals_masked_attention(clip):
    encoder = CLIPTextEncoder(clip)
    block = encoder.text.resblocks[0]
    x = torch.randn(3, 9, 64)
    with torch.no_grad():
        torch.testing.assert_close(block(x, causal=True), masked_block(block.block, x), rtol=1e-5, atol=1e-5)


def test_prompts_after_the_start_token_move_the_end_token(clip):
    encoder = randomise(CLIPTextEncoder(clip, light_modules=[dict(type='PromptTuningDeep', length=3)]))
    blocks = encoder.text.resblocks
    prompts = [block.light_modules['PromptTuningDeep'].prompt for block in blocks]
    tokens = encoder.tokenizer([f'a photo of a {name.replace("_", " ")}.' for name in NAMES])
    model = clip.model
    with torch.no_grad():
        x = model.token_embedding(tokens) + model.positional_embedding
        # The first block inserts its prompts after the start token, the second replaces them by its own.
        x = masked_block(blocks[0].block, torch.cat([x[:, :1], prompts[0].expand(len(NAMES), -1, -1), x[:, 1:]], 1))
        x = torch.cat([x[:, :1], prompts[1].expand(len(NAMES), -1, -1), x[:, 4:]], 1)
        x = model.ln_final(masked_block(blocks[1].block, x))
        expected = x[torch.arange(len(NAMES)), tokens.argmax(-1) + 3] @ model.text_projection
        torch.testing.assert_close(encoder.encode_classes(NAMES), expected, rtol=1e-5, atol=1e-5)


def test_lora_in_the_text_blocks(clip):
    encoder = randomise(CLIPTextEncoder(clip, light_modules=[dict(type='LoRA', bottleneck=2, blocks=1)]))
    blocks = encoder.text.resblocks
    tokens = encoder.tokenizer([f'a photo of a {name.replace("_", " ")}.' for name in NAMES])
    model = clip.model
    with torch.no_grad():
        x = masked_block(blocks[0].block, model.token_embedding(tokens) + model.positional_embedding)
        x = model.ln_final(masked_block(blocks[1].block, x, lora=blocks[1].light_modules['LoRA']))
        expected = x[torch.arange(len(NAMES)), tokens.argmax(-1)] @ model.text_projection
        torch.testing.assert_close(encoder.encode_classes(NAMES), expected, rtol=1e-5, atol=1e-5)


def test_chunks_give_the_features_and_gradients_of_one_pass(clip):
    cfg = dict(context=dict(n_ctx=2, position='middle'), light_modules=[dict(type='AdaptFormer', bottleneck=2)])
    torch.manual_seed(3)
    chunked = randomise(CLIPTextEncoder(clip, chunk_size=2, **cfg))
    whole = CLIPTextEncoder(clip, chunk_size=len(NAMES), **cfg)
    whole.load_state_dict(chunked.state_dict())
    weights = torch.randn(len(NAMES), 32)
    for encoder in (chunked, whole):
        (encoder.encode_classes(NAMES) * weights).sum().backward()
    torch.testing.assert_close(chunked.encode_classes(NAMES), whole.encode_classes(NAMES), rtol=1e-5, atol=1e-5)
    grads = {name: param.grad for name, param in whole.named_parameters() if param.requires_grad}
    assert grads and all(grad is not None for grad in grads.values())
    for name, param in chunked.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param.grad, grads[name], rtol=1e-4, atol=1e-6)


def test_state_dict_holds_only_what_trained(clip):
    cfg = dict(context=dict(n_ctx=2), light_modules=[dict(type='BitFit', blocks=1), 'SSFLayerNorm'])
    encoder = randomise(CLIPTextEncoder(clip, **cfg))
    state = encoder.state_dict()
    trained = {name for name, param in encoder.named_parameters() if param.requires_grad}
    assert set(state) == trained | {'foundation_fingerprint'}
    assert 'ctx' in trained and 'text.resblocks.1.block.attn.in_proj_bias' in trained
    assert not any(name.startswith('text.resblocks.0.block.') or 'token_embedding' in name for name in state)
    restored = CLIPTextEncoder(clip, **cfg)
    restored.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(restored.encode_classes(NAMES), encoder.encode_classes(NAMES))


@pytest.mark.parametrize('kind', [
    'AdaptFormer', 'Adapter', 'BitFit', 'FullFineTuning', 'LayerNormTuning', 'LoRA', 'LoRAMLP', 'PromptTuningDeep',
    'PromptTuningShallow', 'SSFAttn', 'SSFLayerNorm', 'SSFMLP', 'SparseTuning'])
def test_every_text_kind_trains_all_its_weights_in_each_step(clip, kind):
    # DDP needs a gradient for every trainable parameter in every step.
    encoder = CLIPTextEncoder(clip, light_modules=[kind], num_classes=100)
    assert encoder.trainable
    (encoder.encode_classes(NAMES) * torch.randn(len(NAMES), 32)).sum().backward()
    grads = [param.grad for param in encoder.parameters() if param.requires_grad]
    assert all(grad is not None for grad in grads) and any(grad.abs().sum() > 0 for grad in grads)


@pytest.mark.parametrize('light_modules, message', [
    (['VPTDeep'], r"VPTDeep sizes its prompts from the patch size of an image encoder .* use 'PromptTuningDeep'"),
    (['BatchNormTuning'], r'BatchNormTuning in `light_modules` finds nothing to train in the blocks \[0, 1\]'),
    ([dict(type='PromptTuningDeep', length=0)], r'PromptTuningDeep: `length`=0 must be a positive int'),
])
def test_kinds_that_cannot_work_in_text_or_bad_prompts_are_refused(clip, light_modules, message):
    with pytest.raises(ValueError, match=message):
        CLIPTextEncoder(clip, light_modules=light_modules)


@pytest.mark.parametrize('context, error, message', [
    (dict(n_ctx=4, length=2), KeyError, r"`context` has unknown keys \['length'\]"),
    (dict(position='start'), ValueError, r"`context.position`='start' must be one of \['end', 'front', 'middle'\]"),
    (dict(n_ctx=0), ValueError, r'`context.n_ctx`=0 must be a positive int'),
    (dict(init='a photo of a', n_ctx=3), ValueError, r"'a photo of a' has 4 tokens, but `context.n_ctx`=3"),
])
def test_bad_context_is_named(clip, context, error, message):
    with pytest.raises(error, match=message):
        CLIPTextEncoder(clip, context=context)


def test_a_prompt_longer_than_the_context_is_refused(clip):
    encoder = CLIPTextEncoder(clip, context=dict(n_ctx=8))
    with pytest.raises(ValueError, match=r"class 'a b c d e f g' needs 18 tokens with 8 context vectors, more than "
                                         r'the context length 16'):
        encoder.encode_classes(['a b c d e f g'])


@pytest.mark.parametrize('classnames, template, message', [
    ([], 'a photo of a {}.', r'`classnames` is empty'),
    (['cat'], 'a photo', r"`template`='a photo' must be a string with one \{\} for the class name"),
])
def test_bad_classes_or_template_are_named(clip, classnames, template, message):
    with pytest.raises(ValueError, match=message):
        CLIPTextEncoder(clip).encode_classes(classnames, template)
