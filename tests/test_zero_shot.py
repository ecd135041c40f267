import subprocess
import sys

import pytest
import torch
from mmpretrain.registry import MODELS
from open_clip.tokenizer import SimpleTokenizer
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch.nn import functional as F

import lift_mm  # noqa: F401
from demo_runs import REPO
from tiny_clip import CLIP_SEED, make_tiny_clip, tiny_clip_arch


def test_zero_shot_logits_follow_clip(clip_file):
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=clip_file, light_modules=[],
                      out_projected=True),
        head=dict(type='ZeroShotClsHead', num_classes=2, in_channels=32, classnames=['tabby_cat', 'dog'],
                  text_init=dict(arch=tiny_clip_arch(), pretrained=clip_file, prompt='ensemble')))).eval()
    clip, tokenizer = make_tiny_clip(seed=CLIP_SEED), SimpleTokenizer(context_length=16)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        text = torch.stack([
            torch.stack([F.normalize(clip.encode_text(tokenizer([t(name)])), dim=-1)[0]
                         for t in OPENAI_IMAGENET_TEMPLATES]).mean(0) for name in ('tabby cat', 'dog')])
        expected = clip.logit_scale.exp() * F.normalize(clip.encode_image(images), dim=-1) @ F.normalize(text, dim=-1).T
        torch.testing.assert_close(model(images, mode='tensor'), expected, rtol=1e-4, atol=1e-4)
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_zero_shot_evaluates_without_checkpoint(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/zero_shot/zsclip_demo.py', '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path / "data"}'],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'long_tail/few' in result.stdout + result.stderr
