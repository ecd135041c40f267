import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
# What OpenMMLab packages carry under <package>/.mim: MMEngine resolves `_base_ = ['lift_mm::...']` there, mim
# runs `mim train lift_mm CONFIG` with those tools, mmpretrain's model names come from the model index.
MIM_CONTENT = ('configs', 'tools', 'model-index.yml')


def read_requirements(name: str) -> list:
    lines = ROOT.joinpath('requirements', name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


class BuildWithMim(build_py):
    """Copy configs, tools and the model index into ``lift_mm/.mim`` of the built package.

    In the source tree ``lift_mm/.mim`` holds links to them, which serve editable installs; a wheel gets copies.
    """

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, 'lift_mm', '.mim')
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
        for name in MIM_CONTENT:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=ignore)
            else:
                shutil.copy2(source, target / name)


setup(
    name='lift_mm',
    version='0.1.0',
    description='LIFT (ICML 2024) long-tail fine-tuning of CLIP as an mmpretrain plugin',
    license='Apache-2.0',
    packages=find_packages(include=['lift_mm', 'lift_mm.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'tensorboard': read_requirements('tensorboard.txt'),
    },
    cmdclass={'build_py': BuildWithMim},
)
