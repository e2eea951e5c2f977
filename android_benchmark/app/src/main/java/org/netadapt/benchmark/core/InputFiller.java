package org.netadapt.benchmark.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Inputs for a run without an inputs file: float32 values uniform in [-1, 1), random bytes for
 * int8 and uint8, zeros for other types (integers there are often indices that must stay in
 * range). java.util.Random is specified bit for bit, so a seed gives the same inputs anywhere.
 */
public final class InputFiller {
  private InputFiller() {}

  public static byte[] generate(TensorData spec, long seed) {
    Random random = new Random(seed);
    byte[] bytes = new byte[spec.numBytes];
    if (spec.dtype.equals("float32")) {
      ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
      while (buffer.remaining() >= 4) {
        buffer.putFloat(random.nextFloat() * 2f - 1f);
      }
    } else if (spec.dtype.equals("int8") || spec.dtype.equals("uint8")) {
      random.nextBytes(bytes);
    }
    return bytes;
  }
}
