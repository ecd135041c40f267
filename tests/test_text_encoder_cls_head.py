"""TextEncoderClsHead: CLIP's text tower as the classifier (CoOp, CLIP-Adapter, projection tuning, text light
modules), its cache of class features, its configs, and zero-shot CLIP with one prompt."""
import glob
import os
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from open_clip.tokenizer import SimpleTokenizer
from torch.nn import functional as F

import lift_mm  # noqa: F401
from lift_mm.models.heads import CLIPTextEncoder
from lift_mm.models.heads.text_encoder_cls_head import ClipAdapter
from demo_runs import REPO, demo_runner, free_port, last_metrics, one_thread, run_tool
from tiny_clip import CLIP_SEED, make_tiny_clip, tiny_clip_arch

NAMES = ['tabby_cat', 'dog', 'red square']
TEMPLATE = 'a photo of a {}.'
COOP_DEMO = 'configs/baselines/coop_demo.py'


def build_model(clip_file, **head):
    return MODELS.build(dict(
        type='CLIPImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file, light_modules=[]),
        head=dict(dict(type='TextEncoderClsHead', num_classes=len(NAMES), in_channels=64, classnames=NAMES), **head)))


def clip_logits(clip, images, texts, image_map=lambda x: x, text_map=lambda x: x):
    """CLIP's own logits from open_clip's encoders, with optional maps of the joint-space features."""
    tokens = SimpleTokenizer(context_length=16)(texts)
    image = image_map(clip.encode_image(images))
    text = text_map(clip.encode_text(tokens))
    return clip.logit_scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T


def prompts(names=NAMES, template=TEMPLATE):
    return [template.format(name.replace('_', ' ')) for name in names]


@pytest.fixture(scope='module', autouse=True)
def single_thread():
    # Tiny models run fastest on one thread, above all on a shared machine.
    with one_thread():
        yield


@pytest.fixture(scope='module')
def clip():
    return make_tiny_clip(seed=CLIP_SEED)


@pytest.fixture(scope='module')
def images():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_untrained_head_is_zero_shot_clip_with_one_prompt(clip_file, clip, images):
    model = build_model(clip_file).eval()
    assert not any(param.requires_grad for param in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'), clip_logits(clip, images, prompts()),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('config', ['configs/zero_shot/zsclip_demo_single-prompt.py'])
def test_single_prompt_zero_shot_config_equals_open_clip(config, clip, images):
    cfg = Config.fromfile(str(REPO / config))
    # The zero-shot head encodes its one prompt with the text encoder the text-side methods train.
    with mock.patch.object(CLIPTextEncoder, 'encode_classes', autospec=True,
                           side_effect=CLIPTextEncoder.encode_classes) as encode:
        model = MODELS.build(cfg.model).eval()
    assert [call.args[1:] for call in encode.call_args_list] == [(cfg.classnames, TEMPLATE)]
    # The demo's random CLIP (pretrained=None) is open_clip's CLIP of the tiny architecture from seed 0.
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   clip_logits(clip, images, prompts(cfg.classnames)), rtol=1e-4, atol=1e-4)


def test_single_prompt_configs_of_the_benchmarks_keep_their_ensemble_twins():
    for config in sorted(glob.glob(str(REPO / 'configs/zero_shot/zsclip_vitb16_*_single-prompt.py'))):
        single, ensemble = Config.fromfile(config), Config.fromfile(config.replace('_single-prompt', ''))
        assert single.model.head.text_init == dict(prompt='default')
        assert ensemble.model.head.text_init == dict(prompt='ensemble')
        single.model.head.pop('text_init'), ensemble.model.head.pop('text_init')
        assert single.model == ensemble.model
    assert len(glob.glob(str(REPO / 'configs/zero_shot/zsclip_vitb16_*_single-prompt.py'))) == 4


def randomise(module, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def adapter_formula(adapter, x):
    """``up(relu(down(ln(x))))`` written out from the adapter's weights."""
    mlp = adapter.bottleneck
    hidden = F.layer_norm(x, x.shape[-1:], mlp.ln.weight, mlp.ln.bias)
    hidden = torch.relu(hidden @ mlp.down_proj.weight.T + mlp.down_proj.bias)
    return hidden @ mlp.up_proj.weight.T + mlp.up_proj.bias


@pytest.mark.parametrize('ratio', [None, 0.2])
def test_clip_adapter_formula(ratio):
    adapter = ClipAdapter(8, 4, ratio=ratio)
    x = torch.randn(5, 8)
    # An untrained adapter (up projection at zero) keeps the direction of the features.
    torch.testing.assert_close(F.normalize(adapter(x), dim=-1), F.normalize(x, dim=-1))
    randomise(adapter, seed=2)
    expected = x + adapter_formula(adapter, x) if ratio is None else 0.2 * adapter_formula(adapter, x) + 0.8 * x
    torch.testing.assert_close(adapter(x), expected)


@pytest.mark.parametrize('ratio', [None, 0.5])
def test_clip_adapter_logits_follow_clip(clip_file, clip, images, ratio):
    model = build_model(clip_file, clip_adapter=dict(ratio=ratio)).eval()
    head = model.head
    assert head.image_adapter.bottleneck.down_proj.out_features == 4
    randomise(head.image_adapter, seed=3)
    randomise(head.text_adapter, seed=4)
    with torch.no_grad():
        expected = clip_logits(clip, images, prompts(), head.image_adapter, head.text_adapter)
        torch.testing.assert_close(model(images, mode='tensor'), expected, rtol=1e-4, atol=1e-4)
    # The adapters follow the formula checked above.
    x = torch.randn(2, 32)
    blend = (lambda a: x + a) if ratio is None else (lambda a: ratio * a + (1 - ratio) * x)
    torch.testing.assert_close(head.text_adapter(x), blend(adapter_formula(head.text_adapter, x)))


def encode_calls(model, images, steps, train=None):
    """How often ``steps`` forward passes (after switching to ``train`` mode, unless None) encode the classes."""
    if train is not None:
        model.train(train)
    with mock.patch.object(model.head.text_encoder, 'encode_classes',
                           wraps=model.head.text_encoder.encode_classes) as encode:
        for _ in range(steps):
            logits = model(images, mode='tensor')
    return encode.call_count, logits


def test_class_features_cached_when_nothing_text_side_trains(clip_file, images):
    model = build_model(clip_file, clip_adapter=dict())
    assert not model.head.text_encoder.trainable
    assert encode_calls(model, images, 3, train=True)[0] == 1
    assert encode_calls(model, images, 3, train=False)[0] == 1
    assert encode_calls(model, images, 2)[0] == 0
    # Loaded weights make the cache stale.
    model.load_state_dict(model.state_dict())
    assert encode_calls(model, images, 2)[0] == 1


def test_class_features_recomputed_each_step_when_the_text_encoder_trains(clip_file, clip, images):
    model = build_model(clip_file, context=dict(n_ctx=4))
    calls, logits = encode_calls(model, images, 3, train=True)
    assert calls == 3
    logits.sum().backward()
    assert model.head.text_encoder.ctx.grad.abs().sum() > 0
    # Always cached at test time; the context changed since the last cache, and the test logits see the change.
    with torch.no_grad():
        model.head.text_encoder.ctx.add_(1.)
    calls, logits = encode_calls(model, images, 3, train=False)
    assert calls == 1
    with torch.no_grad():
        torch.testing.assert_close(logits, model.head(model.extract_feat(images)))
        assert not torch.allclose(logits, clip_logits(clip, images, prompts()), atol=1e-3)


def test_projection_tuning_trains_exactly_the_projections(clip_file, clip, images):
    model = build_model(clip_file, tune_image_projection=True, tune_text_projection=True)
    trained = {name for name, param in model.named_parameters() if param.requires_grad}
    assert trained == {'head.joint_space.image_proj', 'head.text_encoder.text.text_projection'}
    torch.testing.assert_close(model.head.joint_space.image_proj, clip.visual.proj)
    model.train()
    losses = model(images, [DataSample().set_gt_label(i % 3) for i in range(4)], mode='loss')
    losses['loss'].backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None and param.grad.abs().sum() > 0) == (name in trained), name
    # Trained in place: a step moves the logits as open_clip's model with the same projections computes them.
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.sub_(param.grad)
        clip = make_tiny_clip(seed=CLIP_SEED)
        clip.visual.proj.copy_(model.head.joint_space.image_proj)
        clip.text_projection.copy_(model.head.text_encoder.text.text_projection)
        model.eval()
        torch.testing.assert_close(model(images, mode='tensor'), clip_logits(clip, images, prompts()),
                                   rtol=1e-4, atol=1e-4)
    # Checkpoints keep the tuned projections, and only them of CLIP's weights.
    state = model.state_dict()
    assert {'head.joint_space.image_proj', 'head.text_encoder.text.text_projection'} <= set(state)
    assert not any('resblocks' in key or 'token_embedding' in key for key in state)
    fresh = build_model(clip_file, tune_image_projection=True, tune_text_projection=True).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(fresh(images, mode='tensor'), model(images, mode='tensor'))


def head_cfg(**head):
    return dict(type='TextEncoderClsHead', num_classes=len(NAMES), in_channels=64, classnames=NAMES, **head)


def test_head_refuses_bad_settings(clip_file):
    with pytest.raises(ValueError, match=r'model\.head\.in_channels`=32.*64-d.*out_projected=False'):
        build_model(clip_file, in_channels=32)
    with pytest.raises(ValueError, match=r'clip_adapter\.ratio`=1\.5 must lie in \(0, 1\]'):
        MODELS.build(head_cfg(clip_adapter=dict(ratio=1.5)))
    with pytest.raises(KeyError, match=r"clip_adapter` has unknown keys \['dim'\]"):
        MODELS.build(head_cfg(clip_adapter=dict(dim=4)))
    with pytest.raises(ValueError, match=r"template`='a photo' must be a string with one \{\}"):
        MODELS.build(head_cfg(template='a photo'))
    head = MODELS.build(head_cfg())
    with pytest.raises(RuntimeError, match='only a CLIPImageClassifier lends it'):
        head((torch.randn(2, 64), ))
    with pytest.raises(ValueError, match="backbone is not a CLIP encoder: use a CLIPVisionTransformer or CLIPResNet"):
        head.use_backbone_clip(None)


BASELINES = sorted(glob.glob(str(REPO / 'configs/baselines/*_vitb16_*.py')))
# What each method trains, by parameter name.
TRAINED = {
    'coop': lambda name: name == 'head.text_encoder.ctx',
    'clip-adapter': lambda name: name.startswith(('head.image_adapter.', 'head.text_adapter.')),
    'proj-tuning': lambda name: name in ('head.joint_space.image_proj', 'head.text_encoder.text.text_projection'),
    'text-adaptformer': lambda name: name.startswith('head.text_encoder.text.resblocks.') and '.AdaptFormer.' in name,
}


def test_baseline_configs_build_with_their_recipes():
    assert len(BASELINES) == 4 * len(TRAINED)
    for config in BASELINES:
        cfg = Config.fromfile(config)
        method = os.path.basename(config).split('_')[0]
        head = cfg.model.head
        assert head.type == 'TextEncoderClsHead' and head.loss.type == 'LogitAdjustedLoss'
        assert cfg.model.backbone.light_modules == [] and cfg.data_preprocessor.num_classes == head.num_classes
        recipe = (cfg.optim_wrapper.optimizer.lr, cfg.train_cfg.max_epochs, cfg.train_dataloader.batch_size)
        assert recipe == ((0.002, 50, 32) if method == 'coop' else (0.02, 5, 128)), config
        if 'imagenet-lt' not in config:
            continue
        # The model as configured, on the tiny CLIP (ViT-B/16 itself is too large for a unit test).
        cfg.model.backbone.update(arch=tiny_clip_arch(), pretrained=None)
        cfg.model.head.in_channels = 64
        model = MODELS.build(cfg.model)
        trained = [name for name, param in model.named_parameters() if param.requires_grad]
        assert trained and all(TRAINED[method](name) for name in trained), (config, trained)


# The head keys that choose each method; its offline demo adds only these to one shared base.
METHOD_KEYS = {
    'coop': {'context'},
    'clip-adapter': {'clip_adapter'},
    'proj-tuning': {'tune_image_projection', 'tune_text_projection'},
    'text-adaptformer': {'text_light_modules'},
}


def test_baseline_demos_add_only_their_method_to_one_base():
    base = Config.fromfile(str(REPO / 'configs/_base_/models/clip-text-head_demo.py')).to_dict()
    assert base['model']['head']['type'] == 'TextEncoderClsHead'
    assert not set().union(*METHOD_KEYS.values()) & set(base['model']['head'])
    for method, keys in METHOD_KEYS.items():
        cfg = Config.fromfile(str(REPO / f'configs/baselines/{method}_demo.py'))
        demo = cfg.to_dict()
        head = demo['model']['head']
        assert set(head) - set(base['model']['head']) == keys, method
        demo['model']['head'] = {key: value for key, value in head.items() if key not in keys}
        assert demo == base, method
        # The demo's own tiny random CLIP: the method trains what it should and nothing else.
        model = MODELS.build(cfg.model)
        trained = [name for name, param in model.named_parameters() if param.requires_grad]
        assert trained and all(TRAINED[method](name) for name in trained), (method, trained)


@pytest.mark.slow
def test_coop_demo_trains_with_two_processes_and_tests(tmp_path):
    work_dir = tmp_path / 'work'
    log = run_tool(['bash', 'tools/dist_train.sh', COOP_DEMO, '2'], work_dir, tmp_path / 'data',
                   ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'], env=dict(PORT=str(free_port())))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    validated = last_metrics(log)
    checkpoint = work_dir / 'epoch_1.pth'
    assert 'head.text_encoder.ctx' in torch.load(checkpoint, map_location='cpu')['state_dict']
    # Tested from the checkpoint (in this process: the tool's own start would double the cost), the numbers are
    # those of the validation at the end of training.
    runner = demo_runner(COOP_DEMO, tmp_path / 'test', tmp_path / 'data', {'load_from': str(checkpoint)})
    tested = {key.split('/')[-1]: value for key, value in runner.test().items()}
    assert tested == pytest.approx(validated, abs=1e-4)
