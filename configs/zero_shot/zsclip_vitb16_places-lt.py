# Zero-shot CLIP ViT-B/16 on Places-LT (see zsclip_vitb16_imagenet-lt.py).
_base_ = ['../lift/lift_vitb16_places-lt.py']

model = dict(
    backbone=dict(light_modules=[], out_projected=True),
    head=dict(
        _delete_=True,
        type='ZeroShotClsHead',
        num_classes=365,
        in_channels=512,
        classnames='data/places-lt/classnames.txt',
        text_init=dict(prompt='ensemble')))
