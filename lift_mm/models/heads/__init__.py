from .cosine_cls_head import CosineClsHead

__all__ = ['CosineClsHead']
