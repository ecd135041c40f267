# LIFT on CLIP ViT-B/16: frozen encoder + AdaptFormer, cosine head (scale 25) initialised from CLIP's text
# features of "a photo of a {class}.", logit-adjusted loss. The CLIP weights must be named identically for the
# backbone and for the head's text initialisation.
clip_arch = 'ViT-B-16'
clip_pretrained = 'openai'
num_classes = 1000

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='CLIPVisionTransformer',
        arch=clip_arch,
        pretrained=clip_pretrained,
        light_modules=[dict(type='AdaptFormer', bottleneck='auto')],
        num_classes=num_classes),
    head=dict(
        type='CosineClsHead',
        num_classes=num_classes,
        in_channels=768,
        scale=25.,
        text_init=dict(arch=clip_arch, pretrained=clip_pretrained),
        loss=dict(type='LogitAdjustedLoss', tau=1.0)))
