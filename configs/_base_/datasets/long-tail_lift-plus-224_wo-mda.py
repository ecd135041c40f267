# LIFT+'s training transform when its minimalist data augmentation is off (`mda False`, the ablations of
# scripts/run_ablation.sh): LIFT's random resized crop (area 0.08-1, aspect 3/4-4/3) and horizontal flip, resized
# bicubic as everywhere in LIFT+. A config that inherits this beside its dataset base takes it with
# train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline_wo_mda)) and drops AugmentationScheduleHook,
# which has no MinimalistRandomCrop to schedule then (its own key: MMEngine refuses a key that two bases both set).
train_pipeline_wo_mda = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
