"""Fixtures shared across the suite: a throwaway model manifest and per-test user folders."""

from __future__ import annotations

import os

import pytest

from onnx_kit import standard_set


@pytest.fixture()
def kit(tmp_path, monkeypatch):
    """Register the small real ONNX models of onnx_kit (cnn, sigma, up2, temporal3, mult4) for this test,
    with the user's config folder redirected so nothing touches the real one."""
    manifest = standard_set(tmp_path / "kit")
    monkeypatch.setenv("VDIFF_MANIFEST", str(manifest))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    return manifest


@pytest.fixture()
def kit_env(kit, tmp_path):
    """Environment for vdiff subprocesses: the kit manifest and private user folders."""
    env = dict(os.environ)
    env.update(VDIFF_MANIFEST=str(kit), VDIFF_CONFIG_DIR=str(tmp_path / "config"),
               VDIFF_DATA_DIR=str(tmp_path / "data"), VDIFF_LOG_DIR=str(tmp_path / "log"))
    return env
