# Zero-shot CLIP on the offline demo data (the demo's tiny random CLIP, so expect chance-level accuracy):
#   python tools/test.py configs/zero_shot/zsclip_demo.py
_base_ = ['../lift/lift_demo.py']

model = dict(
    backbone=dict(light_modules=[], out_projected=True),
    head=dict(
        _delete_=True,
        type='ZeroShotClsHead',
        num_classes=10,
        in_channels=32,
        classnames={{_base_.classnames}},
        text_init=dict(prompt='ensemble')))
