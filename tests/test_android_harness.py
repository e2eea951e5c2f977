"""android_benchmark/ on a machine without the Android SDK: javac (JDK 17) compiles the
harness against compile-only stubs of the Android and LiteRT classes it uses
(tests/android_stubs/), its JVM unit tests run under JUnit 4 (Debian's junit4), the core
classes compile alone (so they import nothing from Android), the host driver reads what the
harness's own classes write, and the Gradle and manifest files hold the pins and settings the
driver relies on. javac or JUnit missing is a failure, never a skip: `.ci/run` installs them.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from netadapt_tf.latency import android_app, instrumentation
from netadapt_tf.latency.android_app import AndroidAppBackend, AndroidAppSettings

REPO = pathlib.Path(__file__).resolve().parent.parent
PROJECT = REPO / "android_benchmark"
APP = PROJECT / "app"
MAIN = APP / "src" / "main" / "java"
CORE = MAIN / "org" / "netadapt" / "benchmark" / "core"
STUBS = REPO / "tests" / "android_stubs"
JUNIT = ("/usr/share/java/junit4.jar", "/usr/share/java/hamcrest-core.jar")
JAVA_RELEASE = "8"  # app/build.gradle.kts: JavaVersion.VERSION_1_8


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install openjdk-17-jdk-headless (see .ci/run)"
    return found


def _sources(*roots: pathlib.Path) -> list[str]:
    return sorted(str(p) for root in roots for p in root.rglob("*.java"))


def _javac(out: pathlib.Path, sources: list[str], classpath: list[str] = ()) -> None:
    command = [_tool("javac"), "--release", JAVA_RELEASE, "-Xlint:all", "-Werror", "-d", str(out)]
    if classpath:
        command += ["-cp", os.pathsep.join(map(str, classpath))]
    done = subprocess.run(command + sources, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, pathlib.Path]:
    """The harness (main and androidTest, against the stubs) and its JVM tests, compiled."""
    for jar in JUNIT:
        assert os.path.isfile(jar), f"{jar} is missing: apt-get install junit4 (see .ci/run)"
    root = tmp_path_factory.mktemp("javac")
    app, tests = root / "app", root / "tests"
    _javac(app, _sources(STUBS, MAIN, APP / "src" / "androidTest"), list(JUNIT))
    test_sources = _sources(APP / "src" / "test") + [
        str(REPO / "tests/android_harness/EmitStatus.java")
    ]
    _javac(tests, test_sources, [*JUNIT, app])
    return {"app": app, "tests": tests}


def test_core_classes_compile_without_android_and_avoid_newer_apis(tmp_path):
    # Alone on the classpath: an android.* or LiteRT import would not compile.
    _javac(tmp_path, _sources(CORE))
    # minSdk 24 lacks these JDK 8 APIs (Android added them in API 26); javac cannot tell.
    newer = re.compile(r"java\.nio\.file|java\.time|java\.util\.Base64|String\.join\(")
    for source in _sources(MAIN):
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", pathlib.Path(source).read_text(), flags=re.S)
        assert not newer.search(code), f"{source} uses an API that Android 7 (API 24) lacks"


def test_jvm_unit_tests_of_the_harness_pass(compiled):
    sources = _sources(APP / "src" / "test")
    classes = [
        str(pathlib.Path(s).relative_to(APP / "src" / "test" / "java").with_suffix("")).replace(
            os.sep, "."
        )
        for s in sources
    ]
    expected = sum(pathlib.Path(s).read_text().count("@Test") for s in sources)
    classpath = os.pathsep.join([*JUNIT, str(compiled["app"]), str(compiled["tests"])])
    done = subprocess.run(
        [_tool("java"), "-cp", classpath, "org.junit.runner.JUnitCore", *classes],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"OK ({expected} tests)" in done.stdout, done.stdout[-2000:]


def test_the_driver_reads_what_the_harness_writes(compiled, tmp_path):
    models = []
    inputs = []
    rng = np.random.default_rng(3)
    for name in ("a.tflite", "b.tflite"):
        model = tmp_path / name
        model.write_bytes(b"TFL3 stand-in " + name.encode())
        values = rng.standard_normal((1, 2, 2, 1)).astype(np.float32)
        data = tmp_path / f"{name}.inputs"
        data.write_bytes(values.astype("<f4").tobytes())
        models.append(model)
        inputs.append((data, values))
    results_dir = tmp_path / "results"
    args = [
        f"models={models[0]},{models[1]}",
        f"inputs={inputs[0][0]},{inputs[1][0]}",
        "threads=1,2",
        "num_runs=5",
        "warmup_runs=2",
        f"result_dir={results_dir}",
    ]
    classpath = os.pathsep.join([str(compiled["app"]), str(compiled["tests"])])
    done = subprocess.run(
        [_tool("java"), "-cp", classpath, "EmitStatus", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run = instrumentation.parse_instrumentation(done.stdout)
    results = instrumentation.harness_results(run, "EmitStatus")
    assert [(r["model"], r["threads"]) for r in results] == [
        (str(models[0]), 1),
        (str(models[0]), 2),
        (str(models[1]), 1),
        (str(models[1]), 2),
    ]
    backend = AndroidAppBackend(AndroidAppSettings(serials=("JVM",)))
    for result, (_, values) in zip(
        results, [inputs[0], inputs[0], inputs[1], inputs[1]], strict=True
    ):
        app_run = backend._app_run(result["model"], "JVM", result)
        # Runs take 1, 2, 3, 4, 5, 1, 2, ... ms: first 1, warm-up 2 and 3, timed 4 5 1 2 3.
        assert app_run.measurement.latency_ms == 3.0 and app_run.p90_ms == pytest.approx(4.6)
        assert app_run.measurement.run.first_inference_us == 1000.0
        assert app_run.measurement.run.warmup_avg_us == 2500.0
        assert app_run.init_ms == 2.5 and result["inputs_from_file"] is True
        flat = values.ravel()
        expected = np.array([[flat.sum(dtype=np.float32), flat.max(), flat.min()]], np.float32)
        np.testing.assert_array_equal(app_run.outputs[0], expected)
        written = json.loads(pathlib.Path(result["result_file"]).read_text())
        assert written == result


def _catalog() -> dict[str, dict[str, str]]:
    """libs.versions.toml as {table: {name: value}}: a version's string, a library's module,
    a plugin's id (tomllib would need Python 3.11; the project supports 3.10)."""
    tables: dict[str, dict[str, str]] = {}
    table = None
    text = (PROJECT / "gradle" / "libs.versions.toml").read_text()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if re.fullmatch(r"\[[\w-]+\]", line):
            table = tables.setdefault(line[1:-1], {})
        elif "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            found = re.search(r'(?:module|id) = "([^"]+)"', value) or re.fullmatch(r'"(.*)"', value)
            table[name] = found.group(1)
    return tables


def test_gradle_files_pin_what_the_driver_relies_on():
    catalog = _catalog()
    assert catalog["versions"]["litert"] == "2.3.0"
    assert catalog["versions"]["agp"].startswith("8.")
    libraries = catalog["libraries"]
    assert libraries["litert"] == "com.google.ai.edge.litert:litert"
    assert libraries["litert-gpu"] == "com.google.ai.edge.litert:litert-gpu"
    assert catalog["plugins"]["android-application"] == "com.android.application"
    assert 'version.ref = "litert"' in (PROJECT / "gradle" / "libs.versions.toml").read_text()

    build = (APP / "build.gradle.kts").read_text()
    settings = {
        "applicationId": f'"{android_app.PACKAGE}"',
        "namespace": f'"{android_app.PACKAGE}"',
        "minSdk": "24",
        "versionName": f'"{instrumentation.HARNESS_VERSION}"',
        "testInstrumentationRunner": f'"{android_app.RUNNER}"',
        "sourceCompatibility": f"JavaVersion.VERSION_1_{JAVA_RELEASE}",
    }
    for key, value in settings.items():
        assert re.search(rf"^\s*{key} = {re.escape(value)}$", build, re.M), key
    assert re.search(r'^\s*noCompress \+= "tflite"$', build, re.M)
    assert 'abiFilters += listOf("arm64-v8a", "armeabi-v7a")' in build
    for dependency in ("implementation(libs.litert)", "implementation(libs.litert.gpu)"):
        assert dependency in build
    assert "alias(libs.plugins.android.application)" in build

    assert 'include(":app")' in (PROJECT / "settings.gradle.kts").read_text()
    wrapper = (PROJECT / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    gradle = re.search(r"gradle-(\d+)\.(\d+)(?:\.\d+)?-bin\.zip", wrapper).groups()
    # AGP 8.13 needs Gradle 8.13 or later (its release notes' compatibility table).
    assert catalog["versions"]["agp"] == "8.13.0" and tuple(map(int, gradle)) >= (8, 13)


def test_manifest_and_java_constants_match_the_driver():
    manifest = ET.parse(APP / "src" / "main" / "AndroidManifest.xml").getroot()
    assert "package" not in manifest.attrib  # AGP 8 takes it from `namespace`
    assert manifest.find("application") is not None
    assert manifest.findall("uses-permission") == []
    constants = (CORE / "ResultFormat.java").read_text()
    for name, value in [
        ("FORMAT", f'"{instrumentation.HARNESS_FORMAT}"'),
        ("HARNESS_VERSION", f'"{instrumentation.HARNESS_VERSION}"'),
        ("RESULT_KEY", f'"{instrumentation.RESULT_KEY}"'),
        ("STATUS_CODE", str(instrumentation.RESULT_STATUS_CODE)),
    ]:
        assert re.search(rf"\b{name} = {re.escape(value)};", constants), name
    test_class = android_app.TEST_CLASS.replace(".", "/") + ".java"
    assert (APP / "src" / "androidTest" / "java" / test_class).is_file()
    plan = (CORE / "BenchmarkPlan.java").read_text()
    assert 'Arrays.asList("cpu", "gpu", "nnapi")' in plan and android_app.DELEGATES == (
        "cpu",
        "gpu",
        "nnapi",
    )
