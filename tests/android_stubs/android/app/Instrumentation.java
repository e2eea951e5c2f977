package android.app;

import android.content.Context;
import android.os.Bundle;

/** Compile-only stub of android.app.Instrumentation (tests/android_stubs/README.md). */
public class Instrumentation {
  public Context getTargetContext() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  public void sendStatus(int resultCode, Bundle results) {
    throw new UnsupportedOperationException("compile-only stub");
  }
}
