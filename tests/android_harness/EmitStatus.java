import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.netadapt.benchmark.core.BenchmarkPlan;
import org.netadapt.benchmark.core.BenchmarkRunner;
import org.netadapt.benchmark.core.BenchmarkSuite;
import org.netadapt.benchmark.core.ModelSession;
import org.netadapt.benchmark.core.ProcessMemory;
import org.netadapt.benchmark.core.TensorData;

/**
 * Prints what `am instrument -r` prints for the harness, made by the harness's own core classes
 * (BenchmarkPlan, BenchmarkRunner, BenchmarkSuite) on a stand-in model, so that
 * tests/test_android_harness.py can check that the host driver reads what the harness writes.
 *
 * <p>Arguments are instrumentation arguments as key=value. The stand-in model has one float32
 * input [1, 2, 2, 1] and one float32 output [1, 3] = (sum, max, min) of the input; opening it
 * takes 2.5 ms and run i takes (i % 5 + 1) ms, so the first run takes 1 ms.
 */
public final class EmitStatus {
  private static final class StandIn implements ModelSession {
    private final long[] clock;
    private int calls;
    private float[] input = new float[4];

    StandIn(long[] clock) {
      this.clock = clock;
    }

    @Override
    public List<TensorData> inputSpecs() {
      return Arrays.asList(new TensorData("x", "float32", new int[] {1, 2, 2, 1}, 16, null));
    }

    @Override
    public void setInputs(List<byte[]> inputs) {
      ByteBuffer buffer = ByteBuffer.wrap(inputs.get(0)).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < 4; i++) {
        input[i] = buffer.getFloat();
      }
    }

    @Override
    public void invoke() {
      clock[0] += (calls++ % 5 + 1) * 1_000_000L;
    }

    @Override
    public List<TensorData> outputs() {
      float sum = 0;
      float max = Float.NEGATIVE_INFINITY;
      float min = Float.POSITIVE_INFINITY;
      for (float value : input) {
        sum += value;
        max = Math.max(max, value);
        min = Math.min(min, value);
      }
      byte[] bytes =
          ByteBuffer.allocate(12)
              .order(ByteOrder.LITTLE_ENDIAN)
              .putFloat(sum)
              .putFloat(max)
              .putFloat(min)
              .array();
      return Arrays.asList(new TensorData("y", "float32", new int[] {1, 3}, 12, bytes));
    }

    @Override
    public void close() {}
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (String pair : argv) {
      int equals = pair.indexOf('=');
      args.put(pair.substring(0, equals), pair.substring(equals + 1));
    }
    BenchmarkPlan plan = BenchmarkPlan.parse(args);
    final long[] clock = {0};
    ModelSession.Factory factory =
        (model, delegate, threads, xnnpack) -> {
          clock[0] += 2_500_000L;
          return new StandIn(clock);
        };
    File scratch = new File(plan.resultDir, "clear_refs");
    BenchmarkRunner runner =
        new BenchmarkRunner(
            factory, () -> clock[0], new ProcessMemory(new File("/proc/self/status"), scratch));
    final List<String> lines = new ArrayList<>();
    List<String> failures =
        BenchmarkSuite.run(
            plan,
            runner,
            new File(plan.resultDir),
            json -> {
              lines.add("INSTRUMENTATION_STATUS: netadapt_result=" + json);
              lines.add("INSTRUMENTATION_STATUS_CODE: 2");
            });
    for (String line : lines) {
      System.out.println(line);
    }
    System.out.println("INSTRUMENTATION_RESULT: stream=");
    System.out.println(failures.isEmpty() ? "OK (1 test)" : "FAILURES!!! " + failures);
    System.out.println("INSTRUMENTATION_CODE: -1");
  }
}
