"""Convert a checkpoint of LIFT's reference code to lift_mm: ``python tools/model_converters/lift_to_mm.py SRC DST``.

The result holds the light modules and the head; load it with a lift_mm config that injects the same light
module kinds (printed at the end) into the same CLIP weights, e.g. ``tools/test.py CONFIG DST``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from lift_mm.models.peft import convert_lift_reference, save_converted  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help="checkpoint written by LIFT's Trainer.save_model (checkpoint.pth.tar)")
    parser.add_argument('dst', help='lift_mm checkpoint to write')
    parser.add_argument('--first-tuned-block', type=int, default=0,
                        help='first block of a full fine-tuning restricted to a block range (default 0)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} does not exist')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    try:
        state_dict, kinds = convert_lift_reference(checkpoint, args.first_tuned_block)
    except KeyError as error:
        sys.exit(f'error: {args.src}: {error.args[0]}')
    save_converted(state_dict, kinds, args.dst)
    print(f'Wrote {len(state_dict)} tensors to {args.dst}.')
    print('Use a config with light_modules=' + str([dict(type=kind) for kind in kinds]))


if __name__ == '__main__':
    main()
