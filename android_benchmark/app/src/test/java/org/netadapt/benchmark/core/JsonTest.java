package org.netadapt.benchmark.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.Test;

public final class JsonTest {
  @Test
  public void writesNestedValuesInInsertionOrder() {
    Map<String, Object> inner = new LinkedHashMap<>();
    inner.put("shape", new int[] {1, 10});
    inner.put("none", null);
    Map<String, Object> outer = new LinkedHashMap<>();
    outer.put("b", true);
    outer.put("n", 3);
    outer.put("x", 0.25);
    outer.put("big", 123456789012L);
    outer.put("list", Arrays.asList(inner, "s", false));
    assertEquals(
        "{\"b\":true,\"n\":3,\"x\":0.25,\"big\":123456789012,"
            + "\"list\":[{\"shape\":[1,10],\"none\":null},\"s\",false]}",
        Json.write(outer));
  }

  @Test
  public void escapesQuotesControlCharactersAndNonAscii() {
    assertEquals(
        "\"a\\\"b\\\\c\\n\\t\\u0001\\u00e9\\u4e2d\"", Json.write("a\"b\\c\n\t\u0001\u00e9\u4e2d"));
  }

  @Test
  public void smallAndLargeDoublesStayValidJson() {
    assertEquals("1.0E-5", Json.write(1e-5));
    assertEquals("1.5E10", Json.write(1.5e10));
  }

  @Test
  public void refusesNonFiniteNumbersAndUnknownTypes() {
    assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
    assertThrows(IllegalArgumentException.class, () -> Json.write(Float.POSITIVE_INFINITY));
    assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
  }
}
