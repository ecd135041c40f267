# LIFT+ ablation ladder (LIFT+'s scripts/run_ablation.sh), step 3 of 5 on ImageNet-LT: classifier with semantic (text)
# initialisation + AdaptFormer, trained WITHOUT the minimalist data augmentation: LIFT's random resized crop (area
# 0.08-1, aspect 3/4-4/3) and horizontal flip, bicubic as in LIFT+. No test-time ensembling. Step 4 (+ MDA) is
# ../lift-plus_vitb16_imagenet-lt.py, step 5 (+ TTE) ../lift-plus_vitb16_imagenet-lt_tte.py.
_base_ = ['../lift-plus_vitb16_imagenet-lt.py']

train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs'),
    ]))
# Without MinimalistRandomCrop there is no augmentation schedule to follow.
custom_hooks = [hook for hook in _base_.custom_hooks if hook['type'] != 'AugmentationScheduleHook']
