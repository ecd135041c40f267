# Prompt ablation (LIFT Table 13) on ImageNet-LT: text initialisation from per-class descriptions, each class's
# description features averaged. The file maps each class name to a list of descriptions (LIFT ships one as
# utils/descriptors_imagenet.json).
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(head=dict(text_init=dict(prompt='descriptor', descriptors='data/imagenet-lt/descriptors.json')))
