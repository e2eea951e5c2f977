package org.netadapt.benchmark.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public final class BenchmarkRunnerTest {
  @Rule public TemporaryFolder folder = new TemporaryFolder();

  /** A clock that only moves when the fake model says so. */
  static final class FakeClock implements BenchmarkRunner.Clock {
    long now = 1_000;

    @Override
    public long nanoTime() {
      return now;
    }
  }

  /**
   * A model of one float32 input [1, 2] and one output that is the input times two; opening it
   * takes 3 ms and run i takes durations[i] ms.
   */
  static final class FakeSession implements ModelSession {
    final FakeClock clock;
    final long[] durationsMs;
    int calls;
    byte[] input;
    boolean closed;

    FakeSession(FakeClock clock, long... durationsMs) {
      this.clock = clock;
      this.durationsMs = durationsMs;
    }

    @Override
    public List<TensorData> inputSpecs() {
      return Arrays.asList(new TensorData("x", "float32", new int[] {1, 2}, 8, null));
    }

    @Override
    public void setInputs(List<byte[]> inputs) {
      input = inputs.get(0);
    }

    @Override
    public void invoke() {
      clock.now += durationsMs[calls++] * 1_000_000L;
    }

    @Override
    public List<TensorData> outputs() {
      ByteBuffer in = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer out = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      out.putFloat(in.getFloat() * 2).putFloat(in.getFloat() * 2);
      return Arrays.asList(new TensorData("y", "float32", new int[] {1, 2}, 8, out.array()));
    }

    @Override
    public void close() {
      closed = true;
    }
  }

  private final FakeClock clock = new FakeClock();
  private final List<String> opened = new ArrayList<>();

  private ModelSession.Factory factory(final FakeSession session) {
    return new ModelSession.Factory() {
      @Override
      public ModelSession open(String model, String delegate, int threads, boolean xnnpack) {
        opened.add(model + " " + delegate + " " + threads + " " + xnnpack);
        clock.now += 3_000_000L;
        return session;
      }
    };
  }

  private BenchmarkRunner runner(ModelSession.Factory factory) throws IOException {
    File status = folder.newFile();
    Files.writeText(status, "VmHWM:\t 2048 kB\nVmRSS:\t 1024 kB\n");
    return new BenchmarkRunner(factory, clock, new ProcessMemory(status, folder.newFile()));
  }

  private BenchmarkPlan.Run run(String... extra) throws IOException {
    File model = new File(folder.getRoot(), "m.tflite");
    Files.writeText(model, "TFL3 fake model");
    Map<String, String> args = new HashMap<>();
    args.put("models", model.getPath());
    args.put("warmup_runs", "2");
    args.put("num_runs", "5");
    args.put("threads", "4");
    for (int i = 0; i < extra.length; i += 2) {
      args.put(extra[i], extra[i + 1]);
    }
    return BenchmarkPlan.parse(args).runs().get(0);
  }

  @Test
  public void timesFirstWarmupAndTimedRunsSeparately() throws IOException {
    FakeSession session = new FakeSession(clock, 40, 10, 12, 5, 9, 6, 7, 8);
    BenchmarkPlan.Run run = run();
    RunResult result = runner(factory(session)).run(run);
    assertTrue(result.error, result.ok());
    assertEquals(Arrays.asList(run.model + " cpu 4 true"), opened);
    assertEquals(3.0, result.initMs, 0);
    assertEquals(40.0, result.firstInferenceMs, 0);
    assertEquals(11.0, result.warmupMeanMs, 0);
    assertEquals(5, result.latency.count);
    assertEquals(7.0, result.latency.medianMs, 0);
    assertEquals(7.0, result.latency.meanMs, 0);
    assertEquals(8.6, result.latency.p90Ms, 1e-12);
    assertEquals(Long.valueOf(2048), result.after.peakRssKb);
    assertEquals(15, result.modelBytes);
    assertTrue(session.closed);
    assertFalse(result.inputsFromFile);
  }

  @Test
  public void inputsFileIsSplitOverTheInputsAndOutputsAreReported() throws IOException {
    File inputs = folder.newFile("in.bin");
    ByteBuffer data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    data.putFloat(1.5f).putFloat(-0.25f);
    try (java.io.FileOutputStream out = new java.io.FileOutputStream(inputs)) {
      out.write(data.array());
    }
    FakeSession session = new FakeSession(clock, 1, 1, 1, 1, 1, 1, 1, 1);
    RunResult result = runner(factory(session)).run(run("inputs", inputs.getPath()));
    assertTrue(result.error, result.ok());
    assertTrue(result.inputsFromFile);
    byte[] expected =
        ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(3f).putFloat(-0.5f).array();
    assertArrayEquals(expected, result.outputs.get(0).bytes);
    String json = result.toJson("/sdcard/r.json", -1);
    assertTrue(json, json.contains("\"base64\":\"" + Base64.getEncoder().encodeToString(expected)));
    assertTrue(json, json.contains("\"outputs_inline\":true"));
    String trimmed = result.toJson("/sdcard/r.json", 4);
    assertFalse(trimmed, trimmed.contains("base64"));
    assertTrue(trimmed, trimmed.contains("\"outputs_inline\":false"));
  }

  @Test
  public void failuresBecomeErrorsNotNumbers() throws IOException {
    File inputs = folder.newFile("short.bin");
    Files.writeText(inputs, "abc");
    RunResult wrongSize =
        runner(factory(new FakeSession(clock, 1))).run(run("inputs", inputs.getPath()));
    assertEquals(
        "java.lang.IllegalArgumentException: inputs file "
            + inputs.getPath()
            + " has 3 bytes but the model's inputs take 8",
        wrongSize.error);

    Map<String, String> args = new HashMap<>();
    args.put("models", new File(folder.getRoot(), "absent.tflite").getPath());
    BenchmarkPlan.Run missing = BenchmarkPlan.parse(args).runs().get(0);
    RunResult absent = runner(factory(new FakeSession(clock))).run(missing);
    assertEquals(
        "java.io.IOException: cannot read model " + missing.model + " (no such file)",
        absent.error);
    assertTrue(absent.toJson(null, -1).contains("\"status\":\"error\""));

    ModelSession.Factory noLibrary =
        new ModelSession.Factory() {
          @Override
          public ModelSession open(String model, String delegate, int threads, boolean xnnpack) {
            throw new UnsatisfiedLinkError(
                "dlopen failed: \"libtensorflowlite_jni.so\" is for EM_AARCH64 (183) instead of"
                    + " EM_X86_64 (62)");
          }
        };
    RunResult wrongAbi = runner(noLibrary).run(run());
    assertTrue(wrongAbi.error, wrongAbi.error.startsWith("java.lang.UnsatisfiedLinkError: "));
  }

  @Test
  public void generatedInputsAreRepeatable() {
    TensorData spec = new TensorData("x", "float32", new int[] {1, 4}, 16, null);
    byte[] first = InputFiller.generate(spec, 3);
    assertArrayEquals(first, InputFiller.generate(spec, 3));
    ByteBuffer values = ByteBuffer.wrap(first).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 4; i++) {
      float value = values.getFloat();
      assertTrue(value >= -1f && value < 1f);
    }
    TensorData ints = new TensorData("i", "int32", new int[] {2}, 8, null);
    assertArrayEquals(new byte[8], InputFiller.generate(ints, 3));
  }
}
