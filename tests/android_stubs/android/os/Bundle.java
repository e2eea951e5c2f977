package android.os;

import java.util.Set;

/** Compile-only stub of android.os.Bundle (tests/android_stubs/README.md). */
public final class Bundle {
  public Bundle() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  public Set<String> keySet() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  public String getString(String key) {
    throw new UnsupportedOperationException("compile-only stub");
  }

  public void putString(String key, String value) {
    throw new UnsupportedOperationException("compile-only stub");
  }
}
