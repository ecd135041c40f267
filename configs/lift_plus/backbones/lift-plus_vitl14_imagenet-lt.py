# LIFT+ on ImageNet-LT with CLIP ViT-L/14 (OpenAI weights; 1024-d features). As LIFT+ does, each step of the total batch
# of 128 accumulates the gradients of 4 loader batches of 32 (MMEngine's accumulative_counts), a quarter of the memory.
_base_ = ['../lift-plus_vitb16_imagenet-lt.py']

model = dict(backbone=dict(arch='ViT-L-14'), head=dict(in_channels=1024))
train_dataloader = dict(batch_size=32)
optim_wrapper = dict(accumulative_counts=4)
# --auto-scale-lr scales by the loader batch (32 per GPU), not by the accumulated 128: lr 0.02 belongs to 32.
auto_scale_lr = dict(base_batch_size=32)
