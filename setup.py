"""Packaging for netadapt_tf (NetAdaptV2 in TensorFlow/Keras)."""

import setuptools

setuptools.setup(
    name="netadapt_tf",
    version="0.1.0",
    description="NetAdaptV2: hardware-aware neural architecture search for mobile",
    packages=setuptools.find_packages(include=["netadapt_tf", "netadapt_tf.*"]),
    python_requires=">=3.10",
    # Lower bounds are the versions this project is tested with.
    install_requires=[
        "tensorflow>=2.21.0",
        "keras>=3.10",
        "numpy>=2.0",
        "absl-py>=2.1",
        "ai-edge-litert>=2.3.0",
        "tensorboard>=2.21.0",
        "tensorflow-datasets>=4.9.10",
        "matplotlib>=3.11.2",
    ],
    extras_require={
        "test": ["pytest>=8.0", "pytest-xdist>=3.6", "ruff>=0.6"],
        "qat": ["tensorflow-model-optimization>=0.8.1", "tf-keras>=2.21.0"],
        "keras_cv": ["keras-cv>=0.9.0"],
    },
)
