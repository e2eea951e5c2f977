package android.content;

import java.io.File;

/** Compile-only stub of android.content.Context (tests/android_stubs/README.md). */
public abstract class Context {
  public abstract File getExternalFilesDir(String type);
}
