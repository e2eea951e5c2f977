"""Stand-in phones for the adb tests: tests/fake_adb/adb put first on PATH, the scenario it
plays written, and what it was asked to do read back; and a stand-in APK."""

import io
import json
import os
import pathlib
import sys
import zipfile

FAKE_ADB_DIR = pathlib.Path(__file__).resolve().parent / "fake_adb"
PROPS = {
    "ro.build.fingerprint": "google/sailfish/sailfish:10/QP1A.191005.007.A3/5972272:user/rel",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.product.manufacturer": "Google",
    "ro.product.model": "Pixel",
}


def fake_adb_path() -> str:
    """PATH with the stand-in adb first. The fake's `#!/usr/bin/env python3` then finds this
    interpreter's python3."""
    return os.pathsep.join([str(FAKE_ADB_DIR), os.path.dirname(sys.executable), os.environ["PATH"]])


class FakePhones:
    """Writes the fake adb's scenario and reads back what it was asked to do."""

    def __init__(self, tmp_path, monkeypatch):
        self.root = tmp_path / "phone"
        self.root.mkdir()
        self.log = tmp_path / "adb_calls.jsonl"
        self.scenario_path = tmp_path / "scenario.json"
        self.scenario = {
            "log": str(self.log),
            "device_root": str(self.root),
            "devices": {"SER1": "device"},
            "props": PROPS,
            "binary": "ok",
            "benchmark_output": "synthetic",
        }
        self.update()
        monkeypatch.setenv("FAKE_ADB_SCENARIO", str(self.scenario_path))
        monkeypatch.setenv("PATH", fake_adb_path())

    def update(self, **changes):
        self.scenario.update(changes)
        self.scenario_path.write_text(json.dumps(self.scenario), encoding="utf-8")

    def calls(self, kind=None):
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]
        return [call for call in calls if kind is None or call["kind"] == kind]

    def kinds(self):
        return [call["kind"] for call in self.calls()]

    def files_on_phone(self):
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


def fake_apk(directory: pathlib.Path, name: str, abis) -> pathlib.Path:
    """An APK file holding nothing but a manifest and the LiteRT library of each of `abis`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("AndroidManifest.xml", b"\x03\x00")
        for abi in abis:
            archive.writestr(f"lib/{abi}/libtensorflowlite_jni.so", b"\x7fELF")
    path = directory / name
    path.write_bytes(buffer.getvalue())
    return path
