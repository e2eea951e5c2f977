package org.tensorflow.lite;

import java.io.File;
import java.util.Map;

/** Compile-only stub of LiteRT's Interpreter (tests/android_stubs/README.md). */
public final class Interpreter implements InterpreterApi {
  /** As in LiteRT, these two setters return Interpreter.Options; the others the base type. */
  public static class Options extends InterpreterApi.Options {
    public Options() {}

    @Override
    public Options setUseXNNPACK(boolean useXNNPACK) {
      throw new UnsupportedOperationException("compile-only stub");
    }

    @Override
    public Options setNumThreads(int numThreads) {
      throw new UnsupportedOperationException("compile-only stub");
    }
  }

  public Interpreter(File modelFile, Options options) {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public void runForMultipleInputsOutputs(Object[] inputs, Map<Integer, Object> outputs) {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public void allocateTensors() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public int getInputTensorCount() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public Tensor getInputTensor(int inputIndex) {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public int getOutputTensorCount() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public Tensor getOutputTensor(int outputIndex) {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public void close() {
    throw new UnsupportedOperationException("compile-only stub");
  }
}
