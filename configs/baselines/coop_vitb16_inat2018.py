# CoOp (Zhou et al., IJCV 2022) on iNaturalist 2018 with CLIP ViT-B/16, as LIFT+ runs it: 4 learnable context vectors
# of the text width, shared by all classes, drawn from N(0, 0.02^2), in front of the class name ("X X X X {class}.");
# the CLIP is frozen. LIFT+'s CoOp recipe: SGD lr 0.002 for 50 epochs at batch 32, logit-adjusted loss, no minimalist
# data augmentation.
#   python tools/train.py configs/baselines/coop_vitb16_inat2018.py
_base_ = [
    '../_base_/models/clip-text-head_vit-b16.py',
    '../_base_/datasets/inat2018_bs128_clip-224.py',
    '../_base_/schedules/coop_sgd_50e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=8142),
    head=dict(
        num_classes=8142,
        classnames='data/inat2018/categories.json',
        context=dict(n_ctx=4, position='end')))

train_dataloader = dict(batch_size=32)
