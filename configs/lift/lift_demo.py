# Offline demo of the whole LIFT pipeline: a tiny randomly initialised CLIP ViT (fixed seed; the head's text
# initialisation takes the backbone's) on a generated 10-class long-tailed image set, written to
# data/lift-demo on first use. Trains and tests on 2 CPU cores in about a minute and reports many / medium / few.
_base_ = [
    '../_base_/models/lift_vit-b16.py',
    '../_base_/datasets/lift-demo_bs32_32px.py',
    '../_base_/schedules/lift_sgd_10e.py',
    '../_base_/default_runtime.py',
]

tiny_clip = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, patch_size=8, head_width=32),
    text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=2))
# The names SyntheticLongTail gives its 10 classes (its class-name file only exists once the data is generated,
# after the model is built).
classnames = [
    'red_square', 'orange_circle', 'yellow_triangle', 'green_cross', 'cyan_stripes', 'blue_square',
    'purple_circle', 'pink_triangle', 'white_cross', 'brown_stripes'
]
# `_delete_` replaces the base's architecture name by this config dict instead of merging into it.
model = dict(
    backbone=dict(arch=dict(_delete_=True, **tiny_clip), pretrained=None, num_classes=10),
    head=dict(
        num_classes=10,
        in_channels=64,
        classnames=classnames))

train_cfg = dict(val_interval=5)
default_hooks = dict(logger=dict(interval=5))
