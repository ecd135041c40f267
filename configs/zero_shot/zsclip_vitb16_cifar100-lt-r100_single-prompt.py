# Zero-shot CLIP ViT-B/16 on CIFAR-100-LT (ratio 100, its balanced test set) as LIFT's and LIFT+'s papers report it:
# one prompt, "a photo of a {}.", instead of CLIP's 80 ImageNet templates (zsclip_vitb16_cifar100-lt-r100.py). No
# training:
#   python tools/test.py configs/zero_shot/zsclip_vitb16_cifar100-lt-r100_single-prompt.py
_base_ = ['./zsclip_vitb16_cifar100-lt-r100.py']

model = dict(head=dict(text_init=dict(prompt='default')))
