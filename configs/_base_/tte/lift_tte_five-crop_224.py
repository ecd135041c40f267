# LIFT's test-time ensembling (TTE) at 224 px: the shorter side resized to 224 + 24 (LIFT's `expand`), the four
# corner crops and the centre crop of 224 x 224, and the LOGITS of the five views averaged. Used by
# `tools/test.py --tta` and, when the config adds dict(type='TestTimeEnsembleHook') to custom_hooks, by every test.
# Other modes (--cfg-options): tta_pipeline.1.mode=ten_crop, or tta_pipeline.1.mode=random
# tta_pipeline.1.num_views=10 (random resized crops and flips; LIFT's `randaug`). Views are run through the model
# `chunk_size` images at a time.
tta_model = dict(type='AverageLogitsTTA', chunk_size=256)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiViewCrop', mode='five_crop', crop_size=224, short_edge=224 + 24, backend='pillow',
         interpolation='bilinear'),
]
