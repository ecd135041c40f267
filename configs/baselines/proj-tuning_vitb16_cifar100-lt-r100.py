# Projection tuning on CIFAR-100-LT (ratio 100) with CLIP ViT-B/16, as LIFT+ runs it: CLIP's visual and text
# projections trained in place, everything else frozen, classes as "a photo of a {class}.". LIFT+'s default recipe:
# SGD lr 0.02 for 5 epochs at batch 128, logit-adjusted loss. CIFAR-100 has no class-name file: the head takes the
# names from the dataset.
#   python tools/train.py configs/baselines/proj-tuning_vitb16_cifar100-lt-r100.py
_base_ = [
    '../_base_/models/clip-text-head_vit-b16.py',
    '../_base_/datasets/cifar100-lt_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=100),
    head=dict(
        num_classes=100,
        classnames=dict(type='CIFAR100LT', data_root='data/cifar100', split='test'),
        tune_image_projection=True,
        tune_text_projection=True))

# LIFT+'s minimalist data augmentation, on by default in its code, needs its schedule hook.
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
