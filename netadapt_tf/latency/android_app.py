"""Measure .tflite models inside an app process: the android_benchmark/ harness, over adb.

The harness is an app (LiteRT 2.3.0) with an instrumented test (AndroidJUnitRunner) that
loads each model it is given, runs warm-up and timed runs per delegate and thread count, and
reports median/mean/p90 latency, init time, peak memory and the raw outputs as JSON status
lines (instrumentation.py). `AndroidAppBackend` is its host side, next to the
`benchmark_model` backend (adb.py) and sharing its plumbing (phones.PhoneBackend):

* up front, per phone: adb state, ABI, the harness installed (`pm list instrumentation`), its
  version and native ABI (`dumpsys package`): an x86 emulator that would run the arm64 code
  under binary translation is refused, never measured;
* per measurement: push the model (and an inputs file) under a unique name, run
  `am instrument -w -r`, parse the results into the same `LatencyMeasurement` records as the
  `benchmark_model` backend (the median), pull a result file when the outputs were too big for
  a status line, and remove every pushed and written file, also after a failure;
* retries a phone that drops off USB, spreads models over several phones, gives a lost
  phone's model to another one (PhoneBackend).

`install` puts the two APKs (app and test) on a phone after checking their ABIs against it;
netadapt_tf/latency/harness_build.py builds them with Gradle where the Android SDK is.
"""

import base64
import dataclasses
import json
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from netadapt_tf.latency.adb import LatencyMeasurement
from netadapt_tf.latency.adb_client import DeviceError
from netadapt_tf.latency.benchmark_log import BenchmarkRun
from netadapt_tf.latency.instrumentation import (
    HARNESS_VERSION,
    HarnessError,
    harness_results,
    parse_instrumentation,
)
from netadapt_tf.latency.phones import PhoneBackend, check_retry_settings, existing_file

__all__ = [
    "AndroidAppBackend",
    "AndroidAppSettings",
    "AppRun",
    "HarnessError",
    "apk_abis",
    "check_abi",
]

BACKEND_NAME = "android_app"
PACKAGE = "org.netadapt.benchmark"
TEST_PACKAGE = f"{PACKAGE}.test"
RUNNER = "androidx.test.runner.AndroidJUnitRunner"
TEST_CLASS = "org.netadapt.benchmark.ModelBenchmarkTest"
DELEGATES = ("cpu", "gpu", "nnapi")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AndroidAppSettings:
    """Which phones to use and how the harness runs each model.

    `delegate` and `num_threads` choose the one configuration `measure` reports (the search's
    metric); `AndroidAppBackend.run_model` can run several. `timeout_s` bounds every adb
    command, a whole `am instrument` run included; `retries` and `backoff_s` as in AdbSettings.
    """

    serials: tuple[str, ...]
    adb_path: str = "adb"
    remote_dir: str = "/data/local/tmp"
    delegate: str = "cpu"
    num_threads: int = 1
    num_runs: int = 50
    warmup_runs: int = 5
    use_xnnpack: bool = True
    timeout_s: float = 600.0
    retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self):
        check_retry_settings("AndroidAppSettings", self)
        if self.delegate not in DELEGATES:
            raise ValueError(
                f"AndroidAppSettings.delegate: {self.delegate!r} is not one of {DELEGATES}"
            )
        for name, minimum in (("num_threads", 1), ("num_runs", 1), ("warmup_runs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(
                    f"AndroidAppSettings.{name} must be an int, got {type(value).__name__} "
                    f"{value!r}"
                )
            if value < minimum:
                raise ValueError(f"AndroidAppSettings.{name} must be >= {minimum}, got {value}")
        if not isinstance(self.use_xnnpack, bool):
            raise TypeError(
                f"AndroidAppSettings.use_xnnpack must be a bool, got {self.use_xnnpack!r}"
            )

    def harness_flags(self) -> dict[str, object]:
        """The settings that change what the harness measures, for fingerprints."""
        return {
            "delegate": self.delegate,
            "num_threads": self.num_threads,
            "num_runs": self.num_runs,
            "warmup_runs": self.warmup_runs,
            "use_xnnpack": self.use_xnnpack,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class AppRun:
    """One model with one delegate and thread count, as the harness reported it.

    `measurement` is the record every backend returns (latency = median); `outputs` are the
    phone's output tensors for the inputs it ran on; `result` is the harness's JSON as sent.
    """

    model: str
    delegate: str
    threads: int
    measurement: LatencyMeasurement
    p90_ms: float
    init_ms: float
    memory: Mapping[str, object]
    outputs: tuple[np.ndarray, ...]
    result: Mapping[str, object]

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "delegate": self.delegate,
            "threads": self.threads,
            "latency_ms": self.measurement.latency_ms,
            "p90_ms": self.p90_ms,
            "init_ms": self.init_ms,
            "memory": dict(self.memory),
            "measurement": self.measurement.to_json(),
            "outputs": [{"dtype": str(a.dtype), "shape": list(a.shape)} for a in self.outputs],
        }


def apk_abis(apk: str | os.PathLike) -> frozenset[str]:
    """The ABIs an APK holds native code for (its lib/<abi>/ folders)."""
    try:
        with zipfile.ZipFile(apk) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"apk: {os.fspath(apk)!r} is not an APK (zip) file: {error}") from None
    return frozenset(n.split("/")[1] for n in names if n.startswith("lib/") and n.count("/") >= 2)


def check_abi(serial: str, props: Mapping[str, str], abis: Iterable[str], what: str) -> None:
    """Raises DeviceError unless the phone runs one of `abis` natively.

    An x86 emulator with an ARM translator (`ro.dalvik.vm.native.bridge`) lists arm64-v8a
    among its ABIs but would time the translator, so code for another ABI than its own CPU's
    is refused there.
    """
    abis = sorted(set(abis))
    primary = props["ro.product.cpu.abi"]
    native = [a for a in (props.get("ro.product.cpu.abilist") or primary).split(",") if a]
    emulator = "1" in (props.get("ro.kernel.qemu"), props.get("ro.boot.qemu"))
    kind = f"an emulator with a {primary} CPU" if emulator else f"a {primary} phone"
    if not abis:
        raise DeviceError(f"{what} holds no native code; LiteRT's libraries are missing from it")
    if not set(abis) & set(native):
        raise DeviceError(
            f"{what} holds native code for {abis} but {serial!r} ({kind}, ABIs {native}) runs "
            "none of them; measure on an arm64 phone (the harness is built for arm64-v8a and "
            "armeabi-v7a)"
        )
    bridge = props.get("ro.dalvik.vm.native.bridge", "0")
    if bridge not in ("", "0") and primary not in abis:
        raise DeviceError(
            f"{what} holds native code for {abis} but {serial!r} is {kind}: the code would run "
            f"under binary translation ({bridge}), so its latency says nothing about a phone; "
            "measure on an arm64 phone"
        )


_DUMPSYS_FIELD = re.compile(r"^\s*(versionName|primaryCpuAbi)=(\S*)", re.MULTILINE)


class AndroidAppBackend(PhoneBackend):
    """Measures .tflite files in the harness app on the phones named in `AndroidAppSettings`."""

    def __init__(
        self, settings: AndroidAppSettings, *, sleep: Callable[[float], None] = time.sleep
    ):
        if not isinstance(settings, AndroidAppSettings):
            raise TypeError(f"settings must be AndroidAppSettings, got {type(settings).__name__}")
        super().__init__(settings, sleep=sleep)

    def fingerprint(self) -> dict[str, object]:
        """What is measured and how: the phone, the installed harness and its settings."""
        devices = self.devices()
        return {
            "backend": BACKEND_NAME,
            "device": dict(devices[self._settings.serials[0]]),
            "harness_flags": self._settings.harness_flags(),
            "statistic": "median_ms",
        }

    # -- checks done once per phone -------------------------------------------------------

    def _check_device(self, serial: str) -> dict[str, str | None]:
        props = self._phone_checks(serial)
        _, listed, _ = self._client.shell(serial, ["pm", "list", "instrumentation"])
        component = f"{TEST_PACKAGE}/{RUNNER}"
        if not any(
            component in line and f"target={PACKAGE}" in line for line in listed.splitlines()
        ):
            raise DeviceError(
                f"the benchmark harness is not installed on {serial!r} (`pm list "
                f"instrumentation` has no {component}); install it with `python "
                "tools/android_benchmark.py --build --install_only` where the Android SDK is, "
                "or --apk=... --test_apk=... (docs/on_device.md)"
            )
        _, dumped, _ = self._client.shell(serial, ["dumpsys", "package", PACKAGE])
        fields: dict[str, str] = {}
        for name, value in _DUMPSYS_FIELD.findall(dumped):
            fields.setdefault(name, value)
        version = fields.get("versionName")
        if version != HARNESS_VERSION:
            raise DeviceError(
                f"{serial!r} has harness version {version!r} installed; this driver needs "
                f"{HARNESS_VERSION!r}: build and install the harness of this checkout"
            )
        abi = fields.get("primaryCpuAbi")
        check_abi(serial, props, [] if abi in (None, "null") else [abi], "the installed harness")
        _, paths, _ = self._client.shell(serial, ["pm", "path", PACKAGE])
        apk = next((p[len("package:") :] for p in paths.split() if p.startswith("package:")), None)
        digest = None
        if apk:
            code, out, _ = self._client.shell(serial, ["sha256sum", apk])
            digest = out.split()[0] if code == 0 and out.split() else None
        return {
            "manufacturer": props.get("ro.product.manufacturer"),
            "model": props["ro.product.model"],
            "abi": props["ro.product.cpu.abi"],
            "build_fingerprint": props.get("ro.build.fingerprint"),
            "harness_version": version,
            "harness_abi": abi,
            "harness_apk_sha256": digest,
        }

    # -- measuring ------------------------------------------------------------------------

    def _measure_once(self, path: str, serial: str) -> LatencyMeasurement:
        settings = self._settings
        (run,) = self._run_once(path, serial, (settings.delegate,), (settings.num_threads,), None)
        return run.measurement

    def run_model(
        self,
        path: str | os.PathLike,
        *,
        delegates: Sequence[str] | None = None,
        threads: Sequence[int] | None = None,
        inputs: bytes | None = None,
        serial: str | None = None,
    ) -> list[AppRun]:
        """Runs one model with every delegate and thread count (default: the settings' one),
        on `inputs` (the harness's inputs file layout, output_parity.inputs_file) or on inputs
        the harness generates. Retries a phone that drops off; `serial=None` takes any idle
        phone and moves to another if that one is lost."""
        path = existing_file(path)
        delegates = tuple(delegates or (self._settings.delegate,))
        threads = tuple(threads or (self._settings.num_threads,))
        for delegate in delegates:
            if delegate not in DELEGATES:
                raise ValueError(f"delegates: {delegate!r} is not one of {DELEGATES}")
        for count in threads:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"threads: {count!r} is not an integer >= 1")

        def work(on: str) -> list[AppRun]:
            return self._retrying(
                on, lambda: self._run_once(path, on, delegates, threads, inputs), path
            )

        if serial is None:
            return self._on_any_phone(work)
        return work(self._known_serial(serial))

    def run_models(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        delegates: Sequence[str] | None = None,
        threads: Sequence[int] | None = None,
        inputs: Sequence[bytes | None] | None = None,
    ) -> tuple[list[AppRun], ...]:
        """`run_model` for every model (with `inputs[i]` for model i), one worker per phone;
        results in input order."""
        paths = [existing_file(path) for path in paths]
        inputs = list(inputs) if inputs is not None else [None] * len(paths)
        if len(inputs) != len(paths):
            raise ValueError(f"inputs: {len(inputs)} given for {len(paths)} models")
        if not paths:
            return ()
        self.devices()
        return self._map_on_phones(
            list(zip(paths, inputs, strict=True)),
            lambda item: self.run_model(
                item[0], delegates=delegates, threads=threads, inputs=item[1]
            ),
        )

    def _run_once(self, path, serial, delegates, threads, inputs) -> list[AppRun]:
        remote = self._remote_path(_SAFE_NAME.sub("_", os.path.basename(path)))
        remote_inputs = remote + ".inputs" if inputs is not None else None
        written: list[str] = []
        try:
            self._push(serial, path, remote)
            if inputs is not None:
                with tempfile.TemporaryDirectory(prefix="netadapt_inputs_") as directory:
                    local = os.path.join(directory, "inputs.bin")
                    with open(local, "wb") as handle:
                        handle.write(inputs)
                    self._push(serial, local, remote_inputs)
            words = ["am", "instrument", "-w", "-r", "-e", "class", TEST_CLASS]
            words += ["-e", "models", remote]
            if remote_inputs:
                words += ["-e", "inputs", remote_inputs]
            words += ["-e", "delegates", ",".join(delegates)]
            words += ["-e", "threads", ",".join(str(t) for t in threads)]
            words += ["-e", "warmup_runs", str(self._settings.warmup_runs)]
            words += ["-e", "num_runs", str(self._settings.num_runs)]
            words += ["-e", "use_xnnpack", str(self._settings.use_xnnpack).lower()]
            words.append(f"{TEST_PACKAGE}/{RUNNER}")
            _, out, err = self._client.shell(serial, words)
            where = f"harness on {serial!r} for {path!r}"
            results = harness_results(parse_instrumentation(out + err), where)
            written = [r["result_file"] for r in results if isinstance(r.get("result_file"), str)]
            return self._runs(path, serial, remote, delegates, threads, results)
        finally:
            self._remove(serial, *[p for p in (remote, remote_inputs, *written) if p])

    def _runs(self, path, serial, remote, delegates, threads, results) -> list[AppRun]:
        where = f"harness on {serial!r} for {path!r}"
        expected = [(d, t) for d in delegates for t in threads]
        by_config = {}
        for result in results:
            if result.get("model") != remote:
                raise HarnessError(
                    f"{where}: it reported a model it was not given: {result!r:.300}"
                )
            by_config[(result.get("delegate"), result.get("threads"))] = result
        missing = [config for config in expected if config not in by_config]
        if missing:
            raise HarnessError(
                f"{where}: it reported {len(results)} of the {len(expected)} runs (missing "
                f"delegate/threads {missing}); the test ended without reporting them"
            )
        runs = []
        for delegate, count in expected:
            result = by_config[(delegate, count)]
            if result.get("status") != "ok":
                raise HarnessError(
                    f"{where} ({delegate}, {count} threads): the model failed on the phone: "
                    f"{result.get('error')}{_hint(str(result.get('error')))}"
                )
            runs.append(self._app_run(path, serial, result))
        return runs

    def _app_run(self, path: str, serial: str, result: dict) -> AppRun:
        try:
            latency = result["latency_ms"]
            memory = result["memory"]
            warmup = result["warmup_mean_ms"]
            peak = memory.get("peak_rss_kb")
            run = BenchmarkRun(
                inference_avg_us=latency["mean"] * 1000.0,
                init_us=result["init_ms"] * 1000.0,
                first_inference_us=result["first_inference_ms"] * 1000.0,
                warmup_avg_us=None if warmup is None else warmup * 1000.0,
                median_us=latency["median"] * 1000.0,
                memory_mb=None if peak is None else peak / 1024.0,
                std_us=latency["std"] * 1000.0,
                p90_us=latency["p90"] * 1000.0,
            )
            outputs = result["outputs"]
            if not result["outputs_inline"]:
                outputs = self._pull_result(serial, result["result_file"])["outputs"]
            arrays = tuple(_decode_output(o) for o in outputs)
        except (KeyError, TypeError, ValueError) as error:
            raise HarnessError(
                f"harness on {serial!r} for {path!r}: a result lacks or garbles {error}: "
                f"{json.dumps(result)[:300]}"
            ) from None
        return AppRun(
            model=path,
            delegate=result["delegate"],
            threads=result["threads"],
            measurement=LatencyMeasurement.from_run(run, serial),
            p90_ms=latency["p90"],
            init_ms=result["init_ms"],
            memory=memory,
            outputs=arrays,
            result=result,
        )

    def _pull_result(self, serial: str, remote: str) -> dict:
        with tempfile.TemporaryDirectory(prefix="netadapt_result_") as directory:
            local = os.path.join(directory, "result.json")
            code, out, err = self._client.run(serial, ["pull", remote, local])
            if code != 0 or not os.path.isfile(local):
                raise HarnessError(
                    f"cannot pull the harness result {serial}:{remote}: {(err or out).strip()!r}"
                )
            with open(local, encoding="utf-8") as handle:
                return json.load(handle)

    # -- installing -----------------------------------------------------------------------

    def install(self, apk: str | os.PathLike, test_apk: str | os.PathLike, serial: str) -> None:
        """Installs the app and its test APK on `serial` after checking the app's ABIs."""
        apk, test_apk = existing_file(apk), existing_file(test_apk)
        serial = self._known_serial(serial)
        props = self._phone_checks(serial)
        check_abi(serial, props, apk_abis(apk), f"the APK {apk!r}")
        for path in (apk, test_apk):
            code, out, err = self._client.run(serial, ["install", "-r", "-t", path])
            if code != 0 or "Success" not in out:
                raise DeviceError(
                    f"adb install {path!r} on {serial!r} failed: {(out + err).strip()[-500:]!r}"
                )
        with self._serial_locks[serial]:
            self._devices.pop(serial, None)  # check the new installation on next use


def _decode_output(output: dict) -> np.ndarray:
    data = base64.b64decode(output["base64"], validate=True)
    return np.frombuffer(data, dtype=np.dtype(output["dtype"]).newbyteorder("<")).reshape(
        output["shape"]
    )


def _hint(error: str) -> str:
    if "UnsatisfiedLinkError" in error:
        return " (LiteRT's native library does not load: the APK lacks this phone's ABI)"
    if "cannot read model" in error:
        return " (the pushed model is not readable by the app)"
    if "does not encode a valid" in error or "Could not open" in error:
        return " (LiteRT cannot load this file: is it a .tflite model?)"
    return ""
