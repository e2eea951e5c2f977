package org.tensorflow.lite.gpu;

import java.io.Closeable;
import org.tensorflow.lite.Delegate;

/** Compile-only stub of litert-gpu's GpuDelegate (tests/android_stubs/README.md). */
public class GpuDelegate implements Delegate, Closeable {
  public GpuDelegate() {
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
