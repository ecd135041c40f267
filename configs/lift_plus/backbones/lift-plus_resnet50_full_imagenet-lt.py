# LIFT+ on ImageNet-LT with timm's ImageNet-1k ResNet-50, all weights of layer1..layer4 fine-tuned (LIFT+'s full
# fine-tuning of ResNets), at the recipe's lr 0.02.
_base_ = ['./lift-plus_resnet50_bitfit_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='FullFineTuning', within=_base_.stages)]))
