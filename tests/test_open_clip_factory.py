import hashlib

import huggingface_hub
import open_clip
import pytest
import torch
from mmpretrain.registry import MODELS
from open_clip.transformer import QuickGELU

import lift_mm  # noqa: F401
from lift_mm.models.utils import build_open_clip, resolve_quick_gelu, save_clip_weights
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, save_openai_archive, tiny_clip_arch


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _activation(model: torch.nn.Module) -> type:
    return type(model.visual.transformer.resblocks[0].mlp.gelu)


def _same_image_features(model: torch.nn.Module, source: torch.nn.Module) -> None:
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(image), source.encode_image(image))


def test_random_weights_are_identical_across_builds():
    assert _same_weights(build_open_clip(tiny_clip_arch()), build_open_clip(tiny_clip_arch()))


def test_loads_open_clip_checkpoint_file(tmp_path):
    source = make_tiny_clip(seed=3)
    path = save_open_clip_checkpoint(source, tmp_path / 'tiny.pt', record_activation=False)
    model = build_open_clip(tiny_clip_arch(), path, quick_gelu=False)
    assert _same_weights(model, source)
    assert _activation(model) is not QuickGELU


def test_plain_state_dict_file_without_quick_gelu_is_refused(tmp_path):
    # A plain state dict of OpenAI-style weights: nothing in it says that they need QuickGELU.
    source = make_tiny_clip(seed=13, quick_gelu=True)
    path = save_open_clip_checkpoint(source, tmp_path / 'open_clip_pytorch_model.bin', record_activation=False)
    with pytest.raises(ValueError, match=r'plain state-dict file.*`model.backbone.quick_gelu=True` for '
                                         r"OpenAI's CLIP weights.*`model.backbone.quick_gelu=False`.*LAION"):
        MODELS.build(dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=path, light_modules=[]))
    with pytest.raises(ValueError, match=r'`quick_gelu` is unset'):
        build_open_clip(tiny_clip_arch(), path)
    model = build_open_clip(tiny_clip_arch(), path, quick_gelu=True)
    assert _activation(model) is QuickGELU
    _same_image_features(model, source)


@pytest.mark.parametrize('quick_gelu', [True, False])
def test_file_recording_its_activation_needs_no_quick_gelu(tmp_path, quick_gelu):
    source = make_tiny_clip(seed=14, quick_gelu=quick_gelu)
    path = save_clip_weights(source, str(tmp_path / 'tiny.pth'), quick_gelu=quick_gelu)
    model = build_open_clip(tiny_clip_arch(), path)
    assert (_activation(model) is QuickGELU) == quick_gelu
    assert _same_weights(model, source)
    _same_image_features(model, source)


def test_openai_archive_loads_with_quick_gelu(tmp_path):
    source = make_tiny_clip(seed=4, quick_gelu=True)
    path = save_openai_archive(source, tmp_path / 'ViT-tiny.pt')
    model = build_open_clip(tiny_clip_arch(), path)
    assert _same_weights(model, source)
    assert _activation(model) is QuickGELU
    _same_image_features(model, source)


def test_openai_tag_uses_quick_gelu_and_loads_downloaded_file(tmp_path, monkeypatch):
    assert resolve_quick_gelu('ViT-B-16', 'openai', None) is True
    assert resolve_quick_gelu('ViT-B-16', 'laion2b_s34b_b88k', None) is False
    assert resolve_quick_gelu('ViT-B-16', 'openai', False) is False
    # Stand in for the hub download with a file of the right architecture; everything after is the real path.
    torch.manual_seed(0)
    source = open_clip.create_model('ViT-B-32', force_quick_gelu=True).eval()
    path = save_open_clip_checkpoint(source, tmp_path / 'vit-b-32.pt')
    monkeypatch.setattr(open_clip.factory, 'download_pretrained', lambda *args, **kwargs: path)
    model = build_open_clip('ViT-B-32', 'openai')
    assert _activation(model) is QuickGELU
    assert torch.equal(model.visual.proj, source.visual.proj)


TINY_NAME = 'lift-test-tiny'
HUB_REPO = 'timm/lift_test_tiny.openai'


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty huggingface_hub cache in offline mode, and a tiny architecture whose 'openai' tag open_clip resolves
    through the hub, as it does ViT-B-16's (``hf_hub:timm/vit_base_patch16_clip_224.openai``)."""
    cache = tmp_path / 'hub'
    cache.mkdir()
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HUB_CACHE', str(cache))
    # huggingface_hub reads the environment when imported: set what it read.
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, TINY_NAME, tiny_clip_arch())
    tag = open_clip.pretrained._pcfg(hf_hub=f'{HUB_REPO}/', quick_gelu=True)
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TINY_NAME, dict(openai=tag))
    return cache


def write_hub_cache(cache, repo: str, filename: str, state_dict: dict) -> None:
    """huggingface_hub's cache layout: ``models--ORG--NAME/snapshots/REVISION/FILE``, ``refs/main`` naming the
    revision."""
    revision = hashlib.sha1(repo.encode()).hexdigest()
    folder = cache / f'models--{repo.replace("/", "--")}'
    (folder / 'snapshots' / revision).mkdir(parents=True)
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text(revision)
    torch.save(state_dict, folder / 'snapshots' / revision / filename)


def test_openai_tag_loads_from_the_offline_hub_cache(offline_hub):
    # The hub's timm/*.openai repositories hold plain state dicts; the tag says QuickGELU.
    source = make_tiny_clip(seed=15, quick_gelu=True)
    write_hub_cache(offline_hub, HUB_REPO, 'open_clip_pytorch_model.bin', source.state_dict())
    backbone = MODELS.build(dict(type='CLIPVisionTransformer', arch=TINY_NAME, pretrained='openai', light_modules=[],
                                 out_projected=True))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = source.encode_image(images)
        torch.testing.assert_close(backbone(images)[0], expected)
        # Same weights with exact GELU: a difference this comparison sees.
        assert not torch.allclose(make_tiny_clip(seed=15).encode_image(images), expected, rtol=1e-3, atol=1e-3)


def test_openai_tag_missing_from_the_offline_hub_cache_names_the_key(offline_hub):
    with pytest.raises(RuntimeError, match=r"'lift-test-tiny'/'openai' for `model.backbone.pretrained`.*"
                                           r'set `model.backbone.pretrained` to a local checkpoint file'):
        MODELS.build(dict(type='CLIPVisionTransformer', arch=TINY_NAME, pretrained='openai'))


def test_offline_tag_download_failure_says_how_to_fix(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError('network unreachable')

    monkeypatch.setattr(open_clip.factory, 'download_pretrained', offline)
    with pytest.raises(RuntimeError, match='set `pretrained` to a local checkpoint file.*HF_HUB_OFFLINE=1'):
        build_open_clip('ViT-B-32', 'openai')


@pytest.mark.parametrize('arch, pretrained, error, message', [
    ('ViT-B-99', None, ValueError, "`arch`='ViT-B-99' is not an open_clip model name"),
    ('ViT-B-16', 'no_such_tag', ValueError, "neither an existing file nor an open_clip tag.*'openai'"),
    ('ViT-B-16', '/nonexistent/ViT-B-16.pt', FileNotFoundError, 'no such checkpoint file'),
    (dict(embed_dim=8), None, KeyError, 'lacks the keys'),
])
def test_bad_arch_or_pretrained_fails_at_build(arch, pretrained, error, message):
    with pytest.raises(error, match=message):
        build_open_clip(arch, pretrained)
