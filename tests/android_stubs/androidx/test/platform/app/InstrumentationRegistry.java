package androidx.test.platform.app;

import android.app.Instrumentation;
import android.os.Bundle;

/** Compile-only stub of androidx.test's InstrumentationRegistry (tests/android_stubs/README.md). */
public final class InstrumentationRegistry {
  private InstrumentationRegistry() {}

  public static Instrumentation getInstrumentation() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  public static Bundle getArguments() {
    throw new UnsupportedOperationException("compile-only stub");
  }
}
