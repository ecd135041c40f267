# LIFT+'s test-time ensembling at 224 px: LIFT's five crops (the shorter side resized to 224 + 24, the four corner
# crops and the centre crop, logits averaged), resized bicubic. Used by `tools/test.py --tta` and, with
# dict(type='TestTimeEnsembleHook') in custom_hooks, by every test. For images held in memory (CIFAR-100-LT) leave out
# the LoadImageFromFile step: tta_pipeline = _base_.tta_pipeline[1:].
tta_model = dict(type='AverageLogitsTTA', chunk_size=256)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiViewCrop', mode='five_crop', crop_size=224, short_edge=224 + 24, backend='pillow',
         interpolation='bicubic'),
]
