"""The harness app (android_benchmark/) as the stand-in adb plays it: install, pm, dumpsys,
pull, and `am instrument -r` output framed as AndroidJUnitRunner frames it.

Synthetic results carry the fields ResultFormat.java/RunResult.java write; the latency is the
model's (`model_latency_us` of the fake adb), so the median is exact and the other numbers
follow from it. Standard library only (see the fake adb).
"""

import base64
import json
import os

KINDS = ("pull", "install", "instrument", "pm_list", "pm_path", "dumpsys")
PACKAGE = "org.netadapt.benchmark"
COMPONENT = f"{PACKAGE}.test/androidx.test.runner.AndroidJUnitRunner"
TEST_CLASS = "org.netadapt.benchmark.ModelBenchmarkTest"
APK_PATH = f"/data/app/~~x1Y2==/{PACKAGE}-a3B4==/base.apk"
RESULT_DIR = f"/sdcard/Android/data/{PACKAGE}/files/netadapt"
ZERO_OUTPUT = {"dtype": "float32", "shape": [1, 4], "base64": base64.b64encode(bytes(16)).decode()}


def _harness(scenario):
    return {"installed": True, "version": "1.0", "abi": "arm64-v8a", **scenario.get("harness", {})}


def _test_status(code, extra=()):
    lines = [
        f"INSTRUMENTATION_STATUS: class={TEST_CLASS}",
        "INSTRUMENTATION_STATUS: current=1",
        "INSTRUMENTATION_STATUS: id=AndroidJUnitRunner",
        "INSTRUMENTATION_STATUS: numtests=1",
        *extra,
        "INSTRUMENTATION_STATUS: test=benchmarkModels",
        f"INSTRUMENTATION_STATUS_CODE: {code}",
    ]
    return lines


def frame(results, failure=None):
    """Raw am instrument output around the harness's status lines (JSON strings)."""
    lines = _test_status(1, [f"INSTRUMENTATION_STATUS: stream=\n{TEST_CLASS}:"])
    for result in results:
        lines += [
            f"INSTRUMENTATION_STATUS: netadapt_result={result}",
            "INSTRUMENTATION_STATUS_CODE: 2",
        ]
    if failure is None:
        lines += _test_status(0, ["INSTRUMENTATION_STATUS: stream=."])
        lines += ["INSTRUMENTATION_RESULT: stream=", "", "Time: 0.52", "", "OK (1 test)", "", ""]
    else:
        stack = f"java.lang.AssertionError: {failure}\n\tat org.junit.Assert.fail(Assert.java:89)"
        lines += _test_status(-2, [f"INSTRUMENTATION_STATUS: stack={stack}"])
        lines += [
            "INSTRUMENTATION_RESULT: stream=",
            "",
            "Time: 0.48",
            "There was 1 failure:",
            f"1) benchmarkModels({TEST_CLASS})",
            stack,
            "",
            "FAILURES!!!",
            "Tests run: 1,  Failures: 1",
            "",
            "",
        ]
    lines.append("INSTRUMENTATION_CODE: -1")
    return "\n".join(lines)


def _arguments(tokens):
    args = {}
    index = tokens.index("instrument") + 1
    while index < len(tokens):
        if tokens[index] == "-e":
            args[tokens[index + 1]] = tokens[index + 2]
            index += 3
        else:
            index += 1
    return args


def _result(scenario, run, on_phone, latency_us):
    model, delegate, threads, args = run
    name = f"{os.path.basename(model)}.{delegate}.t{threads}.json"
    result_file = f"{args.get('result_dir', RESULT_DIR)}/{name}"
    head = {
        "format": "netadapt_tf.android_benchmark/1",
        "harness_version": _harness(scenario)["version"],
        "model": model,
        "delegate": delegate,
        "threads": threads,
        "use_xnnpack": args.get("use_xnnpack", "true") == "true",
    }
    path = on_phone(scenario, model)
    error = scenario.get("model_error")
    if not os.path.isfile(path):
        error = f"java.io.IOException: cannot read model {model} (no such file)"
    median = None
    if error is None:
        with open(path, "rb") as handle:
            median = latency_us(scenario, handle.read())
        if median is None:
            error = (
                f"java.lang.IllegalArgumentException: Contents of {model} does not encode a "
                "valid TensorFlow Lite model: The model is not a valid Flatbuffer buffer"
            )
    if error is not None:
        return {**head, "status": "error", "result_file": result_file, "error": error}
    ms = median / 1000.0
    runs = int(args.get("num_runs", "50"))
    outputs = scenario.get("outputs", [ZERO_OUTPUT])
    raw = sum(len(base64.b64decode(o["base64"])) for o in outputs)
    inline = raw <= scenario.get("inline_limit", 64 * 1024)
    full = {
        **head,
        "status": "ok",
        "result_file": result_file,
        "model_bytes": os.path.getsize(path),
        "init_ms": 1.5,
        "first_inference_ms": ms * 3,
        "warmup_runs": int(args.get("warmup_runs", "5")),
        "warmup_mean_ms": ms * 1.1,
        "latency_ms": {
            "count": runs,
            "median": ms,
            "mean": ms + 0.002,
            "p90": ms * 1.05,
            "min": ms * 0.98,
            "max": ms * 1.2,
            "std": 0.003,
        },
        "memory": {
            "rss_before_kb": 51200,
            "rss_after_kb": 60416,
            "peak_rss_kb": 61440,
            "peak_reset": True,
        },
        "inputs_from_file": "inputs" in args,
        "inputs": [{"name": "serving_default_x:0", "dtype": "float32", "shape": [1, 16, 16, 3]}],
        "outputs_inline": True,
        "outputs": outputs,
    }
    target = on_phone(scenario, result_file)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(full, handle)
    if inline:
        return full
    trimmed = [{k: v for k, v in o.items() if k != "base64"} for o in outputs]
    return {**full, "outputs_inline": False, "outputs": trimmed}


def _instrument(scenario, tokens, on_phone, latency_us):
    args = _arguments(tokens)
    models = args.get("models", "").split(",")
    recorded = scenario.get("instrument_output", "synthetic")
    if recorded != "synthetic":
        with open(recorded, encoding="utf-8") as handle:
            text = handle.read()
        result_file = f"{RESULT_DIR}/{os.path.basename(models[0])}.cpu.t1.json"
        return 0, text.replace("@MODEL@", models[0]).replace("@RESULT_FILE@", result_file)
    results = []
    for model in models:
        for delegate in args.get("delegates", "cpu").split(","):
            for threads in args.get("threads", "1").split(","):
                run = (model, delegate, int(threads), args)
                results.append(_result(scenario, run, on_phone, latency_us))
    errors = [
        f"{r['model']} ({r['delegate']}, {r['threads']}): {r['error']}"
        for r in results
        if r["status"] != "ok"
    ]
    text = frame(
        [json.dumps(r, separators=(",", ":")) for r in results],
        f"runs failed: {errors}" if errors else None,
    )
    return 0, text


def answer(scenario, kind, args, tokens, on_phone, latency_us):
    """(exit status, stdout) of one call of a harness kind."""
    harness = _harness(scenario)
    if kind == "install":
        local = args[-1]
        if not os.path.isfile(local):
            return 1, f"adb: failed to stat {local}: No such file or directory"
        if scenario.get("install_error"):
            failure = f"adb: failed to install {local}: {scenario['install_error']}"
            return 1, f"Performing Streamed Install\n{failure}"
        return 0, "Performing Streamed Install\nSuccess"
    if kind == "pull":
        remote, local = args[1], args[2]
        source = on_phone(scenario, remote)
        if not os.path.isfile(source):
            return 1, f"adb: error: failed to stat remote object '{remote}': No such file"
        with open(source, "rb") as src, open(local, "wb") as dst:
            dst.write(src.read())
        return 0, f"{remote}: 1 file pulled, 0 skipped."
    if kind == "pm_list":
        if not harness["installed"]:
            other = "com.android.shell.tests/androidx.test.runner.AndroidJUnitRunner"
            return 0, f"instrumentation:{other} (target=com.android.shell)"
        return 0, f"instrumentation:{COMPONENT} (target={PACKAGE})"
    if kind == "pm_path":
        return (0, f"package:{APK_PATH}") if harness["installed"] else (1, "")
    if kind == "dumpsys":
        if not harness["installed"]:
            return 0, f"Unable to find package: {PACKAGE}"
        return 0, "\n".join(
            [
                "Packages:",
                f"  Package [{PACKAGE}] (5e1c2f0):",
                "    userId=10243",
                f"    codePath={os.path.dirname(APK_PATH)}",
                f"    primaryCpuAbi={harness['abi']}",
                "    secondaryCpuAbi=null",
                "    versionCode=1 minSdk=24 targetSdk=36",
                f"    versionName={harness['version']}",
            ]
        )
    return _instrument(scenario, tokens, on_phone, latency_us)
