# LIFT+ on CLIP ViT-B/16: LIFT's model (frozen encoder, AdaptFormer with LIFT's bottleneck rule, cosine head of scale 25
# initialised from the text features of "a photo of a {class}.", logit-adjusted loss) with the AdaptFormer
# down-projection initialised as LIFT+ does (Kaiming-uniform, a = sqrt(5)) instead of LIFT's.
_base_ = ['./lift_vit-b16.py']

model = dict(
    backbone=dict(light_modules=[dict(type='AdaptFormer', bottleneck='auto', down_init='kaiming_uniform')]))
