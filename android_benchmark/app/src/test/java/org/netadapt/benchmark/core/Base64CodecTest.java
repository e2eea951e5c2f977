package org.netadapt.benchmark.core;

import static org.junit.Assert.assertEquals;

import java.util.Base64;
import java.util.Random;
import org.junit.Test;

public final class Base64CodecTest {
  @Test
  public void agreesWithTheJdkForEveryPaddingCase() {
    Random random = new Random(7);
    for (int length = 0; length < 40; length++) {
      byte[] data = new byte[length];
      random.nextBytes(data);
      assertEquals(Base64.getEncoder().encodeToString(data), Base64Codec.encode(data));
    }
  }

  @Test
  public void knownVector() {
    assertEquals("Zm9vYmFy", Base64Codec.encode("foobar".getBytes()));
    assertEquals("Zm9vYg==", Base64Codec.encode("foob".getBytes()));
  }
}
