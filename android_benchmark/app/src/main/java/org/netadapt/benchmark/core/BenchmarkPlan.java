package org.netadapt.benchmark.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * What one `am instrument` call measures, read from its arguments ({@code -e key value}):
 *
 * <ul>
 *   <li>{@code models}: comma-separated absolute paths of .tflite files on the phone (required);
 *   <li>{@code inputs}: comma-separated raw input files, one per model (optional): each holds
 *       the model's input tensors' bytes back to back, in input order;
 *   <li>{@code delegates}: comma-separated, from cpu, gpu, nnapi (default cpu);
 *   <li>{@code threads}: comma-separated interpreter thread counts (default 1);
 *   <li>{@code warmup_runs} (default 5), {@code num_runs} (default 50), {@code use_xnnpack}
 *       (true or false, default true), {@code result_dir} (where result files go; default the
 *       app's external files directory).
 * </ul>
 *
 * Every model runs with every delegate and thread count. Other keys belong to the test runner
 * (class, package, ...) and are left alone.
 */
public final class BenchmarkPlan {
  public static final List<String> DELEGATES =
      Collections.unmodifiableList(Arrays.asList("cpu", "gpu", "nnapi"));

  /** One model with one delegate and thread count. */
  public static final class Run {
    public final String model;
    public final String inputs; // null: generated inputs
    public final String delegate;
    public final int threads;
    public final int warmupRuns;
    public final int numRuns;
    public final boolean useXnnpack;

    Run(
        String model,
        String inputs,
        String delegate,
        int threads,
        int warmupRuns,
        int numRuns,
        boolean useXnnpack) {
      this.model = model;
      this.inputs = inputs;
      this.delegate = delegate;
      this.threads = threads;
      this.warmupRuns = warmupRuns;
      this.numRuns = numRuns;
      this.useXnnpack = useXnnpack;
    }
  }

  public final List<String> models;
  public final List<String> inputs;
  public final List<String> delegates;
  public final List<Integer> threads;
  public final int warmupRuns;
  public final int numRuns;
  public final boolean useXnnpack;
  public final String resultDir;

  private BenchmarkPlan(Map<String, String> args) {
    models = paths(args, "models", true);
    inputs = paths(args, "inputs", false);
    if (!inputs.isEmpty() && inputs.size() != models.size()) {
      throw new IllegalArgumentException(
          "instrumentation argument 'inputs' lists "
              + inputs.size()
              + " files for "
              + models.size()
              + " models; give one inputs file per model or none");
    }
    delegates = new ArrayList<>();
    for (String delegate : list(args, "delegates", "cpu")) {
      if (!DELEGATES.contains(delegate)) {
        throw new IllegalArgumentException(
            "instrumentation argument 'delegates': '" + delegate + "' is not one of " + DELEGATES);
      }
      delegates.add(delegate);
    }
    threads = new ArrayList<>();
    for (String value : list(args, "threads", "1")) {
      threads.add(integer("threads", value, 1));
    }
    warmupRuns = integer("warmup_runs", value(args, "warmup_runs", "5"), 0);
    numRuns = integer("num_runs", value(args, "num_runs", "50"), 1);
    String xnnpack = value(args, "use_xnnpack", "true");
    if (!xnnpack.equals("true") && !xnnpack.equals("false")) {
      throw new IllegalArgumentException(
          "instrumentation argument 'use_xnnpack': '" + xnnpack + "' is not true or false");
    }
    useXnnpack = xnnpack.equals("true");
    String dir = args.get("result_dir");
    resultDir = dir == null || dir.isEmpty() ? null : dir;
  }

  /** Reads and checks the arguments; IllegalArgumentException names the bad one. */
  public static BenchmarkPlan parse(Map<String, String> args) {
    return new BenchmarkPlan(args);
  }

  /** Every (model, delegate, threads) combination, models outermost. */
  public List<Run> runs() {
    List<Run> runs = new ArrayList<>();
    for (int i = 0; i < models.size(); i++) {
      String input = inputs.isEmpty() ? null : inputs.get(i);
      for (String delegate : delegates) {
        for (int count : threads) {
          runs.add(
              new Run(models.get(i), input, delegate, count, warmupRuns, numRuns, useXnnpack));
        }
      }
    }
    return runs;
  }

  private static String value(Map<String, String> args, String key, String fallback) {
    String value = args.get(key);
    return value == null ? fallback : value.trim();
  }

  private static List<String> list(Map<String, String> args, String key, String fallback) {
    List<String> items = new ArrayList<>();
    for (String item : value(args, key, fallback).split(",", -1)) {
      if (item.trim().isEmpty()) {
        throw new IllegalArgumentException(
            "instrumentation argument '" + key + "' has an empty item: '" + args.get(key) + "'");
      }
      items.add(item.trim());
    }
    return items;
  }

  private static List<String> paths(Map<String, String> args, String key, boolean required) {
    if (!args.containsKey(key)) {
      if (required) {
        throw new IllegalArgumentException(
            "instrumentation argument '" + key + "' is missing; pass -e " + key + " /path/a,/path/b");
      }
      return Collections.emptyList();
    }
    List<String> paths = list(args, key, "");
    for (String path : paths) {
      if (!path.startsWith("/")) {
        throw new IllegalArgumentException(
            "instrumentation argument '" + key + "': '" + path + "' is not an absolute path");
      }
    }
    return paths;
  }

  private static int integer(String key, String value, int minimum) {
    int number;
    try {
      number = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      number = minimum - 1;
    }
    if (number < minimum) {
      throw new IllegalArgumentException(
          "instrumentation argument '" + key + "': '" + value + "' is not an integer >= " + minimum);
    }
    return number;
  }
}
