import subprocess
import sys

from mmpretrain.registry import MODELS

import lift_mm  # noqa: F401
from lift_mm.models.utils import count_parameters
from demo_runs import REPO
from tiny_clip import tiny_clip_arch

WIDTH, LAYERS = 64, 2


def test_counts_per_kind_include_host_weights_tuned_in_place():
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='CLIPVisionTransformer', arch=tiny_clip_arch(), pretrained=None, num_classes=10,
                      light_modules=[dict(type='AdaptFormer', bottleneck=4), dict(type='BitFit')]),
        head=dict(type='CosineClsHead', num_classes=10, in_channels=WIDTH)))
    counts = count_parameters(model)
    adaptformer = LAYERS * (2 * WIDTH + (WIDTH * 4 + 4) + (4 * WIDTH + WIDTH) + 1)
    # Biases of a CLIP block: qkv (3C), attention out (C), two LayerNorms (C each), MLP in (4C) and out (C).
    bitfit = LAYERS * (3 * WIDTH + WIDTH + 2 * WIDTH + 4 * WIDTH + WIDTH)
    assert counts['AdaptFormer'] == adaptformer
    assert counts['BitFit'] == bitfit
    assert counts['head'] == 10 * WIDTH
    assert counts['trainable'] == adaptformer + bitfit + 10 * WIDTH
    assert counts['total'] == sum(p.numel() for p in model.parameters())


def test_count_params_tool_prints_the_demo_model_without_data():
    result = subprocess.run([sys.executable, 'tools/analysis/count_params.py', 'configs/lift/lift_demo.py'],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Demo: 10 classes, 2 blocks, so bottleneck 'auto' = 2 ** floor(log2(10 / 4)) = 2.
    adaptformer = LAYERS * (2 * WIDTH + (WIDTH * 2 + 2) + (2 * WIDTH + WIDTH) + 1)
    assert f'AdaptFormer{adaptformer:>23,}' in result.stdout
    assert f'head{10 * WIDTH:>30,}' in result.stdout
