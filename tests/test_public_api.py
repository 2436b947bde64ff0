"""The package root exposes the public API of the design, loaded lazily."""

import subprocess
import sys

import ofa_latency_kedro


def test_every_public_name_resolves():
    assert set(ofa_latency_kedro.__all__) == set(ofa_latency_kedro._PUBLIC_API)
    for name in ofa_latency_kedro.__all__:
        assert getattr(ofa_latency_kedro, name) is not None


def test_importing_the_package_does_not_import_torch():
    code = "import sys, ofa_latency_kedro; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
