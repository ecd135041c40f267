"""lift_mm as an installed OpenMMLab package: configs by package name, model names, the wheel, dependencies."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mmpretrain
import numpy as np
import open_clip
import pytest
import yaml
from mmengine.config import Config
from mmpretrain.apis import ModelHub
from packaging.requirements import Requirement

import lift_mm

REPO = Path(__file__).resolve().parents[1]
CONFIG_FOLDERS = ('lift', 'lift_plus', 'zero_shot', 'baselines')

USER_CONFIG = """
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']
custom_imports = dict(imports=['lift_mm'], allow_failed_imports=False)
model = dict(head=dict(loss=dict(_delete_=True, type='LogitAdjustedLoss', tau=1.0)))
custom_hooks = [dict(type='ClassCountsHook')]
val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, ))
test_evaluator = val_evaluator
"""


def config_files(folder: str) -> list:
    return sorted(path.relative_to(REPO).as_posix() for path in (REPO / 'configs' / folder).rglob('*.py'))


def test_user_config_mixes_lift_mm_into_an_mmpretrain_base(tmp_path):
    from mmpretrain.registry import METRICS, MODELS

    from lift_mm.evaluation.metrics import LongTailAccuracy
    from lift_mm.models.losses import LogitAdjustedLoss
    config = tmp_path / 'my_resnet18_cifar10_la.py'
    config.write_text(USER_CONFIG)
    cfg = Config.fromfile(str(config))
    # The base came from mmpretrain's installed configs: its backbone and schedule are there.
    assert cfg.model.backbone == dict(type='ResNet_CIFAR', depth=18, num_stages=4, out_indices=(3, ), style='pytorch')
    assert cfg.train_cfg.max_epochs == 200
    model = MODELS.build(cfg.model)
    assert isinstance(model.head.loss_module, LogitAdjustedLoss)
    assert isinstance(METRICS.build(cfg.val_evaluator), LongTailAccuracy)


def test_lift_mm_base_by_package_name(tmp_path):
    from mmpretrain.registry import MODELS
    config = tmp_path / 'short_demo.py'
    config.write_text("_base_ = ['lift_mm::lift/lift_demo.py']\ntrain_cfg = dict(max_epochs=3)\n")
    cfg = Config.fromfile(str(config))
    reference = Config.fromfile(str(REPO / 'configs' / 'lift' / 'lift_demo.py'))
    assert cfg.train_cfg == dict(reference.train_cfg, max_epochs=3)
    # MMEngine tags every dict of a package base with the package's scope; lift_mm's registries resolve it.
    assert cfg.model['_scope_'] == 'lift_mm'
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == reference.model.backbone.type == 'CLIPVisionTransformer'
    assert model.head.num_classes == 10


def test_missing_package_config_names_the_path(tmp_path):
    config = tmp_path / 'typo.py'
    config.write_text("_base_ = ['lift_mm::lift/lift_dmeo.py']\n")
    with pytest.raises(FileNotFoundError, match=r'\.mim/configs/lift/lift_dmeo\.py'):
        Config.fromfile(str(config))


def test_installed_packages_are_found_without_pkg_resources():
    from lift_mm.utils import get_installed_path, is_installed

    # The distribution name differs from the module name here: the module comes from its top_level.txt.
    assert get_installed_path('open_clip_torch') == os.path.dirname(open_clip.__file__)
    assert get_installed_path('mmpretrain') == os.path.dirname(mmpretrain.__file__)
    assert get_installed_path('lift_mm') == os.path.dirname(lift_mm.__file__)
    assert is_installed('open_clip_torch') and is_installed('mmpretrain')
    assert not is_installed('lift_mm_no_such_package')
    with pytest.raises(ModuleNotFoundError, match="lift_mm_no_such_package is not installed"):
        get_installed_path('lift_mm_no_such_package')


def test_an_install_without_configs_is_named(tmp_path, monkeypatch):
    from lift_mm.utils import package_configs
    monkeypatch.setattr(package_configs, 'MIM_DIR', str(tmp_path / '.mim'))
    monkeypatch.setattr(package_configs, '_model_index_registered', False)
    with pytest.raises(FileNotFoundError, match=r'\.mim/model-index\.yml is missing: this lift_mm was installed '
                       'without its configs'):
        package_configs.register_model_index()


def model_index_configs() -> dict:
    """Config path -> model name of every model in lift_mm's model index."""
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    names = {}
    for metafile in index['Import']:
        for model in yaml.safe_load((REPO / metafile).read_text())['Models']:
            assert model['Config'] not in names, f'{model["Config"]} is listed twice in {metafile}'
            names[model['Config']] = model['Name']
    return names


@pytest.mark.parametrize('folder', CONFIG_FOLDERS)
def test_every_config_is_in_the_model_index_and_its_readme(folder):
    listed = {path: name for path, name in model_index_configs().items() if path.startswith(f'configs/{folder}/')}
    files = config_files(folder)
    assert sorted(listed) == files
    assert all(name == Path(path).stem for path, name in listed.items())
    readme = (REPO / 'configs' / folder / 'README.md').read_text()
    linked = sorted(f'configs/{folder}/{link}' for link in re.findall(r'\]\(([\w/.-]+\.py)\)', readme))
    assert linked == files


def test_mmpretrain_finds_lift_mm_models_by_name():
    from mmpretrain import get_model, inference_model, list_models
    lift_models = list_models('*lift*')
    assert {'lift_demo', 'lift_vitb16_imagenet-lt', 'lift_vitb16_places-lt', 'lift_vitb16_inat2018'} <= set(
        lift_models)
    assert set(list_models('zsclip*')) == {Path(path).stem for path in config_files('zero_shot')}
    assert ModelHub.get('lift_vitb16_imagenet-lt').config.filename == os.path.join(
        os.path.dirname(lift_mm.__file__), '.mim', 'configs', 'lift', 'lift_vitb16_imagenet-lt.py')
    model = get_model('lift_demo')
    assert type(model.backbone).__name__ == 'CLIPVisionTransformer'
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = inference_model('lift_demo', image)
    assert result['pred_scores'].shape == (10, )
    assert result['pred_label'] == int(np.argmax(result['pred_scores']))


def test_built_wheel_carries_configs_tools_and_model_index(tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE', 'model-index.yml'):
        shutil.copy2(REPO / name, source / name)
    for name in ('requirements', 'lift_mm', 'configs', 'tools'):
        shutil.copytree(REPO / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns('__pycache__', '*.egg-info'))
    wheels = tmp_path / 'wheels'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--quiet', '-w',
                    str(wheels), str(source)], check=True, capture_output=True)
    wheel, = wheels.glob('lift_mm-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    expected = {f'lift_mm/.mim/{path}' for path in [*config_files('lift'), *config_files('zero_shot')]}
    expected |= {'lift_mm/.mim/configs/_base_/default_runtime.py', 'lift_mm/.mim/configs/lift/metafile.yml',
                 'lift_mm/.mim/configs/lift/README.md', 'lift_mm/.mim/model-index.yml',
                 'lift_mm/.mim/tools/train.py', 'lift_mm/.mim/tools/test.py', 'lift_mm/.mim/tools/dist_train.sh',
                 'lift_mm/.mim/tools/analysis/plot_long_tail.py'}
    assert expected <= names
    assert not any('__pycache__' in name for name in names)
    # Dependencies are ranges, so installing lift_mm keeps the torch an mmpretrain environment already has.
    requires = [Requirement(req) for req in re.findall(r'^Requires-Dist: (.*)$', metadata, flags=re.M)]
    assert 'torch' in {req.name for req in requires}
    assert not [req for req in requires if any(spec.operator == '==' for spec in req.specifier)]
    assert 'Provides-Extra: tensorboard' in metadata
    assert re.search(r'^License(-Expression)?: Apache-2\.0$', metadata, flags=re.M)

    # Installed from the wheel (not the checkout), `lift_mm::` bases and model names resolve inside the package.
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--quiet', '--target', str(target),
                    str(wheel)], check=True, capture_output=True)
    (tmp_path / 'user.py').write_text("_base_ = ['lift_mm::lift/lift_demo.py']\n")
    probe = ('import lift_mm, mmpretrain; from mmengine.config import Config; '
             "print(lift_mm.__file__); print(Config.fromfile('user.py').model.backbone.type); "
             "print(mmpretrain.apis.ModelHub.get('lift_demo').config.filename)")
    env = {**os.environ, 'PYTHONPATH': str(target)}
    out = subprocess.run([sys.executable, '-c', probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split('\n')
    assert out[:3] == [str(target / 'lift_mm' / '__init__.py'), 'CLIPVisionTransformer',
                       str(target / 'lift_mm' / '.mim' / 'configs' / 'lift' / 'lift_demo.py')]


def read_requirements(name: str) -> list:
    lines = (REPO / 'requirements' / name).read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith('#')]


def test_runtime_requirements_are_ranges_and_the_constraints_pin_them():
    runtime = {req.name: req for req in read_requirements('runtime.txt')}
    pins = {req.name: req for req in read_requirements('constraints.txt')}
    assert {'torch', 'torchvision', 'mmengine', 'mmcv-lite', 'mmpretrain', 'open_clip_torch'} <= set(runtime)
    for name, req in runtime.items():
        operators = {spec.operator for spec in req.specifier}
        assert '>=' in operators and '==' not in operators, f'runtime.txt: {req} should be a range'
        pin, = pins[name].specifier
        assert pin.operator == '==' and req.specifier.contains(pin.version), f'{pins[name]} is outside {req}'
    # The extras are pinned too, so that CI tests what it installs.
    for extra in ('tests.txt', 'tensorboard.txt'):
        for req in read_requirements(extra):
            assert req.name in pins and req.specifier.contains(next(iter(pins[req.name].specifier)).version)


def quick_start_commands() -> list:
    """The commands .ci/run executes: the lines of the first ```bash block after '## Quick start'."""
    text = (REPO / 'README.md').read_text()
    block = text[text.index('## Quick start'):].split('```bash\n', 1)[1].split('```', 1)[0]
    return block.splitlines()


def test_quick_start_installs_the_pinned_versions():
    commands = quick_start_commands()
    assert len(commands) == 2
    for command in commands:
        assert re.match(r'pip install -e (\.|"\.\[tests\]") -c requirements/constraints\.txt && ', command), command


def test_tensorboard_is_an_extra_switched_on_by_the_readme_option():
    from mmengine.config import DictAction
    from mmengine.visualization import TensorboardVisBackend
    from mmpretrain.registry import VISUALIZERS
    assert [req.name for req in read_requirements('tensorboard.txt')] == ['tensorboard']
    readme = (REPO / 'README.md').read_text()
    section = readme[readme.index('## TensorBoard'):]
    assert 'pip install "lift_mm[tensorboard]"' in section
    command = re.search(r'```bash\n(python tools/train\.py .*)\n', section).group(1).split()
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(command[2:])
    cfg = Config.fromfile(str(REPO / args.config))
    cfg.merge_from_dict(args.cfg_options)
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='tensorboard_readme_test', save_dir='unused'))
    assert [type(backend) for backend in visualizer._vis_backends.values()] == [TensorboardVisBackend]


def test_license_and_citation():
    license_text = (REPO / 'LICENSE').read_text()
    assert 'Apache License' in license_text and 'Version 2.0, January 2004' in license_text
    assert "license='Apache-2.0'" in (REPO / 'setup.py').read_text()
    readme = (REPO / 'README.md').read_text()
    assert '[Apache 2.0 license](LICENSE)' in readme
    citation = readme[readme.index('## Citation'):]
    assert 'https://arxiv.org/abs/2309.10019' in citation
    bibtex = re.search(r'```bibtex\n(@inproceedings\{.*?\n\})\n```', citation, flags=re.S).group(1)
    assert 'title     = {Long-Tail Learning with Foundation Model: Heavy Fine-Tuning Hurts}' in bibtex
    assert bibtex in (REPO / 'configs' / 'lift' / 'README.md').read_text()
