# LIFT+ on ImageNet-LT with CLIP ViT-B/16 (OpenAI weights): LIFT's model with LIFT+'s AdaptFormer initialisation,
# minimalist data augmentation (MDA, convex schedule) and bicubic resizing, SGD lr 0.02 for 5 epochs at batch 128.
# Tested without test-time ensembling; lift-plus_vitb16_imagenet-lt_tte.py adds it. Data layout and offline CLIP
# weights: as for LIFT (README, "Running LIFT on ImageNet-LT").
_base_ = [
    '../_base_/models/lift-plus_vit-b16.py',
    '../_base_/datasets/imagenet-lt_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(classnames='data/imagenet-lt/classnames.txt'))
# Tells MinimalistRandomCrop, in every data-loader worker, how far training is.
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
