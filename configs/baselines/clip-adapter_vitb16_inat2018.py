# CLIP-Adapter on iNaturalist 2018 with CLIP ViT-B/16, as LIFT+ runs it: a residual bottleneck adapter (LayerNorm,
# down to 4, ReLU, up from zero) on the projected image features and one on the text features of "a photo of a
# {class}."; the CLIP is frozen. LIFT+'s default recipe: SGD lr 0.02 for 5 epochs at batch 128, MDA,
# logit-adjusted loss.
#   python tools/train.py configs/baselines/clip-adapter_vitb16_inat2018.py
_base_ = [
    '../_base_/models/clip-text-head_vit-b16.py',
    '../_base_/datasets/inat2018_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=8142),
    head=dict(
        num_classes=8142,
        classnames='data/inat2018/categories.json',
        clip_adapter=dict(bottleneck=4)))

# LIFT+'s minimalist data augmentation, on by default in its code, needs its schedule hook.
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
