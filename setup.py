from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name: str) -> list:
    lines = Path(__file__).parent.joinpath('requirements', name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


setup(
    name='lift_mm',
    version='0.1.0',
    description='LIFT (ICML 2024) long-tail fine-tuning of CLIP as an mmpretrain plugin',
    packages=find_packages(include=['lift_mm', 'lift_mm.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
)
