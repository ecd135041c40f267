# LIFT on CLIP ResNet-50: bias tuning of the frozen encoder; its attention-pooled output (1024-d) is already in
# CLIP's joint space, so the head's text initialisation (from this backbone's CLIP) needs no projection.
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(
    backbone=dict(_delete_=True, type='CLIPResNet', arch='RN50', pretrained='openai',
                  light_modules=[dict(type='BitFit')]),
    head=dict(in_channels=1024))
