# LIFT+ with CLIP ViT-L/14 at 336 px on iNaturalist 2018, tested with five-crop test-time ensembling at 336 px (the
# shorter side resized to 336 + 24), as LIFT+ reports it.
_base_ = ['./lift-plus_vitl14-336_inat2018.py']

tta_model = dict(type='AverageLogitsTTA', chunk_size=256)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiViewCrop', mode='five_crop', crop_size=336, short_edge=336 + 24, backend='pillow',
         interpolation='bicubic'),
]
custom_hooks = _base_.custom_hooks + [dict(type='TestTimeEnsembleHook')]
