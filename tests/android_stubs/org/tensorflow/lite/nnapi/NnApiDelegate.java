package org.tensorflow.lite.nnapi;

import org.tensorflow.lite.Delegate;

/** Compile-only stub of LiteRT's NnApiDelegate (tests/android_stubs/README.md). */
public class NnApiDelegate implements Delegate, AutoCloseable {
  public NnApiDelegate() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public long getNativeHandle() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public void close() {
    throw new UnsupportedOperationException("compile-only stub");
  }
}
