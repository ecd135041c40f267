# Projection tuning on Places-LT with CLIP ViT-B/16, as LIFT+ runs it: CLIP's visual and text projections trained in
# place, everything else frozen, classes as "a photo of a {class}.". LIFT+'s default recipe: SGD lr 0.02 for 5 epochs
# at batch 128, logit-adjusted loss.
#   python tools/train.py configs/baselines/proj-tuning_vitb16_places-lt.py
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
        tune_image_projection=True,
        tune_text_projection=True))

# LIFT+'s minimalist data augmentation, on by default in its code, needs its schedule hook.
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
