# AdaptFormer in every block of CLIP's text transformer (bottleneck 4, LIFT+'s l.adaptformer default), classes as "a
# photo of a {class}.", the image encoder frozen. LIFT+'s default recipe: SGD lr 0.02 for 5 epochs at batch 128,
# logit-adjusted loss.
#   python tools/train.py configs/baselines/text-adaptformer_vitb16_places-lt.py
_base_ = [
    '../_base_/models/clip-text-head_vit-b16.py',
    '../_base_/datasets/places-lt_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=365),
    head=dict(
        num_classes=365,
        classnames='data/places-lt/classnames.txt',
        text_light_modules=[dict(type='AdaptFormer', bottleneck=4)]))

# LIFT+'s minimalist data augmentation, on by default in its code, needs its schedule hook.
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
