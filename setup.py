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
        "absl-py>=1.4",  # tensorflow-model-optimization 0.8.1 pins absl-py~=1.2
        "ai-edge-litert>=2.3.0",
        "tensorboard>=2.21.0",
        "tensorflow-datasets>=4.9.10",
        "matplotlib>=3.11.2",
    ],
    extras_require={
        "qat": ["tensorflow-model-optimization>=0.8.1", "tf-keras>=2.21.0"],
        "keras_cv": ["keras-cv>=0.9.0"],
        # The tests cover QAT and the keras-cv recipe too.
        "test": [
            "pytest>=8.0",
            "pytest-xdist>=3.6",
            "ruff>=0.6",
            "tensorflow-model-optimization>=0.8.1",
            "tf-keras>=2.21.0",
            "keras-cv>=0.9.0",
        ],
    },
)
