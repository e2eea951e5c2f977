package org.tensorflow.lite;

/** Compile-only stub of LiteRT's DataType (tests/android_stubs/README.md). */
public enum DataType {
  FLOAT32,
  INT32,
  UINT8,
  INT64,
  STRING,
  BOOL,
  INT16,
  INT8
}
