# AdaptFormer in every block of CLIP's text transformer (bottleneck 4, LIFT+'s l.adaptformer default), classes as "a
# photo of a {class}.", the image encoder frozen. LIFT+'s default recipe: SGD lr 0.02 for 5 epochs at batch 128,
# logit-adjusted loss. CIFAR-100 has no class-name file: the head takes the names from the dataset.
#   python tools/train.py configs/baselines/text-adaptformer_vitb16_cifar100-lt-r100.py
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
        text_light_modules=[dict(type='AdaptFormer', bottleneck=4)]))

# LIFT+'s minimalist data augmentation, on by default in its code, needs its schedule hook.
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
