# Zero-shot CLIP ViT-B/16 on CIFAR-100-LT (its balanced test set; see zsclip_vitb16_imagenet-lt.py).
_base_ = ['../lift/lift_vitb16_cifar100-lt-r100.py']

model = dict(
    backbone=dict(light_modules=[], out_projected=True),
    head=dict(
        _delete_=True,
        type='ZeroShotClsHead',
        num_classes=100,
        in_channels=512,
        classnames=dict(type='CIFAR100LT', data_root='data/cifar100', split='test'),
        text_init=dict(prompt='ensemble')))
