"""The mechanism of light-weight fine-tuning: the sites a light module acts at, the block forward that offers them,
the injection of configured light modules into a stack of blocks, and the sizing rules they share.

Host libraries plug in by saying where a block keeps its weights (:class:`BlockParts`, a :class:`TunableBlock`
subclass beside the backbone that uses it); methods plug in as :class:`LightModule` kinds. Nothing here depends on
a host library.
"""
import copy
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Type, Union

import torch
from mmengine.logging import print_log
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

ActivationFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ParameterFn = Callable[[torch.Tensor, Optional[torch.Tensor]], Tuple[torch.Tensor, Optional[torch.Tensor]]]

# Where a light module can act in :class:`TunableBlock`'s forward. Activation sites are called as
# ``fn(site_input, site_output) -> new site_output``:
ACTIVATION_SITES = (
    'tokens',  # the tokens entering the block (both arguments)
    'ln_1',  # block input -> output of the attention LayerNorm
    'qkv',  # attention LayerNorm output -> fused q, k, v projections (width 3C)
    'attn_out',  # attention-weighted values -> attention output projection
    'ln_2',  # residual stream -> output of the MLP LayerNorm
    'mlp_in',  # MLP LayerNorm output -> first MLP linear (before the activation)
    'mlp_out',  # activated hidden -> second MLP linear
    'mlp_branch',  # residual stream entering the MLP branch -> branch output, before it is added back
)
# Parameter sites are called as ``fn(weight, bias) -> (weight, bias)`` for the block's four linears.
PARAMETER_SITES = ('qkv_params', 'attn_out_params', 'mlp_in_params', 'mlp_out_params')
# The site of a host that is a whole encoder rather than a block (CLIP ResNets): its output feature, called as
# ``fn(feature, feature)``.
OUTPUT_SITES = ('output', )

BlockRange = Union[None, int, Sequence[int]]
LightModuleEntry = Union[dict, str]
# Constructor arguments that the code building light modules passes, never the config.
SUPPLIED_ARGUMENTS = ('context', 'shared')


@dataclass(frozen=True)
class BlockContext:
    """The facts about a transformer that light modules size themselves from.

    Args:
        embed_dims (int): Width of the residual stream.
        mlp_dims (int): Hidden width of the MLP branch.
        num_heads (int): Number of attention heads.
        num_layers (int): Number of transformer blocks of the whole encoder.
        block_index (int): Index of the block the module goes into.
        num_tokens (int): Tokens the encoder feeds its first block (class token and patches; for a text encoder,
            its context length).
        patch_size (Tuple[int, int], optional): Patch size of the encoder; None for a text encoder.
        num_classes (int, optional): Number of classes of the task, needed by ``'auto'`` sizes.
            Defaults to None.
    """
    embed_dims: int
    mlp_dims: int
    num_heads: int
    num_layers: int
    block_index: int
    num_tokens: int
    patch_size: Optional[Tuple[int, int]]
    num_classes: Optional[int] = None


class BlockParts(NamedTuple):
    """The weights of a pre-norm transformer block, whatever library built it."""
    ln_1: nn.Module
    qkv_weight: torch.Tensor
    qkv_bias: Optional[torch.Tensor]
    out_proj: nn.Linear
    num_heads: int
    ls_1: nn.Module
    ln_2: nn.Module
    fc1: nn.Linear
    act: Callable[[torch.Tensor], torch.Tensor]
    fc2: nn.Linear
    ls_2: nn.Module


def auto_bottleneck(context: BlockContext) -> int:
    """LIFT's bottleneck rule, ``2 ** max(0, floor(log2(K / (2 L))))`` for K classes and L blocks."""
    if context.num_classes is None:
        raise ValueError("bottleneck='auto' needs the number of classes: set `num_classes` on the backbone "
                         'or give an integer bottleneck.')
    return 2**max(0, int(math.floor(math.log2(context.num_classes / (2 * context.num_layers)))))


def resolve_bottleneck(bottleneck: Union[int, str], context: BlockContext, kind: str) -> int:
    """Turn a configured bottleneck (an int or ``'auto'``) into a checked width.

    An ``'auto'`` width of 1 (fewer than ``4 L`` classes) is logged as a warning, which MMEngine's logger shows
    once however many blocks it is resolved for.
    """
    if bottleneck == 'auto':
        width = auto_bottleneck(context)
        if width == 1:
            print_log(f"{kind}: bottleneck='auto' is 1 for {context.num_classes} classes and {context.num_layers} "
                      "blocks (LIFT's rule 2 ** max(0, floor(log2(K / 2L))) gives 1 for fewer than "
                      f'{4 * context.num_layers} classes); set an integer `bottleneck` for a wider one.',
                      logger='current', level=logging.WARNING)
        return width
    # type() rather than isinstance(): True is an int to Python, never a width in a config.
    if type(bottleneck) is not int or not 0 < bottleneck <= context.embed_dims:
        raise ValueError(f"{kind}: `bottleneck`={bottleneck!r} must be 'auto' or an int in "
                         f'[1, {context.embed_dims}] (the width of the model).')
    return bottleneck


class LightModule(nn.Module):
    """Base of the light-weight fine-tuning modules injected into transformer blocks.

    A light module says where it acts (:meth:`sites`, see ``ACTIVATION_SITES`` and ``PARAMETER_SITES``) and which
    weights of the host block it makes trainable (:meth:`host_parameters`). Several modules at one site act in
    ascending ``site_order``, which reproduces LIFT's composition whatever the order of the config list.
    """
    # Rank among the modules acting at one site: lowest first (SSF 1, Adapter 2, AdaptFormer 3, as LIFT composes).
    site_order: int = 0
    # True for kinds that act only in the first block of their range (shallow visual prompts).
    first_block_only: bool = False
    # True for kinds built with ``shared``, a dict common to all blocks of one config entry.
    uses_shared_state: bool = False

    def sites(self) -> Dict[str, Union[ActivationFn, ParameterFn]]:
        """The callables this module contributes, by site name."""
        return {}

    def host_parameters(self, host: nn.Module) -> Iterable[nn.Parameter]:
        """Weights of the host block that this kind trains in place."""
        return ()

    def host_modules(self, host: nn.Module) -> Iterable[nn.Module]:
        """Layers of the host that this kind tunes in place and that follow the training mode (BatchNorms update
        their running statistics in training); the rest of the host always runs in eval mode."""
        return ()

    def attach(self, parts: Optional[BlockParts]) -> None:
        """Called once the module is in its host, for kinds that start from the host's weights.

        Args:
            parts (BlockParts, optional): The host block's weights; None for hosts that are not transformer blocks.
        """


class LightModuleContainer(nn.Module):
    """A module that holds light modules (``light_modules``) and runs them at the sites of its forward.

    Subclasses name their sites (``SITES``), say which module holds the weights that light modules tune in place
    (:meth:`light_module_host`) and, for transformer blocks, where those weights are (:meth:`parts`); their forward
    calls :meth:`at_site`. They call :meth:`init_light_modules` once their host is registered, so that the host's
    parameters come first in the module's order (the optimizer's, and so its checkpointed state's).
    """
    SITES: Tuple[str, ...] = ()

    def init_light_modules(self) -> None:
        """Create the empty ``light_modules`` and the per-site lists of callables."""
        self.light_modules = nn.ModuleDict()
        self._site_fns: Dict[str, List[Tuple[int, object]]] = {site: [] for site in self.SITES}

    def light_module_host(self) -> nn.Module:
        """The module whose weights light modules act on."""
        raise NotImplementedError

    def parts(self) -> Optional[BlockParts]:
        """The host's block weights, which :meth:`LightModule.attach` receives; None if the host is no block."""
        return None

    def add_light_module(self, name: str, module: LightModule) -> None:
        """Put ``module`` here under ``name``, at its sites in ``site_order``, and make the host weights it tunes
        trainable."""
        if name in self.light_modules:
            raise ValueError(f'A light module named {name!r} is already in this block: each kind may be listed '
                             'once per block in `light_modules`.')
        module.attach(self.parts())
        fns = module.sites()
        unknown = [site for site in fns if site not in self._site_fns]
        if unknown:
            raise ValueError(f'{name} acts at {unknown}, which {type(self).__name__} does not offer; its sites are '
                             f'{list(self.SITES)}.')
        self.light_modules[name] = module
        for site, fn in fns.items():
            self._site_fns[site].append((module.site_order, fn))
            self._site_fns[site].sort(key=lambda entry: entry[0])
        for param in module.host_parameters(self.light_module_host()):
            param.requires_grad_(True)

    def at_site(self, site: str, site_input: torch.Tensor, site_output: torch.Tensor) -> torch.Tensor:
        """``site_output`` as the light modules acting at ``site`` change it."""
        for _, fn in self._site_fns[site]:
            site_output = fn(site_input, site_output)
        return site_output

    def train_light_modules(self, mode: bool) -> None:
        """Set the light modules, and the host layers they tune in place, to ``mode``."""
        self.light_modules.train(mode)
        host = self.light_module_host()
        for module in self.light_modules.values():
            for layer in module.host_modules(host):
                layer.train(mode)


class TunableBlock(LightModuleContainer):
    """Wraps a frozen pre-norm transformer block and runs it with light modules inside.

    The forward is written once for every host library: fused QKV projection, PyTorch's
    ``scaled_dot_product_attention`` and no layout permutes, which is faster than calling the host's
    ``nn.MultiheadAttention``. Subclasses only say where the host keeps its weights (:meth:`parts`).

    Light modules at the sites after the attention (``attn_out`` to ``mlp_branch``) must act on each token on
    its own: with ``class_token_only`` the block computes them for the class token alone.

    Args:
        block (nn.Module): The host block. Its weights stay where they are (``self.block``).
    """
    SITES = ACTIVATION_SITES + PARAMETER_SITES

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.init_light_modules()

    def parts(self) -> BlockParts:
        raise NotImplementedError

    def light_module_host(self) -> nn.Module:
        """The module whose weights light modules act on."""
        return self.block

    def context(self, num_layers: int, block_index: int, num_tokens: int, patch_size: Optional[Tuple[int, int]],
                num_classes: Optional[int]) -> BlockContext:
        """Sizes of this block, for building light modules."""
        parts = self.parts()
        return BlockContext(embed_dims=parts.out_proj.out_features, mlp_dims=parts.fc1.out_features,
                            num_heads=parts.num_heads, num_layers=num_layers, block_index=block_index,
                            num_tokens=num_tokens, patch_size=patch_size, num_classes=num_classes)

    def _linear(self, site: str, x: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor]) -> torch.Tensor:
        for _, fn in self._site_fns[site + '_params']:
            weight, bias = fn(weight, bias)
        return self.at_site(site, x, F.linear(x, weight, bias))

    def forward(self, x: torch.Tensor, class_token_only: bool = False, causal: bool = False) -> torch.Tensor:
        """Run the block on tokens of shape (batch, tokens, width).

        Args:
            x (torch.Tensor): Tokens, the class token first.
            class_token_only (bool): Return only the class token, shape (batch, 1, width). Every token still
                serves as key and value of the attention, but the output projection and the MLP run for the
                class token alone: in the last block of an encoder whose output is the class token, that skips
                most of the block's work. Defaults to False.
            causal (bool): Causal attention, each token attending to itself and the tokens before it (the mask of
                CLIP's text transformer). It is a flag rather than a mask tensor because light modules at the
                ``tokens`` site may change the number of tokens, so the mask is made for the tokens as they are
                after that site; it is also PyTorch's fastest masked attention. Defaults to False.
        """
        p = self.parts()
        x = self.at_site('tokens', x, x)
        batch, tokens, width = x.shape
        qkv = self._linear('qkv', self.at_site('ln_1', x, p.ln_1(x)), p.qkv_weight, p.qkv_bias)
        q, k, v = qkv.view(batch, tokens, 3, p.num_heads, width // p.num_heads).permute(2, 0, 3, 1, 4)
        if class_token_only:
            q, x = q[:, :, :1], x[:, :1]
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        attended = attended.transpose(1, 2).reshape(batch, q.shape[2], width)
        x = x + p.ls_1(self._linear('attn_out', attended, p.out_proj.weight, p.out_proj.bias))
        hidden = self._linear('mlp_in', self.at_site('ln_2', x, p.ln_2(x)), p.fc1.weight, p.fc1.bias)
        branch = self._linear('mlp_out', p.act(hidden), p.fc2.weight, p.fc2.bias)
        return x + self.at_site('mlp_branch', x, p.ls_2(branch))


def block_indices(blocks: BlockRange, num_layers: int, kind: str) -> range:
    """Which blocks a light module goes into.

    Args:
        blocks (None | int | Sequence[int]): None for every block, an int ``k`` for the last ``k`` blocks,
            or ``[start, end)``, two ints.
        num_layers (int): Number of blocks of the encoder.
        kind (str): Light module type, for error messages.

    Returns:
        range: The indices of the blocks.

    Raises:
        ValueError: If ``blocks`` is none of these forms or lies outside the encoder.
    """
    if blocks is None:
        return range(num_layers)
    # type() rather than isinstance(): True and False are ints to Python, never a block count in a config.
    if type(blocks) is int:
        if not 0 < blocks <= num_layers:
            raise ValueError(f'{kind}: `blocks`={blocks} must be between 1 and {num_layers} (the last k blocks).')
        return range(num_layers - blocks, num_layers)
    if not (isinstance(blocks, (list, tuple)) and len(blocks) == 2 and all(type(end) is int for end in blocks)):
        raise ValueError(f'{kind}: `blocks`={blocks!r} must be None (every block), an int k (the last k blocks, '
                         f'1 <= k <= {num_layers}) or a range [start, end) of two ints with 0 <= start < end <= '
                         f'{num_layers}.')
    start, end = blocks
    if not 0 <= start < end <= num_layers:
        raise ValueError(f'{kind}: `blocks`={list(blocks)} must be a range [start, end) with '
                         f'0 <= start < end <= {num_layers}.')
    return range(start, end)


def registered_light_modules() -> List[str]:
    """Names of the light module types in mmpretrain's MODELS registry."""
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, LightModule))


def light_module_cfg(entry: LightModuleEntry) -> Tuple[dict, Type[LightModule]]:
    """A ``light_modules`` entry as a config dict of its own, and the kind it names.

    Args:
        entry (dict | str): A config with a registered ``type``, or the name of a kind, which takes the kind's
            defaults (``--cfg-options`` cannot write dicts, so ``light_modules=[VPTDeep]`` switches a kind there).

    Returns:
        Tuple[dict, type]: A copy of the config and the :class:`LightModule` subclass.

    Raises:
        TypeError: If ``entry`` is neither a dict nor a str.
        KeyError: If its ``type`` is not a registered light module.
    """
    if isinstance(entry, str):
        entry = dict(type=entry)
    if not isinstance(entry, dict):
        raise TypeError(f'`light_modules` entries must be dicts with a `type`, or names of light modules; got '
                        f'{entry!r}.')
    cfg = copy.deepcopy(dict(entry))
    kind = cfg.get('type')
    module_type = MODELS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(module_type, type) and issubclass(module_type, LightModule)):
        raise KeyError(f'Unknown light module type {kind!r} in `light_modules`; registered light modules: '
                       f'{registered_light_modules()}.')
    return cfg, module_type


def check_light_module_keys(cfg: dict, module_type: Type[LightModule], read_by_caller: Sequence[str]) -> None:
    """Refuse config keys that a light module kind does not take, naming the kind, the keys and its keys.

    The kind's keys are the arguments of its constructor, less those the builder supplies (``context``,
    ``shared``), so every kind is checked alike.

    Args:
        cfg (dict): The light module's config.
        module_type (type): Its kind.
        read_by_caller (Sequence[str]): Keys the caller reads itself, such as ``type`` and ``blocks``.

    Raises:
        TypeError: If ``cfg`` has a key that is neither the kind's nor the caller's.
    """
    parameters = inspect.signature(module_type).parameters.values()
    # A kind that takes **kwargs does not say which keys it reads.
    if any(param.kind is param.VAR_KEYWORD for param in parameters):
        return
    accepted = [*read_by_caller, *(param.name for param in parameters
                                   if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
                                   and param.name not in SUPPLIED_ARGUMENTS)]
    unknown = [key for key in cfg if key not in accepted]
    if unknown:
        name = module_type.__name__
        raise TypeError(
            f'{name} in `light_modules` does not take {unknown}; it takes {accepted}. An entry whose `type` was '
            f'changed (as by --cfg-options model.backbone.light_modules.0.type={name}) keeps the other keys of '
            f'the kind it had: give the whole list instead, as in --cfg-options '
            f'model.backbone.light_modules=[{name}].')


def inject_light_modules(blocks: nn.ModuleList,
                         light_module_cfgs: Sequence[LightModuleEntry],
                         block_type: Type[TunableBlock],
                         num_tokens: int,
                         patch_size: Optional[Tuple[int, int]],
                         num_classes: Optional[int] = None) -> None:
    """Replace every block of ``blocks`` in place by a ``block_type`` holding its light modules.

    Each config is built once per block it covers, with ``context`` (a :class:`BlockContext`) as default
    argument, and for kinds with ``uses_shared_state`` also ``shared``, a dict common to all blocks of that
    config (for state such as a seeded generator drawn from block after block).

    Args:
        blocks (nn.ModuleList): The host's blocks, frozen already.
        light_module_cfgs (Sequence[dict | str]): Light module configs, each with a registered ``type`` and
            optionally ``blocks`` (see :func:`block_indices`), the rest being the module's own arguments; or
            names of kinds, for their defaults.
        block_type (type): The :class:`TunableBlock` subclass that reads the host's block layout.
        num_tokens (int): Tokens entering the first block.
        patch_size (Tuple[int, int], optional): Patch size of the encoder; None for a text encoder.
        num_classes (int, optional): Number of classes, for ``'auto'`` sizes. Defaults to None.

    Raises:
        ValueError: If a config neither acts at a site nor trains host weights in its blocks
            (``BatchNormTuning`` in a transformer).
    """
    num_layers = len(blocks)
    wrapped = [block_type(block) for block in blocks]
    for entry in light_module_cfgs:
        cfg, module_type = light_module_cfg(entry)
        check_light_module_keys(cfg, module_type, ('type', 'blocks'))
        indices = block_indices(cfg.pop('blocks', None), num_layers, module_type.__name__)
        if module_type.first_block_only:
            indices = indices[:1]
        shared = {}
        # A kind acts through its sites or trains host weights; one that does neither here is a config mistake.
        acts = False
        for index in indices:
            default_args = dict(context=wrapped[index].context(num_layers, index, num_tokens, patch_size,
                                                               num_classes))
            if module_type.uses_shared_state:
                default_args['shared'] = shared
            module = MODELS.build(cfg, default_args=default_args)
            wrapped[index].add_light_module(module_type.__name__, module)
            acts = acts or bool(module.sites()) or any(
                True for _ in module.host_parameters(wrapped[index].light_module_host()))
        if not acts:
            raise ValueError(f'{module_type.__name__} in `light_modules` finds nothing to train in the blocks '
                             f'{list(indices)} ({block_type.__name__}): the layers it tunes are not in them. '
                             'Remove it, or choose a kind for this encoder.')
    for index, block in enumerate(wrapped):
        blocks[index] = block
