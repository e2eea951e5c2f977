package org.netadapt.benchmark;

import static org.junit.Assert.assertTrue;

import android.app.Instrumentation;
import android.os.Bundle;
import androidx.test.ext.junit.runners.AndroidJUnit4;
import androidx.test.platform.app.InstrumentationRegistry;
import java.io.File;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.netadapt.benchmark.core.BenchmarkPlan;
import org.netadapt.benchmark.core.BenchmarkRunner;
import org.netadapt.benchmark.core.BenchmarkSuite;
import org.netadapt.benchmark.core.ProcessMemory;
import org.netadapt.benchmark.core.ResultFormat;
import org.netadapt.benchmark.litert.LiteRtSession;

/**
 * The on-device benchmark, run by the host through
 *
 * <pre>
 * adb shell am instrument -w -r -e class org.netadapt.benchmark.ModelBenchmarkTest \
 *     -e models /data/local/tmp/a.tflite [-e delegates cpu,gpu] [-e threads 1,4] ... \
 *     org.netadapt.benchmark.test/androidx.test.runner.AndroidJUnitRunner
 * </pre>
 *
 * (arguments: BenchmarkPlan). It runs inside the app's process, so the model is timed the way
 * an app sees it. Everything but the Android plumbing is in the core package (BenchmarkSuite),
 * tested on a JVM. The test fails at the end if any run failed, after reporting every run.
 */
@RunWith(AndroidJUnit4.class)
public final class ModelBenchmarkTest {
  @Test
  public void benchmarkModels() throws IOException {
    Bundle arguments = InstrumentationRegistry.getArguments();
    Map<String, String> args = new HashMap<>();
    for (String key : arguments.keySet()) {
      String value = arguments.getString(key);
      if (value != null) {
        args.put(key, value);
      }
    }
    BenchmarkPlan plan = BenchmarkPlan.parse(args);
    final Instrumentation instrumentation = InstrumentationRegistry.getInstrumentation();
    File directory =
        plan.resultDir != null
            ? new File(plan.resultDir)
            : new File(instrumentation.getTargetContext().getExternalFilesDir(null), "netadapt");
    BenchmarkRunner runner =
        new BenchmarkRunner(
            LiteRtSession.FACTORY,
            new BenchmarkRunner.Clock() {
              @Override
              public long nanoTime() {
                return System.nanoTime();
              }
            },
            ProcessMemory.ofThisProcess());
    List<String> failures =
        BenchmarkSuite.run(
            plan,
            runner,
            directory,
            new BenchmarkSuite.StatusSink() {
              @Override
              public void send(String resultJson) {
                Bundle status = new Bundle();
                status.putString(ResultFormat.RESULT_KEY, resultJson);
                instrumentation.sendStatus(ResultFormat.STATUS_CODE, status);
              }
            });
    assertTrue("runs failed: " + failures, failures.isEmpty());
  }
}
