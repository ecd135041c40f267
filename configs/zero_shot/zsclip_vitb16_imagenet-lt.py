# Zero-shot CLIP ViT-B/16 on ImageNet-LT: the projected image feature against the text features of the class names
# in CLIP's 80 ImageNet prompt templates, scaled by CLIP's logit scale. No training:
#   python tools/test.py configs/zero_shot/zsclip_vitb16_imagenet-lt.py
_base_ = ['../lift/lift_vitb16_imagenet-lt.py']

model = dict(
    backbone=dict(light_modules=[], out_projected=True),
    head=dict(
        _delete_=True,
        type='ZeroShotClsHead',
        num_classes=1000,
        in_channels=512,
        classnames='data/imagenet-lt/classnames.txt',
        text_init=dict(prompt='ensemble')))
