"""Entry point of the Bazel py_test targets: runs pytest on the test files given as arguments.

Bazel runs a py_test's `main` as a script, and test files here are plain pytest modules.
"""

import sys

import pytest

if __name__ == "__main__":
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
