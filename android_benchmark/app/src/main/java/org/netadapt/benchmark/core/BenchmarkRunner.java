package org.netadapt.benchmark.core;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs one model the way benchmark_model does: load it (the init time covers reading the file,
 * applying the delegate and allocating tensors), time a first inference, then `warmupRuns`
 * untimed-for-the-statistics runs, then `numRuns` timed runs one by one. Memory is read before
 * loading and after the timed runs. Any failure (a missing or unreadable model, one LiteRT
 * cannot load, an inputs file of the wrong size, a delegate the phone lacks) becomes the
 * result's error.
 */
public final class BenchmarkRunner {
  /** Monotonic nanoseconds (System::nanoTime on the phone; a fake in tests). */
  public interface Clock {
    long nanoTime();
  }

  /** Seed of generated inputs: fixed, so that reruns see the same inputs. */
  public static final long INPUT_SEED = 20210601L;

  private final ModelSession.Factory factory;
  private final Clock clock;
  private final ProcessMemory memory;

  public BenchmarkRunner(ModelSession.Factory factory, Clock clock, ProcessMemory memory) {
    this.factory = factory;
    this.clock = clock;
    this.memory = memory;
  }

  public RunResult run(BenchmarkPlan.Run run) {
    RunResult.Builder result = new RunResult.Builder(run);
    try {
      measure(run, result);
    } catch (Exception | LinkageError e) {
      // LinkageError: LiteRT's native library missing or built for another ABI.
      result.error = e.getClass().getName() + ": " + e.getMessage();
    }
    return result.build();
  }

  private void measure(BenchmarkPlan.Run run, RunResult.Builder result) throws Exception {
    File model = new File(run.model);
    if (!model.isFile() || !model.canRead()) {
      throw new IOException(
          "cannot read model "
              + run.model
              + (model.exists() ? " (no read permission)" : " (no such file)"));
    }
    result.modelBytes = model.length();
    result.peakReset = memory.resetPeak();
    result.before = memory.read();
    long start = clock.nanoTime();
    try (ModelSession session = factory.open(run.model, run.delegate, run.threads, run.useXnnpack)) {
      result.initMs = (clock.nanoTime() - start) / 1e6;
      result.inputs = session.inputSpecs();
      session.setInputs(inputs(run, result));

      start = clock.nanoTime();
      session.invoke();
      result.firstInferenceMs = (clock.nanoTime() - start) / 1e6;
      long warmup = 0;
      for (int i = 0; i < run.warmupRuns; i++) {
        start = clock.nanoTime();
        session.invoke();
        warmup += clock.nanoTime() - start;
      }
      result.warmupMeanMs = run.warmupRuns > 0 ? warmup / 1e6 / run.warmupRuns : 0;
      long[] samples = new long[run.numRuns];
      for (int i = 0; i < run.numRuns; i++) {
        start = clock.nanoTime();
        session.invoke();
        samples[i] = clock.nanoTime() - start;
      }
      result.latency = LatencyStats.ofNanos(samples);
      result.outputs = session.outputs();
    }
    result.after = memory.read();
  }

  private static List<byte[]> inputs(BenchmarkPlan.Run run, RunResult.Builder result)
      throws IOException {
    List<byte[]> inputs = new ArrayList<>();
    if (run.inputs == null) {
      for (int i = 0; i < result.inputs.size(); i++) {
        inputs.add(InputFiller.generate(result.inputs.get(i), INPUT_SEED + i));
      }
      return inputs;
    }
    byte[] all = Files.readAll(new File(run.inputs));
    int expected = 0;
    for (TensorData spec : result.inputs) {
      expected += spec.numBytes;
    }
    if (all.length != expected) {
      throw new IllegalArgumentException(
          "inputs file "
              + run.inputs
              + " has "
              + all.length
              + " bytes but the model's inputs take "
              + expected);
    }
    int offset = 0;
    for (TensorData spec : result.inputs) {
      byte[] one = new byte[spec.numBytes];
      System.arraycopy(all, offset, one, 0, spec.numBytes);
      offset += spec.numBytes;
      inputs.add(one);
    }
    result.inputsFromFile = true;
    return inputs;
  }
}
