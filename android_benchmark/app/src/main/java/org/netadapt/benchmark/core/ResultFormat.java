package org.netadapt.benchmark.core;

/**
 * The contract between this harness and the host driver (netadapt_tf/latency/android_app.py).
 *
 * <p>Every (model, delegate, thread count) run is reported as one JSON object: through
 * Instrumentation.sendStatus with {@link #STATUS_CODE} under {@link #RESULT_KEY}, which `am
 * instrument -r` prints as an {@code INSTRUMENTATION_STATUS: netadapt_result=...} line, and as a
 * file in the result directory. The host refuses results of another format or harness version,
 * so change {@link #FORMAT} when a field changes meaning and {@link #HARNESS_VERSION} (equal to
 * the app's versionName) with every release.
 */
public final class ResultFormat {
  public static final String FORMAT = "netadapt_tf.android_benchmark/1";
  public static final String HARNESS_VERSION = "1.0";
  /** Android's code for a custom status sent while a test runs ("in progress"). */
  public static final int STATUS_CODE = 2;

  public static final String RESULT_KEY = "netadapt_result";
  /**
   * Raw output bytes above which the status line carries the outputs' shapes but not their
   * values (they stay in the result file): a status travels in one binder transaction.
   */
  public static final int INLINE_OUTPUT_LIMIT = 64 * 1024;

  private ResultFormat() {}
}
