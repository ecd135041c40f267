from .multi_view_crop import MultiViewCrop, five_crop_boxes

__all__ = ['MultiViewCrop', 'five_crop_boxes']
