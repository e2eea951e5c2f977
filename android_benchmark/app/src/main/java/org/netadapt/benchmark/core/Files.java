package org.netadapt.benchmark.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Whole-file reads and writes (java.nio.file needs Android API 26; the harness runs on 24). */
public final class Files {
  private Files() {}

  public static byte[] readAll(File file) throws IOException {
    try (InputStream in = new FileInputStream(file)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[1 << 16];
      int read;
      while ((read = in.read(buffer)) != -1) {
        out.write(buffer, 0, read);
      }
      return out.toByteArray();
    }
  }

  /** Writes `text` (UTF-8) to a temporary file next to `file`, then renames it into place. */
  public static void writeText(File file, String text) throws IOException {
    File temp = new File(file.getParentFile(), "." + file.getName() + ".partial");
    try (OutputStream out = new FileOutputStream(temp)) {
      out.write(text.getBytes(StandardCharsets.UTF_8));
    }
    if (!temp.renameTo(file)) {
      throw new IOException("cannot rename " + temp + " to " + file);
    }
  }
}
