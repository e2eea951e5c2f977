package org.netadapt.benchmark.core;

/**
 * Standard base64 (RFC 4648, with padding) of output tensors' raw bytes. java.util.Base64 needs
 * Android API 26 and android.util.Base64 is not on a plain JVM, so the harness has its own.
 */
public final class Base64Codec {
  private static final char[] ALPHABET =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".toCharArray();

  private Base64Codec() {}

  public static String encode(byte[] data) {
    StringBuilder out = new StringBuilder((data.length + 2) / 3 * 4);
    for (int i = 0; i < data.length; i += 3) {
      int remaining = Math.min(3, data.length - i);
      int chunk = (data[i] & 0xff) << 16;
      if (remaining > 1) {
        chunk |= (data[i + 1] & 0xff) << 8;
      }
      if (remaining > 2) {
        chunk |= data[i + 2] & 0xff;
      }
      out.append(ALPHABET[(chunk >> 18) & 0x3f]);
      out.append(ALPHABET[(chunk >> 12) & 0x3f]);
      out.append(remaining > 1 ? ALPHABET[(chunk >> 6) & 0x3f] : '=');
      out.append(remaining > 2 ? ALPHABET[chunk & 0x3f] : '=');
    }
    return out.toString();
  }
}
