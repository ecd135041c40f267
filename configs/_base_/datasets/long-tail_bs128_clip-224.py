# LIFT's data recipe for CLIP at 224 px, shared by the *-lt_bs128_clip-224.py configs, which fill in the dataset
# type, data_root and num_classes (this file alone builds no dataset). Training samples every image once per epoch
# (no re-sampling; the long tail is handled by the loss) in batches of 128 on one GPU.
data_preprocessor = dict(
    num_classes=1000,
    # CLIP's RGB mean / std on the 0-255 scale.
    mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
    std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255],
    # LoadImageFromFile decodes to BGR.
    to_rgb=True)

# LIFT uses torchvision on PIL images with bilinear interpolation; the pillow backend resizes alike.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
# LIFT's test transform: resize the short edge to 224 * 8 // 7 = 256 (bilinear) and take the central 224 x 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(split='val', pipeline=test_pipeline, test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(split='test', pipeline=test_pipeline, test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False))

# Overall top-1 / top-5 plus many / medium / few accuracy; the groups come from the dataset's training counts.
val_evaluator = dict(type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
