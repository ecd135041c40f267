# Zero-shot CLIP ViT-B/16 on iNaturalist 2018 (see zsclip_vitb16_imagenet-lt.py).
_base_ = ['../lift/lift_vitb16_inat2018.py']

model = dict(
    backbone=dict(light_modules=[], out_projected=True),
    head=dict(
        _delete_=True,
        type='ZeroShotClsHead',
        num_classes=8142,
        in_channels=512,
        classnames='data/inat2018/categories.json',
        text_init=dict(prompt='ensemble')))
