package org.netadapt.benchmark.core;

import java.util.List;

/**
 * A loaded model ready to run: the seam between the timing logic here and the LiteRT
 * interpreter (org.netadapt.benchmark.litert.LiteRtSession), so the timing is tested on a JVM.
 */
public interface ModelSession extends AutoCloseable {
  /** The inputs' names, types and shapes (no data). */
  List<TensorData> inputSpecs();

  /** Copies one byte array per input, each exactly as long as that input tensor. */
  void setInputs(List<byte[]> inputs);

  /** Runs the model once on the current inputs. */
  void invoke();

  /** The outputs of the last invoke, with their bytes. */
  List<TensorData> outputs();

  @Override
  void close();

  /** Opens models: `delegate` is one of BenchmarkPlan.DELEGATES. */
  interface Factory {
    ModelSession open(String modelPath, String delegate, int threads, boolean useXnnpack)
        throws Exception;
  }
}
