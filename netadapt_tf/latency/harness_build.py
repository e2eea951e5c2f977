"""Build the harness app (android_benchmark/) with Gradle where the Android SDK is installed.

`build_harness()` checks what a build needs before starting one (an Android SDK named by
ANDROID_HOME, ANDROID_SDK_ROOT or local.properties; the Gradle wrapper `gradlew`, or a
`gradle` on PATH), runs `assembleDebug assembleDebugAndroidTest` and returns the two APKs
(the app and its instrumented test). Each missing piece is a ValueError saying what to
install; a failed build raises with the end of Gradle's output.
"""

import dataclasses
import os
import pathlib
import shutil
import subprocess
from collections.abc import Mapping

__all__ = ["HarnessApks", "PROJECT_DIR", "build_harness", "find_sdk"]

PROJECT_DIR = pathlib.Path(__file__).resolve().parents[2] / "android_benchmark"
APK = "app/build/outputs/apk/debug/app-debug.apk"
TEST_APK = "app/build/outputs/apk/androidTest/debug/app-debug-androidTest.apk"
TASKS = (":app:assembleDebug", ":app:assembleDebugAndroidTest")


@dataclasses.dataclass(frozen=True)
class HarnessApks:
    """The app (LiteRT and the harness's classes) and the instrumented test that drives it."""

    apk: pathlib.Path
    test_apk: pathlib.Path


def find_sdk(project_dir: pathlib.Path, env: Mapping[str, str]) -> pathlib.Path | None:
    """The Android SDK a Gradle build would use: ANDROID_HOME, ANDROID_SDK_ROOT, or sdk.dir
    of local.properties in the project."""
    for name in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        if env.get(name):
            return pathlib.Path(env[name])
    properties = project_dir / "local.properties"
    if properties.is_file():
        for line in properties.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "sdk.dir" and value.strip():
                return pathlib.Path(value.strip().replace("\\:", ":").replace("\\\\", "\\"))
    return None


def build_harness(
    project_dir: str | os.PathLike = PROJECT_DIR,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 3600.0,
) -> HarnessApks:
    """Runs Gradle in `project_dir` and returns the APKs it built."""
    project_dir = pathlib.Path(project_dir)
    env = dict(os.environ if env is None else env)
    if not (project_dir / "settings.gradle.kts").is_file():
        raise ValueError(f"project_dir: {project_dir} holds no settings.gradle.kts")
    sdk = find_sdk(project_dir, env)
    if sdk is None or not (sdk / "platforms").is_dir():
        where = f" ({sdk} has no platforms/)" if sdk is not None else ""
        raise ValueError(
            f"no Android SDK to build the harness with{where}: install one (Android Studio, or "
            "the command-line tools and `sdkmanager 'platforms;android-36' "
            "'build-tools;35.0.0'`) and set ANDROID_HOME, or pass a built --apk and --test_apk"
        )
    wrapper = project_dir / "gradlew"
    if wrapper.is_file() and os.access(wrapper, os.X_OK):
        gradle = str(wrapper)
    elif shutil.which("gradle", path=env.get("PATH")):
        gradle = shutil.which("gradle", path=env.get("PATH"))
    else:
        raise ValueError(
            f"no Gradle to build the harness with: {wrapper} is missing and `gradle` is not on "
            "PATH; run `gradle wrapper --gradle-version 8.13` in android_benchmark/ once with "
            "any Gradle 8 (or open the project in Android Studio)"
        )
    env.setdefault("ANDROID_HOME", str(sdk))
    try:
        done = subprocess.run(
            [gradle, "--no-daemon", *TASKS],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(f"the Gradle build in {project_dir} ran over {timeout_s} s") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise ValueError(
            f"the Gradle build in {project_dir} failed (exit {done.returncode}); it ends:\n{tail}"
        )
    apks = HarnessApks(project_dir / APK, project_dir / TEST_APK)
    for path in (apks.apk, apks.test_apk):
        if not path.is_file():
            raise ValueError(f"the Gradle build in {project_dir} succeeded but wrote no {path}")
    return apks
