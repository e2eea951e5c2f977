package org.tensorflow.lite;

/** Compile-only stub of LiteRT's Tensor (tests/android_stubs/README.md). */
public interface Tensor {
  DataType dataType();

  int numBytes();

  int[] shape();

  String name();
}
