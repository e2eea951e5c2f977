package org.tensorflow.lite;

import java.util.Map;

/** Compile-only stub of LiteRT's InterpreterApi (tests/android_stubs/README.md). */
public interface InterpreterApi extends AutoCloseable {
  /** The options every interpreter takes; Interpreter.Options extends it. */
  class Options {
    public Options() {
      throw new UnsupportedOperationException("compile-only stub");
    }

    public Options setNumThreads(int numThreads) {
      throw new UnsupportedOperationException("compile-only stub");
    }

    public Options setUseNNAPI(boolean useNNAPI) {
      throw new UnsupportedOperationException("compile-only stub");
    }

    public Options addDelegate(Delegate delegate) {
      throw new UnsupportedOperationException("compile-only stub");
    }

    public Options setUseXNNPACK(boolean useXNNPACK) {
      throw new UnsupportedOperationException("compile-only stub");
    }
  }

  void runForMultipleInputsOutputs(Object[] inputs, Map<Integer, Object> outputs);

  void allocateTensors();

  int getInputTensorCount();

  Tensor getInputTensor(int inputIndex);

  int getOutputTensorCount();

  Tensor getOutputTensor(int outputIndex);

  @Override
  void close();
}
