package org.netadapt.benchmark.core;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs every run of a plan and reports each as soon as it is done: the full result (outputs
 * included) into a file in `directory`, and the result with outputs up to
 * ResultFormat.INLINE_OUTPUT_LIMIT to `sink` (the instrumentation's status line). A failed run
 * is reported like any other and the next one runs; the failures are returned at the end.
 */
public final class BenchmarkSuite {
  /** Where each result's JSON goes as soon as its run is done. */
  public interface StatusSink {
    void send(String resultJson);
  }

  private BenchmarkSuite() {}

  public static List<String> run(
      BenchmarkPlan plan, BenchmarkRunner runner, File directory, StatusSink sink)
      throws IOException {
    if (!directory.isDirectory() && !directory.mkdirs()) {
      throw new IOException("cannot create the result directory " + directory);
    }
    List<String> failures = new ArrayList<>();
    for (BenchmarkPlan.Run run : plan.runs()) {
      RunResult result = runner.run(run);
      File file = new File(directory, resultName(run));
      Files.writeText(file, result.toJson(file.getPath(), -1));
      sink.send(result.toJson(file.getPath(), ResultFormat.INLINE_OUTPUT_LIMIT));
      if (!result.ok()) {
        failures.add(run.model + " (" + run.delegate + ", " + run.threads + "): " + result.error);
      }
    }
    return failures;
  }

  static String resultName(BenchmarkPlan.Run run) {
    return new File(run.model).getName() + "." + run.delegate + ".t" + run.threads + ".json";
  }
}
