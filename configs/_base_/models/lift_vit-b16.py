# LIFT on CLIP ViT-B/16: frozen encoder + AdaptFormer, cosine head (scale 25) initialised from CLIP's text
# features of "a photo of a {class}.", logit-adjusted loss. The CLIP is named in one place, the backbone
# (`model.backbone.arch`, `pretrained`, `quick_gelu`): CLIPImageClassifier lends the backbone's loaded CLIP to the
# head's text initialisation.
num_classes = 1000

model = dict(
    type='CLIPImageClassifier',
    backbone=dict(
        type='CLIPVisionTransformer',
        arch='ViT-B-16',
        pretrained='openai',
        light_modules=[dict(type='AdaptFormer', bottleneck='auto')],
        num_classes=num_classes),
    head=dict(
        type='CosineClsHead',
        num_classes=num_classes,
        in_channels=768,
        scale=25.,
        text_init=dict(prompt='default'),
        loss=dict(type='LogitAdjustedLoss', tau=1.0)))
