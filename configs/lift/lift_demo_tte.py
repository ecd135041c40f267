# The offline demo tested with LIFT's test-time ensembling: five crops of 32 px from the image resized to 36 px
# (LIFT's expand of 24 px at 224 px, scaled to the demo's 32 px), logits averaged. Training is lift_demo.py's.
_base_ = ['./lift_demo.py']

tta_model = dict(type='AverageLogitsTTA', chunk_size=256)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiViewCrop', mode='five_crop', crop_size=32, short_edge=36, backend='pillow',
         interpolation='bilinear'),
]
custom_hooks = _base_.custom_hooks + [dict(type='TestTimeEnsembleHook')]
