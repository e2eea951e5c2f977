package org.netadapt.benchmark.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public final class BenchmarkSuiteTest {
  @Rule public TemporaryFolder folder = new TemporaryFolder();

  @Test
  public void reportsEveryRunAndKeepsGoingAfterAFailure() throws IOException {
    File model = new File(folder.getRoot(), "good.tflite");
    Files.writeText(model, "TFL3");
    File missing = new File(folder.getRoot(), "gone.tflite");
    Map<String, String> args = new HashMap<>();
    args.put("models", missing.getPath() + "," + model.getPath());
    args.put("threads", "1,2");
    args.put("num_runs", "3");
    args.put("warmup_runs", "1");
    BenchmarkRunnerTest.FakeClock clock = new BenchmarkRunnerTest.FakeClock();
    ModelSession.Factory factory =
        (path, delegate, threads, xnnpack) ->
            new BenchmarkRunnerTest.FakeSession(clock, 1, 1, 2, 3, 4);
    BenchmarkRunner runner =
        new BenchmarkRunner(
            factory, clock, new ProcessMemory(folder.newFile(), new File(folder.getRoot(), "c")));
    File results = new File(folder.getRoot(), "results/deeper");
    List<String> sent = new ArrayList<>();
    List<String> failures = BenchmarkSuite.run(BenchmarkPlan.parse(args), runner, results, sent::add);

    assertEquals(4, sent.size());
    assertEquals(2, failures.size());
    assertTrue(failures.get(0), failures.get(0).startsWith(missing.getPath() + " (cpu, 1): "));
    assertTrue(sent.get(0), sent.get(0).contains("\"status\":\"error\""));
    assertTrue(sent.get(3), sent.get(3).contains("\"status\":\"ok\""));
    File last = new File(results, "good.tflite.cpu.t2.json");
    String written = new String(Files.readAll(last), StandardCharsets.UTF_8);
    assertEquals(sent.get(3), written); // small outputs: the status holds the whole file
    assertTrue(written, written.contains("\"result_file\":\"" + last.getPath() + "\""));
  }
}
