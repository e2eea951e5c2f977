package org.netadapt.benchmark.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public final class BenchmarkPlanTest {
  private static Map<String, String> args(String... pairs) {
    Map<String, String> map = new HashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      map.put(pairs[i], pairs[i + 1]);
    }
    return map;
  }

  @Test
  public void defaultsAndRunnerKeysLeftAlone() {
    BenchmarkPlan plan =
        BenchmarkPlan.parse(
            args("models", "/data/local/tmp/a.tflite", "class", "x.Y", "debug", "false"));
    assertEquals(Arrays.asList("cpu"), plan.delegates);
    assertEquals(Arrays.asList(1), plan.threads);
    assertEquals(5, plan.warmupRuns);
    assertEquals(50, plan.numRuns);
    assertTrue(plan.useXnnpack);
    assertNull(plan.resultDir);
    assertEquals(1, plan.runs().size());
    assertNull(plan.runs().get(0).inputs);
  }

  @Test
  public void everyModelWithEveryDelegateAndThreadCount() {
    BenchmarkPlan plan =
        BenchmarkPlan.parse(
            args(
                "models", "/m/a.tflite,/m/b.tflite",
                "inputs", "/m/a.bin,/m/b.bin",
                "delegates", "cpu,gpu",
                "threads", "1,4",
                "num_runs", "7",
                "warmup_runs", "0",
                "use_xnnpack", "false"));
    List<BenchmarkPlan.Run> runs = plan.runs();
    assertEquals(8, runs.size());
    BenchmarkPlan.Run last = runs.get(7);
    assertEquals("/m/b.tflite", last.model);
    assertEquals("/m/b.bin", last.inputs);
    assertEquals("gpu", last.delegate);
    assertEquals(4, last.threads);
    assertEquals(7, last.numRuns);
    assertEquals(0, last.warmupRuns);
    assertEquals(false, last.useXnnpack);
    assertEquals("cpu", runs.get(0).delegate);
    assertEquals(1, runs.get(0).threads);
    assertEquals(4, runs.get(1).threads);
  }

  private static void assertRefused(String message, Map<String, String> args) {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> BenchmarkPlan.parse(args));
    assertEquals(message, error.getMessage());
  }

  @Test
  public void badArgumentsAreNamed() {
    assertRefused(
        "instrumentation argument 'models' is missing; pass -e models /path/a,/path/b", args());
    assertRefused(
        "instrumentation argument 'models': 'a.tflite' is not an absolute path",
        args("models", "a.tflite"));
    assertRefused(
        "instrumentation argument 'delegates': 'tpu' is not one of [cpu, gpu, nnapi]",
        args("models", "/a", "delegates", "cpu,tpu"));
    assertRefused(
        "instrumentation argument 'num_runs': '0' is not an integer >= 1",
        args("models", "/a", "num_runs", "0"));
    assertRefused(
        "instrumentation argument 'threads': 'two' is not an integer >= 1",
        args("models", "/a", "threads", "two"));
    assertRefused(
        "instrumentation argument 'use_xnnpack': 'yes' is not true or false",
        args("models", "/a", "use_xnnpack", "yes"));
    assertRefused(
        "instrumentation argument 'inputs' lists 1 files for 2 models; give one inputs file per"
            + " model or none",
        args("models", "/a,/b", "inputs", "/x"));
    assertRefused(
        "instrumentation argument 'models' has an empty item: '/a,,/b'",
        args("models", "/a,,/b"));
  }
}
