"""On-device latency measurement: read TFLite `benchmark_model` logs, run it on phones via adb.

The search ranks candidate networks by measured latency, so everything here either returns a
number that a complete benchmark run printed or raises; nothing guesses.
"""
