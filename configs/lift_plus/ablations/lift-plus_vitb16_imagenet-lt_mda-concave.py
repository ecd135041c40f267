# MDA-schedule ablation (LIFT+'s scripts/run_mda_func.sh) on ImageNet-LT: the crops' smallest area follows the 'concave'
# schedule, s(t) = sqrt(1 - (1 - t)^2), instead of the convex default; tested with test-time ensembling, like the
# script.
_base_ = ['../lift-plus_vitb16_imagenet-lt_tte.py']

train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MinimalistRandomCrop', scale=224, schedule='concave'),
        dict(type='PackInputs'),
    ]))
