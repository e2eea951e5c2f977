package org.tensorflow.lite;

/** Compile-only stub of LiteRT's Delegate (tests/android_stubs/README.md). */
public interface Delegate {
  long getNativeHandle();
}
