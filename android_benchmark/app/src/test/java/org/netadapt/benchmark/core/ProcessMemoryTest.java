package org.netadapt.benchmark.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public final class ProcessMemoryTest {
  @Rule public TemporaryFolder folder = new TemporaryFolder();

  private static final String STATUS =
      "Name:\tapp_process64\nVmPeak:\t 9000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\n";

  @Test
  public void readsResidentSetAndItsPeak() throws IOException {
    File status = folder.newFile("status");
    Files.writeText(status, STATUS);
    ProcessMemory.Snapshot snapshot =
        new ProcessMemory(status, new File(folder.getRoot(), "clear_refs")).read();
    assertEquals(Long.valueOf(98765), snapshot.rssKb);
    assertEquals(Long.valueOf(123456), snapshot.peakRssKb);
  }

  @Test
  public void missingFieldsAndFilesAreNull() {
    ProcessMemory.Snapshot partial = ProcessMemory.parse("VmRSS:\t12 MB\n");
    assertNull(partial.rssKb);
    assertNull(partial.peakRssKb);
    ProcessMemory.Snapshot none =
        new ProcessMemory(new File(folder.getRoot(), "nope"), new File("/nonexistent/x")).read();
    assertNull(none.rssKb);
  }

  @Test
  public void resetWritesFiveAndReportsRefusal() throws IOException {
    File clearRefs = folder.newFile("clear_refs");
    assertTrue(new ProcessMemory(clearRefs, clearRefs).resetPeak());
    assertEquals("5", new String(Files.readAll(clearRefs), StandardCharsets.US_ASCII));
    File directory = folder.newFolder("not_a_file");
    assertFalse(new ProcessMemory(clearRefs, directory).resetPeak());
  }
}
