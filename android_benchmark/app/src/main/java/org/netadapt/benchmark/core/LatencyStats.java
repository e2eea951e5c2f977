package org.netadapt.benchmark.core;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Summary of the timed runs, in milliseconds: median, mean, 90th percentile, min, max and the
 * population standard deviation. Percentiles interpolate linearly between the two nearest
 * ranks (numpy's default), so the host can recompute them from the same samples.
 */
public final class LatencyStats {
  public final int count;
  public final double medianMs;
  public final double meanMs;
  public final double p90Ms;
  public final double minMs;
  public final double maxMs;
  public final double stdMs;

  private LatencyStats(double[] sortedMs) {
    count = sortedMs.length;
    medianMs = percentile(sortedMs, 0.5);
    p90Ms = percentile(sortedMs, 0.9);
    minMs = sortedMs[0];
    maxMs = sortedMs[sortedMs.length - 1];
    double sum = 0;
    for (double value : sortedMs) {
      sum += value;
    }
    meanMs = sum / count;
    double squares = 0;
    for (double value : sortedMs) {
      squares += (value - meanMs) * (value - meanMs);
    }
    stdMs = Math.sqrt(squares / count);
  }

  /** Statistics of durations given in nanoseconds; at least one is required. */
  public static LatencyStats ofNanos(long[] nanos) {
    if (nanos.length == 0) {
      throw new IllegalArgumentException("no timed runs to summarise");
    }
    double[] ms = new double[nanos.length];
    for (int i = 0; i < nanos.length; i++) {
      if (nanos[i] < 0) {
        throw new IllegalArgumentException("run " + i + " took a negative time: " + nanos[i]);
      }
      ms[i] = nanos[i] / 1e6;
    }
    Arrays.sort(ms);
    return new LatencyStats(ms);
  }

  static double percentile(double[] sorted, double fraction) {
    double position = fraction * (sorted.length - 1);
    int lower = (int) Math.floor(position);
    int upper = Math.min(lower + 1, sorted.length - 1);
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
  }

  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("count", count);
    json.put("median", medianMs);
    json.put("mean", meanMs);
    json.put("p90", p90Ms);
    json.put("min", minMs);
    json.put("max", maxMs);
    json.put("std", stdMs);
    return json;
  }
}
