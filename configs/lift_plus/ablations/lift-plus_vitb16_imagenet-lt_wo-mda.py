# LIFT+ ablation ladder (LIFT+'s scripts/run_ablation.sh), step 3 of 5 on ImageNet-LT: classifier with semantic (text)
# initialisation + AdaptFormer, trained WITHOUT the minimalist data augmentation: LIFT's random resized crop and
# horizontal flip, bicubic as in LIFT+ (../../_base_/datasets/long-tail_lift-plus-224_wo-mda.py). No test-time
# ensembling. Step 4 (+ MDA) is ../lift-plus_vitb16_imagenet-lt.py, step 5 (+ TTE)
# ../lift-plus_vitb16_imagenet-lt_tte.py.
_base_ = ['../lift-plus_vitb16_imagenet-lt.py', '../../_base_/datasets/long-tail_lift-plus-224_wo-mda.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline_wo_mda))
# Without MinimalistRandomCrop there is no augmentation schedule to follow.
custom_hooks = [hook for hook in _base_.custom_hooks if hook['type'] != 'AugmentationScheduleHook']
