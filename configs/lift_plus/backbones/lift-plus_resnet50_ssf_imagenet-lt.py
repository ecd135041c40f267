# LIFT+ on ImageNet-LT with timm's ImageNet-1k ResNet-50 and SSF (a learnt scale and shift) on the pooled output
# feature, as LIFT+ applies SSF to ResNets, instead of bias tuning.
_base_ = ['./lift-plus_resnet50_bitfit_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='SSFOutput')]))
