"""Shared test configuration: `--device cuda` runs the device-parametrised tests on a GPU."""
import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", choices=["cpu", "cuda"],
                     help="device for tests that take the `device` fixture")


@pytest.fixture(scope="session")
def device(request):
    dev = request.config.getoption("--device")
    if dev == "cuda":
        import framework
        if not framework.cuda.is_available():
            pytest.skip("--device cuda given but CuPy or a CUDA GPU is not available")
    return dev


@pytest.fixture(autouse=True)
def _seed():
    import framework
    framework.manual_seed(0)
    np.random.seed(0)
    yield


def torch_or_skip():
    return pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
