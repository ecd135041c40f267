import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from tiny_clip import make_tiny_clip, save_open_clip_checkpoint, save_openai_archive, tiny_clip_arch

from lift_mm.models.utils import build_open_clip, resolve_quick_gelu


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _activation(model: torch.nn.Module) -> type:
    return type(model.visual.transformer.resblocks[0].mlp.gelu)


def test_random_weights_are_identical_across_builds():
    assert _same_weights(build_open_clip(tiny_clip_arch()), build_open_clip(tiny_clip_arch()))


def test_loads_open_clip_checkpoint_file(tmp_path):
    source = make_tiny_clip(seed=3)
    path = save_open_clip_checkpoint(source, tmp_path / 'tiny.pt')
    model = build_open_clip(tiny_clip_arch(), path)
    assert _same_weights(model, source)
    assert _activation(model) is not QuickGELU


def test_openai_archive_loads_with_quick_gelu(tmp_path):
    source = make_tiny_clip(seed=4, quick_gelu=True)
    path = save_openai_archive(source, tmp_path / 'ViT-tiny.pt')
    model = build_open_clip(tiny_clip_arch(), path)
    assert _same_weights(model, source)
    assert _activation(model) is QuickGELU
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(image), source.encode_image(image))


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
