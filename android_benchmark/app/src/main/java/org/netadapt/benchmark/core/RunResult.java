package org.netadapt.benchmark.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The outcome of one run: its timings, memory and outputs, or the error that stopped it. An
 * error is reported, never a number: the host turns it into a message and measures nothing.
 */
public final class RunResult {
  public final BenchmarkPlan.Run run;
  public final long modelBytes;
  public final String error; // null when the run succeeded
  public final double initMs;
  public final double firstInferenceMs;
  public final double warmupMeanMs;
  public final LatencyStats latency;
  public final ProcessMemory.Snapshot before;
  public final ProcessMemory.Snapshot after;
  public final boolean peakReset;
  public final List<TensorData> inputs;
  public final boolean inputsFromFile;
  public final List<TensorData> outputs;

  private RunResult(Builder builder) {
    run = builder.run;
    modelBytes = builder.modelBytes;
    error = builder.error;
    initMs = builder.initMs;
    firstInferenceMs = builder.firstInferenceMs;
    warmupMeanMs = builder.warmupMeanMs;
    latency = builder.latency;
    before = builder.before;
    after = builder.after;
    peakReset = builder.peakReset;
    inputs = builder.inputs;
    inputsFromFile = builder.inputsFromFile;
    outputs = builder.outputs;
  }

  public boolean ok() {
    return error == null;
  }

  /** Raw bytes of all outputs together. */
  public long outputBytes() {
    long total = 0;
    for (TensorData output : outputs) {
      total += output.numBytes;
    }
    return total;
  }

  /**
   * The result as JSON (ResultFormat). With `inlineLimit` >= 0, output values are included
   * only when their raw bytes fit in it (`outputs_inline` says whether they are).
   */
  public String toJson(String resultFile, long inlineLimit) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("format", ResultFormat.FORMAT);
    json.put("harness_version", ResultFormat.HARNESS_VERSION);
    json.put("model", run.model);
    json.put("delegate", run.delegate);
    json.put("threads", run.threads);
    json.put("use_xnnpack", run.useXnnpack);
    json.put("status", ok() ? "ok" : "error");
    json.put("result_file", resultFile);
    if (!ok()) {
      json.put("error", error);
      return Json.write(json);
    }
    json.put("model_bytes", modelBytes);
    json.put("init_ms", initMs);
    json.put("first_inference_ms", firstInferenceMs);
    json.put("warmup_runs", run.warmupRuns);
    json.put("warmup_mean_ms", run.warmupRuns > 0 ? warmupMeanMs : null);
    json.put("latency_ms", latency.toJson());
    Map<String, Object> memory = new LinkedHashMap<>();
    memory.put("rss_before_kb", before.rssKb);
    memory.put("rss_after_kb", after.rssKb);
    memory.put("peak_rss_kb", after.peakRssKb);
    memory.put("peak_reset", peakReset);
    json.put("memory", memory);
    json.put("inputs_from_file", inputsFromFile);
    List<Object> inputJson = new ArrayList<>();
    for (TensorData input : inputs) {
      inputJson.add(input.toJson(false));
    }
    json.put("inputs", inputJson);
    boolean inline = inlineLimit < 0 || outputBytes() <= inlineLimit;
    json.put("outputs_inline", inline);
    List<Object> outputJson = new ArrayList<>();
    for (TensorData output : outputs) {
      outputJson.add(output.toJson(inline));
    }
    json.put("outputs", outputJson);
    return Json.write(json);
  }

  static final class Builder {
    final BenchmarkPlan.Run run;
    long modelBytes;
    String error;
    double initMs;
    double firstInferenceMs;
    double warmupMeanMs;
    LatencyStats latency;
    ProcessMemory.Snapshot before;
    ProcessMemory.Snapshot after;
    boolean peakReset;
    List<TensorData> inputs = new ArrayList<>();
    boolean inputsFromFile;
    List<TensorData> outputs = new ArrayList<>();

    Builder(BenchmarkPlan.Run run) {
      this.run = run;
    }

    RunResult build() {
      return new RunResult(this);
    }
  }
}
