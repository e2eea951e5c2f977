"""absl flags that choose and configure a latency backend (host or adb), shared by the tools.

A tool calls `define_backend_flags(choices)` at its top, then `host_settings_from_flags()`
or `latency_metric_from_flags(spec)` in main. The adb flags mirror AdbSettings.
"""

from absl import flags

from netadapt_tf.latency.adb import AdbBenchmarkBackend, AdbSettings
from netadapt_tf.metrics.adb import AdbLatencyMetric
from netadapt_tf.metrics.host import CLOCKS, HostLatencyMetric, HostSettings
from netadapt_tf.spec import NetworkSpec
from netadapt_tf.tflite import QUANTIZATIONS

FLAGS = flags.FLAGS


def define_backend_flags(choices: tuple[str, ...], default: str = "host") -> None:
    """--backend and the host and adb measurement flags."""
    flags.DEFINE_enum("backend", default, list(choices), "What measures the resource.")
    flags.DEFINE_enum("quantization", "float32", list(QUANTIZATIONS), "TFLite model variant.")
    flags.DEFINE_integer("threads", 1, "Interpreter / benchmark threads.", lower_bound=1)
    flags.DEFINE_integer("num_runs", 50, "Timed runs per measurement.", lower_bound=5)
    flags.DEFINE_integer("warmup_runs", 5, "Untimed runs before timing.", lower_bound=0)
    flags.DEFINE_list("pin_cpus", None, "host: CPUs to pin the measuring thread to, e.g. 1.")
    flags.DEFINE_enum(
        "clock",
        "wall",
        list(CLOCKS),
        "host: 'wall' (perf_counter) or 'thread_cpu' (CPU time of the measuring thread, "
        "steadier on a shared machine; threads=1 only).",
    )
    flags.DEFINE_multi_string("serial", [], "adb: phone serial (repeat for several phones).")
    flags.DEFINE_string(
        "benchmark_binary", "/data/local/tmp/benchmark_model", "adb: benchmark_model on the phone."
    )
    flags.DEFINE_string("taskset", None, "adb: hexadecimal CPU mask for taskset, e.g. f0.")
    flags.DEFINE_string("adb_path", "adb", "adb: the adb executable.")
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


def adb_backend_from_flags() -> AdbBenchmarkBackend:
    if not FLAGS.serial:
        raise ValueError("--backend=adb needs at least one --serial (see `adb devices`)")
    settings = AdbSettings(
        serials=tuple(FLAGS.serial),
        adb_path=FLAGS.adb_path,
        benchmark_binary=FLAGS.benchmark_binary,
        num_threads=FLAGS.threads,
        num_runs=FLAGS.num_runs,
        warmup_runs=FLAGS.warmup_runs,
        taskset_mask=FLAGS.taskset,
    )
    return AdbBenchmarkBackend(settings)


def latency_metric_from_flags(spec: NetworkSpec) -> HostLatencyMetric | AdbLatencyMetric:
    """The host or adb latency metric of `spec` that --backend and its flags describe."""
    if FLAGS.backend == "adb":
        return AdbLatencyMetric(spec, adb_backend_from_flags(), FLAGS.quantization)
    if FLAGS.backend != "host":
        raise ValueError(f"--backend={FLAGS.backend} is not a latency backend (host, adb)")
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
