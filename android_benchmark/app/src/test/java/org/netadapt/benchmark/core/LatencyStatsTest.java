package org.netadapt.benchmark.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import org.junit.Test;

public final class LatencyStatsTest {
  @Test
  public void summariesOfOneToTenMilliseconds() {
    // Shuffled on purpose: the statistics must not depend on the order of the runs.
    long[] nanos = {7, 1, 10, 4, 2, 9, 3, 8, 6, 5};
    for (int i = 0; i < nanos.length; i++) {
      nanos[i] *= 1_000_000L;
    }
    LatencyStats stats = LatencyStats.ofNanos(nanos);
    assertEquals(10, stats.count);
    assertEquals(5.5, stats.medianMs, 1e-12);
    assertEquals(5.5, stats.meanMs, 1e-12);
    assertEquals(9.1, stats.p90Ms, 1e-12); // numpy.percentile([1..10], 90)
    assertEquals(1.0, stats.minMs, 1e-12);
    assertEquals(10.0, stats.maxMs, 1e-12);
    assertEquals(Math.sqrt(8.25), stats.stdMs, 1e-12);
  }

  @Test
  public void oneRunIsItsOwnSummary() {
    LatencyStats stats = LatencyStats.ofNanos(new long[] {2_500_000L});
    assertEquals(2.5, stats.medianMs, 0);
    assertEquals(2.5, stats.p90Ms, 0);
    assertEquals(0.0, stats.stdMs, 0);
  }

  @Test
  public void refusesNoRunsAndNegativeTimes() {
    assertThrows(IllegalArgumentException.class, () -> LatencyStats.ofNanos(new long[0]));
    assertThrows(IllegalArgumentException.class, () -> LatencyStats.ofNanos(new long[] {5, -1}));
  }
}
