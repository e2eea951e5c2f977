"""absl flags that choose and configure a latency backend (host or phones), shared by tools.

tools/measure_latency.py calls `define_backend_flags(choices)` (--backend and every flag
below); tools/search.py calls `define_measurement_flags()` and `define_phone_flags()` for
--metric=adb_latency. In main, `host_settings_from_flags()`, `phone_backend_from_flags(kind)`
or `latency_metric_from_flags(spec)` build what the flags describe. Phones: without --serial
the one attached phone is used; --serial=all uses every attached phone.
"""

from absl import flags

from netadapt_tf.latency.adb import AdbBenchmarkBackend, AdbSettings
from netadapt_tf.latency.adb_client import choose_serials
from netadapt_tf.latency.android_app import DELEGATES, AndroidAppBackend, AndroidAppSettings
from netadapt_tf.latency.phones import PhoneBackend
from netadapt_tf.metrics.adb import AdbLatencyMetric
from netadapt_tf.metrics.host import CLOCKS, HostLatencyMetric, HostSettings
from netadapt_tf.metrics.tflite import QUANTIZATIONS
from netadapt_tf.space.spec import NetworkSpec

FLAGS = flags.FLAGS

# How a phone measures: TFLite's benchmark_model binary, or the android_benchmark/ app.
PHONE_BACKENDS = ("benchmark_model", "android_app")


def define_measurement_flags() -> None:
    """The TFLite model variant and how many threads and runs measure it."""
    flags.DEFINE_enum("quantization", "float32", list(QUANTIZATIONS), "TFLite model variant.")
    flags.DEFINE_integer("threads", 1, "Interpreter / benchmark threads.", lower_bound=1)
    flags.DEFINE_integer("num_runs", 50, "Timed runs per measurement.", lower_bound=5)
    flags.DEFINE_integer("warmup_runs", 5, "Untimed runs before timing.", lower_bound=0)


def define_phone_flags() -> None:
    """Which phones, and how adb and the phone backends run (AdbSettings, AndroidAppSettings)."""
    flags.DEFINE_multi_string(
        "serial", [], "Phone serial (repeat for several; 'all': every attached phone)."
    )
    flags.DEFINE_string("adb_path", "adb", "The adb executable.")
    flags.DEFINE_enum("delegate", "cpu", list(DELEGATES), "Phones: TFLite delegate.")
    flags.DEFINE_string(
        "benchmark_binary",
        "/data/local/tmp/benchmark_model",
        "benchmark_model: the binary on the phone.",
    )
    flags.DEFINE_string("taskset", None, "benchmark_model: hexadecimal CPU mask, e.g. f0.")
    flags.DEFINE_integer("adb_retries", 3, "Retries of a phone that drops off.", lower_bound=0)
    flags.DEFINE_float(
        "adb_backoff_s", 1.0, "First wait before a retry (doubles).", lower_bound=0.0
    )
    flags.DEFINE_float("adb_timeout_s", 600.0, "Limit of each adb command.")
    flags.register_validator("adb_timeout_s", lambda v: v > 0, message="must be > 0 (seconds)")


def define_backend_flags(choices: tuple[str, ...], default: str = "host") -> None:
    """--backend and the host and phone measurement flags."""
    flags.DEFINE_enum("backend", default, list(choices), "What measures the resource.")
    define_measurement_flags()
    flags.DEFINE_list("pin_cpus", None, "host: CPUs to pin the measuring thread to, e.g. 1.")
    flags.DEFINE_enum(
        "clock",
        "wall",
        list(CLOCKS),
        "host: 'wall' (perf_counter) or 'thread_cpu' (CPU time of the measuring thread, "
        "steadier on a shared machine; threads=1 only).",
    )
    define_phone_flags()
    flags.register_validator(
        "clock",
        lambda _: FLAGS.clock != "thread_cpu" or FLAGS.threads == 1,
        message="--clock=thread_cpu needs --threads=1",
    )


def host_settings_from_flags() -> HostSettings:
    pin = None if FLAGS.pin_cpus is None else tuple(int(cpu) for cpu in FLAGS.pin_cpus)
    return HostSettings(
        threads=FLAGS.threads,
        warmup_runs=FLAGS.warmup_runs,
        num_runs=FLAGS.num_runs,
        pin_cpus=pin,
        clock=FLAGS.clock,
    )


def phone_backend_from_flags(kind: str) -> PhoneBackend:
    """The phones of --serial (or the one attached) measured by `kind`, a PHONE_BACKENDS name.

    Raises DeviceError when no phone is attached, or several are and none was chosen.
    """
    if kind not in PHONE_BACKENDS:
        raise ValueError(f"phone backend: {kind!r} is not one of {PHONE_BACKENDS}")
    serials = choose_serials(FLAGS.serial, FLAGS.adb_path)
    common = dict(
        serials=serials,
        adb_path=FLAGS.adb_path,
        num_runs=FLAGS.num_runs,
        warmup_runs=FLAGS.warmup_runs,
        retries=FLAGS.adb_retries,
        backoff_s=FLAGS.adb_backoff_s,
        timeout_s=FLAGS.adb_timeout_s,
    )
    if kind == "android_app":
        if FLAGS.taskset:
            raise ValueError(
                "--taskset pins benchmark_model; the harness app runs in an app process that "
                "adb cannot pin (see docs/on_device.md)"
            )
        settings = AndroidAppSettings(**common, delegate=FLAGS.delegate, num_threads=FLAGS.threads)
        return AndroidAppBackend(settings)
    settings = AdbSettings(
        **common,
        benchmark_binary=FLAGS.benchmark_binary,
        num_threads=FLAGS.threads,
        use_gpu=FLAGS.delegate == "gpu",
        use_nnapi=FLAGS.delegate == "nnapi",
        taskset_mask=FLAGS.taskset,
    )
    return AdbBenchmarkBackend(settings)


def latency_metric_from_flags(spec: NetworkSpec) -> HostLatencyMetric | AdbLatencyMetric:
    """The host or phone latency metric of `spec` that --backend and its flags describe
    (--backend=adb: benchmark_model; --backend=android_app: the harness app)."""
    if FLAGS.backend in ("adb", "android_app"):
        kind = "benchmark_model" if FLAGS.backend == "adb" else "android_app"
        return AdbLatencyMetric(spec, phone_backend_from_flags(kind), FLAGS.quantization)
    if FLAGS.backend != "host":
        raise ValueError(
            f"--backend={FLAGS.backend} is not a latency backend (host, adb, android_app)"
        )
    settings = host_settings_from_flags()
    return HostLatencyMetric(
        spec,
        threads=settings.threads,
        warmup_runs=settings.warmup_runs,
        num_runs=settings.num_runs,
        pin_cpus=settings.pin_cpus,
        clock=settings.clock,
        quantization=FLAGS.quantization,
    )
