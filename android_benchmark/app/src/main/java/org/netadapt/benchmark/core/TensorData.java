package org.netadapt.benchmark.core;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One input or output tensor: its name, element type (LiteRT's DataType in lower case, which
 * equals numpy's dtype name: float32, int8, uint8, ...), shape, size, and raw bytes in the
 * phone's byte order (little-endian on every Android ABI) when known.
 */
public final class TensorData {
  public final String name;
  public final String dtype;
  public final int[] shape;
  public final int numBytes;
  public final byte[] bytes;

  public TensorData(String name, String dtype, int[] shape, int numBytes, byte[] bytes) {
    if (bytes != null && bytes.length != numBytes) {
      throw new IllegalArgumentException(
          "tensor " + name + " holds " + bytes.length + " bytes, expected " + numBytes);
    }
    this.name = name;
    this.dtype = dtype;
    this.shape = shape.clone();
    this.numBytes = numBytes;
    this.bytes = bytes;
  }

  /** Name, dtype and shape; with `withData`, the bytes in base64 too. */
  public Map<String, Object> toJson(boolean withData) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("name", name);
    json.put("dtype", dtype);
    json.put("shape", shape);
    if (withData && bytes != null) {
      json.put("base64", Base64Codec.encode(bytes));
    }
    return json;
  }
}
