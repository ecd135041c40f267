# Initialisation ablation (LIFT Table 7) on ImageNet-LT: class weights = normalised mean CLIP feature (frozen
# encoder, no light modules) of each class's training images, instead of text features.
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

# LIFT extracts these features from its plain transform: shorter side to 224, centre crop.
init_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
model = dict(head=dict(text_init=None))
custom_hooks = _base_.custom_hooks + [dict(type='HeadInitHook', method='class_mean', pipeline=init_pipeline)]
