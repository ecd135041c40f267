# MDA-schedule ablation (LIFT+'s scripts/run_mda_func.sh) on ImageNet-LT: the crops' smallest area follows the 'max'
# schedule, s(t) = 1: every crop is the largest square that fits, instead of the convex default; tested with test-time
# ensembling, like the script.
_base_ = ['../lift-plus_vitb16_imagenet-lt_tte.py']

train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MinimalistRandomCrop', scale=224, schedule='max'),
        dict(type='PackInputs'),
    ]))
