package org.netadapt.benchmark.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Resident memory of this process from Linux's /proc/self/status: the current resident set
 * (VmRSS) and its high-water mark (VmHWM), both in kB.
 *
 * <p>The high-water mark covers the whole process, so before each model the harness asks the
 * kernel to reset it (writing "5" to /proc/self/clear_refs, Linux 4.0 and later); where that is
 * refused the result says so and the peak may belong to an earlier model.
 */
public final class ProcessMemory {
  /** Resident set now and at its peak, in kB; null where the kernel does not report it. */
  public static final class Snapshot {
    public final Long rssKb;
    public final Long peakRssKb;

    public Snapshot(Long rssKb, Long peakRssKb) {
      this.rssKb = rssKb;
      this.peakRssKb = peakRssKb;
    }
  }

  private final File status;
  private final File clearRefs;

  public ProcessMemory(File status, File clearRefs) {
    this.status = status;
    this.clearRefs = clearRefs;
  }

  public static ProcessMemory ofThisProcess() {
    return new ProcessMemory(new File("/proc/self/status"), new File("/proc/self/clear_refs"));
  }

  /** The current numbers; both null when the status file cannot be read. */
  public Snapshot read() {
    try {
      return parse(readText(status));
    } catch (IOException e) {
      return new Snapshot(null, null);
    }
  }

  /** Resets the high-water mark to the current resident set; false when the kernel refused. */
  public boolean resetPeak() {
    try (OutputStream out = new FileOutputStream(clearRefs)) {
      out.write("5".getBytes(StandardCharsets.US_ASCII));
      return true;
    } catch (IOException | SecurityException e) {
      return false;
    }
  }

  static Snapshot parse(String text) {
    Long rss = null;
    Long peak = null;
    for (String line : text.split("\n")) {
      if (line.startsWith("VmRSS:")) {
        rss = kilobytes(line);
      } else if (line.startsWith("VmHWM:")) {
        peak = kilobytes(line);
      }
    }
    return new Snapshot(rss, peak);
  }

  private static Long kilobytes(String line) {
    String[] words = line.substring(line.indexOf(':') + 1).trim().split("\\s+");
    if (words.length != 2 || !words[1].equals("kB")) {
      return null;
    }
    try {
      return Long.parseLong(words[0]);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  static String readText(File file) throws IOException {
    return new String(Files.readAll(file), StandardCharsets.UTF_8);
  }
}
