# CLIP ViT-B/16 classifying through its text tower (TextEncoderClsHead), LIFT+'s text-side set-up: the frozen image
# encoder (no light modules) outputs the pre-projection feature; logits are CLIP's logit scale times the cosine of
# the projected image feature and the text features of "a photo of a {class}."; logit-adjusted loss (LIFT+'s "LA").
# With nothing trainable this is zero-shot CLIP; the text-side methods (CoOp, CLIP-Adapter, projection tuning, light
# modules in the text transformer) are options of the head. The CLIP is named once, in the backbone; the
# CLIPImageClassifier lends it to the head.
num_classes = 1000

model = dict(
    type='CLIPImageClassifier',
    backbone=dict(
        type='CLIPVisionTransformer',
        arch='ViT-B-16',
        pretrained='openai',
        light_modules=[],
        num_classes=num_classes),
    head=dict(
        type='TextEncoderClsHead',
        num_classes=num_classes,
        in_channels=768,
        template='a photo of a {}.',
        loss=dict(type='LogitAdjustedLoss', tau=1.0)))
