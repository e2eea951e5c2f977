package androidx.test.ext.junit.runners;

import org.junit.runner.Description;
import org.junit.runner.Runner;
import org.junit.runner.notification.RunNotifier;

/** Compile-only stub of androidx.test.ext.junit's AndroidJUnit4 (tests/android_stubs/README.md). */
public final class AndroidJUnit4 extends Runner {
  public AndroidJUnit4(Class<?> testClass) {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public Description getDescription() {
    throw new UnsupportedOperationException("compile-only stub");
  }

  @Override
  public void run(RunNotifier notifier) {
    throw new UnsupportedOperationException("compile-only stub");
  }
}
