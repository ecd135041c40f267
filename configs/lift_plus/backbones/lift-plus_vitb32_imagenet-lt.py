# LIFT+ on ImageNet-LT with CLIP ViT-B/32 (OpenAI weights; 768-d features, 49 patches at 224 px): LIFT+'s
# backbone config clip_vit_b32 with the ViT-B/16 recipe.
_base_ = ['../lift-plus_vitb16_imagenet-lt.py']

model = dict(backbone=dict(arch='ViT-B-32'))
