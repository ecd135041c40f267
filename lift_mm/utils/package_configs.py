"""lift_mm's configs as an OpenMMLab package: ``lift_mm::`` bases and model names.

MMEngine resolves ``_base_ = ['pkg::path/to/config.py']`` from ``<pkg>/.mim/configs`` of the installed package,
and mmpretrain's ``list_models`` / ``get_model`` / ``inference_model`` read ``<pkg>/.mim/model-index.yml``. In a
checkout, ``lift_mm/.mim`` holds links to the repository's ``configs/``, ``tools/`` and ``model-index.yml``; a
built wheel holds copies (see ``setup.py``), so the same paths work in editable and regular installs.

MMEngine 0.10.7 finds installed packages through ``pkg_resources``, which recent setuptools releases no longer
ship; this module gives it the same answers from the standard library's ``importlib.metadata``.
"""
import importlib.util
import os.path as osp
from importlib import metadata

import mmengine.config.config
import mmengine.config.utils
import mmengine.hub.hub
import mmengine.utils
import mmengine.utils.package_utils
from mmpretrain.apis import ModelHub

# The folder MMEngine and mim look into for a package's configs, tools and model index.
MIM_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')
_model_index_registered = False


def _module_name(package: str) -> str:
    """The import name of a distribution (``open_clip_torch`` -> ``open_clip``), or ``package`` itself when no
    installed distribution is called so (a package found on ``sys.path`` only)."""
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return package
    top_level = (distribution.read_text('top_level.txt') or '').split()
    # Wheels built by newer tools carry no top_level.txt; their file list names the packages.
    top_level += sorted({file.parts[0] for file in distribution.files or () if len(file.parts) == 2
                         and file.name == '__init__.py'})
    # Like MMEngine's package2module: the first top-level module.
    return top_level[0] if top_level else package


def is_installed(package: str) -> bool:
    """Whether a package is installed or importable.

    Args:
        package (str): The distribution (pip) name, or an import name.

    Returns:
        bool: True if a distribution of that name is installed or a module of that name can be imported.
    """
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """The folder of an installed package's module, as MMEngine's function of the same name returns it.

    The import system answers, so editable installs give their source folder.

    Args:
        package (str): The distribution (pip) name, or an import name.

    Returns:
        str: The folder holding the package's ``__init__.py``.

    Raises:
        ModuleNotFoundError: If the package is neither installed nor importable.
        RuntimeError: If it is a namespace package (it has no single folder).
    """
    module = _module_name(package)
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ModuleNotFoundError(f'{package} is not installed (no module {module!r} on sys.path).')
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package; it has no single installed folder.')
    return osp.dirname(spec.origin)


def register_config_package() -> None:
    """Let MMEngine resolve ``lift_mm::`` bases and resolve packages without ``pkg_resources``.

    Idempotent. Needs lift_mm to be imported before the config is read, as lift_mm's ``tools/`` do (also when
    run by ``mim train lift_mm``); in your own scripts ``import lift_mm`` before ``Config.fromfile``.
    """
    mmengine.config.utils.MODULE2PACKAGE.setdefault('lift_mm', 'lift_mm')
    # Every module that bound MMEngine's functions by name at import time gets the standard-library ones.
    for module in (mmengine.utils, mmengine.utils.package_utils, mmengine.config.config, mmengine.hub.hub):
        for name, function in (('is_installed', is_installed), ('get_installed_path', get_installed_path)):
            if hasattr(module, name):
                setattr(module, name, function)


def register_model_index() -> None:
    """Add lift_mm's configs to mmpretrain's model names (``list_models``, ``get_model``, ``inference_model``).

    Idempotent: a second call (a reloaded lift_mm) leaves the registered names alone.

    Raises:
        FileNotFoundError: If ``lift_mm/.mim/model-index.yml`` is missing (an install without the configs).
    """
    global _model_index_registered
    if _model_index_registered:
        return
    index = osp.join(MIM_DIR, 'model-index.yml')
    if not osp.isfile(index):
        raise FileNotFoundError(
            f'{index} is missing: this lift_mm was installed without its configs. Reinstall it from a checkout '
            '(pip install . or pip install -e .), which puts configs/, tools/ and model-index.yml under lift_mm/.mim.')
    ModelHub.register_model_index(index, config_prefix=MIM_DIR)
    _model_index_registered = True
