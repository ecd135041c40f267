"""Print total and trainable parameters per light-module kind: ``python tools/analysis/count_params.py CONFIG``.

Counting needs only the architecture, so the foundation weights are not loaded (``pretrained`` and pretrained
``init_cfg`` are dropped) and nothing is downloaded.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import lift_mm  # noqa: E402,F401
from lift_mm.models.utils import count_parameters, format_parameter_counts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    backbone = cfg.model.get('backbone', {})
    if 'pretrained' in backbone:
        backbone.pretrained = None
    backbone.pop('init_cfg', None)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    print(format_parameter_counts(count_parameters(MODELS.build(cfg.model))))


if __name__ == '__main__':
    main()
